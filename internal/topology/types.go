package topology

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
)

// MAC is an Ethernet address. The zero value is 00:00:00:00:00:00.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ErrBadMAC is returned by ParseMAC for anything that is not six
// colon-separated hex octets.
var ErrBadMAC = errors.New("topology: invalid MAC address")

// ParseMAC parses the "aa:bb:cc:dd:ee:ff" form (either case).
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return m, fmt.Errorf("%w %q", ErrBadMAC, s)
	}
	for i := 0; i < 6; i++ {
		if i > 0 && s[3*i-1] != ':' {
			return MAC{}, fmt.Errorf("%w %q", ErrBadMAC, s)
		}
		if _, err := hex.Decode(m[i:i+1], []byte(s[3*i:3*i+2])); err != nil {
			return MAC{}, fmt.Errorf("%w %q", ErrBadMAC, s)
		}
	}
	return m, nil
}

func (m MAC) String() string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, v := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexd[v>>4], hexd[v&0xf])
	}
	return string(b)
}

// IsMulticast reports whether the group bit is set (this includes broadcast).
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *MAC) UnmarshalText(b []byte) error {
	v, err := ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Bridge is a virtual L2 segment: the translation of a tenant network.
type Bridge struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ProjectID string `json:"project_id"`
	AdminUp   bool   `json:"admin_up"`
	// FloodKey is the tunnel key (VNI) used for broadcast and unknown
	// unicast on this bridge. Unique across bridges and ports.
	FloodKey uint32 `json:"flood_key"`
	// MTU is the MTU offered to VMs (underlay MTU minus tunnel overhead).
	MTU int `json:"mtu"`
	// External marks a router:external network; PhysNet is its
	// provider:physical_network (flat), reached through agents' uplinks.
	External bool   `json:"external,omitempty"`
	PhysNet  string `json:"physnet,omitempty"`
}

// FixedIP is one address of a port, from one subnet.
type FixedIP struct {
	SubnetID string     `json:"subnet_id"`
	Addr     netip.Addr `json:"ip_address"`
}

// AddressPair is an extra (prefix, MAC) a port may send from when port
// security is on. A zero MAC means the port's own MAC.
type AddressPair struct {
	Prefix netip.Prefix `json:"prefix"`
	MAC    MAC          `json:"mac"`
}

// Port is an exterior bridge port: a VM interface on some host.
type Port struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	ProjectID string    `json:"project_id"`
	BridgeID  string    `json:"bridge_id"`
	MAC       MAC       `json:"mac"`
	FixedIPs  []FixedIP `json:"fixed_ips,omitempty"`
	AdminUp   bool      `json:"admin_up"`
	// PortSecurity: when true the port may send only from MAC and FixedIPs
	// (plus AllowedAddressPairs).
	PortSecurity        bool          `json:"port_security"`
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
	// HostID is binding:host_id: the host whose agent binds this port.
	HostID string `json:"host_id,omitempty"`
	// InterfaceName is the local interface the agent binds: the
	// binding:profile interface_name, else "tap" + the first 11 characters
	// of the port ID (see DefaultInterfaceName).
	InterfaceName string `json:"interface_name,omitempty"`
	// TunnelKey is the VNI that names this port on the tunnel: the egress
	// host maps it straight to the local interface.
	TunnelKey   uint32 `json:"tunnel_key"`
	DeviceOwner string `json:"device_owner,omitempty"`
	// RouterID is set on a router's interior port (an interface or the
	// gateway): bound to no host, frames to it enter the router.
	RouterID string `json:"router_id,omitempty"`
	// SecurityGroups are the port's security group IDs (for traces; the
	// rules themselves are compiled into the chains below).
	SecurityGroups []string `json:"security_groups,omitempty"`
	// InboundChain filters traffic to the port, OutboundChain traffic from
	// it (chain IDs; "" = none). Set only when port security is on.
	InboundChain  string `json:"inbound_chain,omitempty"`
	OutboundChain string `json:"outbound_chain,omitempty"`
}

// DefaultInterfaceName is the OpenStack convention for a port's tap device.
func DefaultInterfaceName(portID string) string {
	if len(portID) > 11 {
		portID = portID[:11]
	}
	return "tap" + portID
}

// HostRoute is a DHCP classless static route (option 121).
type HostRoute struct {
	Destination netip.Prefix `json:"destination"`
	NextHop     netip.Addr   `json:"nexthop"`
}

// Subnet is the L3 and DHCP configuration of an IPv4 subnet on a bridge.
type Subnet struct {
	ID       string       `json:"id"`
	BridgeID string       `json:"bridge_id"`
	CIDR     netip.Prefix `json:"cidr"`
	// Gateway is the default router offered by DHCP; invalid if none.
	Gateway    netip.Addr   `json:"gateway_ip,omitzero"`
	DNS        []netip.Addr `json:"dns_nameservers,omitempty"`
	HostRoutes []HostRoute  `json:"host_routes,omitempty"`
	DHCP       bool         `json:"enable_dhcp"`
	// DHCPServer is the address the agent answers DHCP from (server
	// identifier): the subnet's DHCP port address.
	DHCPServer netip.Addr `json:"dhcp_server,omitzero"`
	// LeaseSeconds is the DHCP lease time.
	LeaseSeconds uint32 `json:"lease_seconds"`
}

// Host is an agent's registration: present while the agent is alive (it
// is stored under the agent's lease).
type Host struct {
	Name     string     `json:"name"`
	TunnelIP netip.Addr `json:"tunnel_ip"`
	// TunnelPort is the UDP port the host receives VXLAN on.
	TunnelPort uint16 `json:"tunnel_port"`
	// Datapath is "userspace" or "ebpf", for display.
	Datapath string `json:"datapath,omitempty"`
	// Conntrack says the host's datapath tracks connections itself and
	// commits those that arrive with the tunnel's commit bit
	// (datapath.ConnTracker): a flow that relies on it may tunnel there.
	Conntrack bool `json:"conntrack,omitempty"`
	// Started is the agent start time, RFC 3339, for display.
	Started string `json:"started,omitempty"`
}

// PortBinding is published by the agent that bound a port (under its
// lease): the port is ACTIVE on Host.
type PortBinding struct {
	PortID string `json:"port_id"`
	Host   string `json:"host"`
}

// MACEntry is a learned MAC: frames to MAC on BridgeID go to PortID.
// Written by the agent that learned it, under its lease.
type MACEntry struct {
	BridgeID string `json:"bridge_id"`
	MAC      MAC    `json:"mac"`
	PortID   string `json:"port_id"`
}

// ID is the key of a MAC entry within its kind.
func (e MACEntry) ID() string { return e.BridgeID + "/" + e.MAC.String() }
