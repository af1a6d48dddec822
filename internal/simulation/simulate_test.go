package simulation

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// unitTopology serves the table tests; the golden files have their own.
const unitTopology = `
local host1
host host1 tunnel=192.0.2.1
host host2 tunnel=192.0.2.2
bridge net-a key=100 mtu=1450
bridge net-off key=101 down
subnet sub-a net-a 10.0.0.0/24 gw=10.0.0.1 dns=10.0.0.3 server=10.0.0.2
subnet sub-x net-a 10.1.0.0/24 nodhcp
port a1 net-a mac=fa:16:3e:00:00:01 ip=sub-a:10.0.0.5 key=17 bound=host1
port a2 net-a mac=fa:16:3e:00:00:02 ip=sub-a:10.0.0.6 key=18 bound=host2
port a3 net-a mac=fa:16:3e:00:00:03 ip=sub-a:10.0.0.7 key=19 bound=host1 pair=10.0.0.100/32 pair=10.9.0.0/24@fa:16:3e:00:00:aa
port open net-a mac=fa:16:3e:00:00:04 ip=sub-a:10.0.0.8 key=20 bound=host1 nosec
port down net-a mac=fa:16:3e:00:00:05 ip=sub-a:10.0.0.9 key=21 bound=host2 down
port loose net-a mac=fa:16:3e:00:00:06 ip=sub-a:10.0.0.10 key=22
port gone net-a mac=fa:16:3e:00:00:07 ip=sub-a:10.0.0.11 key=23 bound=host7
port static net-a mac=fa:16:3e:00:00:08 ip=sub-x:10.1.0.8 key=24 bound=host1
port off net-off mac=fa:16:3e:00:00:09 key=25 bound=host1
port lost net-nowhere mac=fa:16:3e:00:00:0a key=26 bound=host1
learned net-a fa:16:3e:00:00:99 a2
`

// Field sets the tests expect in masks.
const (
	secIPv4 = packet.FInPort | packet.FEthSrc | packet.FVLAN | packet.FEthType | packet.FIPSrc
	secFwd  = secIPv4 | packet.FEthDst | packet.FIPProto // + the DHCP check's protocol read
)

func TestSimulate(t *testing.T) {
	w := parseWorld(t, unitTopology)
	tests := []struct {
		name      string
		pkt       string
		verdict   Verdict
		reason    Reason
		outputs   []Output
		flood     bool
		learn     []string // MACs
		emits     int
		cacheable bool
		mask      packet.Field
		groupBit  bool // EthDst masked to the group bit only
		tags      []string
	}{
		// ingress
		{name: "ingress/unknown-port", pkt: "from=nobody eth_dst=@a1", verdict: Drop, reason: ReasonUnknownPort, cacheable: true,
			mask: packet.FInPort, tags: []string{"port(nobody)"}},
		{name: "ingress/port-admin-down", pkt: "from=down eth_dst=@a1", verdict: Drop, reason: ReasonPortAdminDown, cacheable: true,
			mask: packet.FInPort, tags: []string{"port(down)"}},
		{name: "ingress/topology-incomplete", pkt: "from=lost eth_dst=@a1", verdict: Drop, reason: ReasonTopologyIncomplete, cacheable: true,
			mask: packet.FInPort, tags: []string{"bridge(net-nowhere)", "port(lost)"}},
		{name: "ingress/bridge-admin-down", pkt: "from=off eth_dst=bcast", verdict: Drop, reason: ReasonBridgeAdminDown, cacheable: true,
			mask: packet.FInPort, tags: []string{"bridge(net-off)", "port(off)"}},
		// port security
		{name: "security/spoofed-mac", pkt: "from=a1 eth_src=fa:16:3e:00:00:66 eth_dst=@a2", verdict: Drop, reason: ReasonPortSecurity,
			cacheable: true, mask: packet.FInPort | packet.FEthSrc, tags: []string{"bridge(net-a)", "port(a1)"}},
		{name: "security/spoofed-ip", pkt: "from=a1 eth_dst=@a2 ip_src=10.0.0.6", verdict: Drop, reason: ReasonPortSecurity,
			cacheable: true, mask: secIPv4, tags: []string{"bridge(net-a)", "port(a1)"}},
		{name: "security/pair-own-mac", pkt: "from=a3 eth_dst=@a1 ip_src=10.0.0.100", verdict: Forward,
			outputs: []Output{{PortID: "id-a1", Host: "host1", Local: true, TunnelKey: 17}}, cacheable: true, mask: secFwd,
			tags: []string{"bridge(net-a)", "host(host1)", "mac(net-a,fa:16:3e:00:00:01)", "port(a1)", "port(a3)"}},
		{name: "security/pair-mac", pkt: "from=a3 eth_src=fa:16:3e:00:00:aa eth_dst=@a2 ip_src=10.9.0.1", verdict: Forward,
			outputs: []Output{{PortID: "id-a2", Host: "host2", TunnelKey: 18}}, cacheable: true, mask: secFwd,
			tags: []string{"bridge(net-a)", "host(host2)", "mac(net-a,fa:16:3e:00:00:02)", "port(a2)", "port(a3)"}},
		{name: "security/pair-mac-outside-prefix", pkt: "from=a3 eth_src=fa:16:3e:00:00:aa eth_dst=@a2 ip_src=10.0.0.100", verdict: Drop,
			reason: ReasonPortSecurity, cacheable: true, mask: secIPv4, tags: []string{"bridge(net-a)", "port(a3)"}},
		{name: "security/arp-sha", pkt: "from=a1 eth_dst=bcast type=arp arp_sha=fa:16:3e:00:00:66 ip_dst=10.0.0.6", verdict: Drop,
			reason: ReasonPortSecurity, cacheable: true, mask: packet.FInPort | packet.FEthSrc | packet.FVLAN | packet.FEthType | packet.FARPSha,
			tags: []string{"bridge(net-a)", "port(a1)"}},
		{name: "security/off-passes-and-learns", pkt: "from=open eth_src=fa:16:3e:00:00:66 ip_src=192.0.2.99 eth_dst=@a1", verdict: Forward,
			outputs: []Output{{PortID: "id-a1", Host: "host1", Local: true, TunnelKey: 17}}, learn: []string{"fa:16:3e:00:00:66"}, cacheable: true,
			mask: packet.FInPort | packet.FEthSrc | packet.FEthDst | packet.FEthType | packet.FIPProto,
			tags: []string{"bridge(net-a)", "host(host1)", "mac(net-a,fa:16:3e:00:00:01)", "mac(net-a,fa:16:3e:00:00:66)", "port(a1)", "port(open)"}},
		// responders
		{name: "arp/known", pkt: "from=a1 eth_dst=bcast type=arp ip_dst=10.0.0.6", verdict: Consumed, emits: 1,
			mask: packet.FInPort | packet.FEthSrc | packet.FVLAN | packet.FEthType | packet.FARPSha | packet.FIPSrc | packet.FIPProto | packet.FIPDst,
			tags: []string{"bridge(net-a)", "port(a1)"}},
		{name: "arp/unknown-floods-uncached", pkt: "from=a1 eth_dst=bcast type=arp ip_dst=10.0.0.77", verdict: Forward, flood: true, groupBit: true,
			mask: packet.FInPort | packet.FEthSrc | packet.FVLAN | packet.FEthType | packet.FARPSha | packet.FIPSrc | packet.FIPProto | packet.FIPDst,
			tags: []string{"bridge(net-a)", "flood(net-a)", "port(a1)"}},
		{name: "dhcp/no-dhcp", pkt: "from=static eth_dst=bcast dhcp=discover", verdict: Drop, reason: ReasonNoDHCP,
			mask: secIPv4 | packet.FIPProto | packet.FSrcPort | packet.FDstPort | packet.FIPDst, tags: []string{"bridge(net-a)", "port(static)"}},
		{name: "dhcp/offer", pkt: "from=a1 eth_dst=bcast dhcp=discover", verdict: Consumed, emits: 1,
			mask: secIPv4 | packet.FIPProto | packet.FSrcPort | packet.FDstPort | packet.FIPDst, tags: []string{"bridge(net-a)", "port(a1)", "subnet(sub-a)"}},
		{name: "dhcp/malformed", pkt: "from=open eth_dst=bcast dhcp=offer", verdict: Drop, reason: ReasonDHCPMalformed,
			mask: packet.FInPort | packet.FEthType | packet.FIPProto | packet.FSrcPort | packet.FDstPort | packet.FIPDst,
			tags: []string{"bridge(net-a)", "port(open)", "subnet(sub-a)"}},
		// bridge
		{name: "bridge/local", pkt: "from=a1 eth_dst=@a3 ip_dst=@a3", verdict: Forward,
			outputs: []Output{{PortID: "id-a3", Host: "host1", Local: true, TunnelKey: 19}}, cacheable: true, mask: secFwd,
			tags: []string{"bridge(net-a)", "host(host1)", "mac(net-a,fa:16:3e:00:00:03)", "port(a1)", "port(a3)"}},
		{name: "bridge/pair-mac-lookup", pkt: "from=a1 eth_dst=fa:16:3e:00:00:aa ip_dst=10.9.0.1", verdict: Forward,
			outputs: []Output{{PortID: "id-a3", Host: "host1", Local: true, TunnelKey: 19}}, cacheable: true, mask: secFwd,
			tags: []string{"bridge(net-a)", "host(host1)", "mac(net-a,fa:16:3e:00:00:aa)", "port(a1)", "port(a3)"}},
		{name: "bridge/learned", pkt: "from=a1 eth_dst=fa:16:3e:00:00:99", verdict: Forward,
			outputs: []Output{{PortID: "id-a2", Host: "host2", TunnelKey: 18}}, cacheable: true, mask: secFwd,
			tags: []string{"bridge(net-a)", "host(host2)", "mac(net-a,fa:16:3e:00:00:99)", "port(a1)", "port(a2)"}},
		{name: "bridge/unknown-unicast", pkt: "from=a1 eth_dst=fa:16:3e:00:00:55", verdict: Forward, flood: true, cacheable: true, mask: secFwd,
			tags: []string{"bridge(net-a)", "flood(net-a)", "mac(net-a,fa:16:3e:00:00:55)", "port(a1)"}},
		{name: "bridge/broadcast", pkt: "from=a1 eth_dst=bcast", verdict: Forward, flood: true, cacheable: true,
			mask: secFwd &^ packet.FEthDst, groupBit: true, tags: []string{"bridge(net-a)", "flood(net-a)", "port(a1)"}},
		{name: "bridge/egress-port-admin-down", pkt: "from=a1 eth_dst=@down", verdict: Drop, reason: ReasonEgressPortAdminDown, cacheable: true,
			mask: secFwd, tags: []string{"bridge(net-a)", "mac(net-a,fa:16:3e:00:00:05)", "port(a1)", "port(down)"}},
		{name: "bridge/egress-port-unbound", pkt: "from=a1 eth_dst=@loose", verdict: Drop, reason: ReasonEgressPortUnbound, cacheable: true,
			mask: secFwd, tags: []string{"bridge(net-a)", "mac(net-a,fa:16:3e:00:00:06)", "port(a1)", "port(loose)"}},
		{name: "bridge/egress-host-gone", pkt: "from=a1 eth_dst=@gone", verdict: Drop, reason: ReasonEgressPortUnbound, cacheable: true,
			mask: secFwd, tags: []string{"bridge(net-a)", "host(host7)", "mac(net-a,fa:16:3e:00:00:07)", "port(a1)", "port(gone)"}},
		{name: "bridge/hairpin", pkt: "from=a1 eth_dst=@a1", verdict: Drop, reason: ReasonHairpin, cacheable: true,
			mask: secFwd, tags: []string{"bridge(net-a)", "mac(net-a,fa:16:3e:00:00:01)", "port(a1)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := w.packet(t, tt.pkt)
			r := Simulate(w.snap, w.local, pkt, w.st, 0)
			call := "Simulate(" + tt.pkt + ")"
			if r.Verdict != tt.verdict || r.Reason != tt.reason {
				t.Errorf("%s = %s %q, want %s %q", call, r.Verdict, r.Reason, tt.verdict, tt.reason)
			}
			if !reflect.DeepEqual(r.Outputs, tt.outputs) {
				t.Errorf("%s outputs = %+v, want %+v", call, r.Outputs, tt.outputs)
			}
			if (r.Flood != nil) != tt.flood || (r.Flood != nil && *r.Flood != (Flood{BridgeID: "br-net-a", Key: 100})) {
				t.Errorf("%s flood = %+v, want flood %t on net-a key 100", call, r.Flood, tt.flood)
			}
			var learned []string
			for _, l := range r.Learn {
				if l.BridgeID != "br-net-a" || l.PortID != pkt.Ingress {
					t.Errorf("%s learns %+v, not on the ingress port", call, l)
				}
				learned = append(learned, l.MAC.String())
			}
			if !slices.Equal(learned, tt.learn) {
				t.Errorf("%s learns %v, want %v", call, learned, tt.learn)
			}
			if len(r.Emit) != tt.emits {
				t.Errorf("%s emits %d frames, want %d", call, len(r.Emit), tt.emits)
			}
			if r.Cacheable != tt.cacheable {
				t.Errorf("%s cacheable = %t, want %t", call, r.Cacheable, tt.cacheable)
			}
			wantMask := packet.MaskOf(tt.mask)
			if tt.groupBit {
				wantMask.EthDst = [6]byte{0x01}
			}
			if r.Mask != wantMask {
				t.Errorf("%s mask = %s, want %s", call, maskString(r.Mask), maskString(wantMask))
			}
			var tags []string
			for _, tg := range r.Tags {
				tags = append(tags, w.names[tg])
			}
			slices.Sort(tags)
			if !slices.Equal(tags, tt.tags) {
				t.Errorf("%s tags = %v, want %v", call, tags, tt.tags)
			}
		})
	}
}

// TestPipelineTable checks the stage table: row i is Stage i, names are
// unique, every stage runs, and every stage and every drop reason shows in
// the golden traces.
func TestPipelineTable(t *testing.T) {
	seen := map[string]bool{}
	for i, st := range Stages() {
		if int(st) != i || pipeline[i].stage != st {
			t.Errorf("pipeline row %d is stage %d", i, st)
		}
		if st.String() == "" || seen[st.String()] || st.Doc() == "" {
			t.Errorf("stage %d: name %q (duplicate: %t), doc %q", i, st, seen[st.String()], st.Doc())
		}
		seen[st.String()] = true
	}
	var golden strings.Builder
	files, _ := filepath.Glob("testdata/*.txtar")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		golden.Write(b)
	}
	for _, st := range Stages() {
		if !strings.Contains(golden.String(), " | "+st.String()+" | ") {
			t.Errorf("stage %s appears in no golden trace", st)
		}
	}
	src, err := os.ReadFile("simulate.go")
	if err != nil {
		t.Fatal(err)
	}
	reasons := regexp.MustCompile(`Reason\w* Reason = "([a-z-]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(reasons) < 10 {
		t.Fatalf("found %d reasons in simulate.go", len(reasons))
	}
	for _, m := range reasons {
		if !strings.Contains(golden.String(), "reason: "+m[1]+"\n") {
			t.Errorf("drop reason %s appears in no golden result", m[1])
		}
	}
}

// TestTagsCoverChanges checks the invalidation contract: when a topology
// change alters the Result of a cacheable simulation, the tags Apply
// returns for the change intersect the flow's tags, so the flow is
// removed. It runs every packet against every change.
func TestTagsCoverChanges(t *testing.T) {
	w := parseWorld(t, unitTopology)
	pkts := []string{
		"from=a1 eth_dst=@a2 ip_dst=@a2",
		"from=a1 eth_dst=@a3 ip_dst=@a3",
		"from=a1 eth_dst=fa:16:3e:00:00:99",
		"from=a1 eth_dst=fa:16:3e:00:00:55",
		"from=a1 eth_dst=bcast",
		"from=a1 eth_dst=@down",
		"from=a1 eth_dst=@loose",
		"from=a1 eth_dst=@gone",
		"from=a1 eth_dst=fa:16:3e:00:00:aa ip_dst=10.9.0.1",
		"from=a3 eth_src=fa:16:3e:00:00:aa eth_dst=@a2 ip_src=10.9.0.1",
		"from=a1 eth_src=fa:16:3e:00:00:66 eth_dst=@a2",
		"from=open eth_src=fa:16:3e:00:00:66 eth_dst=@a1",
		"from=open eth_src=fa:16:3e:00:00:99 eth_dst=@a1",
		"from=down eth_dst=@a1",
		"from=nobody eth_dst=@a1",
		"from=off eth_dst=@a1",
		"from=lost eth_dst=@a1",
	}
	port := func(name string) topology.Port { return *w.ports[name] }
	mac := func(s string) topology.MAC { return mustMAC(t, s) }
	changes := map[string][]topology.Change{}
	for _, name := range []string{"a1", "a2", "a3", "open", "down", "loose"} {
		p := port(name)
		p.AdminUp = !p.AdminUp
		changes["toggle admin "+name] = []topology.Change{{Kind: topology.KindPort, ID: p.ID, Port: &p}}
		changes["delete port "+name] = []topology.Change{{Kind: topology.KindPort, ID: p.ID}}
		changes["unbind "+name] = []topology.Change{{Kind: topology.KindPortBinding, ID: p.ID}}
		changes["bind "+name+" on host2"] = []topology.Change{{Kind: topology.KindPortBinding, ID: p.ID, Binding: &topology.PortBinding{PortID: p.ID, Host: "host2"}}}
		q := port(name)
		q.MAC = mac("fa:16:3e:00:00:55")
		changes["re-MAC "+name+" to the unknown MAC"] = []topology.Change{{Kind: topology.KindPort, ID: q.ID, Port: &q}}
		q2 := port(name)
		q2.PortSecurity = !q2.PortSecurity
		changes["toggle security "+name] = []topology.Change{{Kind: topology.KindPort, ID: q2.ID, Port: &q2}}
		q3 := port(name)
		q3.AllowedAddressPairs = append(slices.Clone(q3.AllowedAddressPairs), topology.AddressPair{Prefix: netipPrefix("0.0.0.0/0"), MAC: mac("fa:16:3e:00:00:66")})
		changes["allow any from fa:16:3e:00:00:66 on "+name] = []topology.Change{{Kind: topology.KindPort, ID: q3.ID, Port: &q3}}
	}
	for _, m := range []string{"fa:16:3e:00:00:55", "fa:16:3e:00:00:99", "fa:16:3e:00:00:66", "fa:16:3e:00:00:02"} {
		for _, on := range []string{"a2", "a3", "open"} {
			e := topology.MACEntry{BridgeID: "br-net-a", MAC: mac(m), PortID: "id-" + on}
			changes["learn "+m+" on "+on] = []topology.Change{{Kind: topology.KindMAC, ID: e.ID(), MAC: &e}}
		}
		e := topology.MACEntry{BridgeID: "br-net-a", MAC: mac(m)}
		changes["forget "+m] = []topology.Change{{Kind: topology.KindMAC, ID: e.ID()}}
	}
	changes["host2 dies"] = []topology.Change{{Kind: topology.KindHost, ID: "host2"}}
	changes["host7 comes back"] = []topology.Change{{Kind: topology.KindHost, ID: "host7", Host: &topology.Host{Name: "host7"}}}
	changes["host1 dies"] = []topology.Change{{Kind: topology.KindHost, ID: "host1"}}
	br := *w.snap.Bridge("br-net-a")
	br.AdminUp = false
	changes["net-a down"] = []topology.Change{{Kind: topology.KindBridge, ID: br.ID, Bridge: &br}}
	changes["net-off up"] = []topology.Change{{Kind: topology.KindBridge, ID: "br-net-off", Bridge: &topology.Bridge{ID: "br-net-off", AdminUp: true, FloodKey: 101}}}
	changes["net-nowhere appears"] = []topology.Change{{Kind: topology.KindBridge, ID: "br-net-nowhere", Bridge: &topology.Bridge{ID: "br-net-nowhere", AdminUp: true, FloodKey: 102}}}
	nb := topology.Port{ID: "id-nobody", Name: "nobody", BridgeID: "br-net-a", MAC: mac("fa:16:3e:00:00:55"), AdminUp: true, TunnelKey: 40}
	changes["port nobody appears with the unknown MAC"] = []topology.Change{{Kind: topology.KindPort, ID: nb.ID, Port: &nb},
		{Kind: topology.KindPortBinding, ID: nb.ID, Binding: &topology.PortBinding{PortID: nb.ID, Host: "host2"}}}

	for _, desc := range pkts {
		pkt := w.packet(t, desc)
		before := Simulate(w.snap, w.local, pkt, w.st, 0)
		if !before.Cacheable {
			continue
		}
		for what, ch := range changes {
			snap2, inval := w.snap.Apply(ch)
			after := Simulate(snap2, w.local, pkt, w.st, 0)
			if reflect.DeepEqual(before, after) {
				continue
			}
			hit := false
			for _, tg := range inval {
				hit = hit || containsTag(before.Tags, tg)
			}
			if !hit {
				t.Errorf("%s: change %q alters the result but invalidates none of its tags\nbefore:\n%safter:\n%s", desc, what, w.render(before), w.render(after))
			}
		}
	}
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
