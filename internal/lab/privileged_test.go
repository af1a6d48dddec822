package lab

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netns"
)

// testPrefix is this package's namespace/link prefix: tests never touch
// names outside it.
const testPrefix = "hlt-"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

// newTestLab returns a lab with prefix testPrefix whose RunDir is a temp
// dir and whose Down runs at cleanup.
func newTestLab(t *testing.T, hosts int) *Lab {
	t.Helper()
	l, err := New(Config{
		Prefix: testPrefix, Hosts: hosts, RunDir: filepath.Join(t.TempDir(), "run"),
		Binary: "/nonexistent/hivenet", Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	return l
}

// leftovers lists namespaces and root links carrying the prefix.
func leftovers(t *testing.T, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	nss, err := listNetns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	links, err := rootLinks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(nss, links...) {
		if strings.HasPrefix(n, prefix) {
			left = append(left, n)
		}
	}
	return left
}

// TestPrivilegedUnderlay builds the bare network of a 3-host lab:
//
//	root: hlt-api 10.251.K.1/30 ──── api0 10.251.K.2/30 [hlt-ctl] ul0 10.250.0.254
//	                                                          │
//	[hlt-ul] br0 ── ctl, host1, host2, host3                  │
//	[hlt-host1] ul0 10.250.0.1   [hlt-host2] ul0 .2   [hlt-host3] ul0 .3
//
// and checks that every host reaches every other host and ctl over the
// underlay, that the root namespace reaches ctl over the API link, and that
// Down leaves nothing with the prefix behind.
func TestPrivilegedUnderlay(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	l := newTestLab(t, 3)
	if err := l.UpNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	ping := func(ns string, dst netip.Addr) error {
		_, err := nsExec(ctx, ns, "ping", "-n", "-c", "1", "-W", "2", dst.String())
		return err
	}
	hosts := l.Hosts()
	for _, from := range hosts {
		for _, to := range hosts {
			if from == to {
				continue
			}
			if err := ping(from.Netns, to.TunnelIP); err != nil {
				t.Errorf("%s -> %s (%s): %v", from.Name, to.Name, to.TunnelIP, err)
			}
		}
		if err := ping(from.Netns, ctlAddr(l.cfg.UnderlayCIDR)); err != nil {
			t.Errorf("%s -> ctl: %v", from.Name, err)
		}
	}
	apiIP := addN(l.st.APILink.Addr(), 2)
	if _, err := run(ctx, "ping", "-n", "-c", "1", "-W", "2", apiIP.String()); err != nil {
		t.Errorf("root -> ctl over the API link (%s): %v", apiIP, err)
	}
	if got, want := l.APIURL(), "http://"+apiIP.String()+":9696"; got != want {
		t.Errorf("APIURL() = %q, want %q", got, want)
	}

	// A second Load-ed value sees the same lab.
	l2, err := Load(l.RunDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l2.APIURL() != l.APIURL() || len(l2.Hosts()) != 3 || l2.AdminToken() != l.AdminToken() {
		t.Errorf("Load() = %s %d hosts, want %s 3 hosts", l2.APIURL(), len(l2.Hosts()), l.APIURL())
	}
	// UpNetwork again must not fail on leftovers: it cleans first.
	if err := l.UpNetwork(ctx); err != nil {
		t.Fatalf("second UpNetwork: %v", err)
	}

	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, testPrefix); len(left) > 0 {
		t.Errorf("after Down, left behind: %v", left)
	}
	if _, err := os.Stat(l.RunDir()); !os.IsNotExist(err) {
		t.Errorf("after Down, run dir %s: %v", l.RunDir(), err)
	}
}

// TestPrivilegedCleanupStale simulates a crashed run: a "hivenet" process
// (a renamed sleep) left running in a host namespace with its pid file, the
// namespaces still there. A fresh Lab value with the same config must kill
// it and remove everything, and must not kill an unrelated process whose PID
// a pid file names.
//
//	[hlt-host1] "hivenet" (sleep) ── pid file agent-host1.pid
//	[root]      sleep (not ours)  ── pid file bogus.pid
func TestPrivilegedCleanupStale(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	crashed := newTestLab(t, 1)
	if err := crashed.UpNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(t.TempDir(), "hivenet")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("needs sleep")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fake, b, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := crashed.startProc("agent-host1", "hlt-host1", fake, "300")
	if err != nil {
		t.Fatal(err)
	}
	// An unrelated process, named in a pid file: must survive.
	other := exec.Command(sleep, "300")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	if err := os.WriteFile(crashed.pidPath("bogus"), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	fresh, err := New(crashed.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Second):
		t.Errorf("stale hivenet process %d still running after Cleanup", p.pid)
	}
	if !alive(other.Process.Pid) {
		t.Errorf("unrelated process %d was killed", other.Process.Pid)
	}
	if left := leftovers(t, testPrefix); len(left) > 0 {
		t.Errorf("after Cleanup, left behind: %v", left)
	}
}

// TestPrivilegedDHCP attaches a VM to host1 and runs the real dhclient with
// the lab's script against a test DHCP server in the host namespace:
//
//	[hlt-host1] tapdhcptest0 10.77.0.1/24 + DHCP server (insomniacslk)
//	     │ veth
//	[hlt-vm1] eth0 (02:00:00:00:00:11) dhclient → 10.77.0.10/24, MTU, routes
//
// It checks the lease the script reports and what is really applied in the
// VM namespace: address, prefix, MTU and default or classless routes.
func TestPrivilegedDHCP(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("dhclient"); err != nil {
		t.Skip("needs dhclient (isc-dhcp-client)")
	}
	tests := []struct {
		name       string
		mtu        uint16
		classless  bool
		wantRoutes []string // substrings of `ip -4 route` in the VM
	}{
		{name: "router and MTU 1450", mtu: 1450, wantRoutes: []string{"default via 10.77.0.1 dev eth0", "10.77.0.0/24 dev eth0"}},
		{name: "classless static routes", mtu: 1400, classless: true,
			wantRoutes: []string{"default via 10.77.0.1 dev eth0", "192.168.50.0/24 via 10.77.0.9 dev eth0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			l := newTestLab(t, 1)
			if err := l.UpNetwork(ctx); err != nil {
				t.Fatal(err)
			}
			const ifname = "tapdhcptest0"
			if err := l.AddVM(ctx, "vm1", "host1", ifname, "02:00:00:00:00:11"); err != nil {
				t.Fatal(err)
			}
			if err := ip(ctx, "-n", "hlt-host1", "addr", "add", "10.77.0.1/24", "dev", ifname); err != nil {
				t.Fatal(err)
			}
			startTestDHCP(t, "hlt-host1", ifname, tt.mtu, tt.classless)

			lease, err := l.DHCP(ctx, "vm1")
			if err != nil {
				t.Fatal(err)
			}
			if lease.Addr != netip.MustParsePrefix("10.77.0.10/24") || lease.Router != netip.MustParseAddr("10.77.0.1") || lease.MTU != int(tt.mtu) {
				t.Errorf("DHCP() = %+v, want 10.77.0.10/24 via 10.77.0.1 mtu %d", lease, tt.mtu)
			}
			addr, _ := l.Exec(ctx, "vm1", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
			if !strings.Contains(addr, "inet 10.77.0.10/24") {
				t.Errorf("eth0 addresses = %q, want 10.77.0.10/24", addr)
			}
			link, _ := l.Exec(ctx, "vm1", "ip", "-o", "link", "show", "dev", "eth0")
			if !strings.Contains(link, "mtu "+strconv.Itoa(int(tt.mtu))+" ") || !strings.Contains(link, "02:00:00:00:00:11") {
				t.Errorf("eth0 link = %q, want mtu %d and the port MAC", link, tt.mtu)
			}
			routes, _ := l.Exec(ctx, "vm1", "ip", "-4", "route")
			for _, want := range tt.wantRoutes {
				if !strings.Contains(routes, want) {
					t.Errorf("routes = %q, want a line with %q", routes, want)
				}
			}
			if ok, _, err := l.Ping(ctx, "vm1", netip.MustParseAddr("10.77.0.1"), 1, 2*time.Second); err != nil || !ok {
				t.Errorf("Ping(vm1 -> 10.77.0.1) = %v, %v; want a reply", ok, err)
			}
			// dhclient keeps running under the lab's pid file; DeleteVM stops it.
			pid, err := readPIDFile(l.pidPath("dhclient-vm1"))
			if err != nil || !alive(pid) || !l.owned(pid) {
				t.Fatalf("dhclient pid file: pid %d err %v alive %v", pid, err, alive(pid))
			}
			if err := l.DeleteVM(ctx, "vm1"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Second)
			for alive(pid) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if alive(pid) {
				t.Errorf("dhclient %d still running after DeleteVM", pid)
			}
		})
	}
}

// startTestDHCP serves one fixed lease on ifname inside netns ns.
func startTestDHCP(t *testing.T, ns, ifname string, mtu uint16, classless bool) {
	t.Helper()
	handler := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		typ := dhcpv4.MessageTypeOffer
		if m.MessageType() == dhcpv4.MessageTypeRequest {
			typ = dhcpv4.MessageTypeAck
		} else if m.MessageType() != dhcpv4.MessageTypeDiscover {
			return
		}
		mods := []dhcpv4.Modifier{
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithServerIP(net.IPv4(10, 77, 0, 1)),
			dhcpv4.WithYourIP(net.IPv4(10, 77, 0, 10)),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithRouter(net.IPv4(10, 77, 0, 1)),
			dhcpv4.WithLeaseTime(600),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 77, 0, 1))),
			dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionInterfaceMTU, Value: dhcpv4.Uint16(mtu)}),
		}
		if classless {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
				&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(192, 168, 50, 0).To4(), Mask: net.CIDRMask(24, 32)}, Router: net.IPv4(10, 77, 0, 9)},
				&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Router: net.IPv4(10, 77, 0, 1)},
			)))
		}
		resp, err := dhcpv4.NewReplyFromRequest(m, mods...)
		if err != nil {
			t.Errorf("building reply: %v", err)
			return
		}
		if _, err := conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}); err != nil {
			t.Errorf("sending reply: %v", err)
		}
	}
	// Create the server's socket inside ns: lock the thread, switch, come back.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	srv, serr := server4.NewServer(ifname, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, handler)
	if err := netns.Set(orig); err != nil {
		t.Fatalf("returning to the original netns: %v", err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve() }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// TestPrivilegedAttachPort attaches a VM to a port found by name through a
// fake Neutron API (httptest in the root namespace), binding the unbound
// port to the host first:
//
//	fake API: port "web" 0123456789abcdef..., MAC fa:16:3e:00:00:01, no host
//	[hlt-host2] tap0123456789a ── veth ── [hlt-web] eth0 fa:16:3e:00:00:01
func TestPrivilegedAttachPort(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	l := newTestLab(t, 2)
	if err := l.UpNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	const id = "0123456789abcdef-0000-0000-000000000000"
	var boundTo string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") != l.AdminToken() {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		port := func() map[string]any {
			return map[string]any{"port": map[string]any{"id": id, "name": "web", "mac_address": "fa:16:3e:00:00:01", "binding:host_id": boundTo}}
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v2.0/ports/web":
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"NeutronError": map[string]string{"type": "PortNotFound", "message": "no port web"}})
		case r.Method == http.MethodGet && r.URL.Path == "/v2.0/ports" && r.URL.Query().Get("name") == "web":
			json.NewEncoder(w).Encode(map[string]any{"ports": []any{port()["port"]}})
		case r.Method == http.MethodPut && r.URL.Path == "/v2.0/ports/"+id:
			var body struct {
				Port map[string]string `json:"port"`
			}
			json.NewDecoder(r.Body).Decode(&body)
			boundTo = body.Port["binding:host_id"]
			json.NewEncoder(w).Encode(port())
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	l.mu.Lock()
	l.st.APIURL = srv.URL
	l.mu.Unlock()

	p, err := l.AttachPort(ctx, "web", "host2", "web")
	if err != nil {
		t.Fatal(err)
	}
	if boundTo != "host2" || p.HostID != "host2" {
		t.Errorf("port bound to %q (returned %q), want host2", boundTo, p.HostID)
	}
	link, err := nsExec(ctx, "hlt-host2", "ip", "-o", "link", "show", "dev", "tap0123456789a")
	if err != nil || !strings.Contains(link, "state UP") && !strings.Contains(link, "LOWER_UP") {
		t.Errorf("host side tap0123456789a: %q, %v", link, err)
	}
	eth0, err := l.Exec(ctx, "web", "ip", "-o", "link", "show", "dev", "eth0")
	if err != nil || !strings.Contains(eth0, "fa:16:3e:00:00:01") {
		t.Errorf("VM eth0: %q, %v; want the port's MAC", eth0, err)
	}
	// Bound elsewhere now: attaching on host1 is refused.
	if _, err := l.AttachPort(ctx, "web2", "host1", "web"); err == nil || !strings.Contains(err.Error(), "bound to host") {
		t.Errorf("AttachPort on the wrong host: %v, want a refusal", err)
	}
	if err := l.AddVM(ctx, "web", "host1", "other0", ""); err == nil {
		t.Errorf("AddVM with a duplicate name succeeded")
	}
}

// TestPrivilegedOutside builds the bare network of a 3-host lab with two
// gateways and, with no agent (so no datapath binds ext0), gives each
// gateway's ext0 an address to check the wiring and the in-namespace TCP
// helpers:
//
//	[hlt-out] lo 198.51.100.1/32, br-ext 203.0.113.1/24 ── host2, host3
//	[hlt-host2] ext0 203.0.113.2/24 (test only)   [hlt-host3] ext0 203.0.113.3/24
//	[hlt-host1] no ext0
func TestPrivilegedOutside(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	l, err := New(Config{
		Prefix: testPrefix, Hosts: 3, RunDir: filepath.Join(t.TempDir(), "run"), Gateways: []string{"host2", "host3"},
		Binary: "/nonexistent/hivenet", Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	if err := l.UpNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.OutsideNetns(); got != testPrefix+"out" {
		t.Fatalf("OutsideNetns() = %q", got)
	}
	// A later process (lab status, lab vm add) sees the same outside.
	loaded, err := Load(l.RunDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loaded.Gateways(), l.Gateways()) || loaded.OutsideNetns() != l.OutsideNetns() || loaded.Internet() != l.Internet() ||
		loaded.ExternalCIDR() != l.ExternalCIDR() || loaded.PhysNet() != l.PhysNet() {
		t.Errorf("Load: gateways %v outside %q internet %s external %s physnet %q, want %v %q %s %s %q",
			loaded.Gateways(), loaded.OutsideNetns(), loaded.Internet(), loaded.ExternalCIDR(), loaded.PhysNet(),
			l.Gateways(), l.OutsideNetns(), l.Internet(), l.ExternalCIDR(), l.PhysNet())
	}
	if _, err := nsExec(ctx, testPrefix+"host1", "ip", "link", "show", UplinkIf); err == nil {
		t.Errorf("host1 is no gateway but has %s", UplinkIf)
	}
	srv, err := l.ServeTCP("out", netip.AddrPortFrom(l.Internet(), 8080), "internet")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for i, g := range []string{"host2", "host3"} {
		t.Run(g, func(t *testing.T) {
			self := addN(l.ExternalCIDR().Addr(), uint32(2+i))
			ns := testPrefix + g
			if _, err := nsExec(ctx, ns, "ip", "addr", "add", self.String()+"/24", "dev", UplinkIf); err != nil {
				t.Fatal(err)
			}
			if _, err := nsExec(ctx, ns, "ip", "route", "add", l.Internet().String()+"/32", "via", l.ExternalGateway().String()); err != nil {
				t.Fatal(err)
			}
			if _, err := nsExec(ctx, ns, "ping", "-n", "-c", "1", "-W", "2", l.ExternalGateway().String()); err != nil {
				t.Errorf("%s -> upstream router: %v", g, err)
			}
			rep, err := l.DialTCP(ctx, g, netip.AddrPortFrom(l.Internet(), 8080), 3*time.Second)
			if err != nil {
				t.Fatalf("TCP %s -> internet: %v", g, err)
			}
			if rep.Server != "internet" || rep.Peer.Addr() != self {
				t.Errorf("TCP %s -> internet: server %q saw %s, want internet and %s", g, rep.Server, rep.Peer, self)
			}
		})
	}
	if _, err := l.DialTCP(ctx, "host1", netip.AddrPortFrom(l.Internet(), 8080), time.Second); err == nil {
		t.Errorf("host1 (no route, no uplink) reached the internet")
	}
	if n := srv.Accepted(); n != 2 {
		t.Errorf("server accepted %d connections, want 2", n)
	}
	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, testPrefix); len(left) > 0 {
		t.Errorf("after Down, left behind: %v", left)
	}
}
