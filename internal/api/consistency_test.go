package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"hivenet/internal/store"
	"hivenet/internal/translate"
)

// checkConsistency verifies the store invariants every transaction must
// keep: API objects and their translations come and go together, every
// index key has a live owner, every owner holds exactly its index keys,
// ports and subnets hang off live networks. The translations of ports,
// routers, floating IPs, chains and address groups must equal a
// recomputation from the API objects (nothing stale after races).
func checkConsistency(t testing.TB, kv map[string]string) {
	t.Helper()
	nets := map[string]*translate.Network{}
	subs := map[string]*translate.Subnet{}
	ports := map[string]*translate.Port{}
	routers := map[string]*translate.Router{}
	fips := map[string]*translate.FloatingIP{}
	groups := map[string]*translate.SecurityGroup{}
	decode := func(k, v, resource string, dst any) bool {
		if !strings.HasPrefix(k, store.PrefixAPI+resource+"/") {
			return false
		}
		if err := json.Unmarshal([]byte(v), dst); err != nil {
			t.Errorf("%s: %v", k, err)
		}
		return true
	}
	for k, v := range kv {
		var (
			n  translate.Network
			s  translate.Subnet
			p  translate.Port
			r  translate.Router
			f  translate.FloatingIP
			sg translate.SecurityGroup
		)
		switch {
		case decode(k, v, "networks", &n):
			nets[n.ID] = &n
		case decode(k, v, "subnets", &s):
			subs[s.ID] = &s
		case decode(k, v, "ports", &p):
			ports[p.ID] = &p
		case decode(k, v, "routers", &r):
			routers[r.ID] = &r
		case decode(k, v, "floatingips", &f):
			fips[f.ID] = &f
		case decode(k, v, "security-groups", &sg):
			groups[sg.ID] = &sg
		}
	}
	want := map[string]string{} // index key -> owner
	topo := map[string]any{}    // topology key -> expected value (nil: any)
	add := func(keys []string, owner string) {
		for _, k := range keys {
			if o, dup := want[k]; dup {
				t.Errorf("index %s owned by both %s and %s", k, o, owner)
			}
			want[k] = owner
		}
	}
	for id, n := range nets {
		topo[store.PrefixTopo+"bridge/"+id] = translate.Bridge(n)
		add(translate.NetworkIndexes(n), id)
		for _, sid := range n.Subnets {
			if subs[sid] == nil {
				t.Errorf("network %s lists missing subnet %s", id, sid)
			}
		}
	}
	for id, s := range subs {
		topo[store.PrefixTopo+"subnet/"+id] = nil
		add(translate.SubnetIndexes(s), translate.DHCPOwner(id))
		if n := nets[s.NetworkID]; n == nil || !containsStr(n.Subnets, id) {
			t.Errorf("subnet %s not on a live network %s", id, s.NetworkID)
		}
	}
	members := map[string][]*translate.Port{}
	for id, p := range ports {
		tp, err := translate.TopoPort(p)
		if err != nil {
			t.Errorf("port %s: %v", id, err)
		}
		topo[store.PrefixTopo+"port/"+id] = tp
		add(translate.PortIndexes(p), id)
		if nets[p.NetworkID] == nil {
			t.Errorf("port %s on missing network %s", id, p.NetworkID)
		}
		for _, f := range p.FixedIPs {
			if s := subs[f.SubnetID]; s == nil || s.NetworkID != p.NetworkID {
				t.Errorf("port %s address %s in missing subnet %s", id, f.IPAddress, f.SubnetID)
			}
		}
		for _, g := range p.SecurityGroups {
			if groups[g] == nil {
				t.Errorf("port %s in missing security group %s", id, g)
			}
			members[g] = append(members[g], p)
		}
		if translate.IsRouterPort(p) && routers[p.DeviceID] == nil {
			t.Errorf("port %s of missing router %s", id, p.DeviceID)
		}
		if translate.HasChains(p) {
			in, out := translate.PortChains(p)
			topo[store.PrefixTopo+"chain/"+in.ID] = in
			topo[store.PrefixTopo+"chain/"+out.ID] = out
		}
	}
	for id, g := range groups {
		add(translate.SecurityGroupIndexes(g), id)
		ag, err := translate.AddrGroup(id, members[id])
		if err != nil {
			t.Errorf("group %s: %v", id, err)
		}
		topo[store.PrefixTopo+"addrgroup/"+id] = ag
		in, out, err := translate.GroupChains(g)
		if err != nil {
			t.Errorf("group %s chains: %v", id, err)
		}
		topo[store.PrefixTopo+"chain/"+in.ID] = in
		topo[store.PrefixTopo+"chain/"+out.ID] = out
		for _, r := range g.Rules {
			if r.RemoteGroupID != nil && groups[*r.RemoteGroupID] == nil {
				t.Errorf("rule %s of group %s refers to missing group %s", r.ID, id, *r.RemoteGroupID)
			}
		}
	}
	for id, r := range routers {
		var gw *translate.Port
		var ext *translate.Subnet
		if r.GatewayPortID != "" {
			if gw = ports[r.GatewayPortID]; gw == nil {
				t.Errorf("router %s: missing gateway port %s", id, r.GatewayPortID)
			} else if len(gw.FixedIPs) > 0 {
				ext = subs[gw.FixedIPs[0].SubnetID]
			}
		}
		tr, err := translate.TopoRouter(r, gw, ext)
		if err != nil {
			t.Errorf("router %s: %v", id, err)
		}
		topo[store.PrefixTopo+"router/"+id] = tr
	}
	for id, f := range fips {
		tf, err := translate.TopoFloatingIP(f)
		if err != nil {
			t.Errorf("floating IP %s: %v", id, err)
		}
		topo[store.PrefixTopo+"floatingip/"+id] = tf
		add(translate.FloatingIPIndexes(f), id)
		if f.PortID != nil {
			p := ports[*f.PortID]
			if p == nil || f.RouterID == nil || routers[*f.RouterID] == nil {
				t.Errorf("floating IP %s associated with missing port %v or router %v", id, *f.PortID, f.RouterID)
				continue
			}
			// The router must still reach both sides: a gateway on the
			// floating network and an interface on the port's subnet.
			r := routers[*f.RouterID]
			if r.GatewayInfo == nil || r.GatewayInfo.NetworkID != f.FloatingNetworkID {
				t.Errorf("floating IP %s: router %s has no gateway on %s", id, r.ID, f.FloatingNetworkID)
			}
			i := slices.IndexFunc(p.FixedIPs, func(x translate.FixedIP) bool { return x.IPAddress == *f.FixedIPAddress })
			if i < 0 {
				t.Errorf("floating IP %s: port %s lost fixed IP %s", id, p.ID, *f.FixedIPAddress)
				continue
			}
			connected := false
			for _, q := range ports {
				if q.DeviceOwner == translate.OwnerRouterInterface && q.DeviceID == r.ID &&
					slices.ContainsFunc(q.FixedIPs, func(x translate.FixedIP) bool { return x.SubnetID == p.FixedIPs[i].SubnetID }) {
					connected = true
				}
			}
			if !connected {
				t.Errorf("floating IP %s: router %s has no interface on subnet %s", id, r.ID, p.FixedIPs[i].SubnetID)
			}
		}
	}
	for k, v := range kv {
		switch {
		case strings.HasPrefix(k, store.PrefixIndex):
			rel := strings.TrimPrefix(k, store.PrefixIndex)
			if owner, ok := want[rel]; !ok || owner != v {
				t.Errorf("index %s = %q, want owner %q", rel, v, owner)
			}
			delete(want, rel)
		case strings.HasPrefix(k, store.PrefixTopo):
			exp, ok := topo[k]
			if !ok {
				t.Errorf("topology %s without its API object", k)
				continue
			}
			delete(topo, k)
			if exp == nil {
				continue
			}
			var got, wantV any
			b, _ := json.Marshal(exp)
			json.Unmarshal(b, &wantV)
			json.Unmarshal([]byte(v), &got)
			if !reflect.DeepEqual(got, wantV) {
				t.Errorf("topology %s is stale:\n got %s\nwant %s", k, v, b)
			}
		}
	}
	for k, owner := range want {
		t.Errorf("index %s of %s missing", k, owner)
	}
	for k := range topo {
		t.Errorf("translation %s missing", k)
	}
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Racing port creates, subnet creates and deletes, port deletes and a
// network delete on one network: whatever wins, the store stays
// consistent and no port survives on a deleted network.
func TestConcurrentMixedWritesStayConsistent(t *testing.T) {
	e := newEnv(t)
	for round := range 3 {
		nid := e.network(tokA, fmt.Sprintf("r%d", round))
		sid := e.subnet(tokA, nid, "10.0.0.0/24")
		var wg sync.WaitGroup
		var mu sync.Mutex
		var created []string
		do := func(f func()) {
			wg.Add(1)
			go func() { defer wg.Done(); f() }()
		}
		for i := range 8 {
			do(func() {
				code, m := e.do("POST", "/v2.0/ports", tokA, `{"port": {"network_id": "`+nid+`"}}`)
				switch code {
				case 201:
					mu.Lock()
					created = append(created, m["port"].(map[string]any)["id"].(string))
					mu.Unlock()
				case 404: // the network went first
				default:
					t.Errorf("POST port = %d %v", code, m)
				}
			})
			if i%4 == 0 {
				do(func() {
					code, m := e.do("POST", "/v2.0/subnets", tokA, fmt.Sprintf(`{"subnet": {"network_id": "%s", "cidr": "10.%d.%d.0/24"}}`, nid, 1+round, i))
					if code != 201 && code != 404 {
						t.Errorf("POST subnet = %d %v", code, m)
					}
				})
			}
		}
		do(func() {
			// 409 while ports use it; 404 if the network delete took it.
			if code, m := e.do("DELETE", "/v2.0/subnets/"+sid, tokA, ""); code != 204 && code != 409 && code != 404 {
				t.Errorf("DELETE subnet = %d %v", code, m)
			}
		})
		do(func() {
			// Deleting races the creates: 409 while ports exist.
			if code, m := e.do("DELETE", "/v2.0/networks/"+nid, tokA, ""); code != 204 && code != 409 {
				t.Errorf("DELETE network = %d %v", code, m)
			}
		})
		wg.Wait()
		checkConsistency(t, e.dump())
		// Clean up: ports, then the network.
		for _, id := range created {
			if code, m := e.do("DELETE", "/v2.0/ports/"+id, tokA, ""); code != 204 {
				t.Errorf("DELETE port = %d %v", code, m)
			}
		}
		if code, m := e.do("DELETE", "/v2.0/networks/"+nid, tokA, ""); code != 204 && code != 404 {
			t.Errorf("final DELETE network = %d %v", code, m)
		}
		checkConsistency(t, e.dump())
	}
	for k := range e.dump() {
		// The project's default security group stays, as in Neutron.
		if !strings.HasPrefix(k, store.PrefixSeq) && !isDefaultGroupKey(k) {
			t.Errorf("left behind: %s", k)
		}
	}
}

// isDefaultGroupKey reports keys a project's default security group owns.
func isDefaultGroupKey(k string) bool {
	for _, p := range []string{store.PrefixAPI + "security-groups/", store.PrefixTopo + "addrgroup/", store.PrefixTopo + "chain/sg-", store.PrefixIndex + "sgrule/", store.PrefixIndex + "sgdefault/"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}
