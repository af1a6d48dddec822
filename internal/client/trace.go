package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// TracePath is the hivenet extension that simulates a described packet.
const TracePath = "/v2.0/hivenet/trace"

// TraceRequest describes a packet entering the virtual network at a port.
// Empty fields are left for the server to fill: the sources from the port
// (its MAC and first fixed IP), the destination MAC as broadcast, the
// protocol as an ICMP echo request, the TTL as 64.
type TraceRequest struct {
	PortID  string `json:"port_id"`
	EthSrc  string `json:"eth_src,omitempty"`
	EthDst  string `json:"eth_dst,omitempty"`
	IPSrc   string `json:"ip_src,omitempty"`
	IPDst   string `json:"ip_dst,omitempty"`
	Proto   string `json:"proto,omitempty"` // "icmp", "tcp", "udp", "arp" or a number
	SrcPort int    `json:"src_port,omitempty"`
	DstPort int    `json:"dst_port,omitempty"`
	TTL     int    `json:"ttl,omitempty"`
	// CTState: "new", "est" or "rpl" traces the packet as a datapath that
	// tracks connections (ebpf) sees it in that state; empty: as the
	// agent's own tables see it (every packet new).
	CTState string `json:"ct_state,omitempty"`
}

// TraceStep is one line of a trace: a device, the stage inside it and
// what happened there.
type TraceStep struct {
	Device string `json:"device"`
	Stage  string `json:"stage"`
	Detail string `json:"detail"`
}

// TraceOutput is one port the packet leaves the virtual network by.
type TraceOutput struct {
	PortID    string `json:"port_id"`
	Host      string `json:"host"`
	TunnelKey uint32 `json:"tunnel_key"`
	Local     bool   `json:"local"` // on the host the trace was simulated for
}

// TraceResult is the simulated fate of the packet.
type TraceResult struct {
	Host    string        `json:"host"`    // host whose view was simulated (the port's)
	Verdict string        `json:"verdict"` // "forward", "drop", "consumed"
	Reason  string        `json:"reason,omitempty"`
	Outputs []TraceOutput `json:"outputs"`
	Flood   string        `json:"flood,omitempty"` // the flood, if the packet is flooded
	Emitted int           `json:"emitted"`         // frames the agent would answer with
	Flow    string        `json:"flow"`            // whether and how the decision is cached
	Steps   []TraceStep   `json:"steps"`
	// Raw is the "trace" object exactly as received, for -o json.
	Raw json.RawMessage `json:"-"`
}

// Trace asks the server to simulate req and returns the path it took.
func (c *Client) Trace(ctx context.Context, req TraceRequest) (*TraceResult, error) {
	if req.PortID == "" {
		return nil, fmt.Errorf("client: trace needs a port ID")
	}
	var out map[string]json.RawMessage
	if err := c.Do(ctx, http.MethodPost, TracePath, nil, map[string]any{"trace": req}, &out); err != nil {
		return nil, err
	}
	raw, ok := out["trace"]
	if !ok {
		return nil, fmt.Errorf("client: response to POST %s has no \"trace\"", TracePath)
	}
	res := &TraceResult{Raw: raw}
	if err := decodeNumbers(raw, res); err != nil {
		return nil, fmt.Errorf("client: decoding trace: %w", err)
	}
	return res, nil
}
