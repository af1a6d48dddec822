package userspace

// L3 namespace tests: a routed, SNATed path between two hosts, flow-state
// messages ordered before data, and an uplink on a NIC-like interface.
// Every name starts with hd3-.
//
//	hd3-n-vm1  eth0 10.252.3.1/24 02:00:00:00:03:01        hd3-n-vm2  eth0 10.253.3.2/24 02:00:00:00:03:02
//	           default via 10.252.3.254 (fa:16:3e:00:01:fe)           default via 10.253.3.254 (fa:16:3e:00:02:fe)
//	  │ veth                                                   │ veth
//	hd3-tap1                                                 hd3-tap2
//	hd3-n-h1: Datapath ──────────── VXLAN/UDP 4789 ──────────── hd3-n-h2: Datapath
//	hd3-ul 10.251.3.1/24 ══════════════ veth underlay ═════════════ hd3-ul 10.251.3.2/24
//
// A tiny router-with-SNAT "agent" runs in the handlers. Host1, on a miss
// from vm1 to vm2's subnet, allocates a translated port (or ICMP echo
// identifier), pushes the binding to host2 with SendState, and installs
// [set_eth_src router, set_eth_dst vm2, dec_ttl, set_ip_src 10.254.3.100,
// set_l4_src port, tunnel host2]. Host2, on a miss from vm2 to
// 10.254.3.100, looks the binding up in what its state handler received
// and installs the reverse [set_eth_src router, set_eth_dst vm1, dec_ttl,
// set_ip_dst vm1, set_l4_dst original, tunnel host1]; with no binding it
// drops and counts. So every reply proves both rewrites and that the
// state arrived before the packet that needed it.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
	"hivenet/internal/datapath/datapathtest"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

var (
	l3VMMAC     = [3][6]byte{{}, {2, 0, 0, 0, 3, 1}, {2, 0, 0, 0, 3, 2}}
	l3RouterMAC = [3][6]byte{{}, {0xfa, 0x16, 0x3e, 0, 1, 0xfe}, {0xfa, 0x16, 0x3e, 0, 2, 0xfe}}
	l3VMIP      = [3]netip.Addr{{}, netip.MustParseAddr("10.252.3.1"), netip.MustParseAddr("10.253.3.2")}
	l3SNAT      = netip.MustParseAddr("10.254.3.100")
	l3VM3IP     = netip.MustParseAddr("10.253.3.3") // on host1, in vm2's subnet
	l3VM3MAC    = [6]byte{2, 0, 0, 0, 3, 3}
)

const (
	l3Key1 = 3001 // tunnel key of vm1's port
	l3Key2 = 3002
)

// natBinding is what host1 pushes to host2: the translated port of a
// connection and the original source.
type natBinding struct {
	proto    uint8
	xport    uint16
	origIP   netip.Addr
	origPort uint16
}

func (b natBinding) marshal() []byte {
	m := []byte{'N', b.proto, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(m[2:], b.xport)
	a := b.origIP.As4()
	copy(m[4:], a[:])
	binary.BigEndian.PutUint16(m[8:], b.origPort)
	return m
}

type l3Lab struct {
	prefix string
	dp     [3]*Datapath
	port   [3]datapath.PortNo
	ul     [3]netip.Addr

	port3 atomic.Uint32 // vm3's port on host1, once added (same-host subtest)

	mu       sync.Mutex
	bindings map[[2]uint16]natBinding // host2's table: (proto, xport) -> binding
	local    map[[2]uint16]natBinding // host1's own bindings (for vm3, on host1)
	nat      map[[3]uint32]uint16     // host1's allocations
	next     uint16

	noBinding atomic.Int64 // host2 misses with no binding: state late or missing
	natMsgs   atomic.Int64 // bindings received by host2
	lastSeq   atomic.Int64 // highest 'S' message host2 received
	seqOrder  atomic.Int64 // 'S' messages received out of order
}

// origPort returns what SNAT translates in m: the source port, or the
// echo identifier of an ICMP echo request.
func origPort(m *packet.FlowMatch) (uint16, bool) {
	switch {
	case m.IPProto == packet.ProtoTCP || m.IPProto == packet.ProtoUDP:
		return m.SrcPort, true
	case m.IPProto == packet.ProtoICMP && m.SrcPort == packet.ICMPEchoRequest:
		return m.ICMPID, true
	}
	return 0, false
}

func natMask() packet.FlowMatch {
	return packet.MaskOf(packet.FInPort | packet.FEthType | packet.FIPProto | packet.FIPSrc | packet.FIPDst |
		packet.FSrcPort | packet.FDstPort | packet.FICMPID)
}

func buildL3Lab(t *testing.T, prefix string) *l3Lab {
	t.Helper()
	delNamespaces(prefix)
	t.Cleanup(func() { delNamespaces(prefix) })
	l := &l3Lab{prefix: prefix, bindings: map[[2]uint16]natBinding{}, local: map[[2]uint16]natBinding{},
		nat: map[[3]uint32]uint16{}, next: 40000}
	for _, n := range []string{"h1", "h2", "vm1", "vm2"} {
		ns := prefix + n
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	h1, h2 := prefix+"h1", prefix+"h2"
	run(t, "ip", "link", "add", "hd3-ul", "netns", h1, "type", "veth", "peer", "hd3-ul", "netns", h2)
	for i := 1; i <= 2; i++ {
		h, vm := prefix+fmt.Sprintf("h%d", i), prefix+fmt.Sprintf("vm%d", i)
		l.ul[i] = netip.MustParseAddr(fmt.Sprintf("10.251.3.%d", i))
		run(t, "ip", "-n", h, "addr", "add", l.ul[i].String()+"/24", "dev", "hd3-ul")
		run(t, "ip", "-n", h, "link", "set", "hd3-ul", "up")
		tap := fmt.Sprintf("hd3-tap%d", i)
		run(t, "ip", "link", "add", tap, "netns", h, "type", "veth", "peer", "eth0", "netns", vm)
		run(t, "ip", "-n", h, "link", "set", tap, "up")
		run(t, "ip", "-n", vm, "link", "set", "eth0", "address", net.HardwareAddr(l3VMMAC[i][:]).String(), "mtu", "1450", "up")
		run(t, "ip", "-n", vm, "addr", "add", l3VMIP[i].String()+"/24", "dev", "eth0")
		gw := strings.TrimSuffix(l3VMIP[i].String(), strconv.Itoa(int(l3VMIP[i].As4()[3]))) + "254"
		run(t, "ip", "-n", vm, "neigh", "add", gw, "lladdr", net.HardwareAddr(l3RouterMAC[i][:]).String(), "dev", "eth0", "nud", "permanent")
		run(t, "ip", "-n", vm, "route", "add", "default", "via", gw)
	}
	for i := 1; i <= 2; i++ {
		inNS(t, prefix+fmt.Sprintf("h%d", i), func() error {
			d, err := New(Config{TunnelIP: l.ul[i], Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
			l.dp[i] = d
			return err
		})
		d := l.dp[i]
		t.Cleanup(func() { d.Close() })
		p, err := d.AddPort(fmt.Sprintf("hd3-tap%d", i))
		if err != nil {
			t.Fatalf("AddPort: %v", err)
		}
		l.port[i] = p
	}
	l.dp[1].SetTunnelKey(l3Key1, l.port[1])
	l.dp[2].SetTunnelKey(l3Key2, l.port[2])
	l.dp[2].SetStateHandler(l.host2State)
	if err := l.dp[1].Start(func(u *datapath.Upcall) { l.host1Miss(t, u) }); err != nil {
		t.Fatal(err)
	}
	if err := l.dp[2].Start(func(u *datapath.Upcall) { l.host2Miss(t, u) }); err != nil {
		t.Fatal(err)
	}
	return l
}

// host1Miss: vm1 -> vm2's subnet, routed and SNATed (to vm2 on host2,
// or to vm3 on host1 itself); and vm3 -> the SNAT address, back to vm1.
func (l *l3Lab) host1Miss(t *testing.T, u *datapath.Upcall) {
	m := &u.Match
	if p3 := datapath.PortNo(l.port3.Load()); p3 != 0 && u.InPort == p3 {
		l.unNAT(t, l.dp[1], u, l.local, flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(l.port[1])})
		return
	}
	orig, ok := origPort(m)
	if m.EthType != packet.EthTypeIPv4 || m.Src() != l3VMIP[1] || !ok {
		return
	}
	l.mu.Lock()
	k := [3]uint32{uint32(m.IPProto), binary.BigEndian.Uint32(m.IPSrc[12:]), uint32(orig)}
	x, ok := l.nat[k]
	if !ok {
		x = l.next
		l.next++
		l.nat[k] = x
	}
	l.mu.Unlock()
	b := natBinding{proto: m.IPProto, xport: x, origIP: m.Src(), origPort: orig}
	dstMAC, out := l3VMMAC[2], flowtable.Action{Kind: flowtable.ActTunnel, Key: l3Key2, Remote: l.ul[2].As4()}
	var state []datapath.StateMessage
	if p3 := l.port3.Load(); p3 != 0 && m.Dst() == l3VM3IP {
		// vm3 is on this host: the state stays here.
		l.mu.Lock()
		l.local[[2]uint16{uint16(b.proto), b.xport}] = b
		l.mu.Unlock()
		dstMAC, out = l3VM3MAC, flowtable.Action{Kind: flowtable.ActOutput, Port: p3}
	} else {
		// State first, then the packet (DESIGN.md "Shared flow state"):
		// sent together below.
		state = []datapath.StateMessage{{Remote: datapath.Remote{Addr: l.ul[2]}, Msg: b.marshal()}}
	}
	var as flowtable.Actions
	as.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: l3RouterMAC[2]})
	as.Append(flowtable.Action{Kind: flowtable.ActSetEthDst, MAC: dstMAC})
	as.Append(flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1})
	as.Append(flowtable.Action{Kind: flowtable.ActSetIPv4Src, Remote: l3SNAT.As4()})
	as.Append(flowtable.Action{Kind: flowtable.ActSetL4Src, RemotePort: x})
	as.Append(out)
	mask := natMask()
	if err := l.dp[1].Install(m.Masked(mask), mask, as, nil); err != nil {
		t.Errorf("Install: %v", err)
	}
	if sent, err := l.dp[1].ExecuteWithState(state, u.InPort, u.Frame, u.GSO, &as); sent != len(state) {
		t.Errorf("ExecuteWithState: sent %d of %d state messages: %v", sent, len(state), err)
	}
}

// host2State applies what host1 pushed.
func (l *l3Lab) host2State(msg []byte) {
	switch {
	case len(msg) == 10 && msg[0] == 'N':
		b := natBinding{proto: msg[1], xport: binary.BigEndian.Uint16(msg[2:]),
			origIP: netip.AddrFrom4([4]byte(msg[4:8])), origPort: binary.BigEndian.Uint16(msg[8:])}
		l.mu.Lock()
		l.bindings[[2]uint16{uint16(b.proto), b.xport}] = b
		l.mu.Unlock()
		l.natMsgs.Add(1)
	case len(msg) == 5 && msg[0] == 'S':
		seq := int64(binary.BigEndian.Uint32(msg[1:]))
		if l.lastSeq.Load()+1 != seq {
			l.seqOrder.Add(1)
		}
		l.lastSeq.Store(seq)
	}
}

// host2Miss: vm2 -> the SNAT address, un-NATed and routed back.
func (l *l3Lab) host2Miss(t *testing.T, u *datapath.Upcall) {
	l.unNAT(t, l.dp[2], u, l.bindings, flowtable.Action{Kind: flowtable.ActTunnel, Key: l3Key1, Remote: l.ul[1].As4()})
}

// unNAT handles a miss of a packet to the SNAT address: with its binding
// in table, it installs and executes the reverse translation and routing
// back to vm1 through out.
func (l *l3Lab) unNAT(t *testing.T, d *Datapath, u *datapath.Upcall, table map[[2]uint16]natBinding, out flowtable.Action) {
	m := &u.Match
	if m.EthType != packet.EthTypeIPv4 || m.Dst() != l3SNAT {
		return
	}
	var x uint16
	switch {
	case m.IPProto == packet.ProtoTCP || m.IPProto == packet.ProtoUDP:
		x = m.DstPort
	case m.IPProto == packet.ProtoICMP && m.SrcPort == packet.ICMPEchoReply:
		x = m.ICMPID
	default:
		return
	}
	l.mu.Lock()
	b, ok := table[[2]uint16{uint16(m.IPProto), x}]
	l.mu.Unlock()
	if !ok {
		l.noBinding.Add(1)
		return
	}
	var as flowtable.Actions
	as.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: l3RouterMAC[1]})
	as.Append(flowtable.Action{Kind: flowtable.ActSetEthDst, MAC: l3VMMAC[1]})
	as.Append(flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1})
	as.Append(flowtable.Action{Kind: flowtable.ActSetIPv4Dst, Remote: b.origIP.As4()})
	as.Append(flowtable.Action{Kind: flowtable.ActSetL4Dst, RemotePort: b.origPort})
	as.Append(out)
	mask := natMask()
	if err := d.Install(m.Masked(mask), mask, as, nil); err != nil {
		t.Errorf("Install: %v", err)
	}
	_ = d.Execute(u.InPort, u.Frame, u.GSO, &as)
}

// capture opens a packet socket on ifname in namespace ns (closed at
// cleanup) with a 200 ms receive timeout.
func capture(t *testing.T, ns, ifname string) int {
	t.Helper()
	fd := -1
	inNS(t, ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000}); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// readUntil reads incoming frames from fd until match returns true or
// the deadline passes; it reports whether one matched.
func readUntil(fd int, deadline time.Time, match func(frame []byte) bool) bool {
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if match(buf[:n]) {
			return true
		}
	}
	return false
}

func TestPrivilegedRoutedSNAT(t *testing.T) {
	requireRoot(t)
	l := buildL3Lab(t, "hd3-n-")
	vm1, vm2 := l.prefix+"vm1", l.prefix+"vm2"

	t.Run("ping is routed and SNATed both ways", func(t *testing.T) {
		fd := capture(t, vm2, "eth0")
		type seen struct {
			m      packet.FlowMatch
			ipOK   bool
			icmpOK bool
		}
		got := make(chan seen, 1)
		go func() {
			var s seen
			ok := readUntil(fd, time.Now().Add(5*time.Second), func(f []byte) bool {
				var m packet.FlowMatch
				var ly packet.Layers
				if packet.ParseLayers(f, &m, &ly) != nil || m.IPProto != packet.ProtoICMP || m.SrcPort != packet.ICMPEchoRequest {
					return false
				}
				s = seen{m: m, ipOK: packet.Checksum(f[ly.L3:ly.L4], 0) == 0, icmpOK: packet.Checksum(f[ly.L4:ly.End], 0) == 0}
				return true
			})
			if !ok {
				s.m.EthType = 0
			}
			got <- s
		}()
		out, _ := exec.Command("ip", "netns", "exec", vm1, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", l3VMIP[2].String()).CombinedOutput()
		if n := strings.Count(string(out), "ttl=63"); n < 3 {
			t.Errorf("ping: %d replies with ttl=63 (one router hop), want 3\n%s", n, out)
		}
		s := <-got
		if s.m.EthType == 0 {
			t.Fatal("vm2 saw no echo request")
		}
		if s.m.Src() != l3SNAT || s.m.IPTTL != 63 || s.m.ICMPID < 40000 || s.m.EthSrc != l3RouterMAC[2] || s.m.EthDst != l3VMMAC[2] {
			t.Errorf("vm2 received %+v; want source %v, ttl 63, a translated echo id, router MAC", s.m, l3SNAT)
		}
		if !s.ipOK || !s.icmpOK {
			t.Errorf("vm2 received an echo request with a bad checksum (IP ok %v, ICMP ok %v)", s.ipOK, s.icmpOK)
		}
		if n := l.noBinding.Load(); n != 0 {
			t.Errorf("host2 missed %d replies with no NAT binding: state arrived after the packet", n)
		}
	})

	iperfRate := func(t *testing.T, args ...string) float64 {
		out := runIperf(t, l.prefix, l3VMIP[2].String(), append([]string{"-t", "3"}, args...)...)
		var res struct {
			Start struct {
				Connected []struct {
					LocalHost string `json:"local_host"`
				} `json:"connected"`
			} `json:"start"`
			End struct {
				SumReceived struct {
					Bits float64 `json:"bits_per_second"`
				} `json:"sum_received"`
				SumSent struct {
					Retransmits int `json:"retransmits"`
				} `json:"sum_sent"`
			} `json:"end"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("iperf3 output: %v\n%s", err, out)
		}
		g := res.End.SumReceived.Bits / 1e9
		t.Logf("iperf3 %v through the routed SNAT path: %.2f Gbit/s, %d retransmits", args, g, res.End.SumSent.Retransmits)
		return g
	}
	t.Run("iperf3 TCP through SNAT", func(t *testing.T) {
		before1, before2 := l.dp[1].Stats(), l.dp[2].Stats()
		if g := iperfRate(t); g <= 0 {
			t.Errorf("no TCP throughput vm1 -> vm2")
		}
		if g := iperfRate(t, "-R"); g <= 0 {
			t.Errorf("no TCP throughput vm2 -> vm1 (reverse NAT of superframes)")
		}
		if n := l.noBinding.Load(); n != 0 {
			t.Errorf("host2 missed %d packets with no NAT binding", n)
		}
		// A wrong checksum is dropped by the receiver and counted: none
		// may be, on either VM (the rewrites of both directions).
		for _, vm := range []string{vm1, vm2} {
			for _, c := range [][2]string{{"Tcp", "InCsumErrors"}, {"Icmp", "InCsumErrors"}, {"IpExt", "InCsumErrors"}} {
				if n := snmpCounter(t, vm, c[0], c[1]); n != 0 {
					t.Errorf("%s: %s %s = %d, want 0", vm, c[0], c[1], n)
				}
			}
		}
		a1, a2 := l.dp[1].Stats(), l.dp[2].Stats()
		if a1.StateTx-before1.StateTx < 2 || a2.StateRx-before2.StateRx < 2 {
			t.Errorf("state messages: host1 sent %d, host2 received %d; want one per connection (>= 2)",
				a1.StateTx-before1.StateTx, a2.StateRx-before2.StateRx)
		}
		if a1.Drops != before1.Drops || a2.Drops != before2.Drops {
			t.Logf("drops: host1 %d, host2 %d", a1.Drops-before1.Drops, a2.Drops-before2.Drops)
		}
		for i := 1; i <= 2; i++ {
			for _, f := range l.dp[i].Flows() {
				t.Logf("host%d %s", i, datapath.FormatFlow(f))
			}
		}
	})

	for _, tc := range []struct {
		name     string
		withData bool // ExecuteWithState, else SendState then Execute
	}{
		{name: "SendState then Execute", withData: false},
		{name: "ExecuteWithState", withData: true},
	} {
		t.Run("state messages are applied before the data sent after them: "+tc.name, func(t *testing.T) {
			const n = 300
			l.lastSeq.Store(0)
			l.seqOrder.Store(0)
			fd := capture(t, vm2, "eth0")
			var late, seen atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				readUntil(fd, time.Now().Add(10*time.Second), func(f []byte) bool {
					var m packet.FlowMatch
					var ly packet.Layers
					if packet.ParseLayers(f, &m, &ly) != nil || m.IPProto != packet.ProtoUDP || m.DstPort != 9999 || ly.End-ly.Payload < 4 {
						return false
					}
					seq := int64(binary.BigEndian.Uint32(f[ly.Payload:]))
					if l.lastSeq.Load() < seq {
						late.Add(1)
					}
					return seen.Add(1) == n
				})
			}()
			var as flowtable.Actions
			as.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: l3Key2, Remote: l.ul[2].As4()})
			msg := []byte{'S', 0, 0, 0, 0}
			for i := 1; i <= n; i++ {
				binary.BigEndian.PutUint32(msg[1:], uint32(i))
				var pl [4]byte
				binary.BigEndian.PutUint32(pl[:], uint32(i))
				f := packet.AppendUDP4(nil, l3RouterMAC[2], l3VMMAC[2], netip.AddrPortFrom(l3SNAT, 1), netip.AddrPortFrom(l3VMIP[2], 9999), 64, pl[:])
				r := datapath.Remote{Addr: l.ul[2], Port: 4789}
				if tc.withData {
					sent, err := l.dp[1].ExecuteWithState([]datapath.StateMessage{{Remote: r, Msg: msg}}, 0, f, datapath.GSO{}, &as)
					if err != nil || sent != 1 {
						t.Fatalf("ExecuteWithState: sent %d, %v; want 1, nil", sent, err)
					}
					continue
				}
				if err := l.dp[1].SendState(r, msg); err != nil {
					t.Fatal(err)
				}
				if err := l.dp[1].Execute(0, f, datapath.GSO{}, &as); err != nil {
					t.Fatal(err)
				}
			}
			<-done
			if seen.Load() < n*9/10 {
				t.Errorf("vm2 received %d of %d data packets", seen.Load(), n)
			}
			if late.Load() != 0 || l.seqOrder.Load() != 0 {
				t.Errorf("%d data packets arrived before their state message; %d state messages out of order", late.Load(), l.seqOrder.Load())
			}
			if l.lastSeq.Load() != n {
				t.Errorf("host2 applied state up to %d, want %d", l.lastSeq.Load(), n)
			}
		})
	}

	// Last: it turns offloads off on host1's VM ports.
	t.Run("same host: rewritten superframes checksummed by the kernel", func(t *testing.T) {
		// vm3 on host1 (hd3-tap3): vm1 -> vm3 is routed and SNATed and
		// goes out of a local port as a superframe with its partial
		// checksum. With TSO and TX checksumming off on the host side of
		// hd3-tap3 and hd3-tap1, the kernel segments and checksums those
		// superframes in software from the partial checksum the rewrite
		// left: a wrong one shows as checksum errors in the VMs.
		vm3 := l.prefix + "vm3"
		run(t, "ip", "netns", "add", vm3)
		run(t, "ip", "-n", vm3, "link", "set", "lo", "up")
		h1 := l.prefix + "h1"
		run(t, "ip", "link", "add", "hd3-tap3", "netns", h1, "type", "veth", "peer", "eth0", "netns", vm3)
		run(t, "ip", "-n", h1, "link", "set", "hd3-tap3", "up")
		run(t, "ip", "-n", vm3, "link", "set", "eth0", "address", net.HardwareAddr(l3VM3MAC[:]).String(), "mtu", "1450", "up")
		run(t, "ip", "-n", vm3, "addr", "add", l3VM3IP.String()+"/24", "dev", "eth0")
		run(t, "ip", "-n", vm3, "neigh", "add", "10.253.3.254", "lladdr", net.HardwareAddr(l3RouterMAC[2][:]).String(), "dev", "eth0", "nud", "permanent")
		run(t, "ip", "-n", vm3, "route", "add", "default", "via", "10.253.3.254")
		for _, dev := range []string{"hd3-tap1", "hd3-tap3"} {
			run(t, "ip", "netns", "exec", h1, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off")
		}
		p3, err := l.dp[1].AddPort("hd3-tap3")
		if err != nil {
			t.Fatal(err)
		}
		l.port3.Store(uint32(p3))
		ping(t, vm1, l3VM3IP.String(), 2, 2)
		for _, args := range [][]string{nil, {"-R"}} {
			out := iperfBetween(t, vm1, vm3, l3VM3IP.String(), append([]string{"-t", "2"}, args...)...)
			t.Logf("iperf3 %v vm1 <-> vm3 on one host, routed and SNATed, software segmentation: %.2f Gbit/s", args, out)
			if out <= 0.05 {
				t.Errorf("no TCP throughput %v: %.3f Gbit/s; host1 %+v", args, out, l.dp[1].Stats())
			}
		}
		for _, vm := range []string{vm1, vm3} {
			for _, c := range [][2]string{{"Tcp", "InCsumErrors"}, {"IpExt", "InCsumErrors"}} {
				if n := snmpCounter(t, vm, c[0], c[1]); n != 0 {
					t.Errorf("%s: %s %s = %d, want 0", vm, c[0], c[1], n)
				}
			}
		}
	})

	t.Run("state with no handler is counted", func(t *testing.T) {
		l.dp[2].SetStateHandler(nil)
		before := l.dp[2].Stats().StateUnhandled
		if err := l.dp[1].SendState(datapath.Remote{Addr: l.ul[2]}, []byte("x")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "unhandled state counted", func() bool { return l.dp[2].Stats().StateUnhandled > before })
		l.dp[2].SetStateHandler(l.host2State)
		if err := l.dp[1].SendState(datapath.Remote{Addr: netip.MustParseAddr("fd00::1")}, []byte("x")); err == nil {
			t.Error("SendState to an IPv6 remote succeeded on an IPv4 tunnel")
		}
	})
}

// TestPrivilegedUplink binds a NIC-like interface that the host itself
// also uses (an address, its own traffic), as a gateway's uplink is:
//
//	hd3-g-gw: Datapath                          hd3-g-ext (upstream)
//	hd3-eth1 10.254.9.1/24 ═══════ veth ═══════ eth0 10.254.9.2/24
//
// The host keeps talking over it; frames the datapath sends out of it
// reach the far side and are not read back; frames to MACs that are not
// the interface's (floating IPs, router gateway ports) are read
// (promiscuous mode, on while bound only).
func TestPrivilegedUplink(t *testing.T) {
	requireRoot(t)
	const prefix = "hd3-g-"
	delNamespaces(prefix)
	t.Cleanup(func() { delNamespaces(prefix) })
	gw, ext := prefix+"gw", prefix+"ext"
	for _, ns := range []string{gw, ext} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "hd3-eth1", "netns", gw, "type", "veth", "peer", "eth0", "netns", ext)
	run(t, "ip", "-n", gw, "addr", "add", "10.254.9.1/24", "dev", "hd3-eth1")
	run(t, "ip", "-n", ext, "addr", "add", "10.254.9.2/24", "dev", "eth0")
	run(t, "ip", "-n", gw, "link", "set", "hd3-eth1", "up")
	run(t, "ip", "-n", ext, "link", "set", "eth0", "up")
	ping(t, gw, "10.254.9.2", 1, 1)
	promisc := func() string {
		out := run(t, "ip", "-n", gw, "-d", "link", "show", "hd3-eth1")
		f := strings.Fields(out[strings.Index(out, "promiscuity"):])
		return f[1]
	}
	if p := promisc(); p != "0" {
		t.Fatalf("promiscuity %s before binding", p)
	}
	ifi := func() net.HardwareAddr {
		var hw net.HardwareAddr
		inNS(t, gw, func() error {
			i, err := net.InterfaceByName("hd3-eth1")
			if err == nil {
				hw = i.HardwareAddr
			}
			return err
		})
		return hw
	}()
	var own [6]byte
	copy(own[:], ifi)

	var d *Datapath
	inNS(t, gw, func() error {
		var err error
		d, err = New(Config{TunnelIP: netip.MustParseAddr("10.254.9.1"), TunnelPort: 4792, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		return err
	})
	t.Cleanup(func() { d.Close() })
	up, err := d.AddPort("hd3-eth1")
	if err != nil {
		t.Fatal(err)
	}
	if p := promisc(); p != "1" {
		t.Errorf("promiscuity %s while bound, want 1", p)
	}
	floatMAC := [6]byte{0xfa, 0x16, 0x3e, 0, 9, 0x50}
	var mu sync.Mutex
	var seen []packet.FlowMatch
	if err := d.Start(func(u *datapath.Upcall) {
		mu.Lock()
		seen = append(seen, u.Match)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}

	// The host's own traffic over the bound interface still works.
	ping(t, gw, "10.254.9.2", 3, 3)

	// Frames the datapath sends out reach the far side.
	fd := capture(t, ext, "eth0")
	var out flowtable.Actions
	out.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(up)})
	const n = 20
	got := make(chan int, 1)
	go func() {
		c := 0
		readUntil(fd, time.Now().Add(3*time.Second), func(f []byte) bool {
			var m packet.FlowMatch
			if packet.Parse(f, 0, &m) == nil && m.IPProto == packet.ProtoUDP && m.DstPort == 7777 {
				c++
			}
			return c == n
		})
		got <- c
	}()
	for range n {
		f := packet.AppendUDP4(nil, floatMAC, packet.BroadcastMAC, netip.MustParseAddrPort("10.254.9.50:1"),
			netip.MustParseAddrPort("10.254.9.2:7777"), 64, []byte("uplink"))
		if err := d.Execute(0, f, datapath.GSO{}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if c := <-got; c != n {
		t.Errorf("the far side received %d of the %d frames sent out of the uplink", c, n)
	}

	// A frame to a MAC that is not the interface's is read (promiscuous).
	toFloat := packet.AppendUDP4(nil, [6]byte{2, 0, 0, 0, 9, 2}, floatMAC, netip.MustParseAddrPort("10.254.9.2:1"),
		netip.MustParseAddrPort("10.254.9.50:8888"), 64, []byte("in"))
	inNS(t, ext, func() error { return sendRaw("eth0", toFloat) })
	waitFor(t, "the frame to the floating MAC upcalled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range seen {
			if m.EthDst == floatMAC && m.DstPort == 8888 {
				return true
			}
		}
		return false
	})
	mu.Lock()
	for _, m := range seen {
		if m.DstPort == 7777 || m.EthSrc == own {
			t.Errorf("the datapath read back a frame sent out of the interface: %+v", m)
		}
	}
	mu.Unlock()
	if err := d.RemovePort(up); err != nil {
		t.Fatal(err)
	}
	if p := promisc(); p != "0" {
		t.Errorf("promiscuity %s after RemovePort, want 0", p)
	}
	ping(t, gw, "10.254.9.2", 1, 1)
}

// rewriteHitPath sets up namespace hd3-a-h with two veth pairs, a
// datapath binding one end of each, and a flow that routes and NATs an
// ICMP echo (or TCP) frame, outputs it to the second port and tunnels it
// to itself. It returns a function running the exact per-packet work of a
// port reader on one such frame, and the datapath.
func rewriteHitPath(tb testing.TB, tcp bool) (func(), *Datapath) {
	tb.Helper()
	const prefix = "hd3-a-"
	ns := datapathtest.HostNS(tb, prefix, "10.251.4.1/24")
	for _, l := range []string{"hd3-a0", "hd3-a1"} {
		run(tb, "ip", "link", "add", l, "netns", ns, "type", "veth", "peer", l+"p", "netns", ns)
		run(tb, "ip", "-n", ns, "link", "set", l, "up")
		run(tb, "ip", "-n", ns, "link", "set", l+"p", "up")
	}
	var d *Datapath
	inNS(tb, ns, func() error {
		var err error
		d, err = New(Config{TunnelIP: netip.MustParseAddr("10.251.4.1"), TunnelPort: 4793, Logger: slog.New(slog.DiscardHandler)})
		return err
	})
	tb.Cleanup(func() { d.Close() })
	pa, err := d.AddPort("hd3-a0")
	if err != nil {
		tb.Fatal(err)
	}
	pb, err := d.AddPort("hd3-a1")
	if err != nil {
		tb.Fatal(err)
	}
	d.SetTunnelKey(5, pb)
	frame := packet.AppendICMP4Echo(nil, tMacA, tRouter, tIP4A, tIP4B, 64, packet.ICMPEchoRequest, 1, 1, make([]byte, 56))
	if tcp {
		frame = tcpFrame(tIP4A, tIP4B, 1, tcpACK, pattern(1400), false)
	}
	var m packet.FlowMatch
	if err := packet.Parse(frame, uint32(pa), &m); err != nil {
		tb.Fatal(err)
	}
	var a flowtable.Actions
	for _, x := range natActions() {
		a.Append(x)
	}
	a.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(pb)})
	a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: 5, Remote: [4]byte{10, 251, 4, 1}, RemotePort: 4793})
	mask := packet.MaskOf(packet.FInPort | packet.FEthDst)
	if err := d.Install(m.Masked(mask), mask, a, nil); err != nil {
		tb.Fatal(err)
	}
	c := d.newTxCtx()
	return func() {
		copy(c.buf[headroom-vnetHdrLen:], make([]byte, vnetHdrLen))
		copy(c.buf[headroom:], frame) // fresh TTL, addresses and ports
		d.process(c, pa, vnetHdrLen+len(frame))
	}, d
}

// TestPrivilegedRewriteHitPathAllocs: the hit path of a routed, NATed
// flow (7 rewrites, an output and a tunnel) allocates nothing and drops
// nothing.
func TestPrivilegedRewriteHitPathAllocs(t *testing.T) {
	requireRoot(t)
	step, d := rewriteHitPath(t, false)
	before := d.Stats()
	allocs := testing.AllocsPerRun(500, step)
	after := d.Stats()
	if allocs != 0 {
		t.Errorf("rewrite hit path allocates %v times per packet, want 0", allocs)
	}
	if after.Hits-before.Hits < 500 || after.TunnelTx-before.TunnelTx < 500 || after.Drops != before.Drops {
		t.Errorf("Stats went from %+v to %+v; want every packet hit, rewritten, output and tunnelled", before, after)
	}
}

// BenchmarkPrivilegedRewriteHitPath measures a port reader's whole work
// for one 1454-byte TCP frame of a routed, NATed flow: parse, lookup,
// seven rewrites, one port write and one VXLAN send (two system calls,
// which dominate). Compare with BenchmarkPrivilegedPlainHitPath.
func BenchmarkPrivilegedRewriteHitPath(b *testing.B) {
	benchHitPath(b, true)
}

// BenchmarkPrivilegedPlainHitPath is the same flow without its rewrites.
func BenchmarkPrivilegedPlainHitPath(b *testing.B) {
	benchHitPath(b, false)
}

func benchHitPath(b *testing.B, rewrites bool) {
	if !isRoot() {
		b.Skip("needs root to create network namespaces")
	}
	step, d := rewriteHitPath(b, true)
	if !rewrites {
		for _, f := range d.Flows() {
			var a flowtable.Actions
			for _, x := range f.Actions.List() {
				if !datapath.IsRewrite(x.Kind) {
					a.Append(x)
				}
			}
			d.Invalidate(nil)
			d.table.RemoveIf(func(*packet.FlowMatch, *packet.FlowMatch, *flowtable.Actions) bool { return true })
			if err := d.Install(f.Match, f.Mask, a, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
}

func isRoot() bool {
	_, err := exec.LookPath("ip")
	return err == nil && unix.Geteuid() == 0
}

// snmpCounter reads counter name of group (Tcp, Udp, Icmp from
// /proc/net/snmp; IpExt, TcpExt from /proc/net/netstat) in namespace ns.
func snmpCounter(t *testing.T, ns, group, name string) int64 {
	t.Helper()
	for _, file := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		out := run(t, "ip", "netns", "exec", ns, "cat", file)
		lines := strings.Split(out, "\n")
		for i := 0; i+1 < len(lines); i++ {
			keys, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(keys) == 0 || keys[0] != group+":" || len(vals) != len(keys) {
				continue
			}
			for j, k := range keys {
				if k == name {
					v, err := strconv.ParseInt(vals[j], 10, 64)
					if err != nil {
						t.Fatalf("%s %s %s: %v", file, group, name, err)
					}
					return v
				}
			}
		}
	}
	t.Fatalf("no counter %s %s", group, name)
	return 0
}

// iperfBetween runs an iperf3 TCP transfer from namespace client to the
// server started in namespace server at dst, and returns the received
// rate in Gbit/s.
func iperfBetween(t *testing.T, client, server, dst string, args ...string) float64 {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", server, "iperf3", "-s", "-1", "-p", "5298")
	if err := srv.Start(); err != nil {
		t.Fatalf("iperf3 server: %v", err)
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	waitFor(t, "iperf3 server listening", func() bool {
		out, _ := exec.Command("ip", "netns", "exec", server, "ss", "-Hltn", "sport = :5298").Output()
		return strings.Contains(string(out), "5298")
	})
	cmd := append([]string{"netns", "exec", client, "iperf3", "-c", dst, "-p", "5298", "-J", "--connect-timeout", "3000"}, args...)
	out, err := exec.Command("ip", cmd...).Output()
	if err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				Bits float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	return res.End.SumReceived.Bits / 1e9
}
