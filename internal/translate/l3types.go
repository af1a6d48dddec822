package translate

// The L3 API objects (routers, floating IPs, security groups and their
// rules) in their OpenStack Networking v2.0 wire shape, also what is
// stored under store.PrefixAPI.

// Device owners of ports created by the router API. The ports API refuses
// them: only add_router_interface and external_gateway_info make router
// ports.
const (
	OwnerRouterInterface = "network:router_interface"
	OwnerRouterGateway   = "network:router_gateway"
)

// ExternalFixedIP is an address of a router's gateway port.
type ExternalFixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// GatewayInfo is a router's external_gateway_info.
type GatewayInfo struct {
	NetworkID        string            `json:"network_id"`
	EnableSNAT       bool              `json:"enable_snat"`
	ExternalFixedIPs []ExternalFixedIP `json:"external_fixed_ips"`
}

// RouterRoute is a static route of a router.
type RouterRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// Router is a Neutron router.
type Router struct {
	ID             string        `json:"id"`
	Name           string        `json:"name"`
	Description    string        `json:"description"`
	ProjectID      string        `json:"project_id"`
	TenantID       string        `json:"tenant_id"`
	AdminStateUp   bool          `json:"admin_state_up"`
	Status         string        `json:"status"`
	GatewayInfo    *GatewayInfo  `json:"external_gateway_info"`
	Routes         []RouterRoute `json:"routes"`
	Distributed    bool          `json:"distributed"`
	Tags           []string      `json:"tags"`
	CreatedAt      string        `json:"created_at"`
	UpdatedAt      string        `json:"updated_at"`
	RevisionNumber int           `json:"revision_number"`
	// GatewayPortID is the router's port on the external network ("" with
	// no gateway).
	GatewayPortID string `json:"hivenet:gateway_port_id"`
}

// RouterInterface is the answer of add_router_interface and
// remove_router_interface.
type RouterInterface struct {
	ID        string   `json:"id"`
	SubnetID  string   `json:"subnet_id"`
	SubnetIDs []string `json:"subnet_ids"`
	PortID    string   `json:"port_id"`
	TenantID  string   `json:"tenant_id"`
	ProjectID string   `json:"project_id"`
	NetworkID string   `json:"network_id"`
}

// FloatingIP is a Neutron floating IP. PortID, FixedIPAddress and
// RouterID are null when it is not associated.
type FloatingIP struct {
	ID                string   `json:"id"`
	Description       string   `json:"description"`
	ProjectID         string   `json:"project_id"`
	TenantID          string   `json:"tenant_id"`
	FloatingNetworkID string   `json:"floating_network_id"`
	FloatingIPAddress string   `json:"floating_ip_address"`
	PortID            *string  `json:"port_id"`
	FixedIPAddress    *string  `json:"fixed_ip_address"`
	RouterID          *string  `json:"router_id"`
	Status            string   `json:"status"`
	Tags              []string `json:"tags"`
	CreatedAt         string   `json:"created_at"`
	UpdatedAt         string   `json:"updated_at"`
	RevisionNumber    int      `json:"revision_number"`
}

// SecurityGroupRule is one rule of a security group. Nullable attributes
// are pointers (null = any).
type SecurityGroupRule struct {
	ID              string  `json:"id"`
	SecurityGroupID string  `json:"security_group_id"`
	Direction       string  `json:"direction"`
	EtherType       string  `json:"ethertype"`
	Protocol        *string `json:"protocol"`
	PortRangeMin    *int    `json:"port_range_min"`
	PortRangeMax    *int    `json:"port_range_max"`
	RemoteIPPrefix  *string `json:"remote_ip_prefix"`
	RemoteGroupID   *string `json:"remote_group_id"`
	Description     string  `json:"description"`
	ProjectID       string  `json:"project_id"`
	TenantID        string  `json:"tenant_id"`
	CreatedAt       string  `json:"created_at"`
	UpdatedAt       string  `json:"updated_at"`
	RevisionNumber  int     `json:"revision_number"`
}

// SecurityGroup is a Neutron security group with its rules (the group is
// stored whole: a rule write rewrites its group's object).
type SecurityGroup struct {
	ID             string              `json:"id"`
	Name           string              `json:"name"`
	Description    string              `json:"description"`
	ProjectID      string              `json:"project_id"`
	TenantID       string              `json:"tenant_id"`
	Stateful       bool                `json:"stateful"`
	Rules          []SecurityGroupRule `json:"security_group_rules"`
	Tags           []string            `json:"tags"`
	CreatedAt      string              `json:"created_at"`
	UpdatedAt      string              `json:"updated_at"`
	RevisionNumber int                 `json:"revision_number"`
}

// Owner returns the project that owns the object (the API layer's
// visibility checks are written once against it).
func (p *Port) Owner() string { return p.ProjectID }

// Owner returns the project that owns the router.
func (r *Router) Owner() string { return r.ProjectID }

// Owner returns the project that owns the floating IP.
func (f *FloatingIP) Owner() string { return f.ProjectID }

// Owner returns the project that owns the security group.
func (g *SecurityGroup) Owner() string { return g.ProjectID }
