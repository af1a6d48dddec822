package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"hivenet/internal/store"
	"hivenet/internal/translate"
)

// checkConsistency verifies the store invariants every transaction must
// keep: API objects and their translations come and go together, every
// index key has a live owner, every owner holds exactly its index keys,
// ports and subnets hang off live networks.
func checkConsistency(t testing.TB, kv map[string]string) {
	t.Helper()
	nets := map[string]*translate.Network{}
	subs := map[string]*translate.Subnet{}
	ports := map[string]*translate.Port{}
	for k, v := range kv {
		var err error
		switch {
		case strings.HasPrefix(k, store.PrefixAPI+"networks/"):
			n := new(translate.Network)
			err = json.Unmarshal([]byte(v), n)
			nets[n.ID] = n
		case strings.HasPrefix(k, store.PrefixAPI+"subnets/"):
			s := new(translate.Subnet)
			err = json.Unmarshal([]byte(v), s)
			subs[s.ID] = s
		case strings.HasPrefix(k, store.PrefixAPI+"ports/"):
			p := new(translate.Port)
			err = json.Unmarshal([]byte(v), p)
			ports[p.ID] = p
		}
		if err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	want := map[string]string{} // index key -> owner
	topo := map[string]bool{}
	add := func(keys []string, owner string) {
		for _, k := range keys {
			if o, dup := want[k]; dup {
				t.Errorf("index %s owned by both %s and %s", k, o, owner)
			}
			want[k] = owner
		}
	}
	for id, n := range nets {
		topo[store.PrefixTopo+"bridge/"+id] = true
		add(translate.NetworkIndexes(n), id)
		for _, sid := range n.Subnets {
			if subs[sid] == nil {
				t.Errorf("network %s lists missing subnet %s", id, sid)
			}
		}
	}
	for id, s := range subs {
		topo[store.PrefixTopo+"subnet/"+id] = true
		add(translate.SubnetIndexes(s), translate.DHCPOwner(id))
		if n := nets[s.NetworkID]; n == nil || !containsStr(n.Subnets, id) {
			t.Errorf("subnet %s not on a live network %s", id, s.NetworkID)
		}
	}
	for id, p := range ports {
		topo[store.PrefixTopo+"port/"+id] = true
		add(translate.PortIndexes(p), id)
		if nets[p.NetworkID] == nil {
			t.Errorf("port %s on missing network %s", id, p.NetworkID)
		}
		for _, f := range p.FixedIPs {
			if s := subs[f.SubnetID]; s == nil || s.NetworkID != p.NetworkID {
				t.Errorf("port %s address %s in missing subnet %s", id, f.IPAddress, f.SubnetID)
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
			if !topo[k] {
				t.Errorf("topology %s without its API object", k)
			}
			delete(topo, k)
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
		if !strings.HasPrefix(k, store.PrefixSeq) {
			t.Errorf("left behind: %s", k)
		}
	}
}
