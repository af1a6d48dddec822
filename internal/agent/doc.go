// Package agent is the driver loop of a hivenet host: it registers the
// host in the store under a lease, replays the topology watch into an
// immutable snapshot, binds the local interfaces of ports assigned to this
// host, keeps the datapath's tunnel-key and flood tables in step with the
// snapshot, and answers datapath misses by simulating the packet and
// installing the resulting flow.
//
// Ordering. One goroutine (the loop) owns snapshot writes, bindings and
// datapath tables; datapath reader goroutines call the upcall handler
// concurrently and only read the snapshot (an atomic pointer). A flow is
// computed from snapshot S and installed; if the loop has swapped in a
// newer snapshot meanwhile, the handler invalidates that flow's tags
// itself. The loop swaps the snapshot before it invalidates. Either way no
// stale flow survives a change.
//
// Usage:
//
//	a, err := agent.New(agent.Config{Host: "host1", TunnelIP: ip, Store: st, Datapath: dp, Logger: log})
//	err = a.Run(ctx) // until ctx is done
package agent
