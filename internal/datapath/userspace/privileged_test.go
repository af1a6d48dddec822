package userspace

// Namespace tests. Topology (all names start with hdp-; each test has its
// own prefix, hdp-t-, hdp-m-, ...):
//
//	 hdp-vm1                                                 hdp-vm2
//	 eth0 10.252.0.1/24 mtu 1450                             eth0 10.252.0.2/24 mtu 1450
//	   │ veth                                                  │ veth
//	 hdp-tap1                                                hdp-tap2
//	 hdp-h1: userspace Datapath ── VXLAN/UDP 4789 ──  hdp-h2: userspace Datapath
//	 hdp-ul 10.251.0.1/24  ═════════ veth underlay ═════════  hdp-ul 10.251.0.2/24
//
// Each Datapath is created inside its host namespace in-process. A tiny
// "agent" handler installs flows on misses: IPv4 from the local VM goes
// to the tunnel with the remote VM's port key; ARP goes to the flood set.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
	datapathtest.RequireRoot(t, "needs root to create network namespaces")
}

// Shared namespace helpers (package datapathtest).
var (
	run           = datapathtest.Run
	inNS          = datapathtest.InNS
	delNamespaces = datapathtest.DelNamespaces
)

type lab struct {
	prefix string
	dp     [3]*Datapath       // index 1 and 2
	port   [3]datapath.PortNo // the VM port on each host
	ul     [3]netip.Addr      // underlay addresses
	vmIP   [3]string          // VM addresses
	upcall [3]*atomic.Int64   // misses handled per host
	tag    [3]topology.Tag    // tag on every flow installed for each VM port
}

func nsName(prefix, n string) string { return prefix + n }

// buildHosts creates the four namespaces and links; withDatapath also
// starts a userspace Datapath per host and binds the VM ports.
func buildLab(t *testing.T, prefix string, withDatapath bool, vmMTU int) *lab {
	t.Helper()
	delNamespaces(prefix)
	t.Cleanup(func() { delNamespaces(prefix) })
	l := &lab{prefix: prefix}
	for _, n := range []string{"h1", "h2", "vm1", "vm2"} {
		ns := nsName(prefix, n)
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	h1, h2 := nsName(prefix, "h1"), nsName(prefix, "h2")
	run(t, "ip", "link", "add", "hdp-ul", "netns", h1, "type", "veth", "peer", "hdp-ul", "netns", h2)
	for i, h := range []string{h1, h2} {
		l.ul[i+1] = netip.MustParseAddr(fmt.Sprintf("10.251.0.%d", i+1))
		run(t, "ip", "-n", h, "addr", "add", l.ul[i+1].String()+"/24", "dev", "hdp-ul")
		run(t, "ip", "-n", h, "link", "set", "hdp-ul", "up")
		vm := nsName(prefix, fmt.Sprintf("vm%d", i+1))
		tap := fmt.Sprintf("hdp-tap%d", i+1)
		l.vmIP[i+1] = fmt.Sprintf("10.252.0.%d", i+1)
		run(t, "ip", "link", "add", tap, "netns", h, "type", "veth", "peer", "eth0", "netns", vm)
		run(t, "ip", "-n", h, "link", "set", tap, "up")
		run(t, "ip", "-n", vm, "link", "set", "eth0", "mtu", strconv.Itoa(vmMTU), "up")
		run(t, "ip", "-n", vm, "addr", "add", l.vmIP[i+1]+"/24", "dev", "eth0")
	}
	if !withDatapath {
		return l
	}
	for i := 1; i <= 2; i++ {
		l.upcall[i] = new(atomic.Int64)
		l.tag[i] = topology.Tag(100 + i)
		inNS(t, nsName(prefix, fmt.Sprintf("h%d", i)), func() error {
			d, err := New(Config{TunnelIP: l.ul[i], Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
			l.dp[i] = d
			return err
		})
		d := l.dp[i]
		t.Cleanup(func() { d.Close() })
		// AddPort from the test goroutine (root namespace): the datapath
		// resolves the name in its own namespace.
		p, err := d.AddPort(fmt.Sprintf("hdp-tap%d", i))
		if err != nil {
			t.Fatalf("AddPort: %v", err)
		}
		l.port[i] = p
		other := 3 - i
		myKey, otherKey := uint32(keyVM1), uint32(keyVM2)
		if i == 2 {
			myKey, otherKey = keyVM2, keyVM1
		}
		d.SetTunnelKey(myKey, p)
		d.SetFloodSet(keyFlood, []datapath.PortNo{p}, []datapath.Remote{{Addr: l.ul[other], Port: 4789}})
		remote := l.ul[other].As4()
		tag := l.tag[i]
		up := l.upcall[i]
		if err := d.Start(func(u *datapath.Upcall) {
			up.Add(1)
			var a flowtable.Actions
			switch u.Match.EthType {
			case packet.EthTypeARP:
				a.Append(flowtable.Action{Kind: flowtable.ActFlood, Key: keyFlood})
			case packet.EthTypeIPv4:
				a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: otherKey, Remote: remote, RemotePort: 4789})
			}
			mask := packet.MaskOf(packet.FInPort | packet.FEthType)
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
	return l
}

// ping runs count pings from vm src to dst and returns the RTTs; it fails
// the test if fewer than want replies come back.
func ping(t *testing.T, ns, dst string, count, want int) []time.Duration {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", dst).CombinedOutput()
	var rtts []time.Duration
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "time="); i >= 0 {
			f := strings.Fields(line[i+5:])
			if ms, err := strconv.ParseFloat(f[0], 64); err == nil {
				rtts = append(rtts, time.Duration(ms*float64(time.Millisecond)))
			}
		}
	}
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

// runIperf runs iperf3 from vm1 to dst in vm2 with extra client args and
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

// iperf runs a TCP transfer from vm1 to vm2 for secs seconds and returns
// the received rate in Gbit/s.
func iperf(t *testing.T, prefix, dst string, secs int) float64 {
	t.Helper()
	out := runIperf(t, prefix, dst, "-t", strconv.Itoa(secs))
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
	t.Logf("iperf3 %s: %.2f Gbit/s, %d retransmits", dst, gbps, res.End.SumSent.Retransmits)
	return gbps
}

// iperfUDP sends 64-byte UDP datagrams as fast as iperf3 can for secs
// seconds and returns the datagrams received per second.
func iperfUDP(t *testing.T, prefix, dst string, secs int) float64 {
	t.Helper()
	out := runIperf(t, prefix, dst, "-u", "-l", "64", "-b", "0", "-t", strconv.Itoa(secs))
	var res struct {
		End struct {
			Sum struct {
				Packets     float64 `json:"packets"`
				LostPackets float64 `json:"lost_packets"`
				Seconds     float64 `json:"seconds"`
			} `json:"sum"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.End.Sum.Seconds == 0 {
		t.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	s := res.End.Sum
	pps := (s.Packets - s.LostPackets) / s.Seconds
	t.Logf("iperf3 -u -l 64 %s: %.0f sent, %.0f received per second", dst, s.Packets/s.Seconds, pps)
	return pps
}

func TestPrivilegedTwoHosts(t *testing.T) {
	requireRoot(t)
	l := buildLab(t, "hdp-t-", true, 1450)
	vm1, vm2 := nsName(l.prefix, "vm1"), nsName(l.prefix, "vm2")

	t.Run("ping both ways", func(t *testing.T) {
		ping(t, vm1, l.vmIP[2], 3, 3)
		ping(t, vm2, l.vmIP[1], 3, 3)
		for i := 1; i <= 2; i++ {
			st := l.dp[i].Stats()
			if st.Hits == 0 || st.TunnelTx == 0 || st.TunnelRx == 0 || st.Flows == 0 {
				t.Errorf("host %d Stats() = %+v; want hits, tunnel traffic and flows", i, st)
			}
			if n := l.upcall[i].Load(); n > 4 {
				t.Errorf("host %d: %d upcalls for 2 kinds of flow", i, n)
			}
			var pkts uint64
			for _, f := range l.dp[i].Flows() {
				pkts += f.Packets
				if f.Match.InPort != uint32(l.port[i]) || f.IdleNano < 0 || (f.Packets > 0) != (f.Bytes > 0) {
					t.Errorf("host %d flow %+v: wrong port or stats", i, f)
				}
			}
			if pkts < 2 {
				t.Errorf("host %d flows counted %d packets, want the pings after the first", i, pkts)
			}
		}
	})

	t.Run("iperf3 TCP", func(t *testing.T) {
		before := l.dp[1].Stats()
		gbps := iperf(t, l.prefix, l.vmIP[2], 3)
		if gbps <= 0 {
			t.Errorf("iperf3 rate %.2f Gbit/s", gbps)
		}
		after := l.dp[1].Stats()
		t.Logf("host1: rx %d frames from vm1, %d tunnel datagrams sent", after.RxPackets-before.RxPackets, after.TunnelTx-before.TunnelTx)
		// The VM's TSO superframes arrived whole and were cut into many
		// datagrams, which host2 merged back into few, large writes.
		h1 := after
		h2 := l.dp[2].Stats()
		if rx, tx := h1.RxPackets-before.RxPackets, h1.TunnelTx-before.TunnelTx; tx < 10*rx {
			t.Errorf("host1 read %d frames and sent %d datagrams: superframes did not arrive whole", rx, tx)
		}
		if h2.TunnelRx < 5*h2.TxPackets {
			t.Errorf("host2 got %d datagrams and wrote %d frames: no coalescing", h2.TunnelRx, h2.TxPackets)
		}
		for i := 1; i <= 2; i++ {
			t.Logf("host%d Stats() = %+v", i, l.dp[i].Stats())
			snmp, _ := exec.Command("ip", "netns", "exec", nsName(l.prefix, fmt.Sprintf("h%d", i)), "cat", "/proc/net/snmp").Output()
			for _, line := range strings.Split(string(snmp), "\n") {
				if strings.HasPrefix(line, "Udp:") {
					t.Logf("host%d %s", i, line)
				}
			}
		}
	})

	t.Run("malformed frame is dropped and counted", func(t *testing.T) {
		before := l.dp[1].Stats().Malformed
		// An IPv4 EtherType with a 3-byte "IP header", from inside vm1.
		frame := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00}, 0x45, 0, 0)
		inNS(t, vm1, func() error { return sendRaw("eth0", frame) })
		waitFor(t, "malformed counted", func() bool { return l.dp[1].Stats().Malformed > before })
		ping(t, vm1, l.vmIP[2], 2, 2)
	})

	t.Run("unknown VNI is counted", func(t *testing.T) {
		before := l.dp[1].Stats().TunnelUnknownKey
		inner := packet.AppendUDP4(nil, [6]byte{2, 0, 0, 0, 0, 9}, [6]byte{2, 0, 0, 0, 0, 1},
			netip.MustParseAddrPort("10.252.0.9:1"), netip.MustParseAddrPort("10.252.0.1:2"), 64, []byte("x"))
		dgram := make([]byte, 8+len(inner))
		packet.PutVXLAN(dgram, 999)
		copy(dgram[8:], inner)
		inNS(t, nsName(l.prefix, "h2"), func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			return unix.Sendto(fd, dgram, 0, &unix.SockaddrInet4{Port: 4789, Addr: l.ul[1].As4()})
		})
		waitFor(t, "unknown key counted", func() bool { return l.dp[1].Stats().TunnelUnknownKey > before })
	})

	t.Run("Invalidate sends traffic back to the handler", func(t *testing.T) {
		before := l.upcall[1].Load()
		l.dp[1].Invalidate([]topology.Tag{l.tag[1]})
		if n := l.dp[1].Stats().Flows; n != 0 {
			t.Errorf("host1 has %d flows after invalidating their tag", n)
		}
		ping(t, vm1, l.vmIP[2], 2, 2)
		if l.upcall[1].Load() == before {
			t.Error("no upcall after Invalidate")
		}
	})

	t.Run("RemovePort stops traffic", func(t *testing.T) {
		if err := l.dp[2].RemovePort(l.port[2]); err != nil {
			t.Fatal(err)
		}
		for _, f := range l.dp[2].Flows() {
			if f.Match.InPort == uint32(l.port[2]) {
				t.Errorf("flow from the removed port survived: %+v", f.Match)
			}
		}
		ping(t, vm1, l.vmIP[2], 2, 0)
		out, _ := exec.Command("ip", "netns", "exec", vm1, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", l.vmIP[2]).CombinedOutput()
		if strings.Contains(string(out), "time=") {
			t.Errorf("ping still answered after RemovePort:\n%s", out)
		}
		if err := l.dp[2].RemovePort(l.port[2]); !errors.Is(err, ErrNoPort) {
			t.Errorf("second RemovePort = %v, want ErrNoPort", err)
		}
	})

	t.Run("AddPort of a missing interface", func(t *testing.T) {
		_, err := l.dp[1].AddPort("hdp-nosuch")
		if !errors.Is(err, ErrNoInterface) {
			t.Errorf("AddPort(hdp-nosuch) = %v, want ErrNoInterface", err)
		}
	})
}

// sendRaw sends frame out of ifname through an AF_PACKET socket, in the
// calling thread's namespace.
func sendRaw(ifname string, frame []byte) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return err
	}
	return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: int(ifr.Uint32()), Halen: 6})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestPrivilegedHitPathAllocs runs the exact per-packet function of a port
// reader (parse, lookup, execute: output to a port and VXLAN send) on a
// real datapath and checks it allocates nothing.
func TestPrivilegedHitPathAllocs(t *testing.T) {
	requireRoot(t)
	const prefix = "hdp-a-"
	ns := datapathtest.HostNS(t, prefix, "10.251.1.1/24")
	// Two veth pairs, one end of each bound: what the datapath writes to
	// hdp-a1 leaves by hdp-a1p and does not come back.
	for _, l := range []string{"hdp-a0", "hdp-a1"} {
		run(t, "ip", "link", "add", l, "netns", ns, "type", "veth", "peer", l+"p", "netns", ns)
		run(t, "ip", "-n", ns, "link", "set", l, "up")
		run(t, "ip", "-n", ns, "link", "set", l+"p", "up")
	}
	var d *Datapath
	inNS(t, ns, func() error {
		var err error
		d, err = New(Config{TunnelIP: netip.MustParseAddr("10.251.1.1"), TunnelPort: 4790, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		return err
	})
	t.Cleanup(func() { d.Close() })
	pa, err := d.AddPort("hdp-a0")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := d.AddPort("hdp-a1")
	if err != nil {
		t.Fatal(err)
	}
	d.SetTunnelKey(5, pb) // our own tunnel traffic lands on pb
	frame := packet.AppendICMP4Echo(nil, [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2},
		netip.MustParseAddr("10.252.0.1"), netip.MustParseAddr("10.252.0.2"), 64, 8, 1, 1, make([]byte, 56))
	var m packet.FlowMatch
	if err := packet.Parse(frame, uint32(pa), &m); err != nil {
		t.Fatal(err)
	}
	var a flowtable.Actions
	a.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(pb)})
	a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: 5, Remote: [4]byte{10, 251, 1, 1}, RemotePort: 4790})
	mask := packet.MaskOf(packet.FInPort | packet.FEthDst)
	if err := d.Install(m.Masked(mask), mask, a, nil); err != nil {
		t.Fatal(err)
	}
	c := d.newTxCtx()
	before := d.Stats()
	allocs := testing.AllocsPerRun(500, func() {
		copy(c.buf[headroom-vnetHdrLen:], make([]byte, vnetHdrLen)) // constant-size make: on the stack
		copy(c.buf[headroom:], frame)
		d.process(c, pa, vnetHdrLen+len(frame))
	})
	after := d.Stats()
	if allocs != 0 {
		t.Errorf("hit path allocates %v times per packet, want 0", allocs)
	}
	if after.Hits-before.Hits < 500 || after.TunnelTx-before.TunnelTx < 500 || after.Drops != before.Drops {
		t.Errorf("Stats went from %+v to %+v; want every packet hit, tunnelled and output", before, after)
	}
}

// TestPrivilegedGuestMTUTooLarge gives the VMs the underlay's MTU (1500)
// instead of 1450, so TSO segments plus VXLAN headers exceed the underlay
// MTU and UDP GSO refuses them: the datapath must fall back to single
// datagrams that the kernel fragments, and TCP must still flow.
func TestPrivilegedGuestMTUTooLarge(t *testing.T) {
	requireRoot(t)
	l := buildLab(t, "hdp-m-", true, 1500)
	ping(t, nsName(l.prefix, "vm1"), l.vmIP[2], 2, 2)
	before := l.dp[1].Stats()
	if gbps := iperf(t, l.prefix, l.vmIP[2], 2); gbps <= 0 {
		t.Fatalf("iperf3 rate %.2f", gbps)
	}
	after := l.dp[1].Stats()
	if after.TunnelTx-before.TunnelTx < 1000 {
		t.Errorf("host1 tunnelled %d datagrams", after.TunnelTx-before.TunnelTx)
	}
	t.Logf("host1 Stats() = %+v", after)
}

// TestPrivilegedCloseStopsEverything binds ports, starts, removes a port
// and closes, then checks that every goroutine the datapath started has
// exited, that Close is idempotent, and that a closed datapath refuses
// work.
func TestPrivilegedCloseStopsEverything(t *testing.T) {
	requireRoot(t)
	const prefix = "hdp-c-"
	delNamespaces(prefix)
	t.Cleanup(func() { delNamespaces(prefix) })
	ns := prefix + "h"
	run(t, "ip", "netns", "add", ns)
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	run(t, "ip", "link", "add", "hdp-c0", "netns", ns, "type", "veth", "peer", "hdp-c1", "netns", ns)
	run(t, "ip", "-n", ns, "link", "set", "hdp-c0", "up")
	run(t, "ip", "-n", ns, "link", "set", "hdp-c1", "up")
	baseline := runtime.NumGoroutine()
	var d *Datapath
	inNS(t, ns, func() error {
		var err error
		d, err = New(Config{TunnelIP: netip.MustParseAddr("127.0.0.1"), TunnelPort: 4791, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		return err
	})
	p0, err := d.AddPort("hdp-c0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddPort("hdp-c0"); err == nil {
		t.Error("binding hdp-c0 twice succeeded")
	}
	if _, err := d.AddPort("hdp-c1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(func(*datapath.Upcall) {}); err != nil {
		t.Fatal(err)
	}
	if err := d.RemovePort(p0); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if _, err := d.AddPort("hdp-c0"); !errors.Is(err, ErrClosed) {
		t.Errorf("AddPort after Close = %v, want ErrClosed", err)
	}
	var a flowtable.Actions
	if err := d.Execute(1, make([]byte, 60), datapath.GSO{}, &a); !errors.Is(err, ErrClosed) {
		t.Errorf("Execute after Close = %v, want ErrClosed", err)
	}
	waitFor(t, "datapath goroutines to exit", func() bool { return runtime.NumGoroutine() <= baseline })
	// The interfaces are free again: a new datapath can bind them.
	inNS(t, ns, func() error {
		d2, err := New(Config{TunnelIP: netip.MustParseAddr("127.0.0.1"), TunnelPort: 4791, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		if err != nil {
			return err
		}
		return d2.Close()
	})
}

// TestPrivilegedInterfaceVanishes deletes a bound interface under the
// datapath (the VM and its veth go away before the agent unbinds the
// port): the reader must neither spin nor stop the others, traffic on the
// other host keeps its counters sane, RemovePort still works, and the name
// can no longer be bound.
func TestPrivilegedInterfaceVanishes(t *testing.T) {
	requireRoot(t)
	l := buildLab(t, "hdp-v-", true, 1450)
	ping(t, nsName(l.prefix, "vm1"), l.vmIP[2], 2, 2)
	run(t, "ip", "netns", "del", nsName(l.prefix, "vm2")) // takes hdp-tap2 with it
	before := l.dp[2].Stats()
	cpu0 := cpuTime()
	time.Sleep(500 * time.Millisecond)
	if used := cpuTime() - cpu0; used > 200*time.Millisecond {
		t.Errorf("process used %v of CPU in 500 ms after the interface vanished: a reader spins", used)
	}
	if after := l.dp[2].Stats(); after.RxPackets != before.RxPackets {
		t.Errorf("host2 RxPackets moved from %d to %d with its only port gone", before.RxPackets, after.RxPackets)
	}
	// vm1 still reaches host2's datapath, which now has nowhere to deliver.
	ping(t, nsName(l.prefix, "vm1"), l.vmIP[2], 2, 0)
	if err := l.dp[2].RemovePort(l.port[2]); err != nil {
		t.Errorf("RemovePort after the interface vanished = %v", err)
	}
	if _, err := l.dp[2].AddPort("hdp-tap2"); !errors.Is(err, ErrNoInterface) {
		t.Errorf("AddPort(hdp-tap2) = %v, want ErrNoInterface", err)
	}
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
