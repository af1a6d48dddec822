// Package packet parses and builds network frames in place.
//
// Parse and ParseLayers turn an Ethernet frame (optionally with one 802.1Q
// tag) carrying ARP, IPv4 or IPv6 with TCP, UDP, ICMP or ICMPv6 into a
// FlowMatch, the fixed-size flow key the simulation and the flow table
// use. They allocate nothing, never retain the frame, and validate every
// length they read: a frame too short for a header it announces is
// ErrTruncated, a header with impossible contents is ErrMalformed.
// Protocols the package does not know are not errors: the fields beyond
// what is known stay zero.
//
// The Append* builders append complete Ethernet frames (ARP, UDP over IPv4,
// ICMP echo, DHCPv4 replies) to a caller's buffer with every checksum
// filled in, so the agent can emit answers without a serialisation
// library. ParseDHCP reads the DHCPv4 messages clients send. PutVXLAN and
// ParseVXLAN handle the 8-byte VXLAN header, Checksum and
// PseudoHeaderChecksum compute RFC 1071 checksums on the hot path.
//
// This package is part of the pure set: it performs no I/O, reads no
// clock, keeps no global mutable state and starts no goroutine (TestDeps
// enforces the imports).
//
// Usage:
//
//	var m packet.FlowMatch
//	if err := packet.Parse(frame, inPort, &m); err != nil {
//		stats.Malformed++ // drop, never log per packet
//		return
//	}
//	reply := packet.AppendARPReply(buf[:0], routerMAC, routerIP, m.EthSrc, m.Src())
package packet
