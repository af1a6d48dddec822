package translate

// The API objects, in their OpenStack Networking v2.0 wire shape. The same
// JSON is stored under store.PrefixAPI. Attributes prefixed "hivenet:"
// are read-only hivenet extensions.

// Network is a tenant L2 network.
type Network struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	ProjectID    string `json:"project_id"`
	TenantID     string `json:"tenant_id"`
	AdminStateUp bool   `json:"admin_state_up"`
	Shared       bool   `json:"shared"`
	External     bool   `json:"router:external"`
	MTU          int    `json:"mtu"`
	// PortSecurityEnabled is the default of the network's new ports.
	PortSecurityEnabled bool     `json:"port_security_enabled"`
	Status              string   `json:"status"`
	Subnets             []string `json:"subnets"`
	Tags                []string `json:"tags"`
	CreatedAt           string   `json:"created_at"`
	UpdatedAt           string   `json:"updated_at"`
	RevisionNumber      int      `json:"revision_number"`
	// Provider attributes (read-only here): every network is a VXLAN
	// segment whose VNI is the bridge's flood key.
	NetworkType     string  `json:"provider:network_type"`
	PhysicalNetwork *string `json:"provider:physical_network"`
	SegmentationID  uint32  `json:"provider:segmentation_id"`
}

// AllocationPool is an inclusive range of addresses ports are given.
type AllocationPool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// HostRoute is a route pushed to VMs by DHCP.
type HostRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// Subnet is an IPv4 subnet of a network.
type Subnet struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Description     string           `json:"description"`
	ProjectID       string           `json:"project_id"`
	TenantID        string           `json:"tenant_id"`
	NetworkID       string           `json:"network_id"`
	IPVersion       int              `json:"ip_version"`
	CIDR            string           `json:"cidr"`
	GatewayIP       *string          `json:"gateway_ip"`
	AllocationPools []AllocationPool `json:"allocation_pools"`
	DNSNameservers  []string         `json:"dns_nameservers"`
	HostRoutes      []HostRoute      `json:"host_routes"`
	EnableDHCP      bool             `json:"enable_dhcp"`
	IPv6RAMode      *string          `json:"ipv6_ra_mode"`
	IPv6AddressMode *string          `json:"ipv6_address_mode"`
	SubnetPoolID    *string          `json:"subnetpool_id"`
	Tags            []string         `json:"tags"`
	CreatedAt       string           `json:"created_at"`
	UpdatedAt       string           `json:"updated_at"`
	RevisionNumber  int              `json:"revision_number"`
	// DHCPServer is the address the agents answer DHCP from: the first
	// free allocation-pool address when DHCP was enabled, reserved for the
	// DHCP service like Neutron's DHCP port address and never given to
	// ports. Empty while DHCP is off.
	DHCPServer string `json:"hivenet:dhcp_server"`
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// AddressPair is an extra address (or CIDR) and MAC a port may send from.
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

// Port is a VM (or service) interface on a network.
type Port struct {
	ID                  string         `json:"id"`
	Name                string         `json:"name"`
	Description         string         `json:"description"`
	NetworkID           string         `json:"network_id"`
	ProjectID           string         `json:"project_id"`
	TenantID            string         `json:"tenant_id"`
	MACAddress          string         `json:"mac_address"`
	AdminStateUp        bool           `json:"admin_state_up"`
	Status              string         `json:"status"`
	FixedIPs            []FixedIP      `json:"fixed_ips"`
	DeviceID            string         `json:"device_id"`
	DeviceOwner         string         `json:"device_owner"`
	SecurityGroups      []string       `json:"security_groups"`
	AllowedAddressPairs []AddressPair  `json:"allowed_address_pairs"`
	PortSecurityEnabled bool           `json:"port_security_enabled"`
	HostID              string         `json:"binding:host_id"`
	Profile             map[string]any `json:"binding:profile"`
	VIFType             string         `json:"binding:vif_type"`
	VIFDetails          map[string]any `json:"binding:vif_details"`
	VNICType            string         `json:"binding:vnic_type"`
	Tags                []string       `json:"tags"`
	CreatedAt           string         `json:"created_at"`
	UpdatedAt           string         `json:"updated_at"`
	RevisionNumber      int            `json:"revision_number"`
	// TunnelKey is the VNI naming this port on the overlay.
	TunnelKey uint32 `json:"hivenet:tunnel_key"`
}
