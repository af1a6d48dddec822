package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hivenet/internal/client"
	"hivenet/internal/datapath"
	"hivenet/internal/datapath/fake"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
)

// The control endpoint over a fake datapath holding three flows:
//
//	port 1 (p1, tapp1): to mac2/10.0.0.12  -> tunnel(10.250.0.2,key=102)   (hit twice)
//	port 2 (p3, tapp3): to mac1/10.0.0.0/24 -> set_eth_src,dec_ttl,output:1
//	port 2 (p3, tapp3): ARP                 -> drop

// ctlHost is an agent that is never Run: only its control endpoint is
// started, over a fake datapath with a manual clock.
type ctlHost struct {
	a      *Agent
	dp     *fake.Datapath
	now    *atomic.Int64
	socket string
	c      *client.AgentControl
}

func newCtlHost(t *testing.T) *ctlHost {
	t.Helper()
	h := &ctlHost{now: new(atomic.Int64), socket: filepath.Join(t.TempDir(), "run", "agent.sock")}
	h.now.Store(int64(10 * time.Second))
	h.dp = fake.New(fake.Config{Now: h.now.Load})
	a, err := New(Config{Host: "h1", TunnelIP: netip.MustParseAddr("10.250.0.1"), Store: new(store.Store), // never used
		Datapath: h.dp, DatapathName: "fake", ControlSocket: h.socket, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	for _, name := range []string{"tapp1", "tapp3"} {
		if _, err := h.dp.AddPort(name); err != nil {
			t.Fatal(err)
		}
	}
	a.ports.Store(&portIndex{byNo: map[datapath.PortNo]string{1: "p1", 2: "p3"}, byID: map[string]datapath.PortNo{"p1": 1, "p3": 2}})
	return h
}

// start starts the control endpoint, closed at cleanup.
func (h *ctlHost) start(t *testing.T) {
	t.Helper()
	ctl, err := h.a.startControl()
	if err != nil {
		t.Fatalf("startControl: %v", err)
	}
	t.Cleanup(ctl.close)
	h.c = client.NewAgentControl(h.socket, 5*time.Second)
}

func ones6() [6]byte       { return [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} }
func v4(a string) [16]byte { return netip.MustParseAddr(a).As16() }

// installFlows installs the three flows of the diagram and sends two
// packets through the first.
func (h *ctlHost) installFlows(t *testing.T) {
	t.Helper()
	install := func(match, mask packet.FlowMatch, acts ...flowtable.Action) {
		t.Helper()
		var as flowtable.Actions
		for _, a := range acts {
			as.Append(a)
		}
		if err := h.dp.Install(match.Masked(mask), mask, as, []topology.Tag{topology.TagPort("p1")}); err != nil {
			t.Fatal(err)
		}
	}
	frame := icmp(mac1, mac2, ip1, ip2)
	var m packet.FlowMatch
	if err := packet.Parse(frame, 1, &m); err != nil {
		t.Fatal(err)
	}
	install(m, packet.FlowMatch{InPort: 0xffffffff, EthDst: ones6(), EthType: 0xffff, IPDst: v4("255.255.255.255")},
		flowtable.Action{Kind: flowtable.ActTunnel, Remote: [4]byte{10, 250, 0, 2}, Key: 102})
	install(packet.FlowMatch{InPort: 2, EthDst: mac1, EthType: packet.EthTypeIPv4, IPDst: v4("10.0.0.0")},
		packet.FlowMatch{InPort: 0xffffffff, EthDst: ones6(), EthType: 0xffff, IPDst: v4("255.255.255.0")},
		flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: mac2}, flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1},
		flowtable.Action{Kind: flowtable.ActOutput, Port: 1})
	install(packet.FlowMatch{InPort: 2, EthType: packet.EthTypeARP}, packet.FlowMatch{InPort: 0xffffffff, EthType: 0xffff})
	for range 2 {
		if hit, err := h.dp.Inject(1, frame, datapath.GSO{}); err != nil || !hit {
			t.Fatalf("Inject(port 1, icmp) = %v, %v; want a hit", hit, err)
		}
	}
}

func TestControlFlows(t *testing.T) {
	h := newCtlHost(t)
	h.installFlows(t)
	h.now.Add(int64(1500 * time.Millisecond))
	h.start(t)

	tests := []struct {
		name   string
		filter client.FlowFilter
		want   []string // the flows' match texts, in order
	}{
		{name: "all", want: []string{
			"in_port=1 eth_dst=fa:16:3e:00:00:02 ip ip_dst=10.0.0.12",
			"in_port=2 arp",
			"in_port=2 eth_dst=fa:16:3e:00:00:01 ip ip_dst=10.0.0.0/24",
		}},
		{name: "port number: in_port or output", filter: client.FlowFilter{Port: "1"}, want: []string{
			"in_port=1 eth_dst=fa:16:3e:00:00:02 ip ip_dst=10.0.0.12",
			"in_port=2 eth_dst=fa:16:3e:00:00:01 ip ip_dst=10.0.0.0/24",
		}},
		{name: "port ID", filter: client.FlowFilter{Port: "p3"}, want: []string{
			"in_port=2 arp",
			"in_port=2 eth_dst=fa:16:3e:00:00:01 ip ip_dst=10.0.0.0/24",
		}},
		{name: "match substring", filter: client.FlowFilter{Match: "ip_dst=10.0.0.12"}, want: []string{
			"in_port=1 eth_dst=fa:16:3e:00:00:02 ip ip_dst=10.0.0.12",
		}},
		{name: "both", filter: client.FlowFilter{Port: "p3", Match: "arp"}, want: []string{"in_port=2 arp"}},
		{name: "nothing matches", filter: client.FlowFilter{Port: "7"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flows, err := h.c.Flows(t.Context(), tt.filter)
			if err != nil {
				t.Fatalf("Flows(%+v): %v", tt.filter, err)
			}
			var got []string
			for _, f := range flows {
				got = append(got, f.Match)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Flows(%+v) matches:\n%s\nwant:\n%s", tt.filter, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	flows, err := h.c.Flows(t.Context(), client.FlowFilter{})
	if err != nil || len(flows) != 3 {
		t.Fatalf("Flows() = %d flows, %v; want 3", len(flows), err)
	}
	tun, routed, arp := flows[0], flows[2], flows[1]
	t.Run("tunnel flow", func(t *testing.T) {
		want := []client.AgentAction{{Type: "tunnel", Remote: "10.250.0.2", Key: 102}}
		if len(tun.ActionList) != 1 || tun.ActionList[0] != want[0] {
			t.Errorf("action_list %+v, want %+v", tun.ActionList, want)
		}
		if tun.Actions != "tunnel(10.250.0.2,key=102)" {
			t.Errorf("actions %q", tun.Actions)
		}
		if tun.InPort != 1 || tun.PortID != "p1" {
			t.Errorf("in_port %d port_id %q, want 1 p1", tun.InPort, tun.PortID)
		}
		if wantBytes := uint64(2 * len(icmp(mac1, mac2, ip1, ip2))); tun.Packets != 2 || tun.Bytes != wantBytes {
			t.Errorf("packets %d bytes %d, want 2 %d", tun.Packets, tun.Bytes, wantBytes)
		}
		if tun.IdleMS != 1500 || tun.AgeMS != 1500 || tun.Tags != 1 {
			t.Errorf("idle_ms %d age_ms %d tags %d, want 1500 1500 1 (manual clock, one tag)", tun.IdleMS, tun.AgeMS, tun.Tags)
		}
		if age := time.Since(tun.LastUsed); age < 1500*time.Millisecond || age > time.Minute {
			t.Errorf("last_used %v is %v ago, want about 1.5s", tun.LastUsed, age)
		}
		wantMask := map[string]string{"in_port": "0xffffffff", "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": "0xffff", "ip_dst": "255.255.255.255"}
		if !maps.Equal(tun.Mask, wantMask) {
			t.Errorf("mask %v, want %v", tun.Mask, wantMask)
		}
	})
	t.Run("routed flow", func(t *testing.T) {
		if routed.Actions != "set_eth_src:fa:16:3e:00:00:02,dec_ttl,output:1" {
			t.Errorf("actions %q", routed.Actions)
		}
		if len(routed.ActionList) != 3 || routed.ActionList[1] != (client.AgentAction{Type: "dec_ttl", Port: 1}) ||
			routed.ActionList[2] != (client.AgentAction{Type: "output", Port: 1}) {
			t.Errorf("action_list %+v", routed.ActionList)
		}
		if routed.Mask["ip_dst"] != "255.255.255.0" || routed.Packets != 0 {
			t.Errorf("mask %v packets %d, want ip_dst 255.255.255.0 and 0 packets", routed.Mask, routed.Packets)
		}
	})
	t.Run("drop flow", func(t *testing.T) {
		if arp.Actions != "drop" || arp.ActionList == nil || len(arp.ActionList) != 0 || arp.PortID != "p3" {
			t.Errorf("actions %q list %#v port_id %q, want drop, [] and p3", arp.Actions, arp.ActionList, arp.PortID)
		}
	})
}

func TestControlStats(t *testing.T) {
	h := newCtlHost(t)
	h.installFlows(t)
	h.a.stats.upcalls.Add(5)
	h.a.stats.installed.Add(3)
	h.start(t)
	s, err := h.c.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{name: "host", got: s.Host, want: "h1"},
		{name: "tunnel_ip", got: s.TunnelIP, want: "10.250.0.1"},
		{name: "tunnel_port", got: s.TunnelPort, want: uint16(4789)},
		{name: "datapath", got: s.Datapath, want: "fake"},
		{name: "ports_bound", got: s.PortsBound, want: 2},
		{name: "upcalls", got: s.Upcalls, want: uint64(5)},
		{name: "flows_installed", got: s.FlowsInstalled, want: uint64(3)},
		{name: "datapath flows", got: s.DP.Flows, want: 3},
		{name: "datapath hits", got: s.DP.Hits, want: uint64(2)},
		{name: "datapath rx", got: s.DP.RxPackets, want: uint64(2)},
		{name: "datapath tunnel tx", got: s.DP.TunnelTx, want: h.dp.Stats().TunnelTx},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("stats %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if time.Since(s.Started) > time.Minute || s.Started.After(time.Now()) {
		t.Errorf("started %v, want just now", s.Started)
	}
}

// TestControlBadRequests: what is not a known GET with good filters gets a
// clear 4xx in the API's error shape, and the endpoint keeps serving.
func TestControlBadRequests(t *testing.T) {
	h := newCtlHost(t)
	h.installFlows(t)
	h.start(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.socket)
	}}}
	tests := []struct {
		name, method, path string
		status             int
		msg                string // substring of the error message
	}{
		{name: "unknown path", method: "GET", path: "/v2.0/flows", status: 404, msg: "no resource /v2.0/flows"},
		{name: "root", method: "GET", path: "/", status: 404, msg: "try /v1/flows"},
		{name: "post", method: "POST", path: "/v1/flows", status: 405, msg: "POST not allowed"},
		{name: "delete stats", method: "DELETE", path: "/v1/stats", status: 405, msg: "DELETE not allowed"},
		{name: "port not a number nor bound", method: "GET", path: "/v1/flows?port=p9", status: 400, msg: `"p9" is neither`},
		{name: "port zero", method: "GET", path: "/v1/flows?port=0", status: 400, msg: "0 is no port"},
		{name: "port empty", method: "GET", path: "/v1/flows?port=", status: 400, msg: "port filter: empty"},
		{name: "port negative", method: "GET", path: "/v1/flows?port=-1", status: 400, msg: "neither"},
		{name: "match empty", method: "GET", path: "/v1/flows?match=", status: 400, msg: "match filter: empty"},
		{name: "port twice", method: "GET", path: "/v1/flows?port=1&port=2", status: 400, msg: "given 2 times"},
		{name: "unknown parameter", method: "GET", path: "/v1/flows?prot=1", status: 400, msg: `unknown parameter "prot" (known: port, match)`},
		{name: "stats takes none", method: "GET", path: "/v1/stats?port=1", status: 400, msg: `unknown parameter "port"`},
		{name: "bad query", method: "GET", path: "/v1/flows?port=%zz", status: 400, msg: "query:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://agent"+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct {
				NeutronError struct{ Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Errorf("%s %s: body %s is not an error object: %v", tt.method, tt.path, body, err)
			}
			if resp.StatusCode != tt.status || !strings.Contains(e.NeutronError.Message, tt.msg) {
				t.Errorf("%s %s = %d %s, want %d with %q", tt.method, tt.path, resp.StatusCode, body, tt.status, tt.msg)
			}
		})
	}
	// The client maps them to *client.Error, and the server still answers.
	_, err := h.c.Flows(t.Context(), client.FlowFilter{Port: "nope"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 {
		t.Errorf("Flows(port nope) error %v, want a *client.Error with status 400", err)
	}
	if flows, err := h.c.Flows(t.Context(), client.FlowFilter{}); err != nil || len(flows) != 3 {
		t.Errorf("after bad requests: Flows() = %d, %v; want 3 flows", len(flows), err)
	}
}

// TestControlSocketFile: the socket is made 0600 in a new directory;
// a stale socket (its process killed) is replaced; a live one, a
// non-socket and a path too long are refused and left as they were.
func TestControlSocketFile(t *testing.T) {
	t.Run("created 0600 and removed at close", func(t *testing.T) {
		h := newCtlHost(t)
		ctl, err := h.a.startControl()
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(h.socket)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
		}
		ctl.close()
		ctl.close() // idempotent
		if _, err := os.Lstat(h.socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after close: Lstat(socket) = %v, want not exist", err)
		}
	})
	t.Run("stale socket replaced", func(t *testing.T) {
		h := newCtlHost(t)
		stale := listenUnix(t, h.socket)
		stale.SetUnlinkOnClose(false) // as a killed agent leaves it
		stale.Close()
		h.start(t)
		if _, err := h.c.Stats(t.Context()); err != nil {
			t.Fatalf("Stats over the replaced socket: %v", err)
		}
	})
	t.Run("live socket refused", func(t *testing.T) {
		h := newCtlHost(t)
		live := listenUnix(t, h.socket)
		defer live.Close()
		accepted := make(chan struct{}, 1)
		go func() {
			if c, err := live.Accept(); err == nil {
				accepted <- struct{}{}
				c.Close()
			}
		}()
		ctl, err := h.a.startControl()
		if !errors.Is(err, ErrControlSocketInUse) {
			ctl.close()
			t.Fatalf("startControl with a live socket: %v, want ErrControlSocketInUse", err)
		}
		<-accepted // the probe reached the live listener
		if c, err := net.Dial("unix", h.socket); err != nil {
			t.Errorf("the live socket no longer answers: %v", err)
		} else {
			c.Close()
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		h := newCtlHost(t)
		if err := os.MkdirAll(filepath.Dir(h.socket), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(h.socket, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		ctl, err := h.a.startControl()
		if err == nil || !strings.Contains(err.Error(), "not a socket") {
			ctl.close()
			t.Fatalf("startControl over a regular file: %v, want a not-a-socket error", err)
		}
		if b, err := os.ReadFile(h.socket); err != nil || string(b) != "keep me" {
			t.Errorf("the file became %q, %v", b, err)
		}
	})
	t.Run("path too long", func(t *testing.T) {
		cfg := Config{Host: "h1", TunnelIP: netip.MustParseAddr("10.250.0.1"), Store: new(store.Store), Datapath: fake.New(fake.Config{}),
			ControlSocket: "/run/" + strings.Repeat("x", 110)}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "longer than 107") {
			t.Errorf("Validate(long socket path) = %v, want a length error", err)
		}
	})
	t.Run("client: no agent", func(t *testing.T) {
		c := client.NewAgentControl(filepath.Join(t.TempDir(), "none.sock"), time.Second)
		if _, err := c.Stats(t.Context()); !errors.Is(err, client.ErrAgentUnreachable) {
			t.Errorf("Stats with no socket: %v, want ErrAgentUnreachable", err)
		}
	})
}

func listenUnix(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestControlRun: Run serves the endpoint while the agent runs and
// removes the socket when it stops; a second agent on the same socket
// fails to start and leaves the first one serving.
func TestControlRun(t *testing.T) {
	st := storetest.New(t)
	socket := filepath.Join(t.TempDir(), "agent.sock")
	cfg := Config{Host: "h1", TunnelIP: netip.MustParseAddr("10.250.0.1"), Store: st, Datapath: fake.New(fake.Config{}),
		DatapathName: "fake", ControlSocket: socket, Resync: 50 * time.Millisecond, HostTTL: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), InterfaceIndex: func(string) (int, bool) { return 0, false }}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	c := client.NewAgentControl(socket, time.Second)
	waitFor(t, "control endpoint up", func() bool { s, err := c.Stats(ctx); return err == nil && s.Host == "h1" })
	waitFor(t, "h1 registered", func() bool { return a.Snapshot().Host("h1") != nil })

	cfg2 := cfg
	cfg2.Host, cfg2.Datapath = "h1-twin", fake.New(fake.Config{})
	b, err := New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(ctx); !errors.Is(err, ErrControlSocketInUse) {
		t.Errorf("second agent on the same socket: Run = %v, want ErrControlSocketInUse", err)
	}
	if s, err := c.Stats(ctx); err != nil || s.Host != "h1" {
		t.Errorf("after the refused twin: Stats = %+v, %v; want h1 still serving", s.Host, err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Run returned: Lstat(socket) = %v, want not exist", err)
	}
}
