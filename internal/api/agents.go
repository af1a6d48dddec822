package api

import (
	"context"
	"time"

	"github.com/google/uuid"

	"hivenet/internal/topology"
)

// agentNamespace derives stable agent IDs from host names.
var agentNamespace = uuid.MustParse("3f1c6f0e-9a59-4d6b-8a1e-6b0f5a4c2d11")

// Agent is the Neutron view of a live hivenet host.
type Agent struct {
	ID                 string         `json:"id"`
	AgentType          string         `json:"agent_type"`
	Binary             string         `json:"binary"`
	Topic              string         `json:"topic"`
	Host               string         `json:"host"`
	Alive              bool           `json:"alive"`
	AdminStateUp       bool           `json:"admin_state_up"`
	Description        string         `json:"description"`
	AvailabilityZone   *string        `json:"availability_zone"`
	Configurations     map[string]any `json:"configurations"`
	CreatedAt          string         `json:"created_at"`
	StartedAt          string         `json:"started_at"`
	HeartbeatTimestamp string         `json:"heartbeat_timestamp"`
	ResourcesSynced    *bool          `json:"resources_synced"`
}

// AgentID is the agent ID of host name.
func AgentID(host string) string { return uuid.NewSHA1(agentNamespace, []byte(host)).String() }

func (s *Server) agentView(h topology.Host) *Agent {
	started := h.Started
	if t, err := time.Parse(time.RFC3339Nano, h.Started); err == nil {
		started = t.UTC().Format("2006-01-02 15:04:05")
	}
	return &Agent{
		ID: AgentID(h.Name), AgentType: "hivenet agent", Binary: "hivenet", Topic: "N/A", Host: h.Name,
		// Hosts are stored under their agent's lease: listed means alive,
		// and the lease was renewed within its TTL.
		Alive: true, AdminStateUp: true,
		Configurations: map[string]any{
			"tunnel_ip": h.TunnelIP.String(), "tunnel_port": h.TunnelPort, "tunnel_type": "vxlan", "datapath": h.Datapath,
		},
		CreatedAt: started, StartedAt: started,
		HeartbeatTimestamp: s.cfg.Now().UTC().Format("2006-01-02 15:04:05"),
	}
}

// agentsResource is read-only and admin-only (Neutron's default policy).
func (s *Server) agentsResource() *resource {
	list := func(ctx context.Context, c *caller) ([]*Agent, error) {
		if !c.Admin {
			return nil, forbidden("Listing agents requires the admin role")
		}
		hosts, err := s.st.ListHosts(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]*Agent, 0, len(hosts))
		for _, h := range hosts {
			out = append(out, s.agentView(h))
		}
		return out, nil
	}
	return &resource{
		singular: "agent", plural: "agents",
		attrs: attrNames(Agent{}),
		list: func(ctx context.Context, c *caller) ([]any, error) {
			as, err := list(ctx, c)
			out := make([]any, len(as))
			for i, a := range as {
				out[i] = a
			}
			return out, err
		},
		show: func(ctx context.Context, c *caller, id string) (any, error) {
			as, err := list(ctx, c)
			if err != nil {
				return nil, err
			}
			for _, a := range as {
				if a.ID == id {
					return a, nil
				}
			}
			return nil, notFound("Agent", id)
		},
	}
}
