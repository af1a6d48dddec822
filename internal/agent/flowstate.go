package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"hivenet/internal/datapath"
	"hivenet/internal/flowstate"
	"hivenet/internal/simulation"
	"hivenet/internal/store"
	"hivenet/internal/topology"
)

// Flow state: conntrack entries and NAT bindings the simulation creates
// are written to the local tables and pushed, before the packet goes, to
// the hosts that will see the reply (StateWrite.Hosts). Messages from
// other hosts arrive through the datapath's state channel and are applied
// by the tunnel reader before it delivers the next packet.
//
// SNAT ports come from blocks this host leases from the store (under its
// session lease, so a dead host's blocks free up): a simulation that finds
// no free port asks the loop for one more block and simulates again.

// snatRequest asks the loop for one more SNAT port block for addr.
type snatRequest struct {
	addr  netip.Addr
	reply chan error
}

// errNoSNATBlock is returned when no block could be leased.
var errNoSNATBlock = errors.New("agent: no SNAT port block available")

// stateBuf is the scratch of one upcall's state push, pooled so that an
// upcall allocates nothing for it: the messages per destination host,
// their encodings back to back, and the messages ready for the datapath.
type stateBuf struct {
	hosts []hostState
	enc   []byte
	ends  []int // end of each encoding in enc
	msgs  []datapath.StateMessage
}

// hostState collects what goes to one host.
type hostState struct {
	name string
	m    flowstate.Message
}

var stateBufs = sync.Pool{New: func() any { return new(stateBuf) }}

// getStateBuf returns an empty stateBuf; putStateBuf gives it back.
func getStateBuf() *stateBuf { return stateBufs.Get().(*stateBuf) }

func putStateBuf(sb *stateBuf) {
	sb.reset()
	stateBufs.Put(sb)
}

// reset empties sb, keeping its capacity.
func (sb *stateBuf) reset() {
	for i := range sb.hosts {
		sb.hosts[i].m.Conns = sb.hosts[i].m.Conns[:0]
		sb.hosts[i].m.NATs = sb.hosts[i].m.NATs[:0]
	}
	sb.hosts = sb.hosts[:0]
	sb.enc = sb.enc[:0]
	sb.ends = sb.ends[:0]
	clear(sb.msgs) // no references to encodings left
	sb.msgs = sb.msgs[:0]
}

// host returns the collection for host name, adding it.
func (sb *stateBuf) host(name string) *flowstate.Message {
	for i := range sb.hosts {
		if sb.hosts[i].name == name {
			return &sb.hosts[i].m
		}
	}
	if len(sb.hosts) < cap(sb.hosts) { // reuse the slices of an earlier upcall
		sb.hosts = sb.hosts[:len(sb.hosts)+1]
		h := &sb.hosts[len(sb.hosts)-1]
		h.name = name
		return &h.m
	}
	sb.hosts = append(sb.hosts, hostState{name: name})
	return &sb.hosts[len(sb.hosts)-1].m
}

// pushState writes state locally and encodes the messages for the other
// hosts into sb.msgs; the caller sends them before the packet (sendState,
// or with it through datapath.StateExecuter).
func (a *Agent) pushState(snap *topology.Snapshot, writes []simulation.StateWrite, now int64, sb *stateBuf) {
	for _, w := range writes {
		switch {
		case w.Conn != nil:
			a.fs.AddConn(*w.Conn, now)
		case w.NAT != nil:
			a.fs.AddNAT(*w.NAT, now)
		default:
			continue
		}
		for _, h := range w.Hosts {
			if h == a.cfg.Host {
				continue
			}
			m := sb.host(h)
			if w.Conn != nil {
				m.Conns = append(m.Conns, *w.Conn)
			} else {
				m.NATs = append(m.NATs, *w.NAT)
			}
		}
	}
	remotes := make([]datapath.Remote, 0, 4) // on the stack unless many hosts
	for i := range sb.hosts {
		hs := &sb.hosts[i]
		h := snap.Host(hs.name)
		if h == nil {
			continue
		}
		r := datapath.Remote{Addr: h.TunnelIP, Port: h.TunnelPort}
		if hs.m.Size() <= flowstate.MaxMessageSize {
			sb.enc = flowstate.AppendMessage(sb.enc, &hs.m)
			sb.ends = append(sb.ends, len(sb.enc))
			remotes = append(remotes, r)
			continue
		}
		for _, part := range flowstate.Split(&hs.m) {
			sb.enc = flowstate.AppendMessage(sb.enc, &part)
			sb.ends = append(sb.ends, len(sb.enc))
			remotes = append(remotes, r)
		}
	}
	begin := 0
	for i, end := range sb.ends { // enc is final now: slice it
		sb.msgs = append(sb.msgs, datapath.StateMessage{Remote: remotes[i], Msg: sb.enc[begin:end:end]})
		begin = end
	}
}

// sendState sends msgs one by one (no packet to send them with, or a
// datapath without datapath.StateExecuter).
func (a *Agent) sendState(msgs []datapath.StateMessage) {
	for _, m := range msgs {
		if err := a.dp.SendState(m.Remote, m.Msg); err != nil {
			a.stats.statePushFailed.Add(1)
		} else {
			a.stats.statePushed.Add(1)
		}
	}
}

// applyState is the datapath's state handler: a message from a peer.
func (a *Agent) applyState(msg []byte) {
	var m flowstate.Message
	if err := flowstate.ParseMessage(msg, &m); err != nil {
		a.stats.stateBad.Add(1)
		return
	}
	if m.Resync != "" {
		a.answerResync(m.Resync)
		return
	}
	a.fs.ApplyMessage(&m, time.Now().UnixNano())
	a.stats.stateReceived.Add(1)
	a.mirrorConns(m.Conns)
}

// mirrorConns copies conntrack entries that came in a message (from a host
// whose datapath does not track connections, or from a path through NAT)
// into the datapath's table when it tracks connections: a reply entering
// here is looked up there (see simulation's chain.go) and must be seen as
// one.
func (a *Agent) mirrorConns(keys []flowstate.Key) {
	if a.ct == nil {
		return
	}
	for _, k := range keys {
		if err := a.ct.CommitConn(k); err != nil {
			a.stats.stateMirrorFailed.Add(1)
		}
	}
}

// Resync: flow state reaches a host when a flow that needs it starts, so
// a host that lost its tables (an agent killed before it saved them, a
// host rebuilt, a gateway added under live connections) would lack the
// state of every connection older than itself: the conntrack entries
// and NAT bindings that let replies through. On start the agent asks
// every other host for its state (requestResync); each answers with all
// of its tables (answerResync), one answer at a time per asking host (a
// request that comes while one is being sent is dropped). Receiving
// state twice is harmless (adding an entry is idempotent).

// requestResync sends a resync request to every other host of snap.
func (a *Agent) requestResync(snap *topology.Snapshot) {
	req := flowstate.AppendResync(nil, a.cfg.Host)
	n := 0
	snap.Hosts(func(h *topology.Host) {
		if h.Name == a.cfg.Host || !h.TunnelIP.IsValid() {
			return
		}
		if err := a.dp.SendState(datapath.Remote{Addr: h.TunnelIP, Port: h.TunnelPort}, req); err != nil {
			a.log.Warn("flow-state resync request failed", "host", h.Name, "err", err)
			return
		}
		n++
	})
	if n > 0 {
		a.log.Info("flow state requested from the other hosts", "hosts", n)
	}
}

// answerResync sends all of this host's flow state to host, in the
// background (it is called from the datapath's reader).
func (a *Agent) answerResync(host string) {
	h := a.snap.Load().Host(host)
	if h == nil || host == a.cfg.Host {
		return
	}
	if _, busy := a.resyncing.LoadOrStore(host, true); busy {
		return
	}
	to := datapath.Remote{Addr: h.TunnelIP, Port: h.TunnelPort}
	a.stats.resyncAnswered.Add(1)
	go func() {
		defer a.resyncing.Delete(host)
		d := a.fs.Dump()
		var m flowstate.Message
		for i := range d.Conns {
			m.Conns = append(m.Conns, d.Conns[i].Key)
		}
		for i := range d.NATs {
			m.NATs = append(m.NATs, d.NATs[i].NAT)
		}
		var buf []byte
		sent := 0
		for _, part := range flowstate.Split(&m) {
			buf = flowstate.AppendMessage(buf[:0], &part)
			if a.dp.SendState(to, buf) != nil {
				a.stats.statePushFailed.Add(1)
				continue
			}
			sent++
		}
		a.stats.resyncSent.Add(uint64(sent))
		a.log.Info("flow state sent for resync", "host", host, "conns", len(m.Conns), "nats", len(m.NATs), "messages", sent)
	}()
}

// requestSNATBlock asks the loop to lease another block for addr and
// waits for the answer (upcall goroutines only).
func (a *Agent) requestSNATBlock(ctx context.Context, addr netip.Addr) error {
	req := snatRequest{addr: addr, reply: make(chan error, 1)}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case a.snatq <- req:
	case <-t.C:
		return errNoSNATBlock
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-t.C:
		return errNoSNATBlock
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leaseSNATBlock (loop) leases a block for addr that no host holds,
// starting the probe at a per-host place so hosts rarely race.
func (a *Agent) leaseSNATBlock(ctx context.Context, addr netip.Addr) error {
	held := a.fs.SNATBlocks(addr)
	tried := append([]uint16(nil), held...)
	h := fnv.New32a()
	h.Write([]byte(a.cfg.Host))
	seed := h.Sum32()
	for range 64 {
		start := flowstate.NextBlock(tried, seed)
		if start == 0 {
			break
		}
		err := a.sess.LeaseSNATBlock(ctx, addr, start)
		if errors.Is(err, store.ErrSNATBlockTaken) {
			tried = append(tried, start)
			seed = uint32(flowstate.BlockIndex(start)) + 1
			continue
		}
		if err != nil {
			return err
		}
		if err := a.fs.AddSNATBlock(addr, start); err != nil {
			return err
		}
		a.snatBlocks = append(a.snatBlocks, snatBlock{addr, start})
		a.log.Info("SNAT port block leased", "addr", addr, "first_port", start, "blocks_held", len(held)+1)
		return nil
	}
	return fmt.Errorf("%w for %s", errNoSNATBlock, addr)
}

type snatBlock struct {
	addr  netip.Addr
	start uint16
}

// dropSNATBlocks (loop) forgets every block: their leases died with the
// session. Bindings using their ports stay valid; new connections lease
// blocks again.
func (a *Agent) dropSNATBlocks() {
	for _, b := range a.snatBlocks {
		a.fs.RemoveSNATBlock(b.addr, b.start)
	}
	a.snatBlocks = nil
}

// flowStateFile is where the tables are kept across restarts.
func (a *Agent) flowStateFile() string {
	if a.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(a.cfg.StateDir, "flowstate")
}

// saveFlowState writes the tables to the state dir (atomically).
func (a *Agent) saveFlowState() {
	path := a.flowStateFile()
	if path == "" {
		return
	}
	b := a.fs.AppendSnapshot(nil, time.Now().UnixNano())
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		a.log.Warn("saving flow state failed", "err", err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		a.log.Warn("saving flow state failed", "err", err)
	}
}

// restoreFlowState loads what a previous run saved.
func (a *Agent) restoreFlowState() {
	path := a.flowStateFile()
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		a.log.Warn("reading saved flow state failed", "err", err)
		return
	}
	n, err := a.fs.Restore(b, time.Now().UnixNano())
	if err != nil {
		a.log.Warn("saved flow state unusable", "path", path, "err", err)
		return
	}
	a.log.Info("flow state restored", "entries", n)
}
