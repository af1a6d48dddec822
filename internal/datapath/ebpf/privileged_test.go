package ebpf

// Namespace tests. Topology (all names start with hbp-; each test has its
// own prefix, hbp-t-, hbp-n-, ...):
//
//	 hbp-vm1                                                 hbp-vm2
//	 eth0 10.252.0.1/24 mtu 1450                             eth0 10.252.0.2/24 mtu 1450
//	   │ veth                                                  │ veth
//	 hbp-tap1                                                hbp-tap2
//	 hbp-h1: ebpf Datapath ── hnvx0 (collect_md VXLAN 4789) ── hbp-h2: ebpf Datapath
//	 hbp-ul 10.251.0.1/24  ═════════ veth underlay ═════════  hbp-ul 10.251.0.2/24
//
// Each Datapath is created inside its host namespace in-process. A tiny
// "agent" handler installs flows on misses (see bridgeAgent, natAgent).

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hivenet/internal/datapath"
	"hivenet/internal/datapath/datapathtest"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

const (
	keyVM1   = 1001 // tunnel key of vm1's port
	keyVM2   = 1002
	keyFlood = 2000 // the bridge's flood key
)

func requireRoot(t *testing.T) {
	t.Helper()
	datapathtest.RequireRoot(t, "needs root to create network namespaces and load BPF programs")
}

// Shared namespace helpers (package datapathtest).
var (
	run           = datapathtest.Run
	inNS          = datapathtest.InNS
	delNamespaces = datapathtest.DelNamespaces
)

// agentFunc decides the flow of a miss on host i (1 or 2): its mask and
// actions.
type agentFunc func(l *lab, i int, u *datapath.Upcall) (mask packet.FlowMatch, a flowtable.Actions)

type lab struct {
	prefix   string
	persist  bool
	idle     time.Duration // IdleTimeout of the datapaths (0: default)
	connIdle time.Duration // ConnIdle of the datapaths (0: default)
	rate     int           // UpcallRate and UpcallBurst of the datapaths (0: default)
	upDev    string        // UpcallDevice of the datapaths ("": default)
	agent    agentFunc
	dp       [3]*Datapath
	port     [3]datapath.PortNo
	ul       [3]netip.Addr
	vmIP     [3]string
	vmMAC    [3][6]byte
	upcall   [3]*atomic.Int64
	tag      [3]topology.Tag
	states   [3]*atomic.Int64 // flow-state messages received
}

func nsName(prefix, n string) string { return prefix + n }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// buildLab creates the four namespaces and links; with agent non-nil it
// also starts an ebpf Datapath per host and binds the VM ports.
func buildLab(t *testing.T, prefix string, agent agentFunc, persist bool) *lab {
	t.Helper()
	delNamespaces(prefix)
	t.Cleanup(func() { delNamespaces(prefix) })
	l := &lab{prefix: prefix, agent: agent, persist: persist}
	for _, n := range []string{"h1", "h2", "vm1", "vm2"} {
		ns := nsName(prefix, n)
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	h1, h2 := nsName(prefix, "h1"), nsName(prefix, "h2")
	run(t, "ip", "link", "add", "hbp-ul", "netns", h1, "type", "veth", "peer", "hbp-ul", "netns", h2)
	for i, h := range []string{h1, h2} {
		l.ul[i+1] = netip.MustParseAddr(fmt.Sprintf("10.251.0.%d", i+1))
		run(t, "ip", "-n", h, "addr", "add", l.ul[i+1].String()+"/24", "dev", "hbp-ul")
		run(t, "ip", "-n", h, "link", "set", "hbp-ul", "up")
		vm := nsName(prefix, fmt.Sprintf("vm%d", i+1))
		tap := fmt.Sprintf("hbp-tap%d", i+1)
		l.vmIP[i+1] = fmt.Sprintf("10.252.0.%d", i+1)
		l.vmMAC[i+1] = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, byte(i + 1)}
		run(t, "ip", "link", "add", tap, "netns", h, "type", "veth", "peer", "eth0", "netns", vm)
		run(t, "ip", "-n", h, "link", "set", tap, "up")
		run(t, "ip", "-n", vm, "link", "set", "eth0", "address", net.HardwareAddr(l.vmMAC[i+1][:]).String(), "mtu", "1450", "up")
		run(t, "ip", "-n", vm, "addr", "add", l.vmIP[i+1]+"/24", "dev", "eth0")
	}
	if agent == nil {
		return l
	}
	if persist {
		t.Cleanup(func() {
			for i := 1; i <= 2; i++ {
				_ = os.RemoveAll(filepath.Join("/sys/fs/bpf/hivenet", l.name(i)))
			}
		})
	}
	for i := 1; i <= 2; i++ {
		l.upcall[i] = new(atomic.Int64)
		l.states[i] = new(atomic.Int64)
		l.tag[i] = topology.Tag(100 + i)
		l.start(t, i)
	}
	return l
}

func (l *lab) name(i int) string { return fmt.Sprintf("%sh%d", l.prefix, i) }

// start creates host i's datapath, binds its VM port and starts the agent.
func (l *lab) start(t *testing.T, i int) {
	t.Helper()
	inNS(t, nsName(l.prefix, fmt.Sprintf("h%d", i)), func() error {
		d, err := New(Config{Name: l.name(i), TunnelIP: l.ul[i], Persist: l.persist, RestartGrace: 2 * time.Second, IdleTimeout: l.idle, ConnIdle: l.connIdle, UpcallRate: l.rate, UpcallBurst: l.rate, UpcallDevice: l.upDev, Logger: testLogger(t)})
		l.dp[i] = d
		return err
	})
	d := l.dp[i]
	t.Cleanup(func() { d.Destroy() })
	p, err := d.AddPort(fmt.Sprintf("hbp-tap%d", i))
	if err != nil {
		t.Fatalf("AddPort: %v", err)
	}
	l.port[i] = p
	myKey := uint32(keyVM1)
	if i == 2 {
		myKey = keyVM2
	}
	d.SetTunnelKey(myKey, p)
	d.SetFloodSet(keyFlood, []datapath.PortNo{p}, []datapath.Remote{{Addr: l.ul[3-i], Port: 4789}})
	st := l.states[i]
	d.SetStateHandler(func(msg []byte) { st.Add(1) })
	up, tag := l.upcall[i], l.tag[i]
	if err := d.Start(func(u *datapath.Upcall) {
		up.Add(1)
		mask, a := l.agent(l, i, u)
		if err := d.Install(u.Match.Masked(mask), mask, a, []topology.Tag{tag}); err != nil {
			t.Errorf("Install: %v", err)
		}
		if err := d.Execute(u.InPort, u.Frame, u.GSO, &a); err != nil {
			t.Logf("Execute: %v", err)
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// bridgeAgent: ARP goes to the flood set; IPv4 from the local VM goes to
// the tunnel with the other VM's port key.
func bridgeAgent(l *lab, i int, u *datapath.Upcall) (packet.FlowMatch, flowtable.Actions) {
	otherKey := uint32(keyVM2)
	if i == 2 {
		otherKey = keyVM1
	}
	var a flowtable.Actions
	switch u.Match.EthType {
	case packet.EthTypeARP:
		a.Append(flowtable.Action{Kind: flowtable.ActFlood, Key: keyFlood})
	case packet.EthTypeIPv4:
		a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: otherKey, Remote: l.ul[3-i].As4(), RemotePort: 4789})
	}
	return packet.MaskOf(packet.FInPort | packet.FEthType), a
}

// pingRes runs count pings from ns to dst at interval and returns the
// RTTs of the replies and the number sent.
func pingRes(ns, dst string, count int, interval string) ([]time.Duration, string) {
	out, _ := exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-c", strconv.Itoa(count), "-i", interval, "-W", "1", dst).CombinedOutput()
	var rtts []time.Duration
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "time="); i >= 0 {
			f := strings.Fields(line[i+5:])
			if ms, err := strconv.ParseFloat(f[0], 64); err == nil {
				rtts = append(rtts, time.Duration(ms*float64(time.Millisecond)))
			}
		}
	}
	return rtts, string(out)
}

// ping runs count pings and fails the test if fewer than want replies
// come back.
func ping(t *testing.T, ns, dst string, count, want int) []time.Duration {
	t.Helper()
	rtts, out := pingRes(ns, dst, count, "0.2")
	if len(rtts) < want {
		t.Fatalf("ping %s from %s: %d replies, want %d\n%s", dst, ns, len(rtts), want, out)
	}
	return rtts
}

func median[T int64 | float64 | time.Duration](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runIperf runs iperf3 from vm1 to dst with extra client args and
// returns its JSON output.
func runIperf(t *testing.T, prefix, dst string, args ...string) []byte {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", nsName(prefix, "vm2"), "iperf3", "-s", "-1", "-p", "5299")
	if err := srv.Start(); err != nil {
		t.Fatalf("iperf3 server: %v", err)
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	waitFor(t, "iperf3 server listening", func() bool {
		out, _ := exec.Command("ip", "netns", "exec", nsName(prefix, "vm2"), "ss", "-Hltn", "sport = :5299").Output()
		return strings.Contains(string(out), "5299")
	})
	cmd := append([]string{"netns", "exec", nsName(prefix, "vm1"), "iperf3", "-c", dst, "-p", "5299", "-J"}, args...)
	out, err := exec.Command("ip", cmd...).Output()
	if err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out)
	}
	return out
}

// iperf runs a TCP transfer from vm1 to dst for secs seconds and returns
// the received rate in Gbit/s.
func iperf(t *testing.T, prefix, dst string, secs int, extra ...string) float64 {
	t.Helper()
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3")
	}
	out := runIperf(t, prefix, dst, append([]string{"-t", strconv.Itoa(secs)}, extra...)...)
	var res struct {
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
	gbps := res.End.SumReceived.Bits / 1e9
	if gbps == 0 {
		t.Fatalf("iperf3 reported no transfer:\n%s", out)
	}
	t.Logf("iperf3 %s %v: %.2f Gbit/s, %d retransmits", dst, extra, gbps, res.End.SumSent.Retransmits)
	return gbps
}

// csumErrors returns the IP, TCP, UDP and ICMP checksum error counters of
// namespace ns.
func csumErrors(t *testing.T, ns string) int {
	t.Helper()
	out := run(t, "ip", "netns", "exec", ns, "nstat", "-asz")
	n := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasSuffix(f[0], "CsumErrors") {
			v, _ := strconv.Atoi(f[1])
			n += v
		}
	}
	return n
}

// TestPrivilegedTwoHosts: two hosts, ping both ways (ARP through the flood
// sets, IPv4 through tunnel flows executed by the programs), iperf3,
// flow statistics, a flow-state message, an unknown VNI counted,
// Invalidate sending traffic back to the handler, RemovePort stopping it.
func TestPrivilegedTwoHosts(t *testing.T) {
	requireRoot(t)
	l := buildLab(t, "hbp-t-", bridgeAgent, false)
	vm1, vm2 := nsName(l.prefix, "vm1"), nsName(l.prefix, "vm2")

	ping(t, vm1, l.vmIP[2], 5, 4)
	ping(t, vm2, l.vmIP[1], 5, 4)
	up1 := l.upcall[1].Load()
	rtts := ping(t, vm1, l.vmIP[2], 20, 20)
	if got := l.upcall[1].Load() - up1; got != 0 {
		t.Errorf("established flows: %d upcalls on host 1 during 20 pings, want 0 (the programs forward)", got)
	}
	t.Logf("ping RTT median %v", median(rtts))
	st := l.dp[1].Stats()
	if st.Hits < 20 || st.TunnelTx < 20 || st.Flows == 0 {
		t.Errorf("host 1 stats %+v: want hits, tunnel tx and flows", st)
	}
	var ipFlow *datapath.FlowInfo
	fl := l.dp[1].Flows()
	for i := range fl {
		if fl[i].Match.EthType == packet.EthTypeIPv4 {
			ipFlow = &fl[i]
		}
	}
	if ipFlow == nil || ipFlow.Packets < 20 || ipFlow.Bytes < 20*98 || ipFlow.IdleNano > int64(2*time.Second) {
		t.Errorf("IPv4 flow statistics %+v: want >= 20 packets, >= 1960 bytes, recently used", ipFlow)
	}

	gbps := iperf(t, l.prefix, l.vmIP[2], 3)
	if gbps < 0.1 {
		t.Errorf("TCP throughput %.2f Gbit/s", gbps)
	}
	if n := csumErrors(t, vm2) + csumErrors(t, vm1); n != 0 {
		t.Errorf("%d checksum errors in the VMs", n)
	}

	t.Run("flow state", func(t *testing.T) {
		msg := []byte("hivenet flow-state test message")
		if err := l.dp[1].SendState(datapath.Remote{Addr: l.ul[2]}, msg); err != nil {
			t.Fatal(err)
		}
		if err := l.dp[1].SendState(datapath.Remote{Addr: l.ul[2]}, msg[:13]); err == nil {
			t.Error("a 13-byte state message was accepted; the receiving VXLAN device would drop it")
		}
		waitFor(t, "the state message at host 2", func() bool { return l.states[2].Load() == 1 })
		if st := l.dp[2].Stats(); st.StateRx != 1 || l.dp[1].Stats().StateTx != 1 {
			t.Errorf("StateRx %d at host 2, StateTx %d at host 1", st.StateRx, l.dp[1].Stats().StateTx)
		}
	})

	t.Run("flow state with the packet", func(t *testing.T) {
		// Two messages and a frame in one sendmmsg; a third, too short
		// message is refused without stopping the others. The frame
		// goes to a tunnel key host 2 does not know, so its arrival is
		// seen in TunnelUnknownKey: by then both messages have passed
		// host 2's program (they left first).
		rx0, unk0, st0 := l.dp[2].Stats().StateRx, l.dp[2].Stats().TunnelUnknownKey, l.states[2].Load()
		to := datapath.Remote{Addr: l.ul[2]}
		msg := []byte("hivenet flow-state test message")
		msgs := []datapath.StateMessage{{Remote: to, Msg: msg}, {Remote: to, Msg: msg[:13]}, {Remote: to, Msg: msg}}
		frame := packet.AppendUDP4(nil, l.vmMAC[1], l.vmMAC[2], netip.MustParseAddrPort("10.252.0.1:1"), netip.MustParseAddrPort("10.252.0.2:2"), 64, []byte("x"))
		var a flowtable.Actions
		a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: 4243, Remote: l.ul[2].As4()})
		sent, err := l.dp[1].ExecuteWithState(msgs, l.port[1], frame, datapath.GSO{}, &a)
		if sent != 2 || err == nil {
			t.Errorf("ExecuteWithState: sent %d, err %v; want 2 sent and the short message's error", sent, err)
		}
		waitFor(t, "the frame at host 2", func() bool { return l.dp[2].Stats().TunnelUnknownKey == unk0+1 })
		if got := l.dp[2].Stats().StateRx - rx0; got != 2 {
			t.Errorf("host 2 saw %d state messages when the frame arrived, want 2 (they leave first)", got)
		}
		waitFor(t, "both messages at host 2's handler", func() bool { return l.states[2].Load() == st0+2 })

		// A frame too short to send is refused; its messages go even so.
		if sent, err := l.dp[1].ExecuteWithState(msgs[:1], l.port[1], frame[:10], datapath.GSO{}, &a); sent != 1 || err == nil {
			t.Errorf("ExecuteWithState with a 10-byte frame: sent %d, err %v; want the message sent and the frame's error", sent, err)
		}
		waitFor(t, "the message of the refused frame at host 2", func() bool { return l.states[2].Load() == st0+3 })
	})

	t.Run("unknown VNI", func(t *testing.T) {
		before := l.dp[2].Stats().TunnelUnknownKey
		frame := packet.AppendUDP4(nil, l.vmMAC[1], l.vmMAC[2], netip.MustParseAddrPort("10.252.0.1:1"), netip.MustParseAddrPort("10.252.0.2:2"), 64, []byte("x"))
		b := make([]byte, packet.VXLANHeaderLen+len(frame))
		copy(b[packet.VXLANHeaderLen:], frame)
		packet.PutVXLAN(b, 4242)
		inNS(t, nsName(l.prefix, "h1"), func() error {
			c, err := net.Dial("udp4", l.ul[2].String()+":4789")
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(b)
			return err
		})
		waitFor(t, "TunnelUnknownKey at host 2", func() bool { return l.dp[2].Stats().TunnelUnknownKey == before+1 })
	})

	t.Run("invalidate", func(t *testing.T) {
		before := l.upcall[1].Load()
		l.dp[1].Invalidate([]topology.Tag{l.tag[1]})
		if n := len(l.dp[1].Flows()); n != 0 {
			t.Fatalf("%d flows left after Invalidate", n)
		}
		ping(t, vm1, l.vmIP[2], 3, 3)
		if l.upcall[1].Load() == before {
			t.Error("no upcall after Invalidate")
		}
	})

	t.Run("remove port", func(t *testing.T) {
		if err := l.dp[2].RemovePort(l.port[2]); err != nil {
			t.Fatal(err)
		}
		if err := l.dp[2].RemovePort(l.port[2]); !errors.Is(err, ErrNoPort) {
			t.Errorf("second RemovePort: %v, want ErrNoPort", err)
		}
		if rtts, _ := pingRes(vm1, l.vmIP[2], 3, "0.2"); len(rtts) != 0 {
			t.Errorf("%d replies after RemovePort", len(rtts))
		}
	})
}

// natAgent installs exact 5-tuple flows that route and translate between
// vm1 and vm2 through a virtual address: vm1 sends to 10.252.0.100, vm2
// sees it from 10.252.0.50, ports and ICMP identifiers are XORed with
// 0x4000 (an involution, so the handler needs no state), TTL is
// decremented and MACs rewritten as a router would.
func natAgent(l *lab, i int, u *datapath.Upcall) (packet.FlowMatch, flowtable.Actions) {
	m := &u.Match
	var a flowtable.Actions
	if m.EthType == packet.EthTypeARP {
		a.Append(flowtable.Action{Kind: flowtable.ActFlood, Key: keyFlood})
		return packet.MaskOf(packet.FInPort | packet.FEthType), a
	}
	mask := packet.MaskOf(packet.FInPort | packet.FEthType | packet.FIPSrc | packet.FIPDst | packet.FIPProto |
		packet.FSrcPort | packet.FDstPort | packet.FICMPID | packet.FIPFrag)
	if m.EthType != packet.EthTypeIPv4 {
		return mask, a
	}
	router := [6]byte{0x02, 0xee, 0, 0, 0, 1}
	set4 := func(k flowtable.ActionKind, s string) {
		a.Append(flowtable.Action{Kind: k, Remote: netip.MustParseAddr(s).As4()})
	}
	x := func(p uint16) uint16 { return p ^ 0x4000 }
	a.Append(flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1})
	a.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: router})
	var key uint32
	if i == 1 { // from vm1: to .100 → to vm2 from .50
		set4(flowtable.ActSetIPv4Src, "10.252.0.50")
		set4(flowtable.ActSetIPv4Dst, "10.252.0.2")
		a.Append(flowtable.Action{Kind: flowtable.ActSetEthDst, MAC: l.vmMAC[2]})
		if m.IPProto == packet.ProtoICMP {
			a.Append(flowtable.Action{Kind: flowtable.ActSetL4Src, RemotePort: x(m.ICMPID)})
		} else {
			a.Append(flowtable.Action{Kind: flowtable.ActSetL4Src, RemotePort: x(m.SrcPort)})
		}
		key = keyVM2
	} else { // from vm2 to .50 → to vm1 from .100
		set4(flowtable.ActSetIPv4Src, "10.252.0.100")
		set4(flowtable.ActSetIPv4Dst, "10.252.0.1")
		a.Append(flowtable.Action{Kind: flowtable.ActSetEthDst, MAC: l.vmMAC[1]})
		if m.IPProto == packet.ProtoICMP {
			a.Append(flowtable.Action{Kind: flowtable.ActSetL4Dst, RemotePort: x(m.ICMPID)})
		} else {
			a.Append(flowtable.Action{Kind: flowtable.ActSetL4Dst, RemotePort: x(m.DstPort)})
		}
		key = keyVM1
	}
	a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: key, Remote: l.ul[3-i].As4(), RemotePort: 4789})
	return mask, a
}

// TestPrivilegedRewriteNAT: the rewrite actions (TTL, MACs, addresses,
// ports and echo identifiers) in the programs and in Execute: ping and
// TCP both ways through a translated path, with no checksum error in
// either VM (the VMs' TCP uses checksum offload, so the programs see
// CHECKSUM_PARTIAL skbs and superframes).
func TestPrivilegedRewriteNAT(t *testing.T) {
	requireRoot(t)
	l := buildLab(t, "hbp-n-", natAgent, false)
	vm1, vm2 := nsName(l.prefix, "vm1"), nsName(l.prefix, "vm2")
	// The "router" addresses resolve to the router MAC.
	run(t, "ip", "-n", vm1, "neigh", "add", "10.252.0.100", "lladdr", "02:ee:00:00:00:01", "dev", "eth0")
	run(t, "ip", "-n", vm2, "neigh", "add", "10.252.0.50", "lladdr", "02:ee:00:00:00:01", "dev", "eth0")

	_, out := pingRes(vm1, "10.252.0.100", 10, "0.1")
	if !strings.Contains(out, "10 received") || !strings.Contains(out, "ttl=63") {
		t.Fatalf("ping through the translation: want 10 replies with ttl=63\n%s", out)
	}
	if got := l.dp[1].Stats().Hits; got < 8 {
		t.Errorf("host 1: %d hits, want the echo requests after the first forwarded by the program", got)
	}
	iperf(t, l.prefix, "10.252.0.100", 2)
	iperf(t, l.prefix, "10.252.0.100", 2, "-R")
	if n := csumErrors(t, vm1) + csumErrors(t, vm2); n != 0 {
		t.Errorf("%d checksum errors in the VMs", n)
	}
	// vm2 saw the translated source.
	out = run(t, "ip", "netns", "exec", vm2, "ip", "neigh", "show")
	if !strings.Contains(out, "10.252.0.50") {
		t.Errorf("vm2 neighbours %q: want 10.252.0.50", out)
	}
}

// TestPrivilegedRestart: with Persist, an established flow keeps working
// while host 1's datapath is closed and created again: no ping is lost.
func TestPrivilegedRestart(t *testing.T) {
	requireRoot(t)
	l := buildLab(t, "hbp-r-", bridgeAgent, true)
	vm1 := nsName(l.prefix, "vm1")
	ping(t, vm1, l.vmIP[2], 3, 3)
	port := l.port[1]

	done := make(chan struct{})
	var rtts []time.Duration
	var out string
	go func() {
		defer close(done)
		rtts, out = pingRes(vm1, l.vmIP[2], 300, "0.01")
	}()
	time.Sleep(500 * time.Millisecond)
	if err := l.dp[1].Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // no agent at all
	l.start(t, 1)
	restarted := l.upcall[1].Load()
	adopted := len(l.dp[1].Flows())
	if l.port[1] != port {
		t.Errorf("port number %d after the restart, was %d", l.port[1], port)
	}
	<-done
	if len(rtts) != 300 {
		t.Fatalf("%d of 300 pings answered across the restart\n%s", len(rtts), out)
	}
	if adopted == 0 {
		t.Error("no flows adopted after the restart")
	}
	// After the grace (2 s) the orphans go; traffic goes through the
	// handler and flows come back, installed by the new run.
	time.Sleep(2500 * time.Millisecond)
	ping(t, vm1, l.vmIP[2], 3, 3)
	if l.upcall[1].Load() == restarted {
		t.Error("no upcall after the restart grace: orphan flows were not removed")
	}
	l.dp[1].mu.Lock()
	for _, f := range l.dp[1].flows {
		if f.orphan {
			t.Errorf("orphan flow %+v left after the grace", f.key.match())
		}
	}
	l.dp[1].mu.Unlock()
}

// TestPrivilegedIdleExpiry: the statistics the programs keep drive idle
// expiry: a flow in use (pings every 0.2 s, idle timeout 1 s) stays for
// 3 s without a new upcall, and goes within about 2 s once unused.
func TestPrivilegedIdleExpiry(t *testing.T) {
	requireRoot(t)
	prefix := "hbp-x-"
	l := buildLab(t, prefix, nil, false)
	l.agent, l.idle = bridgeAgent, time.Second
	for i := 1; i <= 2; i++ {
		l.upcall[i], l.states[i], l.tag[i] = new(atomic.Int64), new(atomic.Int64), topology.Tag(100+i)
		l.start(t, i)
	}
	vm1 := nsName(prefix, "vm1")
	ping(t, vm1, l.vmIP[2], 2, 2)
	before := l.upcall[1].Load()
	ping(t, vm1, l.vmIP[2], 15, 15) // 3 s, every 0.2 s
	if got := l.upcall[1].Load() - before; got != 0 {
		t.Errorf("%d upcalls while the flow was in use: it expired although busy", got)
	}
	if len(l.dp[1].Flows()) == 0 {
		t.Fatal("no flow after the pings")
	}
	waitFor(t, "idle flows to expire", func() bool { return len(l.dp[1].Flows()) == 0 })
}

// TestPrivilegedStaleProgramDetached: a datapath whose pins are gone
// (Persist, then the pin directory removed by hand while its programs
// stay attached through open links) does not shadow the next one: New
// and AddPort detach the stale programs and traffic flows through the
// new ones.
func TestPrivilegedStaleProgramDetached(t *testing.T) {
	requireRoot(t)
	l := buildLab(t, "hbp-s-", bridgeAgent, true)
	vm1 := nsName(l.prefix, "vm1")
	ping(t, vm1, l.vmIP[2], 2, 2)
	old := l.dp[1]
	// Simulate lost pins: take the links' pins away, keep them attached.
	old.mu.Lock()
	for _, p := range old.ports {
		_ = p.lnk.Unpin()
	}
	old.mu.Unlock()
	for _, lk := range old.vxLinks {
		_ = lk.Unpin()
	}
	defer old.Close()
	if err := os.RemoveAll(filepath.Join("/sys/fs/bpf/hivenet", l.name(1))); err != nil {
		t.Fatal(err)
	}
	l.persist, l.upDev = false, "hnup1" // the old datapath still holds hnup0
	l.start(t, 1)
	before := l.upcall[1].Load()
	l.dp[1].Invalidate([]topology.Tag{l.tag[1]})
	ping(t, vm1, l.vmIP[2], 3, 3)
	if l.upcall[1].Load() == before {
		t.Error("the new datapath saw no miss: a stale program still runs first")
	}
}

// TestPrivilegedRestartTCP: a TCP transfer keeps going while both hosts'
// datapaths are restarted (Persist): no half-second interval of iperf3
// goes without data (without Persist two intervals are empty).
func TestPrivilegedRestartTCP(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3")
	}
	l := buildLab(t, "hbp-p-", bridgeAgent, true)
	ping(t, nsName(l.prefix, "vm1"), l.vmIP[2], 2, 2)
	type result struct {
		out []byte
	}
	done := make(chan result, 1)
	go func() { done <- result{runIperf(t, l.prefix, l.vmIP[2], "-t", "4", "-i", "0.5")} }()
	time.Sleep(1200 * time.Millisecond)
	for i := 1; i <= 2; i++ {
		if err := l.dp[i].Close(); err != nil {
			t.Error(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	for i := 1; i <= 2; i++ {
		l.start(t, i)
	}
	r := <-done
	var res struct {
		Intervals []struct {
			Sum struct {
				Bytes float64 `json:"bytes"`
				Start float64 `json:"start"`
			} `json:"sum"`
		} `json:"intervals"`
	}
	if err := json.Unmarshal(r.out, &res); err != nil || len(res.Intervals) == 0 {
		t.Fatalf("iperf3 output: %v\n%s", err, r.out)
	}
	for _, iv := range res.Intervals {
		if iv.Sum.Bytes == 0 {
			t.Errorf("no data in the interval starting at %.1f s", iv.Sum.Start)
		}
	}
	if !t.Failed() {
		t.Logf("%d half-second intervals, all with data", len(res.Intervals))
	}
}
