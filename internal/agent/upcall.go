package agent

import (
	"time"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/simulation"
	"hivenet/internal/topology"
)

// Upcall path: a datapath reader goroutine missed its flow table.
//
//  1. Map the datapath port to the topology port; simulate on the current
//     snapshot (lock-free).
//  2. Apply learned MACs to the snapshot at once and queue them for
//     publication by the loop.
//  3. Compile the result to datapath actions, install the flow (when
//     cacheable), then send the packet and any generated replies.
//  4. If the snapshot changed while we worked, invalidate the flow's tags:
//     the flow may rest on stale state.
func (a *Agent) handleUpcall(u *datapath.Upcall) {
	a.stats.upcalls.Add(1)
	idx := a.ports.Load()
	portID, ok := idx.byNo[u.InPort]
	if !ok {
		return // port unbound while the packet was queued
	}
	snap := a.snap.Load()
	res := simulation.Simulate(snap, a.cfg.Host, simulation.Packet{Ingress: portID, Match: u.Match, Frame: u.Frame}, time.Now().UnixNano())

	if len(res.Learn) > 0 {
		a.learn(res.Learn)
	}
	actions := a.compile(snap, idx, &res)
	if res.Cacheable {
		if err := a.dp.Install(u.Match.Masked(res.Mask), res.Mask, actions, res.Tags); err == nil {
			a.stats.installed.Add(1)
		}
	}
	if res.Verdict == simulation.Forward && !actions.IsDrop() {
		_ = a.dp.Execute(u.InPort, u.Frame, u.GSO, &actions)
	}
	for _, e := range res.Emit {
		no, ok := idx.byID[e.PortID]
		if !ok {
			continue
		}
		var out flowtable.Actions
		out.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(no)})
		if a.dp.Execute(0, e.Frame, datapath.GSO{}, &out) == nil {
			a.stats.emitted.Add(1)
		}
	}
	if res.Cacheable && a.snap.Load() != snap {
		a.dp.Invalidate(res.Tags)
	}
}

// compile turns the simulation's logical outputs into datapath actions.
// An output that cannot be resolved (port unbound here a moment ago, host
// gone) is left out; with nothing left the flow is a drop.
func (a *Agent) compile(snap *topology.Snapshot, idx *portIndex, res *simulation.Result) flowtable.Actions {
	var as flowtable.Actions
	if res.Verdict != simulation.Forward {
		return as
	}
	for _, o := range res.Outputs {
		if o.Local {
			if no, ok := idx.byID[o.PortID]; ok {
				as.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(no)})
			}
			continue
		}
		h := snap.Host(o.Host)
		if h == nil || !h.TunnelIP.Is4() {
			continue
		}
		as.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: o.TunnelKey, Remote: h.TunnelIP.As4(), RemotePort: h.TunnelPort})
	}
	if res.Flood != nil {
		as.Append(flowtable.Action{Kind: flowtable.ActFlood, Key: res.Flood.Key})
	}
	return as
}

// learn makes MAC entries effective locally at once and queues them for
// publication.
func (a *Agent) learn(entries []topology.MACEntry) {
	changes := make([]topology.Change, 0, len(entries))
	for i := range entries {
		e := entries[i]
		changes = append(changes, topology.Change{Kind: topology.KindMAC, ID: e.ID(), MAC: &e})
	}
	a.snapMu.Lock()
	next, tags := a.snap.Load().Apply(changes)
	a.snap.Store(next)
	a.snapMu.Unlock()
	a.dp.Invalidate(tags)
	for _, e := range entries {
		select {
		case a.learnq <- e:
		default:
			a.stats.learnDropped.Add(1)
		}
	}
}
