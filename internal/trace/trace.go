// Package trace answers "what happens to this packet?": it turns a
// described packet into a frame entering at a port, runs the same
// simulation the agents run (on the current topology, as seen from the
// host the port is bound on) and returns the path with every decision.
// It serves the API's trace endpoint and, through it, `hivenet trace`.
package trace

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"hivenet/internal/flowstate"
	"hivenet/internal/packet"
	"hivenet/internal/simulation"
	"hivenet/internal/topology"
)

// Request describes the packet. PortID is required; the rest defaults to
// what the port itself would send (its MAC and first fixed IP), an ICMP
// echo request.
type Request struct {
	PortID  string `json:"port_id"`
	EthSrc  string `json:"eth_src,omitempty"`
	EthDst  string `json:"eth_dst,omitempty"`
	IPSrc   string `json:"ip_src,omitempty"`
	IPDst   string `json:"ip_dst,omitempty"`
	Proto   string `json:"proto,omitempty"` // icmp (default), tcp, udp, arp, or a number
	SrcPort uint16 `json:"src_port,omitempty"`
	DstPort uint16 `json:"dst_port,omitempty"`
	TTL     uint8  `json:"ttl,omitempty"`
	// CTState traces the packet as an agent whose datapath tracks
	// connections sees it: "new", "est" (established) or "rpl"
	// (established, reply direction). Empty: as an agent that tracks
	// connections in its own tables, which the trace does not read (every
	// packet is new).
	CTState string `json:"ct_state,omitempty"`
}

// Step is one line of the path.
type Step struct {
	Device string `json:"device"`
	Stage  string `json:"stage"`
	Detail string `json:"detail"`
}

// Output is one place the packet leaves the virtual network.
type Output struct {
	PortID    string `json:"port_id"`
	Host      string `json:"host"`
	TunnelKey uint32 `json:"tunnel_key"`
	Local     bool   `json:"local"`
}

// Response is the simulated path.
type Response struct {
	Host    string   `json:"host"`
	Verdict string   `json:"verdict"`
	Reason  string   `json:"reason,omitempty"`
	Outputs []Output `json:"outputs"`
	Flood   string   `json:"flood,omitempty"`
	Emitted int      `json:"emitted"`
	Flow    string   `json:"flow"`
	Steps   []Step   `json:"steps"`
}

// Loader returns the current topology.
type Loader func(ctx context.Context) (*topology.Snapshot, error)

// ErrInvalid marks a request the caller got wrong (the API answers 400);
// ErrNotFound a port that does not exist (404).
var (
	ErrInvalid  = errors.New("trace: invalid request")
	ErrNotFound = errors.New("trace: port not found")
)

// Run simulates req on the topology from load.
func Run(ctx context.Context, load Loader, req Request) (*Response, error) {
	snap, err := load(ctx)
	if err != nil {
		return nil, err
	}
	return Simulate(snap, req, time.Now().UnixNano())
}

// Simulate simulates req on snap.
func Simulate(snap *topology.Snapshot, req Request, now int64) (*Response, error) {
	if req.PortID == "" {
		return nil, fmt.Errorf("%w: port_id is required", ErrInvalid)
	}
	port := snap.Port(req.PortID)
	if port == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, req.PortID)
	}
	frame, err := buildFrame(port, req)
	if err != nil {
		return nil, err
	}
	var m packet.FlowMatch
	if err := packet.Parse(frame, 1, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var ok bool
	if m.CTState, ok = packet.ParseCTState(req.CTState); !ok {
		return nil, fmt.Errorf("%w: ct_state %q: want new, est or rpl", ErrInvalid, req.CTState)
	}
	host := port.HostID
	if b := snap.Binding(port.ID); b != nil {
		host = b.Host
	}
	res := simulation.Trace(snap, host, simulation.Packet{Ingress: port.ID, Match: m, Frame: frame}, flowstate.Empty{}, now)
	out := &Response{Host: host, Verdict: res.Verdict.String(), Reason: string(res.Reason), Emitted: len(res.Emit), Outputs: []Output{}}
	for _, o := range res.Outputs {
		out.Outputs = append(out.Outputs, Output{PortID: o.PortID, Host: o.Host, TunnelKey: o.TunnelKey, Local: o.Local})
	}
	if res.Flood != nil {
		out.Flood = fmt.Sprintf("bridge %s key %d", res.Flood.BridgeID, res.Flood.Key)
	}
	if res.Cacheable {
		out.Flow = "cacheable: matches " + describeMask(res.Mask)
	} else {
		out.Flow = "not cacheable"
	}
	for _, s := range res.Trace {
		out.Steps = append(out.Steps, Step{Device: s.Device, Stage: s.Stage, Detail: s.Detail})
	}
	return out, nil
}

func describeMask(mask packet.FlowMatch) string {
	names := []struct {
		f    packet.Field
		name string
	}{
		{packet.FInPort, "in_port"}, {packet.FEthSrc, "eth_src"}, {packet.FEthDst, "eth_dst"},
		{packet.FEthType, "eth_type"}, {packet.FVLAN, "vlan"}, {packet.FIPSrc, "ip_src"},
		{packet.FIPDst, "ip_dst"}, {packet.FIPProto, "ip_proto"}, {packet.FIPTTL, "ttl"},
		{packet.FIPFrag, "frag"}, {packet.FSrcPort, "src_port"}, {packet.FDstPort, "dst_port"},
		{packet.FARPSha, "arp_sha"}, {packet.FICMPID, "icmp_id"}, {packet.FCTState, "ct_state"},
	}
	var parts []string
	for _, n := range names {
		one := packet.MaskOf(n.f)
		if mask.Masked(one) != (packet.FlowMatch{}) {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, ",")
}

func buildFrame(port *topology.Port, req Request) ([]byte, error) {
	src := [6]byte(port.MAC)
	if req.EthSrc != "" {
		m, err := topology.ParseMAC(req.EthSrc)
		if err != nil {
			return nil, fmt.Errorf("%w: eth_src: %v", ErrInvalid, err)
		}
		src = m
	}
	dst := [6]byte(topology.BroadcastMAC)
	if req.EthDst != "" {
		m, err := topology.ParseMAC(req.EthDst)
		if err != nil {
			return nil, fmt.Errorf("%w: eth_dst: %v", ErrInvalid, err)
		}
		dst = m
	}
	var ipSrc netip.Addr
	if len(port.FixedIPs) > 0 {
		ipSrc = port.FixedIPs[0].Addr
	}
	if req.IPSrc != "" {
		a, err := netip.ParseAddr(req.IPSrc)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%w: ip_src %q is not an IPv4 address", ErrInvalid, req.IPSrc)
		}
		ipSrc = a
	}
	if !ipSrc.IsValid() {
		ipSrc = netip.IPv4Unspecified()
	}
	ipDst := netip.IPv4Unspecified()
	if req.IPDst != "" {
		a, err := netip.ParseAddr(req.IPDst)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%w: ip_dst %q is not an IPv4 address", ErrInvalid, req.IPDst)
		}
		ipDst = a
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = 64
	}
	proto := strings.ToLower(req.Proto)
	switch proto {
	case "", "icmp":
		return packet.AppendICMP4Echo(nil, src, dst, ipSrc, ipDst, ttl, 8, 1, 1, nil), nil
	case "arp":
		return packet.AppendARPRequest(nil, src, ipSrc, ipDst), nil
	case "udp":
		return packet.AppendUDP4(nil, src, dst, netip.AddrPortFrom(ipSrc, req.SrcPort), netip.AddrPortFrom(ipDst, req.DstPort), ttl, nil), nil
	case "tcp":
		return appendTCP4(src, dst, ipSrc, ipDst, ttl, req.SrcPort, req.DstPort), nil
	}
	n, err := strconv.ParseUint(proto, 10, 8)
	if err != nil {
		return nil, fmt.Errorf("%w: proto %q: want icmp, tcp, udp, arp or a number 0-255", ErrInvalid, req.Proto)
	}
	return appendIPv4(src, dst, ipSrc, ipDst, ttl, uint8(n), nil), nil
}

// appendTCP4 builds a TCP SYN; the simulation reads headers only, so the
// checksums are left zero.
func appendTCP4(src, dst [6]byte, ipSrc, ipDst netip.Addr, ttl uint8, sport, dport uint16) []byte {
	tcp := make([]byte, 20)
	tcp[0], tcp[1] = byte(sport>>8), byte(sport)
	tcp[2], tcp[3] = byte(dport>>8), byte(dport)
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	tcp[14], tcp[15] = 0xff, 0xff
	return appendIPv4(src, dst, ipSrc, ipDst, ttl, packet.ProtoTCP, tcp)
}

func appendIPv4(src, dst [6]byte, ipSrc, ipDst netip.Addr, ttl, proto uint8, l4 []byte) []byte {
	b := make([]byte, 14+20, 14+20+len(l4))
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	b[12], b[13] = 0x08, 0x00
	ip := b[14:]
	total := 20 + len(l4)
	ip[0] = 0x45
	ip[2], ip[3] = byte(total>>8), byte(total)
	ip[8], ip[9] = ttl, proto
	s, d := ipSrc.As4(), ipDst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	cs := packet.Checksum(ip[:20], 0)
	ip[10], ip[11] = byte(cs>>8), byte(cs)
	return append(b, l4...)
}
