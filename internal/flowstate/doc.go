// Package flowstate holds per-connection state: connection tracking
// entries and NAT bindings, keyed by Key, and the messages that replicate
// them between hosts.
//
// State is created by the simulation at the ingress host of a
// connection's first packet (Result.State), written to the local tables,
// and pushed over the tunnel (the reserved flow-state key) to the hosts
// that will see the reply or may take over the path — before the packet
// itself is forwarded. A reply is then simulated at its own ingress host
// with the state already there.
//
// Tables are pure data structures: no I/O, no clock (now is passed in),
// no goroutines; callers synchronize (Tables is safe for concurrent use).
//
// This package holds the types and codecs every side shares and imports
// no sync (the simulation's dependency check forbids it in its pure
// dependencies): Key, NAT, the View the simulation reads, replication
// Messages (AppendMessage, ParseMessage, Split; one tunnel datagram
// each), table snapshots for local disk (AppendSnapshot, ParseSnapshot)
// and SNAT block arithmetic (BlockOf, NextBlock). The concurrent tables
// themselves, the View the agent passes to the simulation, are
// conntrack.Tables in the subpackage conntrack.
package flowstate
