// Package simulation walks one packet through the virtual topology and
// says what must happen to it: the pure core of the agent's slow path, of
// the trace API and of the golden tests.
//
// Simulate takes an immutable topology.Snapshot, the name of the simulating
// host, the packet (its parsed flow key and, for DHCP, its frame) and the
// time, and returns a Result: the verdict, the egress ports or flood, the
// frames to emit (ARP and DHCP answers), the MAC entries to learn, the mask
// of the header fields the decision read (for a megaflow), the invalidation
// tags of the topology it read, and optionally a trace.
//
// This package performs no I/O, starts no goroutine, reads no clock, keeps
// no global state and does not log. It never modifies the snapshot or the
// frame. The same inputs always give a deep-equal Result.
//
// The pipeline is one ordered table of named stages (see Stages):
//
//	ingress        port exists, admin up, its bridge exists and is up
//	port-security  source MAC/IP anti-spoofing (when the port has it)
//	arp            ARP suppression: answer requests for known addresses
//	dhcp           the DHCP server of the port's subnet
//	learn          MAC learning on ports without port security
//	mac-lookup     destination MAC -> egress port, or flood
//	egress         the egress port is up, bound, not the ingress port
//
// Usage, on the agent's hot path and in the trace API:
//
//	r := simulation.Simulate(snap, "host1", simulation.Packet{Ingress: portID, Match: m, Frame: frame}, now)
//	t := simulation.Trace(snap, "host1", pkt, now) // the same Result, with Trace filled
//
// Simulate leaves Result.Trace empty so that the hot path formats no
// strings; Trace runs the very same code with tracing on.
package simulation
