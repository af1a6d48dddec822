package api

import (
	"fmt"
	"sync"
	"testing"
)

// Rule creates and deletes race port creates, group changes, address
// changes and deletes on the same groups: whatever order the store
// serializes them in, no chain and no address group is left stale (the
// consistency check recompiles every chain and address group from the
// API objects and compares).
func TestL3ConcurrentRulesAndPortsStayConsistent(t *testing.T) {
	e := newEnv(t)
	nid := e.network(tokA, "n")
	e.subnet(tokA, nid, "10.0.0.0/24")
	g1 := createAt(e, "security-groups", "security_group", tokA, `{"security_group": {"name": "g1"}}`)["id"].(string)
	g2 := createAt(e, "security-groups", "security_group", tokA, `{"security_group": {"name": "g2"}}`)["id"].(string)
	g3 := createAt(e, "security-groups", "security_group", tokA, `{"security_group": {"name": "g3"}}`)["id"].(string)
	var ports []string
	for i := range 4 {
		ports = append(ports, e.create("port", tokA, fmt.Sprintf(`{"port": {"network_id": "%s", "fixed_ips": [{"ip_address": "10.0.0.%d"}], "security_groups": ["%s"]}}`, nid, 10+i, g1))["id"].(string))
	}
	var wg sync.WaitGroup
	do := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	var mu sync.Mutex
	var rules []string
	for i := range 6 {
		g := g1
		if i%2 == 1 {
			g = g2
		}
		do(func() {
			code, m := e.do("POST", "/v2.0/security-group-rules", tokA, fmt.Sprintf(
				`{"security_group_rule": {"security_group_id": "%s", "direction": "ingress", "protocol": "tcp", "port_range_min": %d, "port_range_max": %d, "remote_group_id": "%s"}}`, g, 1000+i, 1000+i, g2))
			if code != 201 {
				t.Errorf("POST rule = %d %v", code, m)
				return
			}
			mu.Lock()
			rules = append(rules, m["security_group_rule"].(map[string]any)["id"].(string))
			mu.Unlock()
		})
	}
	for i, p := range ports {
		do(func() {
			body := fmt.Sprintf(`{"port": {"security_groups": ["%s", "%s"], "fixed_ips": [{"ip_address": "10.0.0.%d"}]}}`, g1, g2, 100+i)
			if i%2 == 1 {
				body = fmt.Sprintf(`{"port": {"security_groups": ["%s"]}}`, g2)
			}
			if i == 3 { // races the deletion of g3: joins it or finds it gone
				body = fmt.Sprintf(`{"port": {"security_groups": ["%s", "%s"]}}`, g2, g3)
				if code, m := e.do("PUT", "/v2.0/ports/"+p, tokA, body); code != 200 && code != 404 {
					t.Errorf("PUT port into g3 = %d %v", code, m)
				}
				return
			}
			// ports[0] races its own deletion.
			if code, m := e.do("PUT", "/v2.0/ports/"+p, tokA, body); code != 200 && !(i == 0 && code == 404) {
				t.Errorf("PUT port = %d %v", code, m)
			}
		})
	}
	for range 3 {
		do(func() {
			code, m := e.do("POST", "/v2.0/ports", tokA, fmt.Sprintf(`{"port": {"network_id": "%s", "security_groups": ["%s", "%s"]}}`, nid, g2, g1))
			if code != 201 {
				t.Errorf("POST port = %d %v", code, m)
			}
		})
	}
	do(func() {
		if code, m := e.do("DELETE", "/v2.0/ports/"+ports[0], tokA, ""); code != 204 {
			t.Errorf("DELETE port = %d %v", code, m)
		}
	})
	do(func() {
		// 409 once a port joined g3, 204 before.
		if code, m := e.do("DELETE", "/v2.0/security-groups/"+g3, tokA, ""); code != 409 && code != 204 {
			t.Errorf("DELETE group = %d %v", code, m)
		}
	})
	wg.Wait()
	checkConsistency(t, e.dump())

	// Second round: delete the rules while ports leave and rejoin.
	for _, r := range rules {
		do(func() {
			if code, m := e.do("DELETE", "/v2.0/security-group-rules/"+r, tokA, ""); code != 204 {
				t.Errorf("DELETE rule = %d %v", code, m)
			}
		})
	}
	for i, p := range ports[1:] {
		do(func() {
			body := fmt.Sprintf(`{"port": {"security_groups": ["%s"], "fixed_ips": [{"ip_address": "10.0.0.%d"}]}}`, g1, 200+i)
			if i == 0 {
				body = fmt.Sprintf(`{"port": {"security_groups": ["%s", "%s"]}}`, g2, g1)
			}
			if code, m := e.do("PUT", "/v2.0/ports/"+p, tokA, body); code != 200 {
				t.Errorf("PUT port = %d %v", code, m)
			}
		})
	}
	wg.Wait()
	checkConsistency(t, e.dump())
}

// An address two members share (same fixed IP on two networks) stays in
// the group's address set until both are gone; single-address allowed
// pairs are members too, CIDR pairs are not.
func TestAddrGroupSharedAddress(t *testing.T) {
	e := newEnv(t)
	g := createAt(e, "security-groups", "security_group", tokA, `{"security_group": {"name": "g"}}`)["id"].(string)
	var ports []string
	for i := range 2 {
		n := e.network(tokA, fmt.Sprintf("n%d", i))
		e.subnet(tokA, n, "10.0.0.0/24")
		ports = append(ports, e.create("port", tokA, fmt.Sprintf(`{"port": {"network_id": "%s", "fixed_ips": [{"ip_address": "10.0.0.5"}], "security_groups": ["%s"],
			"allowed_address_pairs": [{"ip_address": "10.0.0.%d"}, {"ip_address": "10.9.0.0/16"}]}}`, n, g, 100+i))["id"].(string))
	}
	addrs := func() []string {
		t.Helper()
		snap, _, err := e.st.LoadTopology(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range snap.AddrGroup(g).Addrs {
			out = append(out, a.String())
		}
		return out
	}
	steps := []struct {
		name   string
		method string
		path   string
		body   string
		want   []string
	}{
		{name: "both members", want: []string{"10.0.0.5", "10.0.0.100", "10.0.0.101"}},
		{name: "first readdressed", method: "PUT", path: "/v2.0/ports/" + ports[0], body: `{"port": {"fixed_ips": [{"ip_address": "10.0.0.6"}]}}`, want: []string{"10.0.0.5", "10.0.0.6", "10.0.0.100", "10.0.0.101"}},
		{name: "second leaves", method: "PUT", path: "/v2.0/ports/" + ports[1], body: `{"port": {"security_groups": []}}`, want: []string{"10.0.0.6", "10.0.0.100"}},
		{name: "first drops its pairs", method: "PUT", path: "/v2.0/ports/" + ports[0], body: `{"port": {"allowed_address_pairs": []}}`, want: []string{"10.0.0.6"}},
		{name: "second rejoins", method: "PUT", path: "/v2.0/ports/" + ports[1], body: `{"port": {"security_groups": ["` + g + `"]}}`, want: []string{"10.0.0.5", "10.0.0.6", "10.0.0.101"}},
		{name: "first deleted", method: "DELETE", path: "/v2.0/ports/" + ports[0], want: []string{"10.0.0.5", "10.0.0.101"}},
	}
	for _, st := range steps {
		if st.method != "" {
			if code, m := e.do(st.method, st.path, tokA, st.body); code >= 300 {
				t.Fatalf("%s: %s %s = %d %v", st.name, st.method, st.path, code, m)
			}
		}
		if got := addrs(); fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Errorf("%s: address group = %v, want %v", st.name, got, st.want)
		}
		checkConsistency(t, e.dump())
	}
}

// Floating IP associations race the removal of the router's interface
// and gateway, and a change of the external gateway_ip: either the
// association wins (and the removal is refused) or the removal does (and
// the association is refused); the router's translation follows.
func TestL3ConcurrentFloatingIPsAndRouter(t *testing.T) {
	e := newEnv(t)
	for round := range 3 {
		f := newL3Fixture(e)
		// Free the fixture's port: its floating IP goes first.
		if code, m := e.do("DELETE", "/v2.0/floatingips/"+f.fip, tokA, ""); code != 204 {
			t.Fatalf("DELETE fip = %d %v", code, m)
		}
		var ports []string
		for i := range 3 {
			ports = append(ports, e.create("port", tokA, fmt.Sprintf(`{"port": {"network_id": "%s", "fixed_ips": [{"ip_address": "10.0.0.%d"}]}}`, f.net, 50+i))["id"].(string))
		}
		var wg sync.WaitGroup
		do := func(fn func()) {
			wg.Add(1)
			go func() { defer wg.Done(); fn() }()
		}
		for _, p := range ports {
			do(func() {
				code, m := e.do("POST", "/v2.0/floatingips", tokA, `{"floatingip": {"floating_network_id": "`+f.ext+`", "port_id": "`+p+`"}}`)
				if code != 201 && code != 404 { // 404: the router lost its way to the port first
					t.Errorf("POST fip = %d %v", code, m)
				}
			})
		}
		do(func() {
			if code, m := e.do("PUT", "/v2.0/routers/"+f.router+"/remove_router_interface", tokA, `{"subnet_id": "`+f.sub+`"}`); code != 200 && code != 409 {
				t.Errorf("remove interface = %d %v", code, m)
			}
		})
		if round == 1 {
			do(func() {
				if code, m := e.do("PUT", "/v2.0/routers/"+f.router, tokA, `{"router": {"external_gateway_info": null}}`); code != 200 && code != 409 {
					t.Errorf("clear gateway = %d %v", code, m)
				}
			})
		}
		do(func() {
			if code, m := e.do("PUT", "/v2.0/subnets/"+f.extSub, adminTok, fmt.Sprintf(`{"subnet": {"gateway_ip": "203.0.113.%d"}}`, 250+round)); code != 200 {
				t.Errorf("change external gateway_ip = %d %v", code, m)
			}
		})
		wg.Wait()
		checkConsistency(t, e.dump())
		// Clear the world for the next round (its physnet must be free).
		for _, fp := range e.list("floatingips", tokA, "") {
			e.do("DELETE", "/v2.0/floatingips/"+fp["id"].(string), tokA, "")
		}
		e.do("PUT", "/v2.0/routers/"+f.router+"/remove_router_interface", tokA, `{"subnet_id": "`+f.sub+`"}`)
		if code, m := e.do("DELETE", "/v2.0/routers/"+f.router, tokA, ""); code != 204 {
			t.Fatalf("DELETE router = %d %v", code, m)
		}
		for _, p := range e.list("ports", adminTok, "") {
			if p["network_id"] == f.ext {
				t.Fatalf("port %v left on the external network", p)
			}
		}
		if code, m := e.do("DELETE", "/v2.0/networks/"+f.ext, adminTok, ""); code != 204 {
			t.Fatalf("DELETE external network = %d %v", code, m)
		}
		checkConsistency(t, e.dump())
	}
}

// An admin's rule in a project's group belongs to that project.
func TestAdminRuleTakesGroupProject(t *testing.T) {
	e := newEnv(t)
	g := createAt(e, "security-groups", "security_group", tokA, `{"security_group": {"name": "g"}}`)["id"].(string)
	r := createAt(e, "security-group-rules", "security_group_rule", adminTok, `{"security_group_rule": {"security_group_id": "`+g+`", "direction": "ingress"}}`)
	if r["project_id"] != "project-a" || r["tenant_id"] != "project-a" {
		t.Errorf("admin's rule = %v, want project-a's", r)
	}
	if code, m := e.do("GET", "/v2.0/security-group-rules/"+r["id"].(string), tokA, ""); code != 200 {
		t.Errorf("member reads the rule = %d %v", code, m)
	}
}
