package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"
)

// The agent's control endpoint: each agent serves a small JSON API over
// HTTP on a unix socket (agent --control-socket), for operators on that
// host. It is not the REST API: no token (the socket's file mode is the
// access control), no OpenStack wrapping beyond the top-level key, errors
// in the same NeutronError shape as the API's.
//
//	GET /v1/flows[?port=P][&match=S]   {"flows": [AgentFlow...]}
//	GET /v1/stats                      {"stats": AgentStats}
//
// port is a datapath port number or the ID of a port bound on that host:
// the flows entering on it or sent out of it; match keeps the flows whose
// match text contains S. Unknown paths answer 404, other methods 405, an
// unknown query parameter or a bad filter value 400.

// DefaultAgentSocket is where an agent serves its control endpoint unless
// told otherwise.
const DefaultAgentSocket = "/run/hivenet/agent.sock"

// AgentFlow is one installed flow as the control endpoint lists it.
type AgentFlow struct {
	// InPort is the datapath port the flow matches on (0 when the mask
	// leaves it out); PortID is the topology port bound there, when known.
	InPort uint32 `json:"in_port,omitempty"`
	PortID string `json:"port_id,omitempty"`
	// Match lists the fields the mask keeps, ovs-dpctl style, e.g.
	// "in_port=3 eth_dst=fa:16:3e:00:00:05 ip ip_dst=10.0.0.5 tcp dst_port=22".
	Match string `json:"match"`
	// Mask holds the mask of each field the flow matches on, by
	// packet.FlowMatch field in snake case: in_port, eth_src, eth_dst,
	// eth_type, vlan, ip_src, ip_dst, ip_proto, ip_ttl, ip_frag, src_port,
	// dst_port, arp_sha, icmp_id ("in_port": "0xffffffff", "ip_dst":
	// "255.255.255.0"). For ICMP src_port and dst_port are the type and
	// code, for ARP ip_src and ip_dst the protocol addresses.
	Mask map[string]string `json:"mask"`
	// Actions is the action list as text ("drop" when empty); ActionList
	// the same, one object per action.
	Actions    string        `json:"actions"`
	ActionList []AgentAction `json:"action_list"`
	Packets    uint64        `json:"packets"`
	Bytes      uint64        `json:"bytes"`
	// IdleMS is how long ago the flow last matched a packet (or was
	// installed), in milliseconds; LastUsed is that instant.
	IdleMS   int64     `json:"idle_ms"`
	LastUsed time.Time `json:"last_used"`
	// AgeMS is how long ago the flow was installed, in milliseconds;
	// Tags how many invalidation tags it carries (0: adopted from the
	// previous run of the agent, removed unless simulated again).
	AgeMS int64 `json:"age_ms"`
	Tags  int   `json:"tags"`
}

// AgentAction is one flow action. Type is output, tunnel, flood,
// set_eth_src, set_eth_dst, dec_ttl, set_ip_src, set_ip_dst, set_l4_src
// or set_l4_dst; the fields it uses are set.
type AgentAction struct {
	Type string `json:"type"`
	// Port: output's datapath port, dec_ttl's decrement, set_l4_*'s port,
	// ct_commit's second zone (a local egress port's; 0: none).
	Port uint32 `json:"port,omitempty"`
	// Remote: tunnel's endpoint; RemotePort its UDP port (0: the default).
	Remote     string `json:"remote,omitempty"`
	RemotePort uint16 `json:"remote_port,omitempty"`
	// Key: tunnel's or flood's tunnel key (VNI), ct_commit's zone.
	Key uint32 `json:"key,omitempty"`
	// Commit: the tunnel asks the receiving host to commit the
	// connection (see flowtable.FlagCommit).
	Commit bool   `json:"commit,omitempty"`
	MAC    string `json:"mac,omitempty"`
	Addr   string `json:"addr,omitempty"` // set_ip_src, set_ip_dst
}

// AgentStats are an agent's counters: its identity, its own counters, the
// flow-state tables' sizes and the datapath's counters.
type AgentStats struct {
	Host       string    `json:"host"`
	TunnelIP   string    `json:"tunnel_ip"`
	TunnelPort uint16    `json:"tunnel_port"`
	Datapath   string    `json:"datapath"`
	Started    time.Time `json:"started"`
	PortsBound int       `json:"ports_bound"`

	Upcalls         uint64 `json:"upcalls"`
	FlowsInstalled  uint64 `json:"flows_installed"`
	FramesEmitted   uint64 `json:"frames_emitted"`
	LearnDropped    uint64 `json:"learn_dropped"`
	StatePushed     uint64 `json:"state_pushed"`
	StatePushFailed uint64 `json:"state_push_failed"`
	StateReceived   uint64 `json:"state_received"`
	StateBad        uint64 `json:"state_bad"`
	// StateMirrorFailed counts conntrack entries received in messages
	// that could not be copied into a tracking datapath's table.
	StateMirrorFailed uint64 `json:"state_mirror_failed,omitempty"`
	// ResyncAnswered counts the other hosts' resync requests answered
	// (after their agent started), ResyncSent the messages sent for them.
	ResyncAnswered uint64 `json:"resync_answered"`
	ResyncSent     uint64 `json:"resync_sent"`
	SNATFailed     uint64 `json:"snat_failed"`
	Conns          int    `json:"conntrack_entries"`
	NATs           int    `json:"nat_bindings"`

	DP DatapathStats `json:"datapath_stats"`
}

// DatapathStats mirrors datapath.Stats field for field: the agent
// converts one into the other, so a counter added there must be added
// here (the build says so).
type DatapathStats struct {
	RxPackets               uint64 `json:"rx_packets"`
	TxPackets               uint64 `json:"tx_packets"`
	Hits                    uint64 `json:"hits"`
	Misses                  uint64 `json:"misses"`
	Drops                   uint64 `json:"drops"`
	Malformed               uint64 `json:"malformed"`
	TunnelRx                uint64 `json:"tunnel_rx"`
	TunnelTx                uint64 `json:"tunnel_tx"`
	TunnelUnknownKey        uint64 `json:"tunnel_unknown_key"`
	Flows                   int    `json:"flows"`
	UpcallsDroppedRateLimit uint64 `json:"upcalls_dropped_rate_limit"`
	StateTx                 uint64 `json:"state_tx"`
	StateRx                 uint64 `json:"state_rx"`
	StateUnhandled          uint64 `json:"state_unhandled"`
	ConnEntries             int    `json:"conn_entries,omitempty"`
	ConnCommits             uint64 `json:"conn_commits,omitempty"`
	ConnCommitsRx           uint64 `json:"conn_commits_rx,omitempty"`
}

// FlowFilter narrows a flow listing; zero fields filter nothing.
type FlowFilter struct {
	// Port is a datapath port number or the ID of a port bound on the
	// agent's host.
	Port string
	// Match is a substring of the flow's match text.
	Match string
}

// ErrAgentUnreachable is wrapped when nothing answers on the control
// socket: no such file, or no agent listening on it.
var ErrAgentUnreachable = errors.New("client: agent control socket unreachable")

// AgentControl talks to one agent's control endpoint. Its methods are
// safe for concurrent use.
type AgentControl struct {
	socket string
	hc     *http.Client
}

// NewAgentControl returns a client of the agent serving on socket (empty:
// DefaultAgentSocket). It connects on each call, not now.
func NewAgentControl(socket string, timeout time.Duration) *AgentControl {
	if socket == "" {
		socket = DefaultAgentSocket
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &AgentControl{socket: socket, hc: &http.Client{Transport: tr, Timeout: timeout}}
}

// Flows lists the agent's installed flows that pass f.
func (c *AgentControl) Flows(ctx context.Context, f FlowFilter) ([]AgentFlow, error) {
	q := url.Values{}
	if f.Port != "" {
		q.Set("port", f.Port)
	}
	if f.Match != "" {
		q.Set("match", f.Match)
	}
	var v struct {
		Flows []AgentFlow `json:"flows"`
	}
	if err := c.get(ctx, "/v1/flows", q, &v); err != nil {
		return nil, err
	}
	return v.Flows, nil
}

// Stats returns the agent's counters.
func (c *AgentControl) Stats(ctx context.Context) (AgentStats, error) {
	var v struct {
		Stats *AgentStats `json:"stats"`
	}
	if err := c.get(ctx, "/v1/stats", nil, &v); err != nil {
		return AgentStats{}, err
	}
	if v.Stats == nil {
		return AgentStats{}, fmt.Errorf("agent %s: answer without \"stats\"", c.socket)
	}
	return *v.Stats, nil
}

func (c *AgentControl) get(ctx context.Context, path string, q url.Values, out any) error {
	u := "http://agent" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w: %s (is the agent running with --control-socket %s?)", ErrAgentUnreachable, c.socket, c.socket)
		}
		return fmt.Errorf("agent %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("agent %s: reading answer: %w", c.socket, err)
	}
	if len(body) > maxBodyBytes {
		return fmt.Errorf("agent %s: answer larger than %d bytes", c.socket, maxBodyBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return parseError(resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("agent %s: decoding answer: %w", c.socket, err)
	}
	return nil
}
