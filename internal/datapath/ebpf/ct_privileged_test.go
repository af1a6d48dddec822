package ebpf

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"hivenet/internal/datapath"
	"hivenet/internal/flowstate"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

const (
	ctZone  = 5 // zone of the harness's port
	ctZone2 = 9 // the second zone of its ct(commit)
)

// newCTHarness is the parse harness with the port in zone ctZone and a
// catch-all flow that commits in ctZone and ctZone2 before marking the
// frame markOther.
func newCTHarness(t *testing.T) (*parseHarness, *Datapath) {
	t.Helper()
	h := newParseHarness(t)
	var zero packet.FlowMatch
	var a flowtable.Actions
	a.Append(flowtable.Action{Kind: flowtable.ActCTCommit, Key: ctZone, Port: ctZone2})
	a.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: markOther})
	if err := h.objs.HnIfports.Put(uint32(0), encodePortInfo(7, [6]byte{0x02, 0xbb, 0, 0, 0, 7}, ctZone)); err != nil {
		t.Fatal(err)
	}
	if err := h.objs.HnFlows.Put(makeLookupKey(1, &zero), encodeFlowVal(&a)); err != nil {
		t.Fatal(err)
	}
	return h, &Datapath{objs: h.objs}
}

// runState installs the exact flow of frame's Go key with CTState state
// (slot 0, marking markExact), runs the program on frame and reports
// whether the exact flow was hit, i.e. whether the program looked the
// frame up with that state; the catch-all (committing) must take it
// otherwise.
func (h *parseHarness) runState(t *testing.T, frame []byte, state uint8) bool {
	t.Helper()
	var m packet.FlowMatch
	if err := packet.Parse(frame, 7, &m); err != nil {
		t.Fatalf("packet.Parse: %v (test frame broken)", err)
	}
	m.CTState = state
	got, err := h.runExact(t, frame, &m)
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	if got == outDeclined {
		t.Fatal("the program sent the frame up")
	}
	return got == outExact
}

func ctEntries(t *testing.T, m *ebpf.Map) map[flowstate.Key]uint8 {
	t.Helper()
	out := map[flowstate.Key]uint8{}
	var kb [ctKeySize]byte
	var v ctVal
	it := m.Iterate()
	for it.Next(&kb, &v) {
		var k flowstate.Key
		copy(ctKeyBytes(&k), kb[:])
		out[k] = v.state()
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPrivilegedConnTrack (BPF_PROG_TEST_RUN, no namespaces): for each
// frame the program handles, ct(commit) records exactly
// flowstate.KeyOf of the frame (established) and its reverse
// (established|reply) in both zones, and nothing for frames other than
// IP ones; the next packet is looked up as established, its reply as
// established|reply; a commit made in Go (Execute's path) is found by
// the program; ConnState reads the table.
func TestPrivilegedConnTrack(t *testing.T) {
	requireRoot(t)
	h, d := newCTHarness(t)
	mac1, mac2 := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	fr := testFrames()
	swap6 := func(f []byte) []byte { // an IPv6 frame's reply: addresses and ports swapped
		r := append([]byte{}, f...)
		copy(r[14+8:], f[14+24:14+40])
		copy(r[14+24:], f[14+8:14+24])
		copy(r[54:], f[56:58])
		copy(r[56:], f[54:56])
		return r
	}
	tests := []struct {
		name    string
		frame   []byte
		reply   []byte // nil: no reply checked
		tracked bool   // an IP frame: committed and looked up
	}{
		{name: "udp", frame: fr["udp"], tracked: true,
			reply: packet.AppendUDP4(nil, mac2, mac1, netip.AddrPortFrom(a2, 67), netip.AddrPortFrom(a1, 68), 64, []byte("hi"))},
		{name: "tcp", frame: fr["tcp"], tracked: true, reply: tcp4(mac2, mac1, a2, a1, 80, 40000, 0)},
		{name: "echo request", frame: fr["echo request"], tracked: true,
			reply: packet.AppendICMP4Echo(nil, mac2, mac1, a2, a1, 64, packet.ICMPEchoReply, 0x1234, 1, []byte("ping"))},
		{name: "echo reply", frame: fr["echo reply"], tracked: true},
		{name: "later fragment", frame: fr["later fragment"], tracked: true},
		{name: "unknown ip proto", frame: fr["unknown ip proto"], tracked: true},
		{name: "ipv6 udp", frame: fr["ipv6 udp"], tracked: true, reply: swap6(fr["ipv6 udp"])},
		{name: "ipv6 icmp", frame: fr["ipv6 icmp"], tracked: true},
		{name: "arp request", frame: fr["arp request"]},
		{name: "lldp ethertype", frame: fr["lldp ethertype"]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearMap(h.objs.HnCt)
			var m packet.FlowMatch
			if err := packet.Parse(tc.frame, 7, &m); err != nil {
				t.Fatal(err)
			}
			if !tc.tracked {
				if h.runState(t, tc.frame, 0) != true {
					t.Errorf("a frame other than IP was looked up with a ct_state, want 0")
				}
				h.runState(t, tc.frame, packet.CTEstablished)
				if n := len(ctEntries(t, h.objs.HnCt)); n != 0 {
					t.Errorf("%d conntrack entries after ct(commit) of a frame other than IP, want 0", n)
				}
				return
			}
			if h.runState(t, tc.frame, packet.CTEstablished) {
				t.Fatal("the first packet hit the established flow: want ct_state new")
			}
			want := map[flowstate.Key]uint8{}
			for _, z := range []uint32{ctZone, ctZone2} {
				k := flowstate.KeyOf(z, &m)
				want[k], want[k.Reverse()] = packet.CTEstablished, packet.CTEstablished|packet.CTReply
			}
			got := ctEntries(t, h.objs.HnCt)
			if len(got) != len(want) {
				t.Errorf("conntrack entries %v, want %v", got, want)
			}
			for k, st := range want {
				if got[k] != st {
					t.Errorf("entry %v: state %d, want %d", k, got[k], st)
				}
				if cs := d.ConnState(k); cs != st {
					t.Errorf("ConnState(%v) = %d, want %d", k, cs, st)
				}
			}
			if !h.runState(t, tc.frame, packet.CTEstablished) {
				t.Error("the second packet was not looked up as established")
			}
			if tc.reply != nil && !h.runState(t, tc.reply, packet.CTEstablished|packet.CTReply) {
				t.Error("the reply was not looked up as established|reply")
			}
			// The same connection committed from Go.
			clearMap(h.objs.HnCt)
			if d.ConnState(flowstate.KeyOf(ctZone, &m)) != packet.CTNew {
				t.Error("ConnState of an absent key is not CTNew")
			}
			if err := d.commitFrame(tc.frame, 7, ctZone, 0); err != nil {
				t.Fatal(err)
			}
			if !h.runState(t, tc.frame, packet.CTEstablished) {
				t.Error("after a commit in Go the packet was not looked up as established")
			}
			if tc.reply != nil && !h.runState(t, tc.reply, packet.CTEstablished|packet.CTReply) {
				t.Error("after a commit in Go the reply was not looked up as established|reply")
			}
		})
	}
	t.Run("bad frame", func(t *testing.T) {
		clearMap(h.objs.HnCt)
		if err := d.commitFrame([]byte{1, 2, 3}, 7, ctZone, 0); err == nil {
			t.Error("commitFrame of a 3-byte frame: no error")
		}
		if n := len(ctEntries(t, h.objs.HnCt)); n != 0 {
			t.Errorf("%d entries after a refused commit", n)
		}
	})
}

// Zones of the two hosts' VM ports in TestPrivilegedConnTrackTwoHosts.
const (
	zoneA = 3001
	zoneB = 3002
)

// ctUpcalls records the CTState of every miss per host.
type ctUpcalls struct {
	mu    sync.Mutex
	state [3][]uint8
}

func (c *ctUpcalls) add(i int, st uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state[i] = append(c.state[i], st)
}

func (c *ctUpcalls) get(i int) []uint8 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.state[i])
}

// ctAgent is a stateful firewall as the agent builds it with a
// ConnTracker: on host 1 (the client's) new connections are committed
// and tunnelled with the commit bit, established packets tunnelled; on
// host 2 (the server's) only replies (established|reply) go back, the
// rest is dropped. Flows match ct_state, never the 5-tuple.
func ctAgent(rec *ctUpcalls) agentFunc {
	return func(l *lab, i int, u *datapath.Upcall) (packet.FlowMatch, flowtable.Actions) {
		rec.add(i, u.Match.CTState)
		mask := packet.MaskOf(packet.FInPort | packet.FEthType | packet.FCTState)
		var a flowtable.Actions
		tun := flowtable.Action{Kind: flowtable.ActTunnel, Key: keyVM2, Remote: l.ul[2].As4(), RemotePort: 4789}
		switch {
		case i == 1 && u.Match.CTState == packet.CTNew:
			a.Append(flowtable.Action{Kind: flowtable.ActCTCommit, Key: zoneA})
			tun.Flags = flowtable.FlagCommit
			a.Append(tun)
		case i == 1 && u.Match.CTState&packet.CTEstablished != 0:
			a.Append(tun)
		case i == 2 && u.Match.CTState == packet.CTEstablished|packet.CTReply:
			a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: keyVM1, Remote: l.ul[1].As4(), RemotePort: 4789})
		}
		return mask, a
	}
}

// udpIn opens a UDP socket on port in VM namespace vm.
func udpIn(t *testing.T, vm string, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	inNS(t, vm, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends msg from c to dst and waits for it at to; it returns
// the address it came from.
func exchange(t *testing.T, c *net.UDPConn, dst string, to *net.UDPConn, msg string) *net.UDPAddr {
	t.Helper()
	if _, err := c.WriteToUDP([]byte(msg), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = to.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, from, err := to.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("%q to %s: not received: %v", msg, dst, err)
		}
		if string(buf[:n]) == msg {
			return from
		}
	}
}

// udpMatch is the flow match of a UDP packet from src to dst as it
// enters by port p (what flowstate.KeyOf needs).
func udpMatch(p datapath.PortNo, src, dst string) packet.FlowMatch {
	var m packet.FlowMatch
	m.InPort = uint32(p)
	m.EthType = packet.EthTypeIPv4
	m.IPProto = packet.ProtoUDP
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	m.SetSrc(s.Addr())
	m.SetDst(d.Addr())
	m.SrcPort, m.DstPort = s.Port(), d.Port()
	return m
}

// checkConn fails t unless dp holds the connection of m in zone:
// established, and its reverse established|reply.
func checkConn(t *testing.T, host string, dp *Datapath, zone uint32, m *packet.FlowMatch) {
	t.Helper()
	k := flowstate.KeyOf(zone, m)
	if st := dp.ConnState(k); st != packet.CTEstablished {
		t.Errorf("%s: ConnState(%v) = %d, want established (2)", host, k, st)
	}
	if st := dp.ConnState(k.Reverse()); st != packet.CTEstablished|packet.CTReply {
		t.Errorf("%s: ConnState(%v) = %d, want established|reply (6)", host, k.Reverse(), st)
	}
}

// TestPrivilegedConnTrackTwoHosts: connection tracking across two hosts
// with flows that match ct_state only. A connection's first packet hits
// host 1's ct_state=new flow (ct(commit), tunnel with the commit bit):
// both hosts record it, each in its port's zone, without an upcall; the
// reply misses on host 2 as established|reply, and once that flow is in
// replies hit; a second connection costs no upcall at all. Execute
// commits and sets the bit too (and not without FlagCommit); a port in
// zone 0 is not tracked; idle connections are swept.
func TestPrivilegedConnTrackTwoHosts(t *testing.T) {
	requireRoot(t)
	prefix := "hct-c-"
	rec := &ctUpcalls{}
	l := buildLab(t, prefix, nil, false)
	l.agent, l.connIdle = ctAgent(rec), 3*time.Second
	for i := 1; i <= 2; i++ {
		l.upcall[i], l.states[i], l.tag[i] = new(atomic.Int64), new(atomic.Int64), topology.Tag(100+i)
		l.start(t, i)
	}
	vm1, vm2 := nsName(prefix, "vm1"), nsName(prefix, "vm2")
	run(t, "ip", "-n", vm1, "neigh", "add", l.vmIP[2], "lladdr", net.HardwareAddr(l.vmMAC[2][:]).String(), "dev", "eth0")
	run(t, "ip", "-n", vm2, "neigh", "add", l.vmIP[1], "lladdr", net.HardwareAddr(l.vmMAC[1][:]).String(), "dev", "eth0")
	if err := l.dp[1].SetPortZone(l.port[1], zoneA); err != nil {
		t.Fatal(err)
	}
	if err := l.dp[2].SetPortZone(l.port[2], zoneB); err != nil {
		t.Fatal(err)
	}
	if err := l.dp[2].SetPortZone(99, 1); !errors.Is(err, ErrNoPort) {
		t.Errorf("SetPortZone of an unbound port: %v, want ErrNoPort", err)
	}
	// Host 1's ct_state=new flow, installed up front so that the first
	// packet takes the program's path.
	newMatch := packet.FlowMatch{InPort: uint32(l.port[1]), EthType: packet.EthTypeIPv4, CTState: packet.CTNew}
	mask := packet.MaskOf(packet.FInPort | packet.FEthType | packet.FCTState)
	var commitActs flowtable.Actions
	commitActs.Append(flowtable.Action{Kind: flowtable.ActCTCommit, Key: zoneA})
	commitActs.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: keyVM2, Remote: l.ul[2].As4(), RemotePort: 4789, Flags: flowtable.FlagCommit})
	if err := l.dp[1].Install(newMatch, mask, commitActs, []topology.Tag{l.tag[1]}); err != nil {
		t.Fatal(err)
	}
	srv := udpIn(t, vm2, 7000)
	vmAddr := func(i, port int) string { return fmt.Sprintf("%s:%d", l.vmIP[i], port) }

	t.Run("first connection", func(t *testing.T) {
		c := udpIn(t, vm1, 5001)
		exchange(t, c, vmAddr(2, 7000), srv, "syn 1")
		if up := rec.get(1); len(up) != 0 {
			t.Errorf("host 1 upcalls with ct_state %v, want none (the new flow hits)", up)
		}
		m := udpMatch(l.port[1], vmAddr(1, 5001), vmAddr(2, 7000))
		checkConn(t, "host 1", l.dp[1], zoneA, &m)
		checkConn(t, "host 2", l.dp[2], zoneB, &m)
		if k := flowstate.KeyOf(zoneA, &m); l.dp[2].ConnState(k) != packet.CTNew {
			t.Errorf("host 2 holds the connection in host 1's zone")
		}
		if got := l.dp[2].CTStats().CommitsRx; got != 1 {
			t.Errorf("host 2 CommitsRx %d, want 1", got)
		}
		if got := l.dp[1].CTStats().Commits; got != 1 {
			t.Errorf("host 1 Commits %d, want 1", got)
		}

		// The reply misses once on host 2, as established|reply.
		exchange(t, srv, vmAddr(1, 5001), c, "syn-ack 1")
		if up := rec.get(2); !slices.Equal(up, []uint8{packet.CTEstablished | packet.CTReply}) {
			t.Fatalf("host 2 upcalls with ct_state %v, want one with established|reply (6)", up)
		}
		for n := range 5 {
			exchange(t, srv, vmAddr(1, 5001), c, fmt.Sprintf("data %d", n))
			exchange(t, c, vmAddr(2, 7000), srv, fmt.Sprintf("ack %d", n))
		}
		if up := rec.get(2); len(up) != 1 {
			t.Errorf("host 2 upcalls with ct_state %v after the reply flow was installed, want only the first", up)
		}
		// Host 1's established packets went up once (ct_state 2).
		if up := rec.get(1); !slices.Equal(up, []uint8{packet.CTEstablished}) {
			t.Errorf("host 1 upcalls with ct_state %v, want one with established (2)", up)
		}
	})

	t.Run("second connection without upcalls", func(t *testing.T) {
		up1, up2 := len(rec.get(1)), len(rec.get(2))
		c := udpIn(t, vm1, 5002)
		exchange(t, c, vmAddr(2, 7000), srv, "syn 2")
		exchange(t, srv, vmAddr(1, 5002), c, "syn-ack 2")
		exchange(t, c, vmAddr(2, 7000), srv, "ack 2")
		if n1, n2 := len(rec.get(1))-up1, len(rec.get(2))-up2; n1 != 0 || n2 != 0 {
			t.Errorf("a new connection cost %d upcalls on host 1 and %d on host 2, want none", n1, n2)
		}
		m := udpMatch(l.port[1], vmAddr(1, 5002), vmAddr(2, 7000))
		checkConn(t, "host 1", l.dp[1], zoneA, &m)
		checkConn(t, "host 2", l.dp[2], zoneB, &m)
		if got := l.dp[2].CTStats().CommitsRx; got != 2 {
			t.Errorf("host 2 CommitsRx %d, want 2", got)
		}
	})

	t.Run("execute", func(t *testing.T) {
		frame := func(sport uint16) []byte {
			return packet.AppendUDP4(nil, l.vmMAC[1], l.vmMAC[2], netip.MustParseAddrPort(vmAddr(1, int(sport))),
				netip.MustParseAddrPort(vmAddr(2, 7000)), 64, []byte(fmt.Sprintf("exec %d", sport)))
		}
		rx0 := l.dp[2].CTStats().CommitsRx
		if err := l.dp[1].Execute(l.port[1], frame(5003), datapath.GSO{}, &commitActs); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the executed frame at host 2", func() bool { return l.dp[2].CTStats().CommitsRx == rx0+1 })
		m := udpMatch(l.port[1], vmAddr(1, 5003), vmAddr(2, 7000))
		checkConn(t, "host 1", l.dp[1], zoneA, &m)
		checkConn(t, "host 2", l.dp[2], zoneB, &m)
		// The same tunnel without FlagCommit: delivered, not committed
		// (its exec slot is not the commit one).
		var plain flowtable.Actions
		plain.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: keyVM2, Remote: l.ul[2].As4(), RemotePort: 4789})
		if err := l.dp[1].Execute(l.port[1], frame(5004), datapath.GSO{}, &plain); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		_ = srv.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, _, err := srv.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("the frame executed without commit did not arrive: %v", err)
			}
			if string(buf[:n]) == "exec 5004" {
				break
			}
		}
		m4 := udpMatch(l.port[1], vmAddr(1, 5004), vmAddr(2, 7000))
		if st := l.dp[2].ConnState(flowstate.KeyOf(zoneB, &m4)); st != packet.CTNew {
			t.Errorf("host 2 state %d of a connection tunnelled without the commit bit, want new (untracked)", st)
		}
		if l.dp[2].CTStats().CommitsRx != rx0+1 {
			t.Errorf("host 2 CommitsRx %d, want %d", l.dp[2].CTStats().CommitsRx, rx0+1)
		}
	})

	t.Run("zone 0 not tracked", func(t *testing.T) {
		if err := l.dp[2].SetPortZone(l.port[2], 0); err != nil {
			t.Fatal(err)
		}
		up2 := len(rec.get(2))
		c := udpIn(t, vm2, 7001)
		if _, err := c.WriteToUDP([]byte("untracked"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(vmAddr(1, 5999)))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "host 2's upcall", func() bool { return len(rec.get(2)) > up2 })
		if up := rec.get(2)[up2:]; !slices.Equal(up, []uint8{0}) {
			t.Errorf("upcalls from a port in zone 0 with ct_state %v, want one with 0", up)
		}
		if err := l.dp[2].SetPortZone(l.port[2], zoneB); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("idle sweep", func(t *testing.T) {
		m := udpMatch(l.port[1], vmAddr(1, 5002), vmAddr(2, 7000))
		k := flowstate.KeyOf(zoneA, &m)
		deadline := time.Now().Add(10 * time.Second)
		for l.dp[1].ConnState(k) != packet.CTNew || l.dp[1].ConnState(k.Reverse()) != packet.CTNew {
			if time.Now().After(deadline) {
				t.Fatalf("connection %v still tracked 10 s after its last packet (ConnIdle 3 s)", k)
			}
			time.Sleep(100 * time.Millisecond)
		}
		waitFor(t, "the sweep to count no connection on host 1", func() bool { return l.dp[1].CTStats().Entries == 0 })
	})
}

// TestPrivilegedConnSweep (BPF_PROG_TEST_RUN): the idle sweep removes a
// connection once both its directions are idle for longer than
// ConnIdle, keeps one whose reply direction is in use, and counts the
// entries left.
func TestPrivilegedConnSweep(t *testing.T) {
	requireRoot(t)
	h, d := newCTHarness(t)
	d.cfg.ConnIdle = 300 * time.Millisecond
	mac1, mac2 := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	req := packet.AppendUDP4(nil, mac1, mac2, netip.AddrPortFrom(a1, 68), netip.AddrPortFrom(a2, 67), 64, []byte("req"))
	rep := packet.AppendUDP4(nil, mac2, mac1, netip.AddrPortFrom(a2, 67), netip.AddrPortFrom(a1, 68), 64, []byte("rep"))
	h.runState(t, req, packet.CTEstablished) // committed in zones 5 and 9: 4 entries
	steps := []struct {
		name        string
		refresh     bool // the reply passes (zone 5's reverse direction looked up) first
		wantRemoved int
		wantLeft    int
	}{
		{name: "zone 9 idle, zone 5's reply in use", refresh: true, wantRemoved: 2, wantLeft: 2},
		{name: "all idle", wantRemoved: 2, wantLeft: 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			time.Sleep(400 * time.Millisecond)
			if st.refresh && !h.runState(t, rep, packet.CTEstablished|packet.CTReply) {
				t.Fatal("the reply was not looked up as established|reply")
			}
			n, err := d.sweepConns()
			if err != nil {
				t.Fatal(err)
			}
			if n != st.wantRemoved || len(ctEntries(t, h.objs.HnCt)) != st.wantLeft || d.CTStats().Entries != st.wantLeft {
				t.Errorf("removed %d, left %d (counted %d); want %d removed, %d left", n,
					len(ctEntries(t, h.objs.HnCt)), d.CTStats().Entries, st.wantRemoved, st.wantLeft)
			}
		})
	}
}

// TestPrivilegedCommitBitOnTheWire: the commit bit is VXLAN-GBP: flags
// 0x88 and Group Policy ID 1, on frames the program tunnels and on
// frames Execute sends; without FlagCommit the header is plain (0x08,
// policy 0). packet.ParseVXLAN, the userspace datapath's parser, takes
// both (a mixed deployment keeps forwarding). Host 2 runs no datapath:
// a UDP socket on its VXLAN port reads the datagrams. A VXLAN device
// without GBP found by New is replaced by one with it.
func TestPrivilegedCommitBitOnTheWire(t *testing.T) {
	requireRoot(t)
	prefix := "hct-w-"
	l := buildLab(t, prefix, nil, false)
	h1 := nsName(prefix, "h1")
	run(t, "ip", "-n", h1, "link", "add", "hnvx0", "type", "vxlan", "external", "dstport", "4789", "local", l.ul[1].String())
	l.agent = func(*lab, int, *datapath.Upcall) (packet.FlowMatch, flowtable.Actions) {
		return packet.MaskOf(packet.FInPort), flowtable.Actions{}
	}
	l.upcall[1], l.states[1], l.tag[1] = new(atomic.Int64), new(atomic.Int64), topology.Tag(101)
	l.start(t, 1)
	inNS(t, h1, func() error {
		lk, err := netlink.LinkByName("hnvx0")
		if err != nil {
			return err
		}
		if vx, ok := lk.(*netlink.Vxlan); !ok || !vx.GBP || !vx.FlowBased {
			t.Errorf("VXLAN device %+v: want collect_md with GBP (the one without was kept)", lk)
		}
		return nil
	})
	var sock *net.UDPConn
	inNS(t, nsName(prefix, "h2"), func() (err error) {
		sock, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 4789})
		return err
	})
	defer sock.Close()
	read := func(t *testing.T) []byte {
		t.Helper()
		b := make([]byte, 2000)
		_ = sock.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := sock.ReadFromUDP(b)
		if err != nil {
			t.Fatalf("no VXLAN datagram at host 2: %v", err)
		}
		return b[:n]
	}
	tun := flowtable.Action{Kind: flowtable.ActTunnel, Key: keyVM2, Remote: l.ul[2].As4(), RemotePort: 4789}
	frame := packet.AppendUDP4(nil, l.vmMAC[1], l.vmMAC[2], netip.MustParseAddrPort("10.252.0.1:5000"),
		netip.MustParseAddrPort("10.252.0.2:7000"), 64, []byte("wire"))
	mask := packet.MaskOf(packet.FInPort | packet.FEthType)
	m := packet.FlowMatch{InPort: uint32(l.port[1]), EthType: packet.EthTypeIPv4}
	vm1 := nsName(prefix, "vm1")
	run(t, "ip", "-n", vm1, "neigh", "add", l.vmIP[2], "lladdr", net.HardwareAddr(l.vmMAC[2][:]).String(), "dev", "eth0")
	tests := []struct {
		name    string
		flags   uint8
		execute bool // Execute (an exec slot) rather than the program's flow
		hdr     []byte
	}{
		{name: "program, commit", flags: flowtable.FlagCommit, hdr: []byte{0x88, 0, 0, 1}},
		{name: "program, plain", hdr: []byte{0x08, 0, 0, 0}},
		{name: "execute, commit", flags: flowtable.FlagCommit, execute: true, hdr: []byte{0x88, 0, 0, 1}},
		{name: "execute, plain", execute: true, hdr: []byte{0x08, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tun.Flags = tc.flags
			var a flowtable.Actions
			a.Append(tun)
			if tc.execute {
				if err := l.dp[1].Execute(l.port[1], frame, datapath.GSO{}, &a); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := l.dp[1].Install(m, mask, a, nil); err != nil {
					t.Fatal(err)
				}
				c := udpIn(t, vm1, 5000)
				if _, err := c.WriteToUDP([]byte("wire"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.252.0.2:7000"))); err != nil {
					t.Fatal(err)
				}
			}
			b := read(t)
			if !bytes.Equal(b[:4], tc.hdr) {
				t.Errorf("VXLAN header %x, want flags and policy %x", b[:8], tc.hdr)
			}
			vni, err := packet.ParseVXLAN(b)
			if err != nil || vni != keyVM2 {
				t.Errorf("packet.ParseVXLAN: VNI %d, %v; want %d", vni, err, keyVM2)
			}
			var im packet.FlowMatch
			if err := packet.Parse(b[packet.VXLANHeaderLen:], 0, &im); err != nil || im.DstPort != 7000 {
				t.Errorf("inner frame: %+v, %v", im, err)
			}
		})
	}
}

// TestPrivilegedConnTrackRestart: with Persist, a port's zone and the
// connections survive a restart of the datapath.
func TestPrivilegedConnTrackRestart(t *testing.T) {
	requireRoot(t)
	rec := &ctUpcalls{}
	l := buildLab(t, "hct-r-", ctAgent(rec), true)
	if err := l.dp[1].SetPortZone(l.port[1], zoneA); err != nil {
		t.Fatal(err)
	}
	frame := packet.AppendUDP4(nil, l.vmMAC[1], l.vmMAC[2], netip.MustParseAddrPort("10.252.0.1:5000"),
		netip.MustParseAddrPort("10.252.0.2:7000"), 64, []byte("x"))
	var a flowtable.Actions
	a.Append(flowtable.Action{Kind: flowtable.ActCTCommit, Key: zoneA})
	if err := l.dp[1].Execute(l.port[1], frame, datapath.GSO{}, &a); err != nil {
		t.Fatal(err)
	}
	m := udpMatch(l.port[1], "10.252.0.1:5000", "10.252.0.2:7000")
	checkConn(t, "before the restart", l.dp[1], zoneA, &m)
	if err := l.dp[1].Close(); err != nil {
		t.Fatal(err)
	}
	l.start(t, 1)
	checkConn(t, "after the restart", l.dp[1], zoneA, &m)
	l.dp[1].mu.Lock()
	pt := *l.dp[1].ports[l.port[1]]
	l.dp[1].mu.Unlock()
	zone := pt.zone
	var b []byte
	if err := l.dp[1].objs.HnIfports.Lookup(uint32(pt.ifindex), &b); err != nil {
		t.Fatal(err)
	}
	if _, _, mz := decodePortInfo(b); zone != zoneA || mz != zoneA {
		t.Errorf("zone after the restart: %d (map %d), want %d", zone, mz, zoneA)
	}
}

// BenchmarkProgramConnTrack: hn_port's time per packet (BPF_PROG_TEST_RUN,
// repeated in the kernel) on a UDP frame that hits a dropping flow, from a port
// without a zone (no lookup), and from a port with one whose connection
// is tracked (one hn_ct lookup), and for a new connection's packet that
// takes a ct(commit) flow (two hn_ct updates). Needs root.
func BenchmarkProgramConnTrack(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	h, err := loadParseHarness()
	if err != nil {
		b.Fatal(err)
	}
	defer h.objs.Close()
	frame := packet.AppendUDP4(nil, [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2},
		netip.MustParseAddrPort("10.0.0.1:5000"), netip.MustParseAddrPort("10.0.0.2:7000"), 64, make([]byte, 64))
	var m packet.FlowMatch
	if err := packet.Parse(frame, 7, &m); err != nil {
		b.Fatal(err)
	}
	d := &Datapath{objs: h.objs}
	cases := []struct {
		name   string
		zone   uint32
		state  uint8 // the exact flow's ct_state
		commit bool  // the flow commits (each run updates the same two entries)
	}{
		{name: "untracked", zone: 0, state: 0},
		{name: "established", zone: ctZone, state: packet.CTEstablished},
		{name: "new with commit", zone: ctZone, state: packet.CTNew, commit: true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			clearMap(h.objs.HnCt)
			if err := h.objs.HnIfports.Put(uint32(0), encodePortInfo(7, [6]byte{0x02, 0xbb, 0, 0, 0, 7}, tc.zone)); err != nil {
				b.Fatal(err)
			}
			if tc.state == packet.CTEstablished {
				if err := d.commitFrame(frame, 7, ctZone, 0); err != nil {
					b.Fatal(err)
				}
			}
			var a flowtable.Actions
			if tc.commit {
				// Commit in another zone, so the packet stays new.
				a.Append(flowtable.Action{Kind: flowtable.ActCTCommit, Key: ctZone2})
			}
			// No rewrite: every repetition runs on the same frame (the flow
			// drops it; its counter tells that it took every one).
			mm := m
			mm.CTState = tc.state
			k := makeLookupKey(0, &mm)
			if err := h.objs.HnFlows.Put(k, encodeFlowVal(&a)); err != nil {
				b.Fatal(err)
			}
			defer h.objs.HnFlows.Delete(k)
			out := make([]byte, len(frame)+64)
			opts := &ebpf.RunOptions{Data: frame, DataOut: out, Repeat: uint32(b.N)}
			b.ResetTimer()
			if _, err := h.objs.HnPort.Run(opts); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			var v []byte
			if err := h.objs.HnFlows.Lookup(k, &v); err != nil {
				b.Fatal(err)
			}
			if _, pk, _, _ := decodeFlowVal(v); pk != uint64(b.N) {
				b.Fatalf("the exact flow took %d of %d runs", pk, b.N)
			}
		})
	}
}
