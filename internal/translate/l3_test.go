package translate

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"hivenet/internal/topology"
)

func sp(s string) *string { return &s }
func ip(i int) *int       { return &i }

func TestPrepareRule(t *testing.T) {
	tests := []struct {
		name      string
		in        SecurityGroupRule
		wantField string // "" = valid
		check     func(t *testing.T, r *SecurityGroupRule)
	}{
		{name: "defaults", in: SecurityGroupRule{Direction: "ingress"}, check: func(t *testing.T, r *SecurityGroupRule) {
			if r.EtherType != "IPv4" || r.Protocol != nil {
				t.Errorf("ethertype %q protocol %v", r.EtherType, r.Protocol)
			}
		}},
		{name: "tcp range", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("TCP"), PortRangeMin: ip(22), PortRangeMax: ip(23)}, check: func(t *testing.T, r *SecurityGroupRule) {
			if *r.Protocol != "tcp" {
				t.Errorf("protocol %q not lower-cased", *r.Protocol)
			}
		}},
		{name: "tcp min only", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("tcp"), PortRangeMin: ip(80)}, check: func(t *testing.T, r *SecurityGroupRule) {
			if r.PortRangeMax == nil || *r.PortRangeMax != 80 {
				t.Errorf("max = %v, want 80", r.PortRangeMax)
			}
		}},
		{name: "prefix masked", in: SecurityGroupRule{Direction: "egress", RemoteIPPrefix: sp("10.1.2.3/16")}, check: func(t *testing.T, r *SecurityGroupRule) {
			if *r.RemoteIPPrefix != "10.1.0.0/16" {
				t.Errorf("prefix %s", *r.RemoteIPPrefix)
			}
		}},
		{name: "any protocol", in: SecurityGroupRule{Direction: "egress", Protocol: sp("any")}, check: func(t *testing.T, r *SecurityGroupRule) {
			if r.Protocol != nil {
				t.Errorf("protocol %v, want nil", *r.Protocol)
			}
		}},
		{name: "numeric protocol", in: SecurityGroupRule{Direction: "egress", Protocol: sp("47")}},
		{name: "icmp type code", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("icmp"), PortRangeMin: ip(8), PortRangeMax: ip(0)}},
		{name: "ipv6 prefix", in: SecurityGroupRule{Direction: "ingress", EtherType: "IPv6", RemoteIPPrefix: sp("fd00::/8")}},
		{name: "bad direction", in: SecurityGroupRule{Direction: "sideways"}, wantField: "direction"},
		{name: "bad ethertype", in: SecurityGroupRule{Direction: "ingress", EtherType: "IPX"}, wantField: "ethertype"},
		{name: "bad protocol", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("tcpp")}, wantField: "protocol"},
		{name: "protocol 256", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("256")}, wantField: "protocol"},
		{name: "icmpv6 on ipv4", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("icmpv6")}, wantField: "protocol"},
		{name: "port zero", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("tcp"), PortRangeMin: ip(0), PortRangeMax: ip(10)}, wantField: "port_range_min"},
		{name: "port too big", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("udp"), PortRangeMin: ip(1), PortRangeMax: ip(65536)}, wantField: "port_range_max"},
		{name: "min above max", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("tcp"), PortRangeMin: ip(90), PortRangeMax: ip(80)}, wantField: "port_range_min"},
		{name: "max only", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("tcp"), PortRangeMax: ip(80)}, wantField: "port_range_min"},
		{name: "ports without protocol", in: SecurityGroupRule{Direction: "ingress", PortRangeMin: ip(1), PortRangeMax: ip(2)}, wantField: "port_range_min"},
		{name: "ports on gre", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("gre"), PortRangeMax: ip(2)}, wantField: "port_range_max"},
		{name: "icmp type 256", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("icmp"), PortRangeMin: ip(256)}, wantField: "port_range_min"},
		{name: "icmp code 300", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("icmp"), PortRangeMin: ip(3), PortRangeMax: ip(300)}, wantField: "port_range_max"},
		{name: "icmp code without type", in: SecurityGroupRule{Direction: "ingress", Protocol: sp("icmp"), PortRangeMax: ip(0)}, wantField: "port_range_max"},
		{name: "bad prefix", in: SecurityGroupRule{Direction: "ingress", RemoteIPPrefix: sp("10.0.0.0/33")}, wantField: "remote_ip_prefix"},
		{name: "prefix family", in: SecurityGroupRule{Direction: "ingress", EtherType: "IPv6", RemoteIPPrefix: sp("10.0.0.0/8")}, wantField: "remote_ip_prefix"},
		{name: "prefix and group", in: SecurityGroupRule{Direction: "ingress", RemoteIPPrefix: sp("10.0.0.0/8"), RemoteGroupID: sp("g")}, wantField: "remote_ip_prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.in
			err := PrepareRule(&r)
			if tt.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.wantField {
					t.Fatalf("PrepareRule(%+v) = %v, want FieldError on %s", tt.in, err, tt.wantField)
				}
				if !strings.Contains(err.Error(), tt.wantField) {
					t.Errorf("error %q does not name %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("PrepareRule(%+v) = %v", tt.in, err)
			}
			if tt.check != nil {
				tt.check(t, &r)
			}
		})
	}
}

// Security group rules become chain rules: direction picks the chain and
// the side (ingress: source, egress: destination), port ranges the
// destination port, ICMP ranges type and code.
func TestTopoRule(t *testing.T) {
	g := &SecurityGroup{ID: "g1", Name: "web"}
	tests := []struct {
		name string
		in   SecurityGroupRule
		want topology.Rule
	}{
		{
			name: "ingress ssh from cidr",
			in:   SecurityGroupRule{ID: "r1234567890", Direction: "ingress", EtherType: "IPv4", Protocol: sp("tcp"), PortRangeMin: ip(22), PortRangeMax: ip(22), RemoteIPPrefix: sp("192.0.2.0/24")},
			want: topology.Rule{ID: "r1234567890", Action: topology.RuleAccept, EthType: 0x0800, Proto: 6, SrcPrefix: netip.MustParsePrefix("192.0.2.0/24"),
				DstPorts: topology.PortRange{Min: 22, Max: 22}, ICMPType: -1, ICMPCode: -1, Comment: "sg web rule r1234567"},
		},
		{
			name: "egress any ipv6",
			in:   SecurityGroupRule{ID: "r2", Direction: "egress", EtherType: "IPv6"},
			want: topology.Rule{ID: "r2", Action: topology.RuleAccept, EthType: 0x86dd, ICMPType: -1, ICMPCode: -1, Comment: "sg web rule r2"},
		},
		{
			name: "ingress from group",
			in:   SecurityGroupRule{ID: "r3", Direction: "ingress", EtherType: "IPv4", RemoteGroupID: sp("g2")},
			want: topology.Rule{ID: "r3", Action: topology.RuleAccept, EthType: 0x0800, SrcGroup: "g2", ICMPType: -1, ICMPCode: -1, Comment: "sg web rule r3"},
		},
		{
			name: "egress udp range to group",
			in:   SecurityGroupRule{ID: "r4", Direction: "egress", EtherType: "IPv4", Protocol: sp("udp"), PortRangeMin: ip(1000), PortRangeMax: ip(2000), RemoteGroupID: sp("g2")},
			want: topology.Rule{ID: "r4", Action: topology.RuleAccept, EthType: 0x0800, Proto: 17, DstGroup: "g2", DstPorts: topology.PortRange{Min: 1000, Max: 2000},
				ICMPType: -1, ICMPCode: -1, Comment: "sg web rule r4"},
		},
		{
			name: "icmp echo request",
			in:   SecurityGroupRule{ID: "r5", Direction: "ingress", EtherType: "IPv4", Protocol: sp("icmp"), PortRangeMin: ip(8)},
			want: topology.Rule{ID: "r5", Action: topology.RuleAccept, EthType: 0x0800, Proto: 1, ICMPType: 8, ICMPCode: -1, Comment: "sg web rule r5"},
		},
		{
			name: "icmp type and code 0",
			in:   SecurityGroupRule{ID: "r6", Direction: "ingress", EtherType: "IPv4", Protocol: sp("icmp"), PortRangeMin: ip(3), PortRangeMax: ip(0)},
			want: topology.Rule{ID: "r6", Action: topology.RuleAccept, EthType: 0x0800, Proto: 1, ICMPType: 3, ICMPCode: 0, Comment: "sg web rule r6"},
		},
		{
			name: "icmp on ipv6 is icmpv6",
			in:   SecurityGroupRule{ID: "r7", Direction: "ingress", EtherType: "IPv6", Protocol: sp("icmp")},
			want: topology.Rule{ID: "r7", Action: topology.RuleAccept, EthType: 0x86dd, Proto: 58, ICMPType: -1, ICMPCode: -1, Comment: "sg web rule r7"},
		},
		{
			name: "numeric protocol",
			in:   SecurityGroupRule{ID: "r8", Direction: "egress", EtherType: "IPv4", Protocol: sp("132"), PortRangeMin: ip(5), PortRangeMax: ip(6)},
			want: topology.Rule{ID: "r8", Action: topology.RuleAccept, EthType: 0x0800, Proto: 132, DstPorts: topology.PortRange{Min: 5, Max: 6}, ICMPType: -1, ICMPCode: -1, Comment: "sg web rule r8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.in
			if err := PrepareRule(&r); err != nil {
				t.Fatalf("PrepareRule: %v", err)
			}
			got, err := TopoRule(g, &r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("TopoRule(%+v) =\n %+v\nwant\n %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPortChainsAndAddrGroup(t *testing.T) {
	n := 0
	newID := func() string { n++; return fmt.Sprintf("rule%d", n) }
	def := &SecurityGroup{ID: "gdef", Name: "default", ProjectID: "p"}
	def.Rules = DefaultGroupRules(def, newID)
	web := &SecurityGroup{ID: "gweb", Name: "web", ProjectID: "p"}
	web.Rules = append(NewGroupRules(web, newID), SecurityGroupRule{ID: newID(), Direction: "ingress", EtherType: "IPv4", Protocol: sp("tcp"), PortRangeMin: ip(80), PortRangeMax: ip(80)})
	summary := func(c *topology.Chain) []string {
		var s []string
		for _, r := range c.Rules {
			s = append(s, fmt.Sprintf("%s %s->%s ct=%d eth=%#x proto=%d src=%s/%s dst=%s/%s ports=%v", r.Comment, r.Action, r.JumpChain, r.CTState, r.EthType, r.Proto, r.SrcPrefix, r.SrcGroup, r.DstPrefix, r.DstGroup, r.DstPorts))
		}
		return s
	}
	tests := []struct {
		name         string
		chain        func() (*topology.Chain, *topology.Chain)
		wantIDs      [2]string
		wantDefaults [2]topology.RuleAction
		wantIn       []string
		wantOut      []string
	}{
		{
			name: "port jumps to its groups",
			chain: func() (*topology.Chain, *topology.Chain) {
				return PortChains(&Port{ID: "port1", SecurityGroups: []string{"gdef", "gweb"}})
			},
			wantIDs:      [2]string{"in-port1", "out-port1"},
			wantDefaults: [2]topology.RuleAction{topology.RuleDrop, topology.RuleDrop},
			wantIn: []string{
				"established accept-> ct=2 eth=0x0 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
				"sg gdef jump->sg-in-gdef ct=0 eth=0x0 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
				"sg gweb jump->sg-in-gweb ct=0 eth=0x0 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
			},
			wantOut: []string{
				"established accept-> ct=2 eth=0x0 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
				"sg gdef jump->sg-out-gdef ct=0 eth=0x0 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
				"sg gweb jump->sg-out-gweb ct=0 eth=0x0 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
			},
		},
		{
			name:         "port without groups drops all",
			chain:        func() (*topology.Chain, *topology.Chain) { return PortChains(&Port{ID: "port2"}) },
			wantIDs:      [2]string{"in-port2", "out-port2"},
			wantDefaults: [2]topology.RuleAction{topology.RuleDrop, topology.RuleDrop},
			wantIn:       []string{"established accept-> ct=2 eth=0x0 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}"},
			wantOut:      []string{"established accept-> ct=2 eth=0x0 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}"},
		},
		{
			name: "default group",
			chain: func() (*topology.Chain, *topology.Chain) {
				in, out, err := GroupChains(def)
				if err != nil {
					t.Fatal(err)
				}
				return in, out
			},
			wantIDs:      [2]string{"sg-in-gdef", "sg-out-gdef"},
			wantDefaults: [2]topology.RuleAction{topology.RuleReturn, topology.RuleReturn},
			wantIn: []string{
				"sg default rule rule3 accept-> ct=0 eth=0x800 proto=0 src=invalid Prefix/gdef dst=invalid Prefix/ ports={0 0}",
				"sg default rule rule4 accept-> ct=0 eth=0x86dd proto=0 src=invalid Prefix/gdef dst=invalid Prefix/ ports={0 0}",
			},
			wantOut: []string{
				"sg default rule rule1 accept-> ct=0 eth=0x800 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
				"sg default rule rule2 accept-> ct=0 eth=0x86dd proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
			},
		},
		{
			name: "web group",
			chain: func() (*topology.Chain, *topology.Chain) {
				in, out, err := GroupChains(web)
				if err != nil {
					t.Fatal(err)
				}
				return in, out
			},
			wantIDs:      [2]string{"sg-in-gweb", "sg-out-gweb"},
			wantDefaults: [2]topology.RuleAction{topology.RuleReturn, topology.RuleReturn},
			wantIn:       []string{"sg web rule rule7 accept-> ct=0 eth=0x800 proto=6 src=invalid Prefix/ dst=invalid Prefix/ ports={80 80}"},
			wantOut: []string{
				"sg web rule rule5 accept-> ct=0 eth=0x800 proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
				"sg web rule rule6 accept-> ct=0 eth=0x86dd proto=0 src=invalid Prefix/ dst=invalid Prefix/ ports={0 0}",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, out := tt.chain()
			if in.ID != tt.wantIDs[0] || out.ID != tt.wantIDs[1] || in.Default != tt.wantDefaults[0] || out.Default != tt.wantDefaults[1] {
				t.Errorf("chains %s/%s defaults %v/%v, want %v %v", in.ID, out.ID, in.Default, out.Default, tt.wantIDs, tt.wantDefaults)
			}
			if got := summary(in); !reflect.DeepEqual(got, tt.wantIn) {
				t.Errorf("inbound/ingress chain:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantIn, "\n"))
			}
			if got := summary(out); !reflect.DeepEqual(got, tt.wantOut) {
				t.Errorf("outbound/egress chain:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantOut, "\n"))
			}
		})
	}
}

func TestAddrGroup(t *testing.T) {
	members := []*Port{
		{ID: "a", FixedIPs: []FixedIP{{"s", "10.0.0.9"}, {"s2", "10.1.0.1"}}},
		{ID: "b", FixedIPs: []FixedIP{{"s", "10.0.0.3"}}},
		{ID: "c", FixedIPs: []FixedIP{{"s3", "10.0.0.9"}}}, // same address on another network
	}
	members[1].AllowedAddressPairs = []AddressPair{{IPAddress: "10.0.0.77"}, {IPAddress: "10.8.0.0/16"}} // the CIDR is no member
	ag, err := AddrGroup("gdef", members)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("10.0.0.77"), netip.MustParseAddr("10.1.0.1")}
	if ag.ID != "gdef" || !reflect.DeepEqual(ag.Addrs, want) {
		t.Errorf("AddrGroup = %+v, want %v", ag, want)
	}
}

func TestRuleKeyDuplicates(t *testing.T) {
	a := SecurityGroupRule{ID: "1", Direction: "ingress", EtherType: "IPv4", Protocol: sp("tcp"), PortRangeMin: ip(22), PortRangeMax: ip(22)}
	b := a
	b.ID, b.Protocol, b.Description = "2", sp("6"), "same thing by number"
	c := a
	c.PortRangeMax = ip(23)
	if RuleKey(&a) != RuleKey(&b) {
		t.Errorf("tcp and 6 differ: %s vs %s", RuleKey(&a), RuleKey(&b))
	}
	if RuleKey(&a) == RuleKey(&c) {
		t.Errorf("different ranges have the same key %s", RuleKey(&a))
	}
}

func TestTopoRouterAndFloatingIP(t *testing.T) {
	r := &Router{ID: "r1", Name: "rt", ProjectID: "p", AdminStateUp: true,
		Routes:      []RouterRoute{{Destination: "10.9.0.0/16", NextHop: "10.0.0.254"}},
		GatewayInfo: &GatewayInfo{NetworkID: "ext", EnableSNAT: true}}
	gw := &Port{ID: "gwp", FixedIPs: []FixedIP{{"es", "203.0.113.5"}}}
	ext := &Subnet{ID: "es", GatewayIP: sp("203.0.113.1")}
	got, err := TopoRouter(r, gw, ext)
	if err != nil {
		t.Fatal(err)
	}
	want := &topology.Router{ID: "r1", Name: "rt", ProjectID: "p", AdminUp: true,
		Routes:        []topology.Route{{Dst: netip.MustParsePrefix("10.9.0.0/16"), NextHop: netip.MustParseAddr("10.0.0.254")}},
		GatewayPortID: "gwp", DefaultNextHop: netip.MustParseAddr("203.0.113.1"), SNAT: true, SNATAddr: netip.MustParseAddr("203.0.113.5")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TopoRouter = %+v\nwant %+v", got, want)
	}
	r.GatewayInfo = nil
	if got, _ := TopoRouter(r, nil, nil); got.GatewayPortID != "" || got.SNAT || got.DefaultNextHop.IsValid() {
		t.Errorf("no gateway: %+v", got)
	}

	f := &FloatingIP{ID: "f1", ProjectID: "p", FloatingNetworkID: "ext", FloatingIPAddress: "203.0.113.9"}
	tf, err := TopoFloatingIP(f)
	if err != nil || *tf != (topology.FloatingIP{ID: "f1", ProjectID: "p", Addr: netip.MustParseAddr("203.0.113.9"), BridgeID: "ext"}) {
		t.Errorf("unassociated TopoFloatingIP = %+v, %v", tf, err)
	}
	if idx := FloatingIPIndexes(f); !reflect.DeepEqual(idx, []string{"ip/ext/203.0.113.9"}) {
		t.Errorf("FloatingIPIndexes = %v", idx)
	}
	f.PortID, f.FixedIPAddress, f.RouterID = sp("port1"), sp("10.0.0.5"), sp("r1")
	tf, err = TopoFloatingIP(f)
	if err != nil || tf.PortID != "port1" || tf.RouterID != "r1" || tf.FixedIP != netip.MustParseAddr("10.0.0.5") {
		t.Errorf("associated TopoFloatingIP = %+v, %v", tf, err)
	}
	if idx := FloatingIPIndexes(f); !reflect.DeepEqual(idx, []string{"ip/ext/203.0.113.9", "fipport/port1/10.0.0.5", "routerfip/r1/f1"}) {
		t.Errorf("FloatingIPIndexes = %v", idx)
	}
}

func TestRouterPortTranslation(t *testing.T) {
	p := &Port{ID: "rp", NetworkID: "n1", MACAddress: "fa:16:3e:00:00:01", DeviceOwner: OwnerRouterInterface, DeviceID: "r1",
		PortSecurityEnabled: true, TunnelKey: 3, FixedIPs: []FixedIP{{"s1", "10.0.0.1"}}}
	tp, err := TopoPort(p)
	if err != nil {
		t.Fatal(err)
	}
	if tp.RouterID != "r1" || tp.InboundChain != "" || tp.OutboundChain != "" {
		t.Errorf("router port = %+v: want RouterID r1 and no chains", tp)
	}
	want := []string{"mac/n1/fa:16:3e:00:00:01", "tunnelkey/3", "netport/n1/rp", "ip/n1/10.0.0.1", "routerport/r1/rp", "subnetrouter/s1/rp"}
	if got := PortIndexes(p); !reflect.DeepEqual(got, want) {
		t.Errorf("PortIndexes = %v, want %v", got, want)
	}
	// A port that merely claims an owner without a device_id is no router port.
	p.DeviceID = ""
	if tp, _ := TopoPort(p); tp.RouterID != "" || tp.InboundChain == "" {
		t.Errorf("ownerless router_interface port = %+v", tp)
	}
}
