// Package flowtable is the datapath's bounded table of megaflows, as in
// OVS and MidoNet: each flow is a (mask, masked match) pair with its
// actions, the topology tags it depends on, packet and byte counters and
// a last-used time.
//
// It is pure: no I/O, no clock, no goroutines, no logging (TestDeps
// enforces the imports). Time is passed in by the caller as int64
// nanoseconds of any monotonic clock.
//
// Usage:
//
//	t := flowtable.New(flowtable.Config{MaxFlows: 65536, IdleTimeout: int64(10 * time.Second)})
//	if a, ok := t.Lookup(&m, now, len(frame)); ok { /* execute a */ }
//	// on a miss, simulate, then:
//	err := t.Insert(m.Masked(mask), mask, actions, tags, now)
//	// on a topology change:
//	t.Invalidate(changedTags)
//	// periodically:
//	t.Expire(now)
//
// Actions and Action (action.go) are fixed-size and pointer-free so the
// same flows fit an eBPF map.
package flowtable
