package topology

import "net/netip"

// L3 model: routers, their interior ports, static routes, NAT (SNAT on the
// gateway, floating IPs), filter chains (security groups are translated
// into chains) and address groups, and the runtime state agents share
// (gateway uplinks, router ARP entries, SNAT port-block leases).
//
// A router's ports are topology Ports with RouterID set: an interior port
// sits on a bridge like any other port but is bound to no host; a frame
// the bridge sends to it enters the router, on whatever host is
// simulating (the router is distributed).

// Router is a distributed virtual router: the translation of a Neutron
// router.
type Router struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ProjectID string `json:"project_id"`
	AdminUp   bool   `json:"admin_up"`
	// Routes are the static routes (Neutron "routes"). Connected routes
	// come from the router's ports; the default route from the gateway.
	Routes []Route `json:"routes,omitempty"`
	// GatewayPortID is the router's port on an external network ("" when
	// it has no gateway). The default route points at the external
	// subnet's gateway_ip through it.
	GatewayPortID string `json:"gateway_port_id,omitempty"`
	// DefaultNextHop is the external subnet's gateway, the next hop of the
	// default route (invalid: no default route).
	DefaultNextHop netip.Addr `json:"default_next_hop,omitzero"`
	// SNAT: traffic leaving through the gateway port from addresses with no
	// floating IP is translated to SNATAddr (the gateway port's address).
	SNAT     bool       `json:"snat"`
	SNATAddr netip.Addr `json:"snat_addr,omitzero"`
}

// Route is a static route.
type Route struct {
	Dst     netip.Prefix `json:"destination"`
	NextHop netip.Addr   `json:"nexthop"`
}

// FloatingIP is a 1:1 NAT between an external address and a port's fixed
// address, performed by RouterID. Unassociated floating IPs have no
// PortID and translate nothing.
type FloatingIP struct {
	ID        string     `json:"id"`
	ProjectID string     `json:"project_id"`
	Addr      netip.Addr `json:"floating_ip"`
	// BridgeID is the external network's bridge.
	BridgeID string     `json:"bridge_id"`
	RouterID string     `json:"router_id,omitempty"`
	PortID   string     `json:"port_id,omitempty"`
	FixedIP  netip.Addr `json:"fixed_ip,omitzero"`
}

// RuleAction is what a matching rule does.
type RuleAction uint8

const (
	RuleAccept RuleAction = iota + 1
	RuleDrop
	// RuleReject drops and answers (ICMP port unreachable, TCP RST).
	RuleReject
	// RuleJump evaluates chain JumpChain; a Return there (or its end)
	// continues after this rule.
	RuleJump
	// RuleReturn leaves the current chain.
	RuleReturn
)

var ruleActionNames = [...]string{"", "accept", "drop", "reject", "jump", "return"}

func (a RuleAction) String() string {
	if int(a) < len(ruleActionNames) {
		return ruleActionNames[a]
	}
	return "action?"
}

// CTState is a set of connection-tracking states a rule matches.
type CTState uint8

const (
	// CTNew: the packet starts a connection (no entry for it or its reply).
	CTNew CTState = 1 << iota
	// CTEstablished: the packet belongs to a known connection, either way.
	CTEstablished
	// CTReply: the packet goes in the reply direction of a known connection.
	CTReply
)

// PortRange is an inclusive range of L4 ports; the zero value matches all.
type PortRange struct {
	Min uint16 `json:"min"`
	Max uint16 `json:"max"`
}

// Any reports whether the range matches every port.
func (r PortRange) Any() bool { return r.Min == 0 && (r.Max == 0 || r.Max == 65535) }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p uint16) bool { return r.Any() || (p >= r.Min && p <= r.Max) }

// Rule is one filter rule. Zero-valued conditions match everything; all
// set conditions must hold.
type Rule struct {
	ID     string     `json:"id"`
	Action RuleAction `json:"action"`
	// JumpChain is the target of RuleJump.
	JumpChain string `json:"jump_chain,omitempty"`
	// EthType: 0 any, else 0x0800 (IPv4) or 0x86dd (IPv6).
	EthType uint16 `json:"eth_type,omitempty"`
	// Proto: IP protocol; ProtoAny false and Proto 0 also means any.
	Proto uint8 `json:"proto,omitempty"`
	// SrcPrefix/DstPrefix: invalid = any.
	SrcPrefix netip.Prefix `json:"src_prefix,omitzero"`
	DstPrefix netip.Prefix `json:"dst_prefix,omitzero"`
	// SrcGroup/DstGroup: the address must be in that IPAddrGroup.
	SrcGroup string `json:"src_group,omitempty"`
	DstGroup string `json:"dst_group,omitempty"`
	// SrcPorts/DstPorts: TCP/UDP port ranges.
	SrcPorts PortRange `json:"src_ports,omitzero"`
	DstPorts PortRange `json:"dst_ports,omitzero"`
	// ICMPType/ICMPCode: -1 any (only for ICMP rules).
	ICMPType int16 `json:"icmp_type"`
	ICMPCode int16 `json:"icmp_code"`
	// CTState: 0 any, else the packet's state must be in the set.
	CTState CTState `json:"ct_state,omitempty"`
	// Comment names the origin (for traces), e.g. "sg default rule 1a2b".
	Comment string `json:"comment,omitempty"`
}

// Chain is an ordered list of rules. A packet that falls off the end of a
// chain gets the chain's Default action (RuleAccept when zero, except
// where the owner says otherwise).
type Chain struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Rules   []Rule     `json:"rules"`
	Default RuleAction `json:"default,omitempty"`
}

// IPAddrGroup is a set of addresses, e.g. the fixed IPs of the members of
// a security group (for remote_group_id rules). Kept up to date by the
// API's translation in the same transaction as the port changes.
type IPAddrGroup struct {
	ID    string       `json:"id"`
	Addrs []netip.Addr `json:"addrs"`
}

// Uplink is published by an agent whose host maps a physical network to a
// local interface (--bridge-mappings): frames of the external bridges on
// PhysNet enter and leave the virtual network there. TunnelKey names the
// uplink on the tunnel, like a port's key.
type Uplink struct {
	Host      string `json:"host"`
	PhysNet   string `json:"physnet"`
	Interface string `json:"interface"`
	TunnelKey uint32 `json:"tunnel_key"`
}

// ID is the key of an uplink within its kind.
func (u Uplink) ID() string { return u.Host + "/" + u.PhysNet }

// ARPEntry is a router's resolved neighbour on a bridge, learned from an
// ARP reply and shared by all agents (state, under the learner's lease).
type ARPEntry struct {
	BridgeID string     `json:"bridge_id"`
	IP       netip.Addr `json:"ip"`
	MAC      MAC        `json:"mac"`
}

// ID is the key of an ARP entry within its kind.
func (e ARPEntry) ID() string { return e.BridgeID + "/" + e.IP.String() }
