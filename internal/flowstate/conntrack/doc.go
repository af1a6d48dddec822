// Package conntrack holds a host's flow-state tables: connection-tracking
// entries and NAT bindings (flowstate.Key, flowstate.NAT) with idle
// expiry and a bound on their number, and the SNAT port blocks the host
// holds. *Tables is the flowstate.View the agent passes to the simulation.
//
// The package performs no I/O and reads no clock: every time is an
// argument (unix nanoseconds). It is safe for concurrent use, which is why
// it is apart from package flowstate: flowstate (imported by the
// simulation) stays free of sync, as the simulation's dependency check
// requires.
//
// Usage (agent):
//
//	t, err := conntrack.New(conntrack.Config{ConnIdle: 5 * 60e9})
//	r := simulation.Simulate(snap, host, pkt, t, now) // reads t as a View
//	for _, w := range r.State {
//		if w.Conn != nil { t.AddConn(*w.Conn, now) } else { t.AddNAT(*w.NAT, now) }
//	}
//	... then push them to w.Hosts: flowstate.Split, AppendMessage per part
//	... every second: t.Expire(now)
//	... on flow-state messages from peers: t.ApplyMessage(&m, now)
//	... on flow stats showing a flow alive: t.RefreshConn(k, now)
//	... periodically and at shutdown: write t.AppendSnapshot(nil, now) to disk
//	... at start: t.Restore(file, now)
//
// # Concurrency
//
// Lookups (ConnState, NATByOrig, NATByReply, SNATInUse, SNATBlocks) and
// refreshes take only read locks. Conntrack entries
// are spread over connShards shards by a hash of the key, each with its
// own RWMutex, so readers on different cores rarely touch the same lock
// word; the shard hash is symmetric, so a key and its reverse share a
// shard and ConnState probes both under one read lock. NAT bindings,
// indexed by Orig and by reply key (a third index, by Xlat, is the reply
// index probed with the key reversed), share one RWMutex. SNAT blocks are
// an immutable map swapped atomically. Lookups allocate nothing
// (TestLookupsDoNotAllocate).
//
// Measured 2026-11-24 on the shared 2-vCPU machine (load 8-10, so only
// ratios from interleaved runs mean anything): BenchmarkParallelConnState
// alternates chunks of lookups (1% adds) on Tables and on a bare map
// behind one RWMutex. Median of 6, Tables costs 1.15x the bare map with
// one goroutine and 1.6x with two; a build with one shard measured about
// the same (1.1-1.6x), so sharding neither helps nor hurts measurably
// here, and the rest of the gap is not explained yet. Lock operations
// dominate: in a serial interleaved run the bare map cost 100-145 ns a
// lookup pair without its RWMutex and 270-460 ns with it. Sharding is
// kept for hosts with more cores, where one reader count would bounce
// between all upcall workers; measure there before relying on it.
//
// # Expiry and eviction
//
// Each table keeps its entries in a slab and a min-heap of (entry, stamp)
// nodes ordered by stamp, the entry's last-use time when the node was
// pushed. A refresh only raises the entry's last-use time (atomically,
// under the read lock). Expire and eviction pop the heap: an entry used
// since its node was pushed is pushed again with its new time ("second
// chance"), otherwise it is removed. So Expire removes exactly the
// entries idle for the table's idle time, and eviction (when a table or
// conntrack shard is full) removes exactly its least recently used entry,
// whatever the order of the times callers pass; adds cost O(log n).
package conntrack
