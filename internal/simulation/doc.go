// Package simulation walks one packet through the virtual topology and
// says what must happen to it: the pure core of the agent's slow path, of
// the trace API and of the golden tests.
//
// Simulate takes an immutable topology.Snapshot, the name of the simulating
// host, the packet (its parsed flow key and its frame), the flow state
// (flowstate.View: conntrack, NAT bindings, SNAT port blocks) and the
// time, and returns a Result: the verdict, the egress ports or flood, the
// rewrite to apply (routers' MACs and TTL, NAT), the frames to emit (ARP,
// DHCP, ICMP answers and errors, TCP resets, NAT-translated ICMP errors),
// the MAC and router ARP entries to learn, the conntrack entries and NAT
// bindings created with the hosts to push them to, the mask of the header
// fields the decision read (for a megaflow), the invalidation tags of the
// topology it read, and optionally a trace.
//
// This package performs no I/O, starts no goroutine, reads no clock, keeps
// no global state and does not log. It never modifies the snapshot, the
// flow state or the frame. The same inputs always give a deep-equal Result.
//
// The pipeline is one ordered table of named stages (see Stages); routers
// send the packet back to mac-lookup on their egress bridge, other ports
// skip the router stages:
//
//	ingress         port (or uplink) exists, admin up, its bridge exists and is up
//	port-security   source MAC/IP anti-spoofing (when the port has it)
//	arp             ARP suppression: answer requests for known addresses (ports,
//	                routers, DHCP servers, floating IPs on external networks)
//	dhcp            the DHCP server of the port's subnet
//	outbound-chain  the ingress port's outbound chain (security groups)
//	learn           MAC learning on ports without port security
//	mac-lookup      destination MAC -> egress port, router, uplink, or flood
//	router-ingress  router up, hop limit; ARP to the router answered or learned
//	dnat            from the gateway: floating IPs, NAT replies, ICMP errors
//	router-local    echo requests to the router's addresses
//	routing         TTL, longest-prefix match (connected, static, default)
//	snat            to the gateway: floating IPs, bindings, source NAT
//	arp-resolve     the next hop's MAC, or an ARP request and a drop
//	router-egress   rewrite MACs and TTL; back to mac-lookup on the egress bridge
//	inbound-chain   the egress port's inbound chain (security groups)
//	egress          the egress port is up, bound, not the ingress port
//
// Usage, on the agent's hot path and in the trace API:
//
//	r := simulation.Simulate(snap, "host1", simulation.Packet{Ingress: portID, Match: m, Frame: frame}, state, now)
//	t := simulation.Trace(snap, "host1", pkt, state, now) // the same Result, with Trace filled
//
// Simulate leaves Result.Trace empty so that the hot path formats no
// strings; Trace runs the very same code with tracing on.
package simulation
