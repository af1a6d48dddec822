// Package datapath defines the interface between the agent and the code
// that moves packets: bound interfaces, the tunnel and the flow table.
// Implementations: userspace (AF_PACKET + UDP VXLAN, a Go flow table) and,
// later, ebpf. Package fake holds an in-memory one for agent tests.
//
// Shared by the Go implementations: Rewriter (rewrite.go) executes the
// header-rewrite actions in place with incremental checksum updates;
// FormatFlow (format.go) renders a flow for humans.
package datapath

import (
	"net/netip"

	"hivenet/internal/flowstate"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// StateKey is the reserved tunnel key (VNI) of flow-state messages; it is
// never allocated to a port or bridge.
const StateKey = 0xFFFFFF

// PortNo numbers a bound interface within one datapath. 0 is never used
// for a port.
type PortNo uint32

// GSO mirrors the virtio_net_hdr that travels with a frame, so TSO/GSO
// superframes and checksum-offloaded frames pass unsplit. The zero value
// is a plain frame with a complete checksum.
type GSO struct {
	Flags      uint8 // VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
	GSOType    uint8 // VIRTIO_NET_HDR_GSO_NONE/TCPV4/UDP/TCPV6/UDP_L4
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Upcall is a packet that missed the flow table. Frame is valid only
// during the handler call.
type Upcall struct {
	InPort PortNo
	Match  packet.FlowMatch
	Frame  []byte
	GSO    GSO
}

// Handler is called for every miss, from the goroutine that read the
// packet (so packets of one port keep their order). It normally simulates,
// installs a flow and calls Execute.
type Handler func(u *Upcall)

// Remote is a tunnel endpoint.
type Remote struct {
	Addr netip.Addr
	Port uint16
}

// FlowInfo is one installed flow with its statistics.
type FlowInfo struct {
	Match    packet.FlowMatch
	Mask     packet.FlowMatch
	Actions  flowtable.Actions
	Packets  uint64
	Bytes    uint64
	IdleNano int64
	// AgeNano is how long ago the flow was installed; Tags how many
	// invalidation tags it carries (0 for flows adopted after a restart,
	// which expire unless installed again).
	AgeNano int64
	Tags    int
}

// Stats are datapath counters.
type Stats struct {
	RxPackets, TxPackets    uint64
	Hits, Misses            uint64
	Drops                   uint64 // dropped by a drop action or no route
	Malformed               uint64 // unparseable frames
	TunnelRx, TunnelTx      uint64
	TunnelUnknownKey        uint64
	Flows                   int
	UpcallsDroppedRateLimit uint64
	// StateTx / StateRx count flow-state messages sent and received
	// (also counted in TunnelTx / TunnelRx); StateUnhandled those
	// received with no state handler set.
	StateTx, StateRx, StateUnhandled uint64
	// Datapaths that track connections (ConnTracker): ConnEntries is the
	// connection directions tracked (as last counted), ConnCommits the
	// connections committed by flows, ConnCommitsRx those committed for
	// a tunnelled packet's commit bit.
	ConnEntries                int
	ConnCommits, ConnCommitsRx uint64
}

// Datapath moves packets. All methods are safe for concurrent use.
type Datapath interface {
	// Start begins reading packets; misses go to h.
	Start(h Handler) error
	// AddPort binds interface ifname and returns its number.
	AddPort(ifname string) (PortNo, error)
	// RemovePort unbinds p and drops every flow that mentions it.
	RemovePort(p PortNo) error
	// SetTunnelKey maps tunnel key to local port p for packets arriving
	// from the tunnel (p == 0 removes the mapping).
	SetTunnelKey(key uint32, p PortNo)
	// SetFloodSet defines flood key: the local ports and remote hosts a
	// flooded frame goes to. Frames arriving from the tunnel with this key
	// go to the local ports only. Empty lists remove it.
	SetFloodSet(key uint32, local []PortNo, remote []Remote)
	// Install adds a flow. match must already be masked by mask.
	Install(match, mask packet.FlowMatch, actions flowtable.Actions, tags []topology.Tag) error
	// Invalidate removes every flow carrying any of tags.
	Invalidate(tags []topology.Tag)
	// Execute sends frame (with its GSO metadata) from inPort through
	// actions. It does not retain frame.
	Execute(inPort PortNo, frame []byte, gso GSO, actions *flowtable.Actions) error
	// SendState sends a flow-state message (see package flowstate) to
	// remote over the tunnel with the reserved key StateKey.
	SendState(remote Remote, msg []byte) error
	// SetStateHandler sets the function called, from the tunnel reader,
	// with every flow-state message received; msg is valid only during
	// the call.
	SetStateHandler(h func(msg []byte))
	// Flows lists the installed flows.
	Flows() []FlowInfo
	Stats() Stats
	// Close stops everything and unbinds all ports.
	Close() error
}

// ConnTracker is implemented by datapaths that track connections
// themselves (ebpf), as Open vSwitch's ct() does, so that a new
// connection through security groups costs no upcall once a flow for its
// kind exists:
//
//   - Before its flow lookup, a packet entering by a local port gets
//     FlowMatch.CTState: the state of its key (flowstate.KeyOf the packet
//     in the port's zone) in the datapath's table: packet.CTNew when
//     neither direction is tracked, CTEstablished for the forward
//     direction, CTEstablished|CTReply for the reply. Upcalls carry it.
//   - flowtable.ActCTCommit records a connection (both directions) in the
//     table; a tunnel action with flowtable.FlagCommit makes the receiving
//     host record it in the zone of the port the packet is delivered to.
//   - Entries idle for longer than the datapath's conntrack idle time go.
type ConnTracker interface {
	// SetPortZone sets the conntrack zone of local port p (its bridge's
	// flood key; 0: packets entering by p are not tracked).
	SetPortZone(p PortNo, zone uint32) error
	// ConnState returns the state the datapath holds for key k as
	// FlowMatch.CTState would carry it (packet.CTNew when untracked).
	ConnState(k flowstate.Key) uint8
	// CommitConn records the connection whose forward key is k in zone
	// k.Zone, as ActCTCommit does: for connections the agent learnt of
	// from other hosts' flow-state messages.
	CommitConn(k flowstate.Key) error
}

// StateMessage is a flow-state message for one remote host.
type StateMessage struct {
	Remote Remote
	Msg    []byte
}

// StateExecuter is implemented by datapaths that can send flow-state
// messages and the packet that depends on them together, which saves
// system calls on the upcall path. Callers fall back to SendState for each
// message and then Execute when a datapath does not implement it.
type StateExecuter interface {
	// ExecuteWithState sends every message of msgs as SendState would,
	// then frame through actions as Execute would, with SendState's
	// ordering guarantee: each message leaves before the frame. It
	// returns how many messages were sent and the first error (of a
	// message or of the frame). Neither msgs nor frame is retained.
	ExecuteWithState(msgs []StateMessage, inPort PortNo, frame []byte, gso GSO, actions *flowtable.Actions) (sent int, err error)
}
