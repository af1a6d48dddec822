package agent

import (
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"hivenet/internal/datapath"
	"hivenet/internal/datapath/fake"
	"hivenet/internal/flowstate"
	"hivenet/internal/flowstate/conntrack"
	"hivenet/internal/flowtable"
	"hivenet/internal/simulation"
	"hivenet/internal/topology"
)

// stateAgent is an agent with just what pushState and sendState use.
func stateAgent(t *testing.T, host string) (*Agent, *fake.Datapath, *topology.Snapshot) {
	t.Helper()
	fs, err := conntrack.New(conntrack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dp := fake.New(fake.Config{})
	a := &Agent{cfg: Config{Host: host}, fs: fs, dp: dp}
	var changes []topology.Change
	for i, name := range []string{"h1", "h2", "h3"} {
		h := &topology.Host{Name: name, TunnelIP: netip.AddrFrom4([4]byte{10, 250, 0, byte(i + 1)}), TunnelPort: 4789}
		changes = append(changes, topology.Change{Kind: topology.KindHost, ID: name, Host: h})
	}
	snap, _ := topology.Empty().Apply(changes)
	return a, dp, snap
}

func connKey(i int) *flowstate.Key {
	k := flowstate.Key{Zone: 7, Proto: 6, SrcPort: uint16(1000 + i), DstPort: 80}
	src, dst := netip.AddrFrom4([4]byte{10, 0, 1, 11}).As16(), netip.AddrFrom4([4]byte{10, 0, 2, 13}).As16()
	k.Src, k.Dst = src, dst
	return &k
}

// TestPushState checks what pushState encodes for the other hosts: one
// message per host (parts when it does not fit one datagram), nothing for
// this host or unknown hosts, everything written locally, and nothing
// left over from an earlier upcall whose buffer is reused.
func TestPushState(t *testing.T) {
	nat := &flowstate.NAT{Orig: *connKey(1), Xlat: *connKey(2)}
	many := make([]simulation.StateWrite, 0, 200)
	for i := range 200 {
		many = append(many, simulation.StateWrite{Conn: connKey(i), Hosts: []string{"h2"}})
	}
	for _, tc := range []struct {
		name   string
		writes []simulation.StateWrite
		// wantConns / wantNATs per destination tunnel address (all parts).
		wantConns map[string]int
		wantNATs  map[string]int
		wantMsgs  int
	}{
		{name: "conn to one host", writes: []simulation.StateWrite{{Conn: connKey(1), Hosts: []string{"h2"}}},
			wantConns: map[string]int{"10.250.0.2": 1}, wantMsgs: 1},
		{name: "this host and an unknown host get nothing", writes: []simulation.StateWrite{{Conn: connKey(1), Hosts: []string{"h1", "nowhere"}}},
			wantMsgs: 0},
		{name: "conn and NAT to two hosts", writes: []simulation.StateWrite{
			{Conn: connKey(1), Hosts: []string{"h2", "h3"}},
			{NAT: nat, Hosts: []string{"h3"}},
		}, wantConns: map[string]int{"10.250.0.2": 1, "10.250.0.3": 1}, wantNATs: map[string]int{"10.250.0.3": 1}, wantMsgs: 2},
		{name: "too many for one datagram are split", writes: many,
			wantConns: map[string]int{"10.250.0.2": 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, snap := stateAgent(t, "h1")
			// A used buffer first: its leftovers must not leak in.
			sb := getStateBuf()
			a.pushState(snap, []simulation.StateWrite{{Conn: connKey(500), Hosts: []string{"h2", "h3"}}}, 1, sb)
			putStateBuf(sb)
			sb = getStateBuf()
			defer putStateBuf(sb)
			a.pushState(snap, tc.writes, 1, sb)
			if tc.wantMsgs > 0 && len(sb.msgs) != tc.wantMsgs {
				t.Errorf("%d messages, want %d", len(sb.msgs), tc.wantMsgs)
			}
			if tc.name == "too many for one datagram are split" && len(sb.msgs) < 2 {
				t.Errorf("%d messages for 200 keys, want them split", len(sb.msgs))
			}
			conns, nats := map[string]int{}, map[string]int{}
			for _, m := range sb.msgs {
				if len(m.Msg) > flowstate.MaxMessageSize {
					t.Errorf("message of %d bytes > %d", len(m.Msg), flowstate.MaxMessageSize)
				}
				if m.Remote.Port != 4789 {
					t.Errorf("remote port %d", m.Remote.Port)
				}
				var pm flowstate.Message
				if err := flowstate.ParseMessage(m.Msg, &pm); err != nil {
					t.Fatalf("ParseMessage: %v", err)
				}
				for _, k := range pm.Conns {
					if k.SrcPort == 1500 {
						t.Errorf("key of the earlier upcall sent again")
					}
				}
				conns[m.Remote.Addr.String()] += len(pm.Conns)
				nats[m.Remote.Addr.String()] += len(pm.NATs)
			}
			for _, c := range []struct {
				what      string
				got, want map[string]int
			}{{"conntrack keys", conns, tc.wantConns}, {"NAT bindings", nats, tc.wantNATs}} {
				for addr, n := range c.want {
					if c.got[addr] != n {
						t.Errorf("%s to %s: %d, want %d", c.what, addr, c.got[addr], n)
					}
				}
				for addr, n := range c.got {
					if n != 0 && c.want[addr] == 0 {
						t.Errorf("%s to %s: %d, want none", c.what, addr, n)
					}
				}
			}
			for _, w := range tc.writes {
				if w.Conn != nil && a.fs.ConnState(*w.Conn) == topology.CTNew {
					t.Errorf("conn %v not written locally", *w.Conn)
				}
			}
		})
	}
}

// TestSendStateWithPacket: with a datapath that implements
// datapath.StateExecuter the messages leave with the packet, counted.
func TestSendStateWithPacket(t *testing.T) {
	a, dp, snap := stateAgent(t, "h1")
	sb := getStateBuf()
	defer putStateBuf(sb)
	a.pushState(snap, []simulation.StateWrite{{Conn: connKey(1), Hosts: []string{"h2"}}}, 1, sb)
	se, ok := datapath.Datapath(dp).(datapath.StateExecuter)
	if !ok {
		t.Fatal("fake datapath is no StateExecuter")
	}
	var drop flowtable.Actions
	sent, err := se.ExecuteWithState(sb.msgs, 0, []byte{1, 2, 3}, datapath.GSO{}, &drop)
	if err != nil || sent != 1 || dp.StateSentWithData() != 1 || len(dp.SentState()) != 1 {
		t.Errorf("ExecuteWithState: sent %d, %v; with data %d", sent, err, dp.StateSentWithData())
	}
}

// TestPushStateAllocs: a reused buffer makes pushState allocate nothing
// beyond the local table entries.
func TestPushStateAllocs(t *testing.T) {
	a, _, snap := stateAgent(t, "h1")
	writes := []simulation.StateWrite{{Conn: connKey(1), Hosts: []string{"h2"}}, {Conn: connKey(2), Hosts: []string{"h2", "h3"}}}
	sb := new(stateBuf)
	a.pushState(snap, writes, 1, sb) // grow the buffers, create the entries
	allocs := testing.AllocsPerRun(100, func() {
		sb.reset()
		a.pushState(snap, writes, 1, sb)
	})
	if allocs > 0 {
		t.Errorf("pushState: %.1f allocations per call with a reused buffer, want 0", allocs)
	}
}

// TestResync: a resync request from another host is answered with all
// of this host's flow state (in as many messages as it takes); requests
// from this host itself or from an unknown host are not; requestResync
// asks every other host.
func TestResync(t *testing.T) {
	a, dp, snap := stateAgent(t, "h1")
	a.log = slog.New(slog.DiscardHandler)
	a.snap.Store(snap)
	for i := range 200 {
		a.fs.AddConn(*connKey(i), 1)
	}
	a.fs.AddNAT(flowstate.NAT{Orig: *connKey(1000), Xlat: *connKey(2000)}, 1)

	a.applyState(flowstate.AppendResync(nil, "h1"))      // ourselves
	a.applyState(flowstate.AppendResync(nil, "nowhere")) // unknown
	a.applyState(flowstate.AppendResync(nil, "h2"))
	conns, nats, msgs := 0, 0, 0
	deadline := time.Now().Add(5 * time.Second)
	for conns < 200 || nats < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s h2 got %d conns, %d bindings in %d messages; want 200 and 1", conns, nats, msgs)
		}
		for _, s := range dp.SentState() {
			if s.Remote.Addr != netip.MustParseAddr("10.250.0.2") {
				t.Fatalf("resync state sent to %v, want only h2 (10.250.0.2)", s.Remote.Addr)
			}
			var m flowstate.Message
			if err := flowstate.ParseMessage(s.Msg, &m); err != nil {
				t.Fatal(err)
			}
			conns, nats, msgs = conns+len(m.Conns), nats+len(m.NATs), msgs+1
		}
		time.Sleep(10 * time.Millisecond)
	}
	if msgs < 2 {
		t.Errorf("200 conntrack keys in %d message(s): want them split", msgs)
	}

	a.requestResync(snap)
	got := map[netip.Addr]string{}
	for _, s := range dp.SentState() {
		var m flowstate.Message
		if err := flowstate.ParseMessage(s.Msg, &m); err != nil {
			t.Fatal(err)
		}
		got[s.Remote.Addr] = m.Resync
	}
	want := map[netip.Addr]string{netip.MustParseAddr("10.250.0.2"): "h1", netip.MustParseAddr("10.250.0.3"): "h1"}
	if !maps.Equal(got, want) {
		t.Errorf("requestResync sent %v, want a request from h1 to h2 and h3", got)
	}
}

// TestCompileCommit: a Result asking the datapath to commit the
// connection compiles to ActCTCommit (ingress zone; the egress zone too
// when the egress port is local) before the rewrites, and a tunnel to a
// remote egress port carries FlagCommit; without a tracking datapath (or
// with NoDatapathConntrack) neither appears.
func TestCompileCommit(t *testing.T) {
	a, _, snap := stateAgent(t, "h1")
	snap, _ = snap.Apply([]topology.Change{
		{Kind: topology.KindPort, ID: "remote", Port: &topology.Port{ID: "remote", TunnelKey: 31}},
		{Kind: topology.KindPortBinding, ID: "remote", Binding: &topology.PortBinding{PortID: "remote", Host: "h2"}},
	})
	idx := &portIndex{byNo: map[datapath.PortNo]string{3: "local"}, byID: map[string]datapath.PortNo{"local": 3}}
	mac := topology.MAC{2, 0, 0, 0, 0, 1}
	for _, tc := range []struct {
		name    string
		tracker bool
		out     simulation.Output
		want    []flowtable.Action
	}{
		{name: "remote egress", tracker: true, out: simulation.Output{PortID: "remote", Host: "h2"}, want: []flowtable.Action{
			{Kind: flowtable.ActCTCommit, Key: 100},
			{Kind: flowtable.ActSetEthDst, MAC: mac},
			{Kind: flowtable.ActTunnel, Flags: flowtable.FlagCommit, Key: 31, Remote: [4]byte{10, 250, 0, 2}, RemotePort: 4789},
		}},
		{name: "local egress", tracker: true, out: simulation.Output{PortID: "local", Host: "h1", Local: true}, want: []flowtable.Action{
			{Kind: flowtable.ActCTCommit, Key: 100, Port: 200},
			{Kind: flowtable.ActSetEthDst, MAC: mac},
			{Kind: flowtable.ActOutput, Port: 3},
		}},
		{name: "no tracker", out: simulation.Output{PortID: "remote", Host: "h2"}, want: []flowtable.Action{
			{Kind: flowtable.ActSetEthDst, MAC: mac},
			{Kind: flowtable.ActTunnel, Key: 31, Remote: [4]byte{10, 250, 0, 2}, RemotePort: 4789},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.ct = nil
			if tc.tracker {
				a.ct = noConns{}
			}
			res := simulation.Result{Verdict: simulation.Forward, Outputs: []simulation.Output{tc.out},
				Rewrite: simulation.Rewrite{EthDst: &mac}, Commit: &simulation.Commit{ZoneIn: 100, ZoneOut: 200}}
			as := a.compile(snap, idx, &res)
			if got := as.List(); !slices.Equal(got, tc.want) {
				t.Errorf("actions\n  %s\nwant\n  %s", datapath.FormatActions(&as), formatList(tc.want))
			}
		})
	}
}

type noConns struct{}

func (noConns) SetPortZone(datapath.PortNo, uint32) error { return nil }
func (noConns) ConnState(flowstate.Key) uint8             { return 0 }
func (noConns) CommitConn(flowstate.Key) error            { return nil }

// commitLog is a datapath.ConnTracker recording CommitConn.
type commitLog struct {
	noConns
	keys []flowstate.Key
}

func (c *commitLog) CommitConn(k flowstate.Key) error { c.keys = append(c.keys, k); return nil }

// TestMirrorConns: conntrack entries received in a flow-state message go
// into the agent's tables and, with a tracking datapath, into its table
// as well (a reply entering here is looked up there); NAT bindings and a
// datapath that does not track get nothing.
func TestMirrorConns(t *testing.T) {
	for _, tracker := range []bool{true, false} {
		a, _, _ := stateAgent(t, "h1")
		log := &commitLog{}
		if tracker {
			a.ct = log
		}
		var m flowstate.Message
		m.Conns = append(m.Conns, *connKey(1), *connKey(2))
		m.NATs = append(m.NATs, flowstate.NAT{Orig: *connKey(3), Xlat: *connKey(4)})
		a.applyState(flowstate.AppendMessage(nil, &m))
		if a.fs.ConnState(*connKey(2)) == topology.CTNew {
			t.Errorf("tracker=%v: conn not in the agent's tables", tracker)
		}
		want := []flowstate.Key(nil)
		if tracker {
			want = []flowstate.Key{*connKey(1), *connKey(2)}
		}
		if !slices.Equal(log.keys, want) {
			t.Errorf("tracker=%v: committed %v, want %v", tracker, log.keys, want)
		}
	}
}

func formatList(l []flowtable.Action) string {
	var as flowtable.Actions
	for _, a := range l {
		as.Append(a)
	}
	return datapath.FormatActions(&as)
}
