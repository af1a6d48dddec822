// Package fake is an in-memory datapath.Datapath for agent unit tests.
// Ports are named slots whose transmitted frames are recorded; frames
// are injected with Inject (as if a VM sent them) and InjectTunnel (as if
// a remote host tunnelled them). Flow-state messages sent are recorded
// (SentState) and received ones injected with InjectState. It uses the
// real flowtable, so flows, masks, tags and counters behave as in the
// userspace datapath, and the real rewrites (datapath.Rewriter), so
// recorded frames carry rewritten headers and checksums. It does no I/O
// and starts no goroutine: Inject calls the Handler synchronously.
package fake

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

var _ datapath.Datapath = (*Datapath)(nil)
var _ datapath.StateExecuter = (*Datapath)(nil)

// ErrNoPort is returned for a port number that is not bound.
var ErrNoPort = errors.New("fake: no such port")

// Frame is a frame sent out of a local port.
type Frame struct {
	Data []byte
	GSO  datapath.GSO
}

// TunnelFrame is a frame sent into the tunnel.
type TunnelFrame struct {
	Remote datapath.Remote
	Key    uint32
	Data   []byte
	GSO    datapath.GSO
}

// StateMsg is a flow-state message sent with SendState.
type StateMsg struct {
	Remote datapath.Remote
	Msg    []byte
}

// Config configures a fake Datapath.
type Config struct {
	// Now is the clock for flow stats and expiry (nanoseconds); nil means
	// a clock that stays at 0.
	Now func() int64
	// Table configures the flow table.
	Table flowtable.Config
}

type port struct {
	name string
	sent []Frame
}

type floodSet struct {
	local  []datapath.PortNo
	remote []datapath.Remote
}

// Datapath is the fake. All methods are safe for concurrent use.
type Datapath struct {
	now   func() int64
	table *flowtable.Table

	mu      sync.Mutex // guards the fields below
	h       datapath.Handler
	ports   map[datapath.PortNo]*port
	names   map[string]datapath.PortNo
	next    datapath.PortNo
	keys    map[uint32]datapath.PortNo
	floods  map[uint32]floodSet
	tunnel  []TunnelFrame
	state   []StateMsg
	stateH  func(msg []byte)
	stats   datapath.Stats
	closed  bool
	missing map[string]bool
	// withData counts messages sent by ExecuteWithState.
	withData int
}

// New returns an empty fake datapath.
func New(cfg Config) *Datapath {
	if cfg.Now == nil {
		cfg.Now = func() int64 { return 0 }
	}
	return &Datapath{
		now:     cfg.Now,
		table:   flowtable.New(cfg.Table),
		ports:   map[datapath.PortNo]*port{},
		names:   map[string]datapath.PortNo{},
		keys:    map[uint32]datapath.PortNo{},
		floods:  map[uint32]floodSet{},
		missing: map[string]bool{},
	}
}

// SetMissing makes AddPort(ifname) fail as if the interface did not exist
// (missing == true) or succeed again.
func (d *Datapath) SetMissing(ifname string, missing bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.missing[ifname] = missing
}

// Start records the miss handler.
func (d *Datapath) Start(h datapath.Handler) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h == nil {
		return errors.New("fake: nil handler")
	}
	d.h = h
	return nil
}

// AddPort binds ifname to a new port number.
func (d *Datapath) AddPort(ifname string) (datapath.PortNo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.missing[ifname] {
		return 0, fmt.Errorf("fake: interface %s: no such device", ifname)
	}
	if _, ok := d.names[ifname]; ok {
		return 0, fmt.Errorf("fake: interface %s already bound", ifname)
	}
	d.next++
	d.ports[d.next] = &port{name: ifname}
	d.names[ifname] = d.next
	return d.next, nil
}

// RemovePort unbinds p and removes the flows that mention it.
func (d *Datapath) RemovePort(p datapath.PortNo) error {
	d.mu.Lock()
	pt, ok := d.ports[p]
	if ok {
		delete(d.ports, p)
		delete(d.names, pt.name)
	}
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoPort, p)
	}
	d.table.RemoveIf(func(match, _ *packet.FlowMatch, a *flowtable.Actions) bool {
		if match.InPort == uint32(p) {
			return true
		}
		for _, x := range a.List() {
			if x.Kind == flowtable.ActOutput && x.Port == uint32(p) {
				return true
			}
		}
		return false
	})
	return nil
}

// PortNo returns the port bound to ifname.
func (d *Datapath) PortNo(ifname string) (datapath.PortNo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.names[ifname]
	return p, ok
}

// SetTunnelKey maps key to local port p (0 removes it).
func (d *Datapath) SetTunnelKey(key uint32, p datapath.PortNo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p == 0 {
		delete(d.keys, key)
		return
	}
	d.keys[key] = p
}

// SetFloodSet defines flood key (empty lists remove it).
func (d *Datapath) SetFloodSet(key uint32, local []datapath.PortNo, remote []datapath.Remote) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(local) == 0 && len(remote) == 0 {
		delete(d.floods, key)
		return
	}
	d.floods[key] = floodSet{local: slices.Clone(local), remote: slices.Clone(remote)}
}

// Install adds a flow.
func (d *Datapath) Install(match, mask packet.FlowMatch, actions flowtable.Actions, tags []topology.Tag) error {
	return d.table.Insert(match, mask, actions, tags, d.now())
}

// Invalidate removes the flows carrying any of tags.
func (d *Datapath) Invalidate(tags []topology.Tag) { d.table.Invalidate(tags) }

// Execute sends frame from inPort through actions.
func (d *Datapath) Execute(inPort datapath.PortNo, frame []byte, gso datapath.GSO, actions *flowtable.Actions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.executeLocked(inPort, frame, gso, actions)
}

func (d *Datapath) executeLocked(inPort datapath.PortNo, frame []byte, gso datapath.GSO, actions *flowtable.Actions) error {
	if actions.IsDrop() {
		d.stats.Drops++
		return nil
	}
	var rw datapath.Rewriter
	copied := false
	for _, a := range actions.List() {
		switch a.Kind {
		case flowtable.ActSetEthSrc, flowtable.ActSetEthDst, flowtable.ActDecTTL,
			flowtable.ActSetIPv4Src, flowtable.ActSetIPv4Dst, flowtable.ActSetL4Src, flowtable.ActSetL4Dst:
			if !copied { // never modify the caller's frame
				frame, copied = slices.Clone(frame), true
			}
			if err := rw.Apply(frame, gso, &a); err != nil {
				d.stats.Drops++
				return err
			}
		case flowtable.ActOutput:
			d.outputLocked(datapath.PortNo(a.Port), frame, gso)
		case flowtable.ActTunnel:
			d.tunnelLocked(datapath.Remote{Addr: addr4(a.Remote), Port: a.RemotePort}, a.Key, frame, gso)
		case flowtable.ActFlood:
			fs := d.floods[a.Key]
			for _, p := range fs.local {
				if p != inPort {
					d.outputLocked(p, frame, gso)
				}
			}
			for _, r := range fs.remote {
				d.tunnelLocked(r, a.Key, frame, gso)
			}
		default:
			return fmt.Errorf("fake: unknown action kind %d", a.Kind)
		}
	}
	return nil
}

func (d *Datapath) outputLocked(p datapath.PortNo, frame []byte, gso datapath.GSO) {
	pt, ok := d.ports[p]
	if !ok {
		d.stats.Drops++
		return
	}
	pt.sent = append(pt.sent, Frame{Data: slices.Clone(frame), GSO: gso})
	d.stats.TxPackets++
}

func (d *Datapath) tunnelLocked(r datapath.Remote, key uint32, frame []byte, gso datapath.GSO) {
	d.tunnel = append(d.tunnel, TunnelFrame{Remote: r, Key: key, Data: slices.Clone(frame), GSO: gso})
	d.stats.TunnelTx++
}

// Inject delivers frame as if it arrived on local port p: parse, flow
// lookup, then the flow's actions or, on a miss, the Handler (called
// synchronously, without the fake's lock held, so it may call Execute and
// Install). It reports whether the packet hit a flow.
func (d *Datapath) Inject(p datapath.PortNo, frame []byte, gso datapath.GSO) (hit bool, err error) {
	d.mu.Lock()
	if _, ok := d.ports[p]; !ok {
		d.mu.Unlock()
		return false, fmt.Errorf("%w: %d", ErrNoPort, p)
	}
	d.stats.RxPackets++
	var m packet.FlowMatch
	if err := packet.Parse(frame, uint32(p), &m); err != nil {
		d.stats.Malformed++
		d.mu.Unlock()
		return false, nil
	}
	if a, ok := d.table.Lookup(&m, d.now(), len(frame)); ok {
		d.stats.Hits++
		defer d.mu.Unlock()
		return true, d.executeLocked(p, frame, gso, &a)
	}
	d.stats.Misses++
	h := d.h
	d.mu.Unlock()
	if h != nil {
		h(&datapath.Upcall{InPort: p, Match: m, Frame: frame, GSO: gso})
	}
	return false, nil
}

// InjectTunnel delivers frame as if it arrived from the tunnel with key.
// Key datapath.StateKey delivers frame as a flow-state message
// (InjectState).
func (d *Datapath) InjectTunnel(key uint32, frame []byte) {
	if key == datapath.StateKey {
		d.InjectState(frame)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.TunnelRx++
	if p, ok := d.keys[key]; ok {
		d.outputLocked(p, frame, datapath.GSO{})
		return
	}
	if fs, ok := d.floods[key]; ok {
		for _, p := range fs.local {
			d.outputLocked(p, frame, datapath.GSO{})
		}
		return
	}
	d.stats.TunnelUnknownKey++
}

// SendState records msg as sent to remote.
func (d *Datapath) SendState(remote datapath.Remote, msg []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("fake: datapath closed")
	}
	d.state = append(d.state, StateMsg{Remote: remote, Msg: slices.Clone(msg)})
	d.stats.StateTx++
	d.stats.TunnelTx++
	return nil
}

// SetStateHandler sets the function InjectState calls.
func (d *Datapath) SetStateHandler(h func(msg []byte)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stateH = h
}

// InjectState delivers msg as if it arrived from the tunnel with key
// datapath.StateKey: the state handler is called synchronously (without
// the fake's lock held). It reports whether a handler took it.
func (d *Datapath) InjectState(msg []byte) bool {
	d.mu.Lock()
	h := d.stateH
	d.stats.StateRx++
	d.stats.TunnelRx++
	if h == nil {
		d.stats.StateUnhandled++
	}
	d.mu.Unlock()
	if h == nil {
		return false
	}
	h(msg)
	return true
}

// SentState returns and clears the flow-state messages sent.
func (d *Datapath) SentState() []StateMsg {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state
	d.state = nil
	return s
}

// Sent returns and clears the frames sent out of port p.
func (d *Datapath) Sent(p datapath.PortNo) []Frame {
	d.mu.Lock()
	defer d.mu.Unlock()
	pt, ok := d.ports[p]
	if !ok {
		return nil
	}
	s := pt.sent
	pt.sent = nil
	return s
}

// Tunnelled returns and clears the frames sent into the tunnel.
func (d *Datapath) Tunnelled() []TunnelFrame {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.tunnel
	d.tunnel = nil
	return s
}

// Expire removes idle flows at the fake clock's now.
func (d *Datapath) Expire() int { return d.table.Expire(d.now()) }

// Flows lists the installed flows.
func (d *Datapath) Flows() []datapath.FlowInfo {
	now := d.now()
	var out []datapath.FlowInfo
	for _, e := range d.table.Dump() {
		out = append(out, datapath.FlowInfo{Match: e.Match, Mask: e.Mask, Actions: e.Actions,
			Packets: e.Packets, Bytes: e.Bytes, IdleNano: now - e.LastUsed, AgeNano: now - e.Created, Tags: len(e.Tags)})
	}
	return out
}

// Stats returns the counters.
func (d *Datapath) Stats() datapath.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Flows = d.table.Len()
	return s
}

// Close unbinds every port.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	clear(d.ports)
	clear(d.names)
	return nil
}

func addr4(b [4]byte) netip.Addr { return netip.AddrFrom4(b) }

// ExecuteWithState records msgs as SendState would, then executes frame
// (see datapath.StateExecuter).
func (d *Datapath) ExecuteWithState(msgs []datapath.StateMessage, inPort datapath.PortNo, frame []byte, gso datapath.GSO, actions *flowtable.Actions) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, errors.New("fake: datapath closed")
	}
	for _, m := range msgs {
		d.state = append(d.state, StateMsg{Remote: m.Remote, Msg: slices.Clone(m.Msg)})
		d.stats.StateTx++
		d.stats.TunnelTx++
	}
	d.withData += len(msgs)
	return len(msgs), d.executeLocked(inPort, frame, gso, actions)
}

// StateSentWithData returns how many flow-state messages were sent by
// ExecuteWithState (also listed by SentState).
func (d *Datapath) StateSentWithData() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.withData
}
