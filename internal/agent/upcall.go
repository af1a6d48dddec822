package agent

import (
	"strings"
	"time"

	"hivenet/internal/datapath"
	"hivenet/internal/flowstate"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/simulation"
	"hivenet/internal/topology"
)

// Upcall path: a datapath reader goroutine missed its flow table.
//
//  1. Map the datapath port to the topology port; simulate on the current
//     snapshot (lock-free) and flow-state tables. If SNAT ran out of
//     ports, lease one more block (through the loop) and simulate again.
//  2. Apply learned MACs and ARP entries to the snapshot at once and queue
//     them for publication by the loop.
//  3. Write conntrack and NAT state locally and encode it for the hosts
//     that will see the reply.
//  4. Compile the result to datapath actions, install the flow (when
//     cacheable), then send the state messages and the packet, in that
//     order (in one sendmmsg where the datapath can), and any generated
//     frames.
//  5. If the snapshot changed while we worked, invalidate the flow's tags:
//     the flow may rest on stale state.
func (a *Agent) handleUpcall(u *datapath.Upcall) {
	a.stats.upcalls.Add(1)
	idx := a.ports.Load()
	portID, ok := idx.byNo[u.InPort]
	if !ok {
		return // port unbound while the packet was queued
	}
	snap := a.snap.Load()
	pkt := simulation.Packet{Ingress: portID, Match: u.Match, Frame: u.Frame}
	now := time.Now().UnixNano()
	res := simulation.Simulate(snap, a.cfg.Host, pkt, a.view, now)
	if res.NeedSNATBlock.IsValid() {
		if err := a.requestSNATBlock(a.ctx, res.NeedSNATBlock); err != nil {
			a.stats.snatFailed.Add(1)
			return
		}
		res = simulation.Simulate(snap, a.cfg.Host, pkt, a.view, now)
		if res.NeedSNATBlock.IsValid() {
			a.stats.snatFailed.Add(1)
			return
		}
	}

	if len(res.Learn) > 0 || len(res.LearnARP) > 0 {
		a.learn(res.Learn, res.LearnARP)
	}
	var sb *stateBuf
	if len(res.State) > 0 {
		sb = getStateBuf()
		defer putStateBuf(sb)
		a.pushState(snap, res.State, now, sb) // sent before the packet goes
	}
	if res.Verdict == simulation.Forward {
		a.refreshState(snap, portID, &res, &u.Match, now)
	}
	actions := a.compile(snap, idx, &res)
	if res.Cacheable {
		if err := a.dp.Install(u.Match.Masked(res.Mask), res.Mask, actions, res.Tags); err == nil {
			a.stats.installed.Add(1)
		}
	}
	var msgs []datapath.StateMessage
	if sb != nil {
		msgs = sb.msgs
	}
	switch se, ok := a.dp.(datapath.StateExecuter); {
	case res.Verdict != simulation.Forward || actions.IsDrop():
		a.sendState(msgs)
	case ok && len(msgs) > 0:
		// One sendmmsg for the messages and the packet (userspace).
		sent, _ := se.ExecuteWithState(msgs, u.InPort, u.Frame, u.GSO, &actions)
		a.stats.statePushed.Add(uint64(sent))
		a.stats.statePushFailed.Add(uint64(len(msgs) - sent))
	default:
		a.sendState(msgs)
		_ = a.dp.Execute(u.InPort, u.Frame, u.GSO, &actions)
	}
	for _, e := range res.Emit {
		var out flowtable.Actions
		if !a.resolve(snap, idx, e.PortID, &out) {
			continue
		}
		if a.dp.Execute(0, e.Frame, datapath.GSO{}, &out) == nil {
			a.stats.emitted.Add(1)
		}
	}
	if res.Cacheable && a.snap.Load() != snap {
		a.dp.Invalidate(res.Tags)
	}
}

// compile turns the simulation's rewrites and logical outputs into
// datapath actions. An output that cannot be resolved (port unbound here a
// moment ago, host gone) is left out; with no output left the flow is a
// drop.
func (a *Agent) compile(snap *topology.Snapshot, idx *portIndex, res *simulation.Result) flowtable.Actions {
	var as flowtable.Actions
	if res.Verdict != simulation.Forward {
		return as
	}
	// The commit reads the packet as it entered: before the rewrites.
	commit := res.Commit != nil && a.ct != nil
	if commit {
		ct := flowtable.Action{Kind: flowtable.ActCTCommit, Key: res.Commit.ZoneIn}
		if len(res.Outputs) == 1 && res.Outputs[0].Local {
			ct.Port = res.Commit.ZoneOut
		}
		as.Append(ct)
	}
	rw := &res.Rewrite
	if rw.EthSrc != nil {
		as.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: *rw.EthSrc})
	}
	if rw.EthDst != nil {
		as.Append(flowtable.Action{Kind: flowtable.ActSetEthDst, MAC: *rw.EthDst})
	}
	if rw.DecTTL != 0 {
		as.Append(flowtable.Action{Kind: flowtable.ActDecTTL, Port: uint32(rw.DecTTL)})
	}
	if rw.IPSrc.Is4() {
		as.Append(flowtable.Action{Kind: flowtable.ActSetIPv4Src, Remote: rw.IPSrc.As4()})
	}
	if rw.IPDst.Is4() {
		as.Append(flowtable.Action{Kind: flowtable.ActSetIPv4Dst, Remote: rw.IPDst.As4()})
	}
	if rw.L4Src != 0 {
		as.Append(flowtable.Action{Kind: flowtable.ActSetL4Src, RemotePort: rw.L4Src})
	}
	if rw.L4Dst != 0 {
		as.Append(flowtable.Action{Kind: flowtable.ActSetL4Dst, RemotePort: rw.L4Dst})
	}
	rewrites := as.N
	for _, o := range res.Outputs {
		if a.resolve(snap, idx, o.PortID, &as) && commit {
			if last := &as.A[as.N-1]; last.Kind == flowtable.ActTunnel {
				last.Flags |= flowtable.FlagCommit
			}
		}
	}
	if res.Flood != nil {
		as.Append(flowtable.Action{Kind: flowtable.ActFlood, Key: res.Flood.Key})
	}
	if as.N == rewrites {
		return flowtable.Actions{} // nowhere to go: drop
	}
	return as
}

// resolve appends the action that delivers to portID (a port or an
// uplink): output when it is bound here, else a tunnel to its host with
// its key. It reports false when the port is nowhere to be reached.
func (a *Agent) resolve(snap *topology.Snapshot, idx *portIndex, portID string, as *flowtable.Actions) bool {
	if no, ok := idx.byID[portID]; ok {
		return as.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(no)})
	}
	var host string
	var key uint32
	if id, ok := strings.CutPrefix(portID, simulation.UplinkPortPrefix); ok {
		u := snap.Uplink(id)
		if u == nil {
			return false
		}
		host, key = u.Host, u.TunnelKey
	} else {
		p := snap.Port(portID)
		b := snap.Binding(portID)
		if p == nil || b == nil {
			return false
		}
		host, key = b.Host, p.TunnelKey
	}
	h := snap.Host(host)
	if h == nil || host == a.cfg.Host || !h.TunnelIP.Is4() {
		return false
	}
	return as.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: key, Remote: h.TunnelIP.As4(), RemotePort: h.TunnelPort})
}

// learn makes MAC and ARP entries effective locally at once and queues
// them for publication.
func (a *Agent) learn(macs []topology.MACEntry, arps []topology.ARPEntry) {
	changes := make([]topology.Change, 0, len(macs)+len(arps))
	for i := range macs {
		e := macs[i]
		changes = append(changes, topology.Change{Kind: topology.KindMAC, ID: e.ID(), MAC: &e})
	}
	for i := range arps {
		e := arps[i]
		changes = append(changes, topology.Change{Kind: topology.KindARP, ID: e.ID(), ARP: &e})
	}
	a.applyChanges(0, changes)
	for _, c := range changes {
		select {
		case a.learnq <- learned{mac: c.MAC, arp: c.ARP}:
		default:
			a.stats.learnDropped.Add(1)
		}
	}
}

// refreshState marks the conntrack entries and NAT bindings a forwarded
// packet belongs to as used. Packets of cached flows never reach the
// agent, but flows are re-simulated at least every hard flow timeout, so
// state outlives the flows that depend on it as long as the connection
// carries traffic. Lookups that find nothing cost a read lock each.
func (a *Agent) refreshState(snap *topology.Snapshot, ingress string, res *simulation.Result, m *packet.FlowMatch, now int64) {
	zones := [4]uint32{}
	n := 0
	addZone := func(portID string) {
		p := snap.Port(portID)
		if p == nil {
			return
		}
		if b := snap.Bridge(p.BridgeID); b != nil && n < len(zones) {
			zones[n] = b.FloodKey
			n++
		}
		if p.RouterID != "" && n < len(zones) {
			zones[n] = flowstate.RouterZone(p.RouterID)
			n++
		}
	}
	addZone(ingress)
	for _, o := range res.Outputs {
		addZone(o.PortID)
	}
	for _, z := range zones[:n] {
		k := flowstate.KeyOf(z, m)
		a.fs.RefreshConn(k, now)
		a.fs.RefreshNAT(k, now)
	}
}
