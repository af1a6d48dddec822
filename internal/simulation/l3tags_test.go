package simulation

import (
	"reflect"
	"slices"
	"testing"

	"hivenet/internal/topology"
)

// l3Topology is routerSGTopology with a gateway, SNAT, a floating IP, two
// uplinks and the upstream router's ARP entry.
const l3Topology = routerSGTopology + `
host host3 tunnel=192.0.2.3
bridge ext key=900 mtu=1500 external physnet=physnet1
subnet sub-ext ext 203.0.113.0/24 gw=203.0.113.1 nodhcp
port r1-ext ext mac=fa:16:3e:00:ee:01 ip=sub-ext:203.0.113.2 key=1003 router=r1
router r1 gw=r1-ext nexthop=203.0.113.1 snat=203.0.113.2
fip f1 ext 203.0.113.10 router=r1 port=vm-a2 fixed=10.0.0.6
uplink host1 physnet1 key=5001 iface=eth1
uplink host3 physnet1 key=5003 iface=eth1
arp ext 203.0.113.1 02:00:00:00:00:01
snatblocks 203.0.113.2 1024
rule in accept type=ipv4 proto=tcp dport=22 src=198.51.100.0/24 comment=ssh-outside
`

// TestTagsCoverL3Changes is TestTagsCoverChanges for routers, chains,
// address groups, floating IPs, uplinks and ARP entries: a change that
// alters a cacheable result must invalidate one of its tags. Subnet
// changes are left out: a subnet's CIDR cannot change (Neutron), and a
// subnet with a router interface cannot be deleted before it.
func TestTagsCoverL3Changes(t *testing.T) {
	w := parseWorld(t, l3Topology)
	pkts := []string{
		"from=vm-b1 eth_dst=@r1-b ip_dst=@vm-a2 proto=tcp sport=50000 dport=22",
		"from=vm-a2 eth_dst=@r1-a ip_dst=@vm-b1 proto=tcp sport=22 dport=50001",
		"from=vm-a1 eth_dst=@r1-a ip_dst=@vm-b1 proto=tcp sport=40000 dport=80",
		"from=vm-a1 eth_dst=@r1-a ip_dst=198.51.100.7 proto=tcp sport=40000 dport=80",
		"from=vm-a2 eth_dst=@r1-a ip_dst=198.51.100.7 proto=tcp sport=40000 dport=80",
		"from=uplink:host3/physnet1 eth_src=02:00:00:00:00:01 eth_dst=@r1-ext ip_src=198.51.100.9 ip_dst=203.0.113.10 proto=tcp sport=50001 dport=22",
	}
	snap := w.snap
	router := func(f func(r *topology.Router)) []topology.Change {
		r := *snap.Router(routerID("r1"))
		f(&r)
		return []topology.Change{{Kind: topology.KindRouter, ID: r.ID, Router: &r}}
	}
	port := func(name string, f func(p *topology.Port)) []topology.Change {
		p := *snap.Port(portID(name))
		f(&p)
		return []topology.Change{{Kind: topology.KindPort, ID: p.ID, Port: &p}}
	}
	chain := func(name string, f func(c *topology.Chain)) []topology.Change {
		c := *snap.Chain(chainID(name))
		c.Rules = slices.Clone(c.Rules)
		f(&c)
		return []topology.Change{{Kind: topology.KindChain, ID: c.ID, Chain: &c}}
	}
	fip := func(f func(x *topology.FloatingIP)) []topology.Change {
		x := *snap.FloatingIP("fip-f1")
		f(&x)
		return []topology.Change{{Kind: topology.KindFloatingIP, ID: x.ID, FloatingIP: &x}}
	}
	changes := map[string][]topology.Change{
		"router down":    router(func(r *topology.Router) { r.AdminUp = false }),
		"router deleted": {{Kind: topology.KindRouter, ID: routerID("r1")}},
		"static route": router(func(r *topology.Router) {
			r.Routes = []topology.Route{{Dst: netipPrefix("10.0.0.6/32"), NextHop: mustAddr(t, "10.1.0.5")}}
		}),
		"snat off":           router(func(r *topology.Router) { r.SNAT = false }),
		"no default route":   router(func(r *topology.Router) { r.DefaultNextHop = mustAddr(t, "203.0.113.9") }),
		"r1-a deleted":       {{Kind: topology.KindPort, ID: portID("r1-a")}},
		"r1-b down":          port("r1-b", func(p *topology.Port) { p.AdminUp = false }),
		"r1-a re-MAC":        port("r1-a", func(p *topology.Port) { p.MAC = mustMAC(t, "fa:16:3e:00:0a:99") }),
		"vm-a2 chains off":   port("vm-a2", func(p *topology.Port) { p.InboundChain, p.OutboundChain = "", "" }),
		"vm-a2 moves host":   {{Kind: topology.KindPortBinding, ID: portID("vm-a2"), Binding: &topology.PortBinding{PortID: portID("vm-a2"), Host: "host1"}}},
		"ssh rule removed":   chain("in", func(c *topology.Chain) { c.Rules = c.Rules[:2] }),
		"in default accept":  chain("in", func(c *topology.Chain) { c.Default = topology.RuleAccept }),
		"out drops all":      chain("out", func(c *topology.Chain) { c.Rules = nil }),
		"chain in deleted":   {{Kind: topology.KindChain, ID: chainID("in")}},
		"group shrinks":      {{Kind: topology.KindAddrGroup, ID: groupID("sg"), AddrGroup: &topology.IPAddrGroup{ID: groupID("sg"), Addrs: []netipAddr{mustAddr(t, "10.0.0.5")}}}},
		"fip disassociated":  fip(func(x *topology.FloatingIP) { x.PortID, x.FixedIP = "", netipAddr{} }),
		"fip moves to vm-a1": fip(func(x *topology.FloatingIP) { x.PortID, x.FixedIP = portID("vm-a1"), mustAddr(t, "10.0.0.5") }),
		"fip .11 appears":    {{Kind: topology.KindFloatingIP, ID: "fip-f2", FloatingIP: &topology.FloatingIP{ID: "fip-f2", Addr: mustAddr(t, "203.0.113.11"), BridgeID: bridgeID("ext"), RouterID: routerID("r1"), PortID: portID("vm-a1"), FixedIP: mustAddr(t, "10.0.0.5")}}},
		"upstream re-MAC":    {{Kind: topology.KindARP, ID: "br-ext/203.0.113.1", ARP: &topology.ARPEntry{BridgeID: bridgeID("ext"), IP: mustAddr(t, "203.0.113.1"), MAC: mustMAC(t, "02:00:00:00:00:02")}}},
		"upstream forgotten": {{Kind: topology.KindARP, ID: "br-ext/203.0.113.1"}},
		"uplink host3 gone":  {{Kind: topology.KindUplink, ID: "host3/physnet1"}},
		"uplink host1 gone":  {{Kind: topology.KindUplink, ID: "host1/physnet1"}},
		"uplink host2 added": {{Kind: topology.KindUplink, ID: "host2/physnet1", Uplink: &topology.Uplink{Host: "host2", PhysNet: "physnet1", TunnelKey: 5002}}},
		"ext bridge down":    {{Kind: topology.KindBridge, ID: bridgeID("ext"), Bridge: &topology.Bridge{ID: bridgeID("ext"), FloodKey: 900, External: true, PhysNet: "physnet1"}}},
		"host2 dies":         {{Kind: topology.KindHost, ID: "host2"}},
		"host3 dies":         {{Kind: topology.KindHost, ID: "host3"}},
	}
	checked := 0
	for _, desc := range pkts {
		pkt := w.packet(t, desc)
		before := Simulate(snap, w.local, pkt, w.st, 0)
		if !before.Cacheable {
			t.Errorf("%s: not cacheable:\n%s", desc, w.render(before))
			continue
		}
		for what, ch := range changes {
			snap2, inval := snap.Apply(ch)
			after := Simulate(snap2, w.local, pkt, w.st, 0)
			if reflect.DeepEqual(before, after) {
				continue
			}
			checked++
			hit := false
			for _, tg := range inval {
				hit = hit || containsTag(before.Tags, tg)
			}
			if !hit {
				t.Errorf("%s: change %q alters the result but invalidates none of its tags\nbefore:\n%safter:\n%s", desc, what, w.render(before), w.render(after))
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d (packet, change) pairs changed a result: the test checks little", checked)
	}
}
