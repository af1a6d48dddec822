package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
	"hivenet/internal/translate"
)

// What the API stores is what the agents load: bridge, subnet and port
// translations, kept in step by updates and removed by deletes, with
// their index keys.
func TestTranslationFollowsWrites(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UnderlayMTU = 9000 })
	ctx := context.Background()
	nid := e.network(tokA, "blue")
	sub := e.create("subnet", tokA, `{"subnet": {"network_id": "`+nid+`", "cidr": "10.7.0.0/24", "dns_nameservers": ["10.7.0.53"],
		"host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.7.0.254"}]}}`)
	if sub["hivenet:dhcp_server"] != "10.7.0.2" || sub["gateway_ip"] != "10.7.0.1" {
		t.Fatalf("subnet = %v; want DHCP server 10.7.0.2, gateway 10.7.0.1", sub)
	}
	sid := sub["id"].(string)
	p := e.create("port", adminTok, `{"port": {"network_id": "`+nid+`", "project_id": "project-a", "name": "vm1", "binding:host_id": "h1",
		"binding:profile": {"interface_name": "veth-vm1"}, "allowed_address_pairs": [{"ip_address": "10.7.0.128/25"}]}}`)
	pid := p["id"].(string)

	snap, _, err := e.st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	br := snap.Bridge(nid)
	if br == nil || br.MTU != 9000-50 || br.ProjectID != "project-a" || !br.AdminUp || br.FloodKey == 0 {
		t.Fatalf("bridge = %+v", br)
	}
	tsn := snap.Subnet(sid)
	if tsn == nil || tsn.CIDR != netip.MustParsePrefix("10.7.0.0/24") || tsn.DHCPServer != netip.MustParseAddr("10.7.0.2") ||
		!tsn.DHCP || len(tsn.DNS) != 1 || len(tsn.HostRoutes) != 1 || tsn.LeaseSeconds == 0 {
		t.Fatalf("subnet = %+v", tsn)
	}
	tp := snap.Port(pid)
	if tp == nil || tp.BridgeID != nid || tp.HostID != "h1" || tp.InterfaceName != "veth-vm1" || !tp.PortSecurity ||
		len(tp.FixedIPs) != 1 || tp.FixedIPs[0].Addr != netip.MustParseAddr("10.7.0.3") || tp.TunnelKey == 0 ||
		tp.TunnelKey == br.FloodKey || len(tp.AllowedAddressPairs) != 1 || tp.MAC.String() != p["mac_address"] {
		t.Fatalf("port = %+v (api %v)", tp, p)
	}
	if tp.MAC[0] != 0xfa || tp.MAC[1] != 0x16 || tp.MAC[2] != 0x3e {
		t.Errorf("allocated MAC %s is not fa:16:3e:...", tp.MAC)
	}
	if got := snap.PortByIP(nid, netip.MustParseAddr("10.7.0.3")); got == nil || got.ID != pid {
		t.Errorf("PortByIP = %v", got)
	}
	wantIdx := []string{
		store.PrefixIndex + "iface/h1/veth-vm1",
		store.PrefixIndex + "ip/" + nid + "/10.7.0.2",
		store.PrefixIndex + "ip/" + nid + "/10.7.0.3",
		store.PrefixIndex + "mac/" + nid + "/" + tp.MAC.String(),
		store.PrefixIndex + "netport/" + nid + "/" + pid,
		store.PrefixIndex + fmt.Sprintf("tunnelkey/%d", br.FloodKey),
		store.PrefixIndex + fmt.Sprintf("tunnelkey/%d", tp.TunnelKey),
		// The port joined its project's default group, created for it.
		store.PrefixIndex + "sgport/" + p["security_groups"].([]any)[0].(string) + "/" + pid,
		store.PrefixIndex + "sgaddr/" + p["security_groups"].([]any)[0].(string) + "/10.7.0.3/" + pid,
	}
	slices.Sort(wantIdx)
	if got := slices.DeleteFunc(e.keys(store.PrefixIndex), isDefaultGroupKey); !slices.Equal(got, wantIdx) {
		t.Errorf("index keys = %v\nwant %v", got, wantIdx)
	}

	checkConsistency(t, e.dump())

	// Updates re-translate in the same transaction.
	code, m := e.do("PUT", "/v2.0/ports/"+pid, adminTok, `{"port": {"admin_state_up": false, "fixed_ips": [{"ip_address": "10.7.0.77"}], "binding:profile": {}}}`)
	if code != 200 {
		t.Fatalf("update port = %d %v", code, m)
	}
	code, m = e.do("PUT", "/v2.0/networks/"+nid, tokA, `{"network": {"admin_state_up": false, "name": "azure"}}`)
	if code != 200 || m["network"].(map[string]any)["revision_number"] != float64(3) {
		t.Fatalf("update network = %d %v (want revision 3: create, subnet, update)", code, m)
	}
	code, m = e.do("PUT", "/v2.0/subnets/"+sid, tokA, `{"subnet": {"enable_dhcp": false, "gateway_ip": null}}`)
	if code != 200 {
		t.Fatalf("update subnet = %d %v", code, m)
	}
	snap, _, _ = e.st.LoadTopology(ctx)
	tp = snap.Port(pid)
	if tp.AdminUp || tp.FixedIPs[0].Addr != netip.MustParseAddr("10.7.0.77") || tp.InterfaceName != topology.DefaultInterfaceName(pid) {
		t.Errorf("port after update = %+v", tp)
	}
	if snap.PortByIP(nid, netip.MustParseAddr("10.7.0.3")) != nil {
		t.Error("old address still indexed in the snapshot")
	}
	if b := snap.Bridge(nid); b.AdminUp || b.Name != "azure" {
		t.Errorf("bridge after update = %+v", b)
	}
	if s := snap.Subnet(sid); s.DHCP || s.DHCPServer.IsValid() || s.Gateway.IsValid() {
		t.Errorf("subnet after update = %+v", s)
	}
	idx := e.keys(store.PrefixIndex + "ip/")
	if want := []string{store.PrefixIndex + "ip/" + nid + "/10.7.0.77"}; !slices.Equal(idx, want) {
		t.Errorf("address index after updates = %v, want %v", idx, want)
	}
	checkConsistency(t, e.dump())
	// The freed address is reusable.
	e.create("port", tokA, `{"port": {"network_id": "`+nid+`", "fixed_ips": [{"ip_address": "10.7.0.3"}]}}`)

	// Deleting everything leaves nothing but the tunnel-key counter.
	for _, p := range e.list("ports", tokA, "") {
		if code, m := e.do("DELETE", "/v2.0/ports/"+p["id"].(string), tokA, ""); code != 204 {
			t.Fatalf("delete port = %d %v", code, m)
		}
	}
	if code, m := e.do("DELETE", "/v2.0/networks/"+nid, tokA, ""); code != 204 {
		t.Fatalf("delete network = %d %v", code, m)
	}
	for k := range e.dump() {
		if !strings.HasPrefix(k, store.PrefixSeq) && !isDefaultGroupKey(k) {
			t.Errorf("left behind: %s", k)
		}
	}
	if code, _ := e.do("GET", "/v2.0/subnets/"+sid, tokA, ""); code != 404 {
		t.Errorf("subnet of a deleted network: GET = %d, want 404", code)
	}
}

func (e *testEnv) list(resource, token, query string) []map[string]any {
	e.t.Helper()
	code, m := e.do("GET", "/v2.0/"+resource+query, token, "")
	if code != 200 {
		e.t.Fatalf("GET %s%s = %d %v", resource, query, code, m)
	}
	var out []map[string]any
	for _, x := range m[resource].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

// 20 concurrent port creates on one subnet get 20 distinct addresses,
// MACs and tunnel keys: no lost update.
func TestConcurrentPortCreates(t *testing.T) {
	e := newEnv(t)
	nid := e.network(tokA, "n")
	e.subnet(tokA, nid, "10.0.0.0/24")
	const n = 20
	var wg sync.WaitGroup
	results := make(chan map[string]any, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, m := e.do("POST", "/v2.0/ports", tokA, `{"port": {"network_id": "`+nid+`"}}`)
			if code != 201 {
				t.Errorf("POST port = %d %v", code, m)
				return
			}
			results <- m["port"].(map[string]any)
		}()
	}
	wg.Wait()
	close(results)
	ips, macs, keys := map[string]bool{}, map[string]bool{}, map[float64]bool{}
	for p := range results {
		ips[p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)] = true
		macs[p["mac_address"].(string)] = true
		keys[p["hivenet:tunnel_key"].(float64)] = true
	}
	if len(ips) != n || len(macs) != n || len(keys) != n {
		t.Errorf("%d ports got %d IPs, %d MACs, %d tunnel keys; want all distinct", n, len(ips), len(macs), len(keys))
	}
	// Allocation is first-free: exactly .3 to .22 (.1 gateway, .2 DHCP).
	for i := 3; i < 3+n; i++ {
		if a := fmt.Sprintf("10.0.0.%d", i); !ips[a] {
			t.Errorf("address %s not allocated", a)
		}
	}
	snap, _, _ := e.st.LoadTopology(context.Background())
	if got := len(snap.PortsOfBridge(nid)); got != n {
		t.Errorf("topology has %d ports, want %d", got, n)
	}
	checkConsistency(t, e.dump())
}

// Parallel creates of one fixed IP: exactly one wins, the others get 409.
func TestConcurrentSameFixedIP(t *testing.T) {
	e := newEnv(t)
	nid := e.network(tokA, "n")
	e.subnet(tokA, nid, "10.0.0.0/24")
	const n = 10
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, m := e.do("POST", "/v2.0/ports", tokA, `{"port": {"network_id": "`+nid+`", "fixed_ips": [{"ip_address": "10.0.0.42"}]}}`)
			if typ, _ := neutronError(m); code == 409 && typ != "IpAddressInUse" {
				t.Errorf("409 of type %s", typ)
			}
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[201] != 1 || count[409] != n-1 {
		t.Errorf("status counts = %v, want one 201 and %d 409", count, n-1)
	}
	if got := len(e.keys(store.PrefixAPI + "ports/")); got != 1 {
		t.Errorf("%d ports stored, want 1", got)
	}
	checkConsistency(t, e.dump())
}

// A port is DOWN until an agent publishes its binding, then ACTIVE; the
// agent's host appears in /v2.0/agents while its session lives.
func TestPortStatusAndAgents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nid := e.network(tokA, "n")
	e.subnet(tokA, nid, "10.0.0.0/24")
	pid := e.create("port", adminTok, `{"port": {"network_id": "`+nid+`", "project_id": "project-a", "binding:host_id": "h1"}}`)["id"].(string)
	if got := e.list("ports", tokA, "?status=DOWN"); len(got) != 1 {
		t.Fatalf("DOWN ports = %v", got)
	}
	sess, err := e.st.RegisterHost(ctx, topology.Host{Name: "h1", TunnelIP: netip.MustParseAddr("192.0.2.1"), TunnelPort: 4789,
		Datapath: "userspace", Started: "2026-01-02T03:00:00Z"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.PutBinding(ctx, topology.PortBinding{PortID: pid, Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	if code, m := e.do("PUT", "/v2.0/ports/"+pid, tokA, `{"port": {"mac_address": "fa:16:3e:aa:bb:cc"}}`); code != 409 {
		t.Errorf("change the MAC of a bound port = %d %v, want 409", code, m)
	}
	_, m := e.do("GET", "/v2.0/ports/"+pid, tokA, "")
	if st := m["port"].(map[string]any)["status"]; st != "ACTIVE" {
		t.Errorf("bound port status = %v, want ACTIVE", st)
	}
	if got := e.list("ports", tokA, "?status=ACTIVE&binding:host_id=h1"); len(got) != 1 {
		t.Errorf("ACTIVE ports on h1 = %v", got)
	}
	agents := e.list("agents", adminTok, "")
	if len(agents) != 1 || agents[0]["host"] != "h1" || agents[0]["alive"] != true || agents[0]["agent_type"] != "hivenet agent" ||
		agents[0]["configurations"].(map[string]any)["tunnel_ip"] != "192.0.2.1" {
		t.Fatalf("agents = %v", agents)
	}
	if code, m := e.do("GET", "/v2.0/agents/"+AgentID("h1"), adminTok, ""); code != 200 || m["agent"].(map[string]any)["host"] != "h1" {
		t.Errorf("GET agent = %d %v", code, m)
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.list("agents", adminTok, ""); len(got) != 0 {
		t.Errorf("agents after the session closed = %v", got)
	}
	_, m = e.do("GET", "/v2.0/ports/"+pid, tokA, "")
	if st := m["port"].(map[string]any)["status"]; st != "DOWN" {
		t.Errorf("port status after its agent left = %v, want DOWN", st)
	}
}

func TestListFiltersFieldsPagination(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for _, name := range []string{"delta", "alpha", "charlie", "bravo", "echo"} {
		ids = append(ids, e.network(tokA, name))
	}
	e.network(tokB, "alpha") // another project's: never listed for A
	names := func(l []map[string]any) []string {
		var out []string
		for _, m := range l {
			out = append(out, m["name"].(string))
		}
		return out
	}
	tests := []struct {
		name  string
		token string
		query string
		want  []string
	}{
		{name: "filter", token: tokA, query: "?name=alpha", want: []string{"alpha"}},
		{name: "filter OR", token: tokA, query: "?name=alpha&name=echo&sort_key=name", want: []string{"alpha", "echo"}},
		{name: "filter AND", token: tokA, query: "?name=alpha&admin_state_up=false", want: nil},
		{name: "bool filter", token: tokA, query: "?admin_state_up=True&sort_key=name&sort_dir=desc&limit=2", want: []string{"echo", "delta"}},
		{name: "sort", token: tokA, query: "?sort_key=name&sort_dir=asc", want: []string{"alpha", "bravo", "charlie", "delta", "echo"}},
		{name: "admin sees all", token: adminTok, query: "?name=alpha", want: []string{"alpha", "alpha"}},
		{name: "member B", token: tokB, query: "", want: []string{"alpha"}},
		{name: "by id", token: tokA, query: "?id=" + ids[2], want: []string{"charlie"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			if got := names(e.list("networks", tt.token, tt.query)); !slices.Equal(got, tt.want) {
				t.Errorf("GET networks%s = %v, want %v", tt.query, got, tt.want)
			}
		})
	}
	e.t = t

	// fields= selection.
	l := e.list("networks", tokA, "?fields=id&fields=name&name=bravo")
	if len(l) != 1 || len(l[0]) != 2 || l[0]["name"] != "bravo" || l[0]["id"] == nil {
		t.Errorf("fields=id,name: %v", l)
	}
	_, m := e.do("GET", "/v2.0/networks/"+ids[0]+"?fields=mtu", tokA, "")
	if n := m["network"].(map[string]any); len(n) != 1 || n["mtu"] != float64(1450) {
		t.Errorf("show fields=mtu: %v", m)
	}

	// Pagination: follow networks_links until the end.
	var got []string
	next := e.srv.URL + "/v2.0/networks?limit=2&sort_key=name"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		u, _ := url.Parse(next)
		code, m := e.do("GET", u.RequestURI(), tokA, "")
		if code != 200 {
			t.Fatalf("GET %s = %d", next, code)
		}
		for _, x := range m["networks"].([]any) {
			got = append(got, x.(map[string]any)["name"].(string))
		}
		next = ""
		if links, ok := m["networks_links"].([]any); ok {
			for _, l := range links {
				if l.(map[string]any)["rel"] == "next" {
					next = l.(map[string]any)["href"].(string)
				}
			}
		}
	}
	if want := []string{"alpha", "bravo", "charlie", "delta", "echo"}; !slices.Equal(got, want) {
		t.Errorf("paginated = %v, want %v", got, want)
	}
}

// Port filters on fixed_ips and ownership of shared networks.
func TestPortFiltersAndSharedNetwork(t *testing.T) {
	e := newEnv(t)
	shared := e.create("network", adminTok, `{"network": {"name": "public", "shared": true}}`)["id"].(string)
	sub := e.subnet(adminTok, shared, "10.9.0.0/24")
	// A member may see a shared network and plug a port into it...
	if l := e.list("networks", tokA, "?shared=true"); len(l) != 1 {
		t.Fatalf("member sees shared networks %v", l)
	}
	if code, _ := e.do("GET", "/v2.0/subnets/"+sub, tokA, ""); code != 200 {
		t.Errorf("member GET subnet of shared network = %d", code)
	}
	pa := e.create("port", tokA, `{"port": {"network_id": "`+shared+`", "fixed_ips": [{"ip_address": "10.9.0.33"}]}}`)
	e.create("port", tokB, `{"port": {"network_id": "`+shared+`"}}`)
	// ...but not change or delete it.
	if code, _ := e.do("PUT", "/v2.0/networks/"+shared, tokA, `{"network": {"name": "mine"}}`); code != 403 {
		t.Errorf("member renames shared network: %d, want 403", code)
	}
	if code, _ := e.do("DELETE", "/v2.0/subnets/"+sub, tokA, ""); code != 403 {
		t.Errorf("member deletes subnet of shared network: %d, want 403", code)
	}
	if code, m := e.do("PUT", "/v2.0/networks/"+shared, adminTok, `{"network": {"shared": false}}`); code != 409 {
		t.Errorf("unshare a network with other projects' ports: %d %v, want 409", code, m)
	}
	// Members see only their own ports.
	if l := e.list("ports", tokA, ""); len(l) != 1 || l[0]["id"] != pa["id"] {
		t.Errorf("member A ports = %v", l)
	}
	for _, q := range []string{"?fixed_ips=ip_address%3D10.9.0.33", "?fixed_ips=subnet_id%3D" + sub + "&fixed_ips=ip_address%3D10.9.0.33", "?fixed_ips=ip_address_substr%3D0.33"} {
		if l := e.list("ports", adminTok, q); len(l) != 1 || l[0]["id"] != pa["id"] {
			t.Errorf("ports%s = %v", q, l)
		}
	}
	if l := e.list("ports", adminTok, "?network_id="+shared); len(l) != 2 {
		t.Errorf("ports of network = %d, want 2", len(l))
	}
}

func TestDeleteSubnetReleasesDHCPAndNetwork(t *testing.T) {
	e := newEnv(t)
	nid := e.network(tokA, "n")
	s1 := e.subnet(tokA, nid, "10.0.0.0/24")
	s2 := e.subnet(tokA, nid, "10.0.1.0/24")
	// Same CIDR on another network is fine.
	other := e.network(tokA, "other")
	e.subnet(tokA, other, "10.0.0.0/24")
	_, m := e.do("GET", "/v2.0/networks/"+nid, tokA, "")
	if subs := m["network"].(map[string]any)["subnets"].([]any); len(subs) != 2 {
		t.Fatalf("network subnets = %v", subs)
	}
	// Ports go to the first subnet with room; a port in s2 blocks it.
	p := e.create("port", tokA, `{"port": {"network_id": "`+nid+`", "fixed_ips": [{"subnet_id": "`+s2+`"}]}}`)
	if ip := p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"]; ip != "10.0.1.3" {
		t.Errorf("port in s2 got %v, want 10.0.1.3", ip)
	}
	if code, _ := e.do("DELETE", "/v2.0/subnets/"+s1, tokA, ""); code != 204 {
		t.Fatalf("delete unused subnet = %d", code)
	}
	if code, _ := e.do("DELETE", "/v2.0/subnets/"+s2, tokA, ""); code != 409 {
		t.Fatalf("delete used subnet = %d, want 409", code)
	}
	_, m = e.do("GET", "/v2.0/networks/"+nid, tokA, "")
	if subs := m["network"].(map[string]any)["subnets"].([]any); len(subs) != 1 || subs[0] != s2 {
		t.Errorf("network subnets after delete = %v", subs)
	}
	for k := range e.dump() {
		if strings.Contains(k, s1) || strings.Contains(k, "ip/"+nid+"/10.0.0.") {
			t.Errorf("left behind by subnet delete: %s", k)
		}
	}
}

func TestTraceHook(t *testing.T) {
	var got TraceRequest
	e := newEnv(t, func(c *Config) {
		c.Trace = func(ctx context.Context, req TraceRequest) (any, error) {
			got = req
			if strings.Contains(string(req.Body), `"proto":"bogus"`) {
				return nil, Errorf(http.StatusBadRequest, "InvalidInput", "bad trace")
			}
			return map[string]any{"verdict": "forward"}, nil
		}
	})
	nid := e.network(tokA, "n")
	pid := e.create("port", tokA, `{"port": {"network_id": "`+nid+`"}}`)["id"].(string)
	code, m := e.do("POST", "/v2.0/hivenet/trace", tokA, `{"trace": {"port_id": "`+pid+`", "ip_dst": "10.0.0.9"}}`)
	if code != 200 || m["trace"].(map[string]any)["verdict"] != "forward" {
		t.Fatalf("trace = %d %v", code, m)
	}
	var body map[string]any
	json.Unmarshal(got.Body, &body)
	if got.PortID != pid || body["ip_dst"] != "10.0.0.9" {
		t.Errorf("hook got %+v", got)
	}
	if code, _ := e.do("POST", "/v2.0/hivenet/trace", tokB, `{"trace": {"port_id": "`+pid+`"}}`); code != 404 {
		t.Errorf("trace from another project's port = %d, want 404", code)
	}
	if code, _ := e.do("POST", "/v2.0/hivenet/trace", tokA, `{"trace": {"port_id": "`+pid+`", "proto": "bogus"}}`); code != 400 {
		t.Errorf("trace hook error = %d, want 400", code)
	}
	if code, _ := e.do("POST", "/v2.0/hivenet/trace", tokA, `{"trace": {}}`); code != 400 {
		t.Errorf("trace without port = %d, want 400", code)
	}
}

func TestVersionAndExtensions(t *testing.T) {
	e := newEnv(t)
	if code, m := e.do("GET", "/", "", ""); code != 200 || m["versions"] == nil {
		t.Errorf("GET / = %d %v", code, m)
	}
	if code, m := e.do("GET", "/v2.0/", "", ""); code != 200 || m["resources"] == nil {
		t.Errorf("GET /v2.0/ = %d %v", code, m)
	}
	code, m := e.do("GET", "/v2.0/extensions", adminTok, "")
	if code != 200 {
		t.Fatalf("extensions = %d", code)
	}
	var aliases []string
	for _, x := range m["extensions"].([]any) {
		aliases = append(aliases, x.(map[string]any)["alias"].(string))
	}
	for _, want := range []string{"binding", "port-security", "allowed-address-pairs", "agent", "network-mtu", "external-net"} {
		if !slices.Contains(aliases, want) {
			t.Errorf("extension %s not listed (%v)", want, aliases)
		}
	}
	if code, _ := e.do("GET", "/v2.0/extensions/binding", adminTok, ""); code != 200 {
		t.Errorf("GET extension binding = %d", code)
	}
	if code, _ := e.do("GET", "/v2.0/extensions/nope", adminTok, ""); code != 404 {
		t.Errorf("GET extension nope = %d", code)
	}
}

func TestInsecureNoAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AdminToken, c.Tokens, c.InsecureNoAuth = "", nil, true })
	if code, m := e.do("POST", "/v2.0/networks", "", `{"network": {"name": "x", "shared": true}}`); code != 201 {
		t.Errorf("no-auth create = %d %v", code, m)
	}
	if code, _ := e.do("GET", "/v2.0/networks", "wrong", ""); code != 401 {
		t.Errorf("no-auth with a wrong token = %d, want 401", code)
	}
}

func TestConfigValidateAndTokens(t *testing.T) {
	st := &store.Store{}
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "ok", cfg: Config{Store: st, AdminToken: "x"}},
		{name: "no store", cfg: Config{AdminToken: "x"}, wantErr: true},
		{name: "no auth at all", cfg: Config{Store: st}, wantErr: true},
		{name: "insecure", cfg: Config{Store: st, InsecureNoAuth: true}},
		{name: "tiny mtu", cfg: Config{Store: st, AdminToken: "x", UnderlayMTU: 600}, wantErr: true},
		{name: "dup token", cfg: Config{Store: st, AdminToken: "x", Tokens: []Token{{Token: "x", ProjectID: "p"}}}, wantErr: true},
		{name: "token without project", cfg: Config{Store: st, Tokens: []Token{{Token: "y"}}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}

	ttests := []struct {
		name    string
		in      string
		want    []Token
		wantErr bool
	}{
		{name: "lines", in: "# comment\n\nt1 p1 admin\nt2 p2\n", want: []Token{{"t1", "p1", "admin"}, {"t2", "p2", "member"}}},
		{name: "json list", in: `[{"token": "t1", "project_id": "p1"}]`, want: []Token{{"t1", "p1", "member"}}},
		{name: "json object", in: `{"tokens": [{"token": "t1", "project_id": "p1", "role": "admin"}]}`, want: []Token{{"t1", "p1", "admin"}}},
		{name: "short line", in: "t1\n", wantErr: true},
		{name: "long line", in: "t1 p1 admin extra\n", wantErr: true},
		{name: "bad json", in: `[{"token": 1}]`, wantErr: true},
		{name: "json missing project", in: `[{"token": "t"}]`, wantErr: true},
	}
	for _, tt := range ttests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadTokens(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr || (!tt.wantErr && !slices.Equal(got, tt.want)) {
				t.Errorf("LoadTokens(%q) = %v, %v; want %v (err %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

var _ = translate.TunnelOverhead

func TestPortMACChange(t *testing.T) {
	e := newEnv(t)
	nid := e.network(tokA, "n")
	p := e.create("port", tokA, `{"port": {"network_id": "`+nid+`", "allowed_address_pairs": [{"ip_address": "10.0.0.0/24"}]}}`)
	other := e.create("port", tokA, `{"port": {"network_id": "`+nid+`"}}`)
	pid := p["id"].(string)
	if code, _ := e.do("PUT", "/v2.0/ports/"+pid, tokA, `{"port": {"mac_address": "`+other["mac_address"].(string)+`"}}`); code != 409 {
		t.Errorf("take another port's MAC = %d, want 409", code)
	}
	code, m := e.do("PUT", "/v2.0/ports/"+pid, tokA, `{"port": {"mac_address": "fa:16:3e:aa:bb:cc"}}`)
	if code != 200 {
		t.Fatalf("change MAC = %d %v", code, m)
	}
	pairs := m["port"].(map[string]any)["allowed_address_pairs"].([]any)
	if mac := pairs[0].(map[string]any)["mac_address"]; mac != "fa:16:3e:aa:bb:cc" {
		t.Errorf("defaulted pair MAC = %v, want the new port MAC", mac)
	}
	old := p["mac_address"].(string)
	keys := e.keys(store.PrefixIndex + "mac/")
	if slices.Contains(keys, store.PrefixIndex+"mac/"+nid+"/"+old) || !slices.Contains(keys, store.PrefixIndex+"mac/"+nid+"/fa:16:3e:aa:bb:cc") {
		t.Errorf("MAC index after change = %v", keys)
	}
	// The old MAC is free again.
	e.create("port", tokA, `{"port": {"network_id": "`+nid+`", "mac_address": "`+old+`"}}`)
}

// With etcd gone, requests fail with 503 after RequestTimeout instead of
// hanging.
func TestStoreDown(t *testing.T) {
	st, emb := storetest.NewEmbedded(t)
	a, err := New(Config{Store: st, AdminToken: adminTok, RequestTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	e := &testEnv{t: t, srv: srv, api: a, st: st}
	e.network(adminTok, "n")
	emb.Close()
	start := time.Now()
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/v2.0/networks", ""},
		{"POST", "/v2.0/networks", `{"network": {"name": "x"}}`},
	} {
		code, m := e.do(req.method, req.path, adminTok, req.body)
		if typ, _ := neutronError(m); code != 503 || typ != "ServiceUnavailable" {
			t.Errorf("%s %s with etcd down = %d %v, want 503", req.method, req.path, code, m)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failing took %v", d)
	}
}

// zeroRand always draws zeros: every allocated MAC is fa:16:3e:00:00:00.
type zeroRand struct{}

func (zeroRand) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func TestAllocationEdges(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Rand = zeroRand{} })
	ctx := context.Background()
	first := e.create("network", tokA, `{"network": {"name": "first"}}`)
	if k := first["provider:segmentation_id"]; k != float64(1) {
		t.Fatalf("first tunnel key = %v, want 1", k)
	}
	// Near the end of the 24-bit space: FlowStateKey is skipped and the
	// allocation wraps around past the live key 1.
	if _, err := e.st.Client().Put(ctx, seqTunnelKey, fmt.Sprint(translate.FlowStateKey-2)); err != nil {
		t.Fatal(err)
	}
	var keys []float64
	for _, name := range []string{"a", "b", "c"} {
		keys = append(keys, e.create("network", tokA, `{"network": {"name": "`+name+`"}}`)["provider:segmentation_id"].(float64))
	}
	if want := []float64{translate.FlowStateKey - 1, 2, 3}; !slices.Equal(keys, want) {
		t.Errorf("tunnel keys across the wrap = %v, want %v", keys, want)
	}

	// With a MAC source that always collides the first port gets the MAC,
	// the second a clear 409 after bounded retries, and nothing is stored.
	nid := first["id"].(string)
	if p := e.create("port", tokA, `{"port": {"network_id": "`+nid+`"}}`); p["mac_address"] != "fa:16:3e:00:00:00" {
		t.Fatalf("MAC = %v", p["mac_address"])
	}
	before := e.dump()
	code, m := e.do("POST", "/v2.0/ports", tokA, `{"port": {"network_id": "`+nid+`"}}`)
	if typ, _ := neutronError(m); code != 409 || typ != "MacAddressGenerationFailure" {
		t.Errorf("second port with colliding MACs = %d %v", code, m)
	}
	if after := e.dump(); len(after) != len(before) {
		t.Errorf("failed create stored %d keys", len(after)-len(before))
	}
	// Another network has its own MAC space.
	second := e.network(tokA, "second")
	e.create("port", tokA, `{"port": {"network_id": "`+second+`"}}`)

	// Two ports cannot claim one interface of one host; other hosts or
	// names are fine, and moving the first frees the name.
	macs := 0
	bind := func(host, ifname string) (int, map[string]any) {
		macs++ // this env's MAC source always collides: give one
		return e.do("POST", "/v2.0/ports", adminTok, fmt.Sprintf(`{"port": {"network_id": "%s", "mac_address": "fa:16:3e:00:01:%02x", "binding:host_id": "%s", "binding:profile": {"interface_name": "%s"}}}`, second, macs, host, ifname))
	}
	code, m = bind("h1", "vm-a")
	if code != 201 {
		t.Fatalf("bind h1/vm-a = %d %v", code, m)
	}
	first1 := m["port"].(map[string]any)["id"].(string)
	if code, m := bind("h1", "vm-a"); code != 409 || m["NeutronError"].(map[string]any)["type"] != "InterfaceInUse" {
		t.Errorf("second port on h1/vm-a = %d %v, want 409 InterfaceInUse", code, m)
	}
	if code, _ := bind("h2", "vm-a"); code != 201 {
		t.Errorf("h2/vm-a = %d, want 201", code)
	}
	if code, m := e.do("PUT", "/v2.0/ports/"+first1, adminTok, `{"port": {"binding:host_id": "h3"}}`); code != 200 {
		t.Fatalf("move port = %d %v", code, m)
	}
	if code, _ := bind("h1", "vm-a"); code != 201 {
		t.Errorf("h1/vm-a after the first port moved = %d, want 201", code)
	}
}
