package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"hivenet/internal/topology"
)

// TunnelOverhead is what VXLAN over IPv4 adds to a frame (outer IPv4 20 +
// UDP 8 + VXLAN 8 + inner Ethernet 14): a network's MTU is the underlay
// MTU minus this.
const TunnelOverhead = 50

// LeaseSeconds is the DHCP lease time agents offer (Neutron's default
// dhcp_lease_duration).
const LeaseSeconds = 86400

// Tunnel keys are 24-bit VNIs. 0 is never used and FlowStateKey is the
// reserved key of flow-state replication.
const (
	MaxTunnelKey = 1<<24 - 1
	FlowStateKey = 0xFFFFFF
)

// Bridge translates a network.
func Bridge(n *Network) *topology.Bridge {
	return &topology.Bridge{
		ID:        n.ID,
		Name:      n.Name,
		ProjectID: n.ProjectID,
		AdminUp:   n.AdminStateUp,
		FloodKey:  n.SegmentationID,
		MTU:       n.MTU,
		External:  n.External,
		PhysNet:   strOrEmpty(n.PhysicalNetwork),
	}
}

func strOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TopoSubnet translates a subnet; the subnet must have passed
// ValidateSubnet (an error here means stored data is corrupt).
func TopoSubnet(s *Subnet) (*topology.Subnet, error) {
	cidr, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return nil, fmt.Errorf("translate: subnet %s: cidr: %w", s.ID, err)
	}
	ts := &topology.Subnet{
		ID:           s.ID,
		BridgeID:     s.NetworkID,
		CIDR:         cidr,
		DHCP:         s.EnableDHCP,
		LeaseSeconds: LeaseSeconds,
	}
	if s.GatewayIP != nil {
		if ts.Gateway, err = netip.ParseAddr(*s.GatewayIP); err != nil {
			return nil, fmt.Errorf("translate: subnet %s: gateway_ip: %w", s.ID, err)
		}
	}
	if s.EnableDHCP && s.DHCPServer != "" {
		if ts.DHCPServer, err = netip.ParseAddr(s.DHCPServer); err != nil {
			return nil, fmt.Errorf("translate: subnet %s: dhcp server: %w", s.ID, err)
		}
	}
	for _, d := range s.DNSNameservers {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("translate: subnet %s: dns_nameservers: %w", s.ID, err)
		}
		ts.DNS = append(ts.DNS, a)
	}
	for _, r := range s.HostRoutes {
		d, err := netip.ParsePrefix(r.Destination)
		if err != nil {
			return nil, fmt.Errorf("translate: subnet %s: host_routes: %w", s.ID, err)
		}
		nh, err := netip.ParseAddr(r.NextHop)
		if err != nil {
			return nil, fmt.Errorf("translate: subnet %s: host_routes: %w", s.ID, err)
		}
		ts.HostRoutes = append(ts.HostRoutes, topology.HostRoute{Destination: d, NextHop: nh})
	}
	return ts, nil
}

// InterfaceName is the local interface an agent binds for p:
// binding:profile.interface_name if it is a non-empty string, else the
// OpenStack "tap" + first 11 characters of the port ID.
func InterfaceName(p *Port) string {
	if s, ok := p.Profile["interface_name"].(string); ok && s != "" {
		return s
	}
	return topology.DefaultInterfaceName(p.ID)
}

// TopoPort translates a port; the port must have passed validation.
func TopoPort(p *Port) (*topology.Port, error) {
	mac, err := topology.ParseMAC(p.MACAddress)
	if err != nil {
		return nil, fmt.Errorf("translate: port %s: mac_address: %w", p.ID, err)
	}
	tp := &topology.Port{
		ID:            p.ID,
		Name:          p.Name,
		ProjectID:     p.ProjectID,
		BridgeID:      p.NetworkID,
		MAC:           mac,
		AdminUp:       p.AdminStateUp,
		PortSecurity:  p.PortSecurityEnabled,
		HostID:        p.HostID,
		InterfaceName: InterfaceName(p),
		TunnelKey:     p.TunnelKey,
		DeviceOwner:   p.DeviceOwner,
	}
	if IsRouterPort(p) {
		tp.RouterID = p.DeviceID
	}
	if len(p.SecurityGroups) > 0 {
		tp.SecurityGroups = slices.Clone(p.SecurityGroups)
	}
	if HasChains(p) {
		tp.InboundChain, tp.OutboundChain = InboundChainID(p.ID), OutboundChainID(p.ID)
	}
	for _, f := range p.FixedIPs {
		a, err := netip.ParseAddr(f.IPAddress)
		if err != nil {
			return nil, fmt.Errorf("translate: port %s: fixed_ips: %w", p.ID, err)
		}
		tp.FixedIPs = append(tp.FixedIPs, topology.FixedIP{SubnetID: f.SubnetID, Addr: a})
	}
	for _, ap := range p.AllowedAddressPairs {
		pfx, err := ParseAddrOrPrefix(ap.IPAddress)
		if err != nil {
			return nil, fmt.Errorf("translate: port %s: allowed_address_pairs: %w", p.ID, err)
		}
		var m topology.MAC
		if ap.MACAddress != "" && ap.MACAddress != p.MACAddress {
			if m, err = topology.ParseMAC(ap.MACAddress); err != nil {
				return nil, fmt.Errorf("translate: port %s: allowed_address_pairs: %w", p.ID, err)
			}
		}
		tp.AllowedAddressPairs = append(tp.AllowedAddressPairs, topology.AddressPair{Prefix: pfx, MAC: m})
	}
	return tp, nil
}

// ParseAddrOrPrefix parses "10.0.0.5" (as a /32) or "10.0.0.0/24" (which
// must have no host bits set).
func ParseAddrOrPrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address", s)
		}
		return netip.PrefixFrom(a, 32), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address or CIDR", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set, %q is recommended", s, p.Masked())
	}
	return p, nil
}

// Index keys, relative to store.PrefixIndex. Each is written (created) in
// the transaction that stores its owner and deleted with it; its value is
// the owner's ID.

// IPIndex guards one address of a network. Its value is the port ID, or
// DHCPOwner(subnet) for a subnet's DHCP server address.
func IPIndex(networkID string, a netip.Addr) string { return "ip/" + networkID + "/" + a.String() }

// IPIndexPrefix is the prefix of all IPIndex keys of a network.
func IPIndexPrefix(networkID string) string { return "ip/" + networkID + "/" }

// MACIndex guards a MAC address within a network.
func MACIndex(networkID, mac string) string { return "mac/" + networkID + "/" + mac }

// TunnelKeyIndex guards a live tunnel key (VNI).
func TunnelKeyIndex(k uint32) string { return "tunnelkey/" + strconv.FormatUint(uint64(k), 10) }

// NetworkPortIndex lists the ports of a network (to refuse deleting a
// network in use without scanning all ports).
func NetworkPortIndex(networkID, portID string) string { return "netport/" + networkID + "/" + portID }

// NetworkPortPrefix is the prefix of all NetworkPortIndex keys of a network.
func NetworkPortPrefix(networkID string) string { return "netport/" + networkID + "/" }

// InterfaceIndex guards a bound interface name on a host: two ports must
// not claim the same local interface.
func InterfaceIndex(host, ifname string) string { return "iface/" + host + "/" + ifname }

// DHCPOwner is the IPIndex value of a subnet's DHCP server address.
func DHCPOwner(subnetID string) string { return "dhcp:" + subnetID }

// NetworkIndexes returns the index keys a network owns.
// and, for a flat network, its physical network.
func NetworkIndexes(n *Network) []string {
	out := []string{TunnelKeyIndex(n.SegmentationID)}
	if n.NetworkType == "flat" && n.PhysicalNetwork != nil {
		out = append(out, PhysNetIndex(*n.PhysicalNetwork))
	}
	return out
}

// SubnetIndexes returns the index keys a subnet owns: its DHCP server
// address, if any.
func SubnetIndexes(s *Subnet) []string {
	if s.DHCPServer == "" {
		return nil
	}
	a, err := netip.ParseAddr(s.DHCPServer)
	if err != nil {
		return nil
	}
	return []string{IPIndex(s.NetworkID, a)}
}

// PortIndexes returns the index keys a port owns: its MAC, each fixed
// address, its tunnel key, its membership of the network and, when bound
// to a host, its interface there; its membership of each security group
// and each address it contributes to the group's address set;
// for a router's port its membership of the router and, for an
// interface, of each subnet it is on.
func PortIndexes(p *Port) []string {
	out := []string{MACIndex(p.NetworkID, p.MACAddress), TunnelKeyIndex(p.TunnelKey), NetworkPortIndex(p.NetworkID, p.ID)}
	if p.HostID != "" {
		out = append(out, InterfaceIndex(p.HostID, InterfaceName(p)))
	}
	for _, f := range p.FixedIPs {
		if a, err := netip.ParseAddr(f.IPAddress); err == nil {
			out = append(out, IPIndex(p.NetworkID, a))
		}
	}
	addrs := GroupAddrs(p)
	for _, g := range p.SecurityGroups {
		out = append(out, SGMemberIndex(g, p.ID))
		for _, a := range addrs {
			out = append(out, SGAddrIndex(g, a, p.ID))
		}
	}
	if IsRouterPort(p) {
		out = append(out, RouterPortIndex(p.DeviceID, p.ID))
		if p.DeviceOwner == OwnerRouterInterface {
			for _, f := range p.FixedIPs {
				if k := SubnetRouterIndex(f.SubnetID, p.ID); !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
		}
	}
	return out
}

// NextTunnelKey returns the first key after last (wrapping around the
// 24-bit space, skipping 0 and FlowStateKey) that taken reports free.
func NextTunnelKey(last uint32, taken func(uint32) bool) (uint32, error) {
	k := last
	for range MaxTunnelKey {
		k++
		if k >= FlowStateKey {
			k = 1
		}
		if !taken(k) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("translate: all %d tunnel keys in use", MaxTunnelKey-1)
}

// MACFromBytes returns the OpenStack-style MAC fa:16:3e:b0:b1:b2.
func MACFromBytes(b [3]byte) string {
	return topology.MAC{0xfa, 0x16, 0x3e, b[0], b[1], b[2]}.String()
}
