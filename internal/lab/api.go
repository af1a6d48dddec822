package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// API is the small slice of the OpenStack Networking v2.0 wire protocol the
// lab, the demo and the end-to-end tests need: raw JSON over HTTP, so they
// test the server's wire format rather than a client library's.
type API struct {
	URL   string // base URL, no trailing slash
	Token string // X-Auth-Token
	HTTP  *http.Client
}

// APIError is a non-2xx answer; Type and Message come from the NeutronError
// body when there is one.
type APIError struct {
	Status  int
	Type    string
	Message string
}

func (e *APIError) Error() string {
	if e.Type != "" || e.Message != "" {
		return fmt.Sprintf("api: %d %s: %s", e.Status, e.Type, e.Message)
	}
	return fmt.Sprintf("api: %d %s", e.Status, http.StatusText(e.Status))
}

// API returns a client of the lab's API with the admin token.
func (l *Lab) API() *API { return l.api() }

func (l *Lab) api() *API {
	return &API{URL: l.APIURL(), Token: l.cfg.AdminToken, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// ProjectAPI returns a client of the lab's API with the first of
// Config.Tokens that belongs to project.
func (l *Lab) ProjectAPI(project string) (*API, error) {
	for _, t := range l.cfg.Tokens {
		if t.ProjectID == project {
			return l.api().WithToken(t.Token), nil
		}
	}
	return nil, fmt.Errorf("%w: no token for project %q", ErrNotFound, project)
}

// Networks lists the networks the token sees.
func (a *API) Networks(ctx context.Context) ([]Network, error) {
	var out struct{ Networks []Network }
	err := a.Do(ctx, http.MethodGet, "/v2.0/networks", nil, &out)
	return out.Networks, err
}

// WithToken returns a copy of a that sends token.
func (a *API) WithToken(token string) *API { c := *a; c.Token = token; return &c }

// Do sends one request; in (if not nil) is the JSON body, out (if not nil)
// receives the JSON answer.
func (a *API) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", a.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		var ne struct {
			NeutronError struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"NeutronError"`
		}
		if json.Unmarshal(b, &ne) == nil {
			e.Type, e.Message = ne.NeutronError.Type, ne.NeutronError.Message
		}
		if e.Message == "" && e.Type == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return e
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("api: decoding %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Network, Subnet, Port and Agent hold the fields the lab uses.
type Network struct {
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
	MTU       int    `json:"mtu,omitempty"`
	Status    string `json:"status,omitempty"`
}

type Subnet struct {
	ID         string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	NetworkID  string `json:"network_id"`
	ProjectID  string `json:"project_id,omitempty"`
	CIDR       string `json:"cidr"`
	IPVersion  int    `json:"ip_version"`
	GatewayIP  string `json:"gateway_ip,omitempty"`
	EnableDHCP *bool  `json:"enable_dhcp,omitempty"`
}

type FixedIP struct {
	SubnetID  string `json:"subnet_id,omitempty"`
	IPAddress string `json:"ip_address,omitempty"`
}

type Port struct {
	ID           string           `json:"id,omitempty"`
	Name         string           `json:"name,omitempty"`
	NetworkID    string           `json:"network_id,omitempty"`
	ProjectID    string           `json:"project_id,omitempty"`
	MACAddress   string           `json:"mac_address,omitempty"`
	FixedIPs     []FixedIP        `json:"fixed_ips,omitempty"`
	HostID       string           `json:"binding:host_id,omitempty"`
	Profile      map[string]any   `json:"binding:profile,omitempty"`
	Status       string           `json:"status,omitempty"`
	AdminStateUp *bool            `json:"admin_state_up,omitempty"`
	PortSecurity *bool            `json:"port_security_enabled,omitempty"`
	DeviceOwner  string           `json:"device_owner,omitempty"`
	DeviceID     string           `json:"device_id,omitempty"`
	AllowedAddrs []map[string]any `json:"allowed_address_pairs,omitempty"`
	// SecurityGroups: nil sends nothing (the project's default group);
	// to clear the groups send "security_groups": [] with UpdatePort.
	SecurityGroups []string `json:"security_groups,omitempty"`
}

type Agent struct {
	ID    string `json:"id"`
	Host  string `json:"host"`
	Alive bool   `json:"alive"`
}

// InterfaceName is the host interface a port binds to: the profile's
// interface_name, else "tap" + the first 11 characters of the port id.
func (p Port) InterfaceName() string {
	if n, _ := p.Profile["interface_name"].(string); n != "" {
		return n
	}
	id := p.ID
	if len(id) > 11 {
		id = id[:11]
	}
	return "tap" + id
}

// CreateNetwork creates n.
func (a *API) CreateNetwork(ctx context.Context, n Network) (Network, error) {
	var out struct{ Network Network }
	err := a.Do(ctx, http.MethodPost, "/v2.0/networks", map[string]Network{"network": n}, &out)
	return out.Network, err
}

// CreateSubnet creates s (IPv4 when IPVersion is zero).
func (a *API) CreateSubnet(ctx context.Context, s Subnet) (Subnet, error) {
	if s.IPVersion == 0 {
		s.IPVersion = 4
	}
	var out struct{ Subnet Subnet }
	err := a.Do(ctx, http.MethodPost, "/v2.0/subnets", map[string]Subnet{"subnet": s}, &out)
	return out.Subnet, err
}

// CreatePort creates p.
func (a *API) CreatePort(ctx context.Context, p Port) (Port, error) {
	var out struct{ Port Port }
	err := a.Do(ctx, http.MethodPost, "/v2.0/ports", map[string]Port{"port": p}, &out)
	return out.Port, err
}

// UpdatePort sends fields (a partial port body) to port id.
func (a *API) UpdatePort(ctx context.Context, id string, fields map[string]any) (Port, error) {
	var out struct{ Port Port }
	err := a.Do(ctx, http.MethodPut, "/v2.0/ports/"+url.PathEscape(id), map[string]any{"port": fields}, &out)
	return out.Port, err
}

// GetPort shows port id.
func (a *API) GetPort(ctx context.Context, id string) (Port, error) {
	var out struct{ Port Port }
	err := a.Do(ctx, http.MethodGet, "/v2.0/ports/"+url.PathEscape(id), nil, &out)
	return out.Port, err
}

// DeletePort deletes port id.
func (a *API) DeletePort(ctx context.Context, id string) error {
	return a.Do(ctx, http.MethodDelete, "/v2.0/ports/"+url.PathEscape(id), nil, nil)
}

// FindPort returns the port whose id or (unique) name is idOrName.
func (a *API) FindPort(ctx context.Context, idOrName string) (Port, error) {
	p, err := a.GetPort(ctx, idOrName)
	if err == nil {
		return p, nil
	}
	if ae := (*APIError)(nil); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		return Port{}, err
	}
	var out struct{ Ports []Port }
	if err := a.Do(ctx, http.MethodGet, "/v2.0/ports?name="+url.QueryEscape(idOrName), nil, &out); err != nil {
		return Port{}, err
	}
	switch len(out.Ports) {
	case 0:
		return Port{}, fmt.Errorf("%w: port %q", ErrNotFound, idOrName)
	case 1:
		return out.Ports[0], nil
	}
	return Port{}, fmt.Errorf("lab: %d ports are named %q; use the id", len(out.Ports), idOrName)
}

// Agents lists the agents.
func (a *API) Agents(ctx context.Context) ([]Agent, error) {
	var out struct{ Agents []Agent }
	err := a.Do(ctx, http.MethodGet, "/v2.0/agents", nil, &out)
	return out.Agents, err
}

// waitReady polls the API until it answers 200 to a network list, the
// server process p exits, or timeout.
func (a *API) waitReady(ctx context.Context, p *proc, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		err := a.Do(ctx, http.MethodGet, "/v2.0/networks", nil, nil)
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("lab: server exited before the API was up: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("lab: API at %s not up after %v: %w", a.URL, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitAgents polls the agent list until every host in want is alive, or
// dead (polled) names an agent process that exited.
func (a *API) waitAgents(ctx context.Context, want []string, timeout time.Duration, dead func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var missing []string
	var last error
	for {
		agents, err := a.Agents(ctx)
		last = err
		if err == nil {
			missing = missingAlive(want, agents)
			if len(missing) == 0 {
				return nil
			}
		}
		if err := dead(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("lab: agents not alive after %v: %w", timeout, last)
			}
			return fmt.Errorf("lab: agents not alive after %v: %s", timeout, strings.Join(missing, ", "))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// missingAlive returns the hosts of want with no alive agent.
func missingAlive(want []string, agents []Agent) []string {
	var missing []string
	for _, h := range want {
		if !slices.ContainsFunc(agents, func(a Agent) bool { return a.Host == h && a.Alive }) {
			missing = append(missing, h)
		}
	}
	return missing
}
