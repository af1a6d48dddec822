package lab

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Router, FloatingIP, SecurityGroup and SecurityGroupRule hold the fields
// of the OpenStack Networking v2.0 L3 resources the lab, the demo and the
// end-to-end tests use.
type Router struct {
	ID          string       `json:"id,omitempty"`
	Name        string       `json:"name,omitempty"`
	ProjectID   string       `json:"project_id,omitempty"`
	Status      string       `json:"status,omitempty"`
	GatewayInfo *GatewayInfo `json:"external_gateway_info,omitempty"`
	Routes      []Route      `json:"routes,omitempty"`
}

// GatewayInfo is a router's external_gateway_info.
type GatewayInfo struct {
	NetworkID   string    `json:"network_id"`
	EnableSNAT  *bool     `json:"enable_snat,omitempty"`
	ExternalIPs []FixedIP `json:"external_fixed_ips,omitempty"`
}

// Route is a router's static route.
type Route struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// RouterInterface is the answer of add_router_interface.
type RouterInterface struct {
	ID       string `json:"id"`
	SubnetID string `json:"subnet_id"`
	PortID   string `json:"port_id"`
}

type FloatingIP struct {
	ID                string `json:"id,omitempty"`
	FloatingNetworkID string `json:"floating_network_id,omitempty"`
	FloatingIPAddress string `json:"floating_ip_address,omitempty"`
	PortID            string `json:"port_id,omitempty"`
	FixedIPAddress    string `json:"fixed_ip_address,omitempty"`
	RouterID          string `json:"router_id,omitempty"`
	ProjectID         string `json:"project_id,omitempty"`
	Status            string `json:"status,omitempty"`
}

type SecurityGroup struct {
	ID          string              `json:"id,omitempty"`
	Name        string              `json:"name,omitempty"`
	Description string              `json:"description,omitempty"`
	ProjectID   string              `json:"project_id,omitempty"`
	Rules       []SecurityGroupRule `json:"security_group_rules,omitempty"`
}

// SecurityGroupRule: pointer fields are omitted when nil (Neutron's
// "any"); Protocol "" means any protocol.
type SecurityGroupRule struct {
	ID              string `json:"id,omitempty"`
	SecurityGroupID string `json:"security_group_id"`
	Direction       string `json:"direction"` // ingress, egress
	Ethertype       string `json:"ethertype,omitempty"`
	Protocol        string `json:"protocol,omitempty"`
	PortRangeMin    *int   `json:"port_range_min,omitempty"`
	PortRangeMax    *int   `json:"port_range_max,omitempty"`
	RemoteIPPrefix  string `json:"remote_ip_prefix,omitempty"`
	RemoteGroupID   string `json:"remote_group_id,omitempty"`
}

// Ptr returns &v (rule port ranges, booleans).
func Ptr[T any](v T) *T { return &v }

// CreateRouter creates r.
func (a *API) CreateRouter(ctx context.Context, r Router) (Router, error) {
	var out struct{ Router Router }
	err := a.Do(ctx, http.MethodPost, "/v2.0/routers", map[string]Router{"router": r}, &out)
	return out.Router, err
}

// UpdateRouter sends fields (a partial router body) to router id.
func (a *API) UpdateRouter(ctx context.Context, id string, fields map[string]any) (Router, error) {
	var out struct{ Router Router }
	err := a.Do(ctx, http.MethodPut, "/v2.0/routers/"+url.PathEscape(id), map[string]any{"router": fields}, &out)
	return out.Router, err
}

// DeleteRouter deletes router id.
func (a *API) DeleteRouter(ctx context.Context, id string) error {
	return a.Do(ctx, http.MethodDelete, "/v2.0/routers/"+url.PathEscape(id), nil, nil)
}

// AddRouterInterface attaches subnet (or, when subnetID is empty, port
// portID) to router id.
func (a *API) AddRouterInterface(ctx context.Context, id, subnetID, portID string) (RouterInterface, error) {
	return a.routerInterface(ctx, id, "add_router_interface", subnetID, portID)
}

// RemoveRouterInterface detaches a subnet or port from router id.
func (a *API) RemoveRouterInterface(ctx context.Context, id, subnetID, portID string) (RouterInterface, error) {
	return a.routerInterface(ctx, id, "remove_router_interface", subnetID, portID)
}

func (a *API) routerInterface(ctx context.Context, id, verb, subnetID, portID string) (RouterInterface, error) {
	body := map[string]string{}
	switch {
	case subnetID != "":
		body["subnet_id"] = subnetID
	case portID != "":
		body["port_id"] = portID
	default:
		return RouterInterface{}, fmt.Errorf("lab: %s needs a subnet or a port", verb)
	}
	var out RouterInterface
	err := a.Do(ctx, http.MethodPut, "/v2.0/routers/"+url.PathEscape(id)+"/"+verb, body, &out)
	return out, err
}

// CreateFloatingIP creates f (associated when PortID is set).
func (a *API) CreateFloatingIP(ctx context.Context, f FloatingIP) (FloatingIP, error) {
	var out struct{ Floatingip FloatingIP }
	err := a.Do(ctx, http.MethodPost, "/v2.0/floatingips", map[string]FloatingIP{"floatingip": f}, &out)
	return out.Floatingip, err
}

// AssociateFloatingIP points floating IP id at portID ("" disassociates:
// port_id null).
func (a *API) AssociateFloatingIP(ctx context.Context, id, portID string) (FloatingIP, error) {
	var port any
	if portID != "" {
		port = portID
	}
	var out struct{ Floatingip FloatingIP }
	err := a.Do(ctx, http.MethodPut, "/v2.0/floatingips/"+url.PathEscape(id), map[string]any{"floatingip": map[string]any{"port_id": port}}, &out)
	return out.Floatingip, err
}

// GetFloatingIP shows floating IP id.
func (a *API) GetFloatingIP(ctx context.Context, id string) (FloatingIP, error) {
	var out struct{ Floatingip FloatingIP }
	err := a.Do(ctx, http.MethodGet, "/v2.0/floatingips/"+url.PathEscape(id), nil, &out)
	return out.Floatingip, err
}

// DeleteFloatingIP deletes floating IP id.
func (a *API) DeleteFloatingIP(ctx context.Context, id string) error {
	return a.Do(ctx, http.MethodDelete, "/v2.0/floatingips/"+url.PathEscape(id), nil, nil)
}

// CreateSecurityGroup creates g (its default egress rules come with it).
func (a *API) CreateSecurityGroup(ctx context.Context, g SecurityGroup) (SecurityGroup, error) {
	var out struct {
		SecurityGroup SecurityGroup `json:"security_group"`
	}
	err := a.Do(ctx, http.MethodPost, "/v2.0/security-groups", map[string]SecurityGroup{"security_group": g}, &out)
	return out.SecurityGroup, err
}

// SecurityGroups lists the groups the token sees, filtered by name when
// name is not empty (listing creates the project's default group, as
// Neutron does on first use).
func (a *API) SecurityGroups(ctx context.Context, name string) ([]SecurityGroup, error) {
	path := "/v2.0/security-groups"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	var out struct {
		SecurityGroups []SecurityGroup `json:"security_groups"`
	}
	err := a.Do(ctx, http.MethodGet, path, nil, &out)
	return out.SecurityGroups, err
}

// CreateSecurityGroupRule creates r.
func (a *API) CreateSecurityGroupRule(ctx context.Context, r SecurityGroupRule) (SecurityGroupRule, error) {
	var out struct {
		SecurityGroupRule SecurityGroupRule `json:"security_group_rule"`
	}
	err := a.Do(ctx, http.MethodPost, "/v2.0/security-group-rules", map[string]SecurityGroupRule{"security_group_rule": r}, &out)
	return out.SecurityGroupRule, err
}

// DeleteSecurityGroupRule deletes rule id.
func (a *API) DeleteSecurityGroupRule(ctx context.Context, id string) error {
	return a.Do(ctx, http.MethodDelete, "/v2.0/security-group-rules/"+url.PathEscape(id), nil, nil)
}
