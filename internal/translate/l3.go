package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"hivenet/internal/topology"
)

// L3 translation: routers, floating IPs, security groups.
//
// Security groups become filter chains: each port with port security on
// gets an OutboundChain (what the VM sends) and an InboundChain (what it
// receives). Both start with "conntrack established -> accept", jump to
// the egress (resp. ingress) chain of each of the port's groups, which
// holds the group's rules, and end in drop, Neutron's semantics; a port
// with port security on and no group sends and receives nothing. A rule
// with remote_group_id matches the addresses of an IPAddrGroup with the
// group's ID, holding the addresses of the group's member ports.
//
// Jumps rather than per-port copies of the rules keep a rule write at
// O(1) keys: copying rules into every member's chains made a rule write
// O(members × rules) and, at 100 members, larger than etcd's request
// limit (measured).

// Protocol numbers of the names a rule may use.
var protoNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "dccp": 33, "gre": 47, "esp": 50, "ah": 51,
	"icmpv6": 58, "ipv6-icmp": 58, "ospf": 89, "pim": 103, "vrrp": 112, "sctp": 132, "udplite": 136,
}

const (
	ethIPv4 = 0x0800
	ethIPv6 = 0x86dd
)

// Chain IDs of a port.
func InboundChainID(portID string) string  { return "in-" + portID }
func OutboundChainID(portID string) string { return "out-" + portID }

// IsRouterPort reports whether p is a port made by the router API.
func IsRouterPort(p *Port) bool {
	return (p.DeviceOwner == OwnerRouterInterface || p.DeviceOwner == OwnerRouterGateway) && p.DeviceID != ""
}

// HasChains reports whether p gets filter chains: port security on and not
// a router's port.
func HasChains(p *Port) bool { return p.PortSecurityEnabled && !IsRouterPort(p) }

// ruleProto returns the IP protocol of r (0: any) and whether ports apply
// (TCP, UDP, SCTP, DCCP, UDP-Lite) or ICMP type/code do.
func ruleProto(r *SecurityGroupRule) (proto uint8, ports, icmp bool, err error) {
	if r.Protocol == nil || *r.Protocol == "" || *r.Protocol == "any" {
		return 0, false, false, nil
	}
	s := strings.ToLower(*r.Protocol)
	if n, ok := protoNumbers[s]; ok {
		proto = n
	} else {
		v, perr := strconv.ParseUint(s, 10, 8)
		if perr != nil {
			return 0, false, false, fieldErr("protocol", "protocol '%s' is not supported: use a name (tcp, udp, icmp, icmpv6, ...), a number 0-255 or null", *r.Protocol)
		}
		proto = uint8(v)
	}
	if proto == 1 && r.EtherType == "IPv6" {
		proto = 58 // "icmp" on an IPv6 rule means ICMPv6, as in Neutron
	}
	switch proto {
	case 6, 17, 33, 132, 136:
		ports = true
	case 1, 58:
		icmp = true
	}
	return proto, ports, icmp, nil
}

// PrepareRule validates a security group rule being created and
// normalizes it in place (direction, ethertype default IPv4, protocol
// lower case, remote_ip_prefix masked). Each error is a *FieldError
// naming the attribute.
func PrepareRule(r *SecurityGroupRule) error {
	if r.Direction != "ingress" && r.Direction != "egress" {
		return fieldErr("direction", "'%s' is not in ['ingress', 'egress']", r.Direction)
	}
	if r.EtherType == "" {
		r.EtherType = "IPv4"
	}
	switch strings.ToLower(r.EtherType) {
	case "ipv4":
		r.EtherType = "IPv4"
	case "ipv6":
		r.EtherType = "IPv6"
	default:
		return fieldErr("ethertype", "'%s' is not in ['IPv4', 'IPv6']", r.EtherType)
	}
	if r.Protocol != nil {
		p := strings.ToLower(*r.Protocol)
		if p == "" || p == "any" {
			r.Protocol = nil
		} else {
			r.Protocol = &p
		}
	}
	proto, ports, icmp, err := ruleProto(r)
	if err != nil {
		return err
	}
	if r.Protocol != nil && r.EtherType == "IPv4" && proto == 58 {
		return fieldErr("protocol", "protocol %s is an IPv6 protocol; it conflicts with ethertype IPv4", *r.Protocol)
	}
	min, max := r.PortRangeMin, r.PortRangeMax
	switch {
	case ports:
		if min == nil && max != nil {
			return fieldErr("port_range_min", "port_range_min is required with port_range_max")
		}
		if min != nil && max == nil {
			v := *min
			r.PortRangeMax, max = &v, &v
		}
		if min != nil {
			if *min < 1 || *min > 65535 {
				return fieldErr("port_range_min", "port %d is out of range 1-65535", *min)
			}
			if *max < 1 || *max > 65535 {
				return fieldErr("port_range_max", "port %d is out of range 1-65535", *max)
			}
			if *min > *max {
				return fieldErr("port_range_min", "port_range_min %d is greater than port_range_max %d", *min, *max)
			}
		}
	case icmp:
		if min != nil && (*min < 0 || *min > 255) {
			return fieldErr("port_range_min", "ICMP type (port_range_min) %d is out of range 0-255", *min)
		}
		if max != nil && (*max < 0 || *max > 255) {
			return fieldErr("port_range_max", "ICMP code (port_range_max) %d is out of range 0-255", *max)
		}
		if max != nil && min == nil {
			return fieldErr("port_range_max", "an ICMP code (port_range_max) requires an ICMP type (port_range_min)")
		}
	default:
		if min != nil || max != nil {
			name := "port_range_min"
			if min == nil {
				name = "port_range_max"
			}
			return fieldErr(name, "port ranges apply only to tcp, udp, sctp, dccp and udplite rules (and type/code to icmp), not to protocol %s", protoName(r.Protocol))
		}
	}
	if r.RemoteIPPrefix != nil && *r.RemoteIPPrefix == "" {
		r.RemoteIPPrefix = nil
	}
	if r.RemoteGroupID != nil && *r.RemoteGroupID == "" {
		r.RemoteGroupID = nil
	}
	if r.RemoteIPPrefix != nil {
		if r.RemoteGroupID != nil {
			return fieldErr("remote_ip_prefix", "only one of remote_ip_prefix and remote_group_id may be given")
		}
		pfx, err := parseAnyPrefix(*r.RemoteIPPrefix)
		if err != nil {
			return fieldErr("remote_ip_prefix", "'%s' is not a valid CIDR", *r.RemoteIPPrefix)
		}
		if pfx.Addr().Is4() != (r.EtherType == "IPv4") {
			return fieldErr("remote_ip_prefix", "%s does not match ethertype %s", *r.RemoteIPPrefix, r.EtherType)
		}
		s := pfx.Masked().String()
		r.RemoteIPPrefix = &s
	}
	return nil
}

func protoName(p *string) string {
	if p == nil {
		return "any"
	}
	return *p
}

func parseAnyPrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

// RuleKey identifies what a rule matches (everything but its ID and
// description): two rules of a group with the same key are duplicates.
func RuleKey(r *SecurityGroupRule) string {
	str := func(p *string) string {
		if p == nil {
			return "*"
		}
		return *p
	}
	num := func(p *int) string {
		if p == nil {
			return "*"
		}
		return strconv.Itoa(*p)
	}
	proto := "*"
	if n, _, _, err := ruleProto(r); err == nil && r.Protocol != nil {
		proto = strconv.Itoa(int(n))
	}
	return strings.Join([]string{r.Direction, r.EtherType, proto, num(r.PortRangeMin), num(r.PortRangeMax), str(r.RemoteIPPrefix), str(r.RemoteGroupID)}, "|")
}

// TopoRule translates one rule of group g (g.Name names it in traces).
// The rule must have passed PrepareRule.
func TopoRule(g *SecurityGroup, r *SecurityGroupRule) (topology.Rule, error) {
	proto, ports, icmp, err := ruleProto(r)
	if err != nil {
		return topology.Rule{}, err
	}
	tr := topology.Rule{
		ID: r.ID, Action: topology.RuleAccept, Proto: proto, ICMPType: -1, ICMPCode: -1,
		Comment: "sg " + g.Name + " rule " + short(r.ID),
	}
	tr.EthType = ethIPv4
	if r.EtherType == "IPv6" {
		tr.EthType = ethIPv6
	}
	switch {
	case ports && r.PortRangeMin != nil:
		tr.DstPorts = topology.PortRange{Min: uint16(*r.PortRangeMin), Max: uint16(*r.PortRangeMax)}
	case icmp:
		if r.PortRangeMin != nil {
			tr.ICMPType = int16(*r.PortRangeMin)
		}
		if r.PortRangeMax != nil {
			tr.ICMPCode = int16(*r.PortRangeMax)
		}
	}
	var pfx netip.Prefix
	if r.RemoteIPPrefix != nil {
		if pfx, err = netip.ParsePrefix(*r.RemoteIPPrefix); err != nil {
			return topology.Rule{}, fmt.Errorf("translate: rule %s: remote_ip_prefix: %w", r.ID, err)
		}
	}
	var group string
	if r.RemoteGroupID != nil {
		group = *r.RemoteGroupID
	}
	if r.Direction == "ingress" {
		tr.SrcPrefix, tr.SrcGroup = pfx, group
	} else {
		tr.DstPrefix, tr.DstGroup = pfx, group
	}
	return tr, nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// PortChains returns the inbound and outbound chains of port p (which
// must have chains, HasChains): "conntrack established -> accept", then
// one jump per security group (in p.SecurityGroups order) to the group's
// chain of that direction, then drop. A rule change thus rewrites only
// its group's chain, never the members' chains.
func PortChains(p *Port) (in, out *topology.Chain) {
	name := p.Name
	if name == "" {
		name = short(p.ID)
	}
	established := topology.Rule{ID: "established", Action: topology.RuleAccept, CTState: topology.CTEstablished,
		ICMPType: -1, ICMPCode: -1, Comment: "established"}
	in = &topology.Chain{ID: InboundChainID(p.ID), Name: "port " + name + " inbound", Rules: []topology.Rule{established}, Default: topology.RuleDrop}
	out = &topology.Chain{ID: OutboundChainID(p.ID), Name: "port " + name + " outbound", Rules: []topology.Rule{established}, Default: topology.RuleDrop}
	for _, g := range p.SecurityGroups {
		jump := func(chain string) topology.Rule {
			return topology.Rule{ID: "sg-" + g, Action: topology.RuleJump, JumpChain: chain, ICMPType: -1, ICMPCode: -1, Comment: "sg " + short(g)}
		}
		in.Rules = append(in.Rules, jump(GroupIngressChainID(g)))
		out.Rules = append(out.Rules, jump(GroupEgressChainID(g)))
	}
	return in, out
}

// Chain IDs of a security group: its ingress rules (jumped to from its
// members' inbound chains) and egress rules (from their outbound chains).
func GroupIngressChainID(groupID string) string { return "sg-in-" + groupID }
func GroupEgressChainID(groupID string) string  { return "sg-out-" + groupID }

// GroupChains compiles group g's rules into its ingress and egress
// chains. They are only jumped to: a packet no rule accepts returns to
// the port's chain (whose end drops).
func GroupChains(g *SecurityGroup) (ingress, egress *topology.Chain, err error) {
	ingress = &topology.Chain{ID: GroupIngressChainID(g.ID), Name: "sg " + g.Name + " ingress", Rules: []topology.Rule{}, Default: topology.RuleReturn}
	egress = &topology.Chain{ID: GroupEgressChainID(g.ID), Name: "sg " + g.Name + " egress", Rules: []topology.Rule{}, Default: topology.RuleReturn}
	for i := range g.Rules {
		r, err := TopoRule(g, &g.Rules[i])
		if err != nil {
			return nil, nil, err
		}
		if g.Rules[i].Direction == "ingress" {
			ingress.Rules = append(ingress.Rules, r)
		} else {
			egress.Rules = append(egress.Rules, r)
		}
	}
	return ingress, egress, nil
}

// GroupAddrs returns the addresses port p contributes to the address
// groups of its security groups: its fixed IPs and the single addresses
// of its allowed address pairs (as Neutron's remote-group sets include
// them; a CIDR pair cannot be a member of an address set and is left
// out), sorted, without duplicates.
func GroupAddrs(p *Port) []netip.Addr {
	var out []netip.Addr
	for _, f := range p.FixedIPs {
		if a, err := netip.ParseAddr(f.IPAddress); err == nil {
			out = append(out, a)
		}
	}
	for _, ap := range p.AllowedAddressPairs {
		if pfx, err := ParseAddrOrPrefix(ap.IPAddress); err == nil && pfx.IsSingleIP() {
			out = append(out, pfx.Addr())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// AddrGroup returns the address group of security group id: the
// GroupAddrs of members, sorted, without duplicates.
func AddrGroup(id string, members []*Port) (*topology.IPAddrGroup, error) {
	g := &topology.IPAddrGroup{ID: id, Addrs: []netip.Addr{}}
	for _, p := range members {
		g.Addrs = append(g.Addrs, GroupAddrs(p)...)
	}
	slices.SortFunc(g.Addrs, netip.Addr.Compare)
	g.Addrs = slices.Compact(g.Addrs)
	return g, nil
}

// DefaultGroupRules returns the rules of a project's default group:
// egress IPv4 and IPv6 to anywhere, ingress IPv4 and IPv6 from members of
// the group itself. newID supplies rule IDs.
func DefaultGroupRules(g *SecurityGroup, newID func() string) []SecurityGroupRule {
	self := g.ID
	out := NewGroupRules(g, newID)
	for _, et := range []string{"IPv4", "IPv6"} {
		out = append(out, SecurityGroupRule{ID: newID(), SecurityGroupID: g.ID, Direction: "ingress", EtherType: et,
			RemoteGroupID: &self, ProjectID: g.ProjectID, TenantID: g.ProjectID, RevisionNumber: 1})
	}
	return out
}

// NewGroupRules returns the rules every new group starts with: egress
// IPv4 and IPv6 to anywhere.
func NewGroupRules(g *SecurityGroup, newID func() string) []SecurityGroupRule {
	var out []SecurityGroupRule
	for _, et := range []string{"IPv4", "IPv6"} {
		out = append(out, SecurityGroupRule{ID: newID(), SecurityGroupID: g.ID, Direction: "egress", EtherType: et,
			ProjectID: g.ProjectID, TenantID: g.ProjectID, RevisionNumber: 1})
	}
	return out
}

// TopoRouter translates a router. gw is its gateway port and ext the
// external subnet of the gateway's first address (both nil without a
// gateway). The router must have passed validation.
func TopoRouter(r *Router, gw *Port, ext *Subnet) (*topology.Router, error) {
	tr := &topology.Router{ID: r.ID, Name: r.Name, ProjectID: r.ProjectID, AdminUp: r.AdminStateUp}
	for _, rt := range r.Routes {
		d, err := netip.ParsePrefix(rt.Destination)
		if err != nil {
			return nil, fmt.Errorf("translate: router %s: routes: %w", r.ID, err)
		}
		nh, err := netip.ParseAddr(rt.NextHop)
		if err != nil {
			return nil, fmt.Errorf("translate: router %s: routes: %w", r.ID, err)
		}
		tr.Routes = append(tr.Routes, topology.Route{Dst: d, NextHop: nh})
	}
	if gw == nil || r.GatewayInfo == nil {
		return tr, nil
	}
	tr.GatewayPortID = gw.ID
	if ext != nil && ext.GatewayIP != nil {
		a, err := netip.ParseAddr(*ext.GatewayIP)
		if err != nil {
			return nil, fmt.Errorf("translate: router %s: external gateway: %w", r.ID, err)
		}
		tr.DefaultNextHop = a
	}
	tr.SNAT = r.GatewayInfo.EnableSNAT
	if len(gw.FixedIPs) > 0 {
		a, err := netip.ParseAddr(gw.FixedIPs[0].IPAddress)
		if err != nil {
			return nil, fmt.Errorf("translate: router %s: gateway port: %w", r.ID, err)
		}
		tr.SNATAddr = a
	}
	return tr, nil
}

// TopoFloatingIP translates a floating IP.
func TopoFloatingIP(f *FloatingIP) (*topology.FloatingIP, error) {
	a, err := netip.ParseAddr(f.FloatingIPAddress)
	if err != nil {
		return nil, fmt.Errorf("translate: floating IP %s: %w", f.ID, err)
	}
	tf := &topology.FloatingIP{ID: f.ID, ProjectID: f.ProjectID, Addr: a, BridgeID: f.FloatingNetworkID}
	if f.PortID != nil && f.FixedIPAddress != nil && f.RouterID != nil {
		if tf.FixedIP, err = netip.ParseAddr(*f.FixedIPAddress); err != nil {
			return nil, fmt.Errorf("translate: floating IP %s: fixed_ip_address: %w", f.ID, err)
		}
		tf.PortID, tf.RouterID = *f.PortID, *f.RouterID
	}
	return tf, nil
}

// L3 index keys (relative to store.PrefixIndex; the value is the owner).

// RouterPortIndex lists a router's ports (owner: the port).
func RouterPortIndex(routerID, portID string) string { return "routerport/" + routerID + "/" + portID }

// RouterPortPrefix is the prefix of a router's RouterPortIndex keys.
func RouterPortPrefix(routerID string) string { return "routerport/" + routerID + "/" }

// SubnetRouterIndex lists the router interface ports on a subnet (owner:
// the port).
func SubnetRouterIndex(subnetID, portID string) string {
	return "subnetrouter/" + subnetID + "/" + portID
}

// SubnetRouterPrefix is the prefix of a subnet's SubnetRouterIndex keys.
func SubnetRouterPrefix(subnetID string) string { return "subnetrouter/" + subnetID + "/" }

// SGMemberIndex lists a security group's member ports (owner: the port).
func SGMemberIndex(groupID, portID string) string { return "sgport/" + groupID + "/" + portID }

// SGMemberPrefix is the prefix of a group's SGMemberIndex keys.
func SGMemberPrefix(groupID string) string { return "sgport/" + groupID + "/" }

// SGAddrIndex records that port contributes address a to group's
// address group (owner: the port): removing a from the group when the
// port leaves takes one small range read of the other contributors.
func SGAddrIndex(groupID string, a netip.Addr, portID string) string {
	return SGAddrPrefix(groupID, a) + portID
}

// SGAddrPrefix is the prefix of the SGAddrIndex keys of one address.
func SGAddrPrefix(groupID string, a netip.Addr) string {
	return "sgaddr/" + groupID + "/" + a.String() + "/"
}

// SGRuleIndex maps a rule to its group (owner: the group).
func SGRuleIndex(ruleID string) string { return "sgrule/" + ruleID }

// SGRefIndex records that a rule of another group refers to groupID as
// its remote group (owner: the referring group).
func SGRefIndex(groupID, ruleID string) string { return "sgref/" + groupID + "/" + ruleID }

// SGRefPrefix is the prefix of the references to a group.
func SGRefPrefix(groupID string) string { return "sgref/" + groupID + "/" }

// SGDefaultIndex names a project's default group (owner: the group).
func SGDefaultIndex(project string) string { return "sgdefault/" + project }

// PhysNetIndex makes a physical network's flat external network unique
// (owner: the network).
func PhysNetIndex(physnet string) string { return "physnet/" + physnet }

// FIPPortIndex makes a (port, fixed IP) associated with at most one
// floating IP (owner: the floating IP).
func FIPPortIndex(portID, fixedIP string) string { return "fipport/" + portID + "/" + fixedIP }

// RouterFIPIndex lists the floating IPs a router translates (owner: the
// floating IP).
func RouterFIPIndex(routerID, fipID string) string { return "routerfip/" + routerID + "/" + fipID }

// RouterFIPPrefix is the prefix of a router's RouterFIPIndex keys.
func RouterFIPPrefix(routerID string) string { return "routerfip/" + routerID + "/" }

// DefaultGroupName is the name of a project's default group; no other
// group may have it.
const DefaultGroupName = "default"

// SecurityGroupIndexes returns the index keys a group owns: one per rule,
// one per reference to another group (remote_group_id), and its
// project's default key when it is the default group.
func SecurityGroupIndexes(g *SecurityGroup) []string {
	var out []string
	if g.Name == DefaultGroupName {
		out = append(out, SGDefaultIndex(g.ProjectID))
	}
	for _, r := range g.Rules {
		out = append(out, SGRuleIndex(r.ID))
		if r.RemoteGroupID != nil && *r.RemoteGroupID != g.ID {
			out = append(out, SGRefIndex(*r.RemoteGroupID, r.ID))
		}
	}
	return out
}

// FloatingIPIndexes returns the index keys a floating IP owns: its
// address on the external network, and when associated its (port, fixed
// IP) and its router's list.
func FloatingIPIndexes(f *FloatingIP) []string {
	var out []string
	if a, err := netip.ParseAddr(f.FloatingIPAddress); err == nil {
		out = append(out, IPIndex(f.FloatingNetworkID, a))
	}
	if f.PortID != nil && f.FixedIPAddress != nil {
		out = append(out, FIPPortIndex(*f.PortID, *f.FixedIPAddress))
	}
	if f.RouterID != nil {
		out = append(out, RouterFIPIndex(*f.RouterID, f.ID))
	}
	return out
}
