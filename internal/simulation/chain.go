package simulation

// Filter chains: the translation of security groups (and of any other
// rule set). A port's OutboundChain filters what it sends (after port
// security, before its bridge); its InboundChain what it receives (after
// the last bridge, before output). ARP, DHCP (UDP 67/68) and IPv6
// neighbour discovery are not filtered, as in Neutron.
//
// Rules are evaluated in order; the first that matches decides (accept,
// drop, reject), jumps to another chain (whose end or Return continues
// after the jump; at most maxJumpDepth nested jumps) or returns. Falling
// off the chain gives Chain.Default (zero: accept).
//
// Connection tracking: a rule with a CTState condition reads the state of
// the packet's key in the zone of the filtered port's bridge, so the flow
// matches the whole 5-tuple. A chain that read the state and accepts a
// CTNew packet creates a conntrack entry (Result.State), pushed to the
// hosts where the reply will be simulated: the reply passes the replying
// port's OutboundChain and then this port's chain there, so both entries
// go to the egress host (or to every uplink host when the packet leaves
// the virtual network). An ICMP error is RELATED (Established|Reply) when
// the connection of its embedded header is tracked; that reads the
// payload, so the decision is not cached.
//
// A drop decided after a conntrack lookup that found no connection is not
// cached either: a drop flow would outlive the connection that a later
// packet (say, a reused source port's first reply) belongs to, and no tag
// covers conntrack entries.
//
// Datapath connection tracking. When the datapath tracks connections
// itself (datapath.ConnTracker: the packet's Match.CTState is set, in the
// zone of its ingress port), a chain reads that state instead of the
// agent's tables, and the flow matches CTState instead of the 5-tuple:
// one flow then serves every new connection of its kind, and another
// every established one, with no upcall per connection. Every chain on
// the path reads the state of the ingress zone: the connection is the
// same 5-tuple all along a path without NAT, and it is committed in the
// zones of both ends together (Result.Commit: the ingress host commits it
// in the ingress port's zone, the egress host, told by the tunnel's
// commit bit, in the egress port's). So a reply entering at the egress
// port finds it there. The state is stricter than the agent's per-zone
// tables only for a packet whose connection the destination's chain had
// dropped: it is new, not a reply. Paths that translate addresses, leave
// by an uplink or flood keep their state in the agents' tables; they are
// simulated again without the datapath's state (dpctQualifies). A drop
// decided on the datapath's state is cached: the flow matches that state.

import (
	"hivenet/internal/flowstate"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// maxJumpDepth bounds nested jumps (a loop of jumps is a drop).
const maxJumpDepth = 8

// outboundChain: the chain of the ingress port (none for uplinks).
func (s *sim) outboundChain() outcome {
	p := s.in
	if p.OutboundChain == "" {
		return next
	}
	return s.filter(p, p.OutboundChain, s.br)
}

// inboundChain: the chain of the egress port.
func (s *sim) inboundChain() outcome {
	p := s.egress
	if p == nil || p == s.in || p.InboundChain == "" {
		return next
	}
	return s.filter(p, p.InboundChain, s.br)
}

// unfiltered reports the traffic chains never see.
func (s *sim) unfiltered() bool {
	m := &s.cur
	s.use(packet.FEthType)
	switch m.EthType {
	case packet.EthTypeIPv4:
		s.use(packet.FIPProto)
		if m.IPProto != packet.ProtoUDP {
			return false
		}
		return s.isDHCP()
	case packet.EthTypeIPv6:
		s.use(packet.FIPProto)
		if m.IPProto != packet.ProtoICMPv6 {
			return false
		}
		s.use(packet.FSrcPort)
		return m.SrcPort >= 133 && m.SrcPort <= 137 // RS, RA, NS, NA, redirect
	}
	return true
}

// dhcpPortMask keeps the bits of a UDP port that tell it from the DHCP
// ports: 67 and 68 are 64..71 under it, no other port is. wellKnownMask
// keeps those that tell a port of 1024 or more from the others.
const (
	dhcpPortMask  = 0xfff8
	wellKnownMask = 0xfc00
)

// isDHCP reports whether the UDP packet is DHCP (68 -> 67 or 67 -> 68).
func (s *sim) isDHCP() bool {
	if !s.mayBeDHCP() {
		return false
	}
	m := &s.cur
	s.use(packet.FSrcPort | packet.FDstPort)
	return (m.SrcPort == packet.DHCPClientPort && m.DstPort == packet.DHCPServerPort) ||
		(m.SrcPort == packet.DHCPServerPort && m.DstPort == packet.DHCPClientPort)
}

// mayBeDHCP reports whether the UDP packet's ports may be DHCP's (both
// 67 or 68), reading as few of their bits as a no needs, so that the
// flows of UDP connections do not each match their client's port. A port
// is surely not DHCP's when it is 1024 or more (its bits under
// wellKnownMask say so: the flow matches its block of 1024) or outside
// 64..71 (under dhcpPortMask: its block of 8). The source port is looked
// at first: a request from an ephemeral port matches its client's block
// of 1024, a reply from a service's port that service's block, so every
// reply of the service shares one flow. A yes reads the ports whole (the
// caller compares them).
func (s *sim) mayBeDHCP() bool {
	m := &s.cur
	far := func(p uint16, bits *uint16) bool {
		if p >= 1024 {
			*bits |= wellKnownMask
			return true
		}
		*bits |= dhcpPortMask
		return p&dhcpPortMask != packet.DHCPServerPort&dhcpPortMask
	}
	if far(m.SrcPort, &s.dhcpSrcBits) || far(m.DstPort, &s.dhcpDstBits) {
		return false
	}
	return true
}

func (s *sim) chainDevice(c *topology.Chain) string {
	if c.Name != "" {
		return "chain " + c.Name
	}
	return "chain " + shortID(c.ID)
}

// filter evaluates chain id for port p on bridge b.
func (s *sim) filter(p *topology.Port, id string, b *topology.Bridge) outcome {
	if s.unfiltered() {
		return next
	}
	s.tag(topology.TagChain(id))
	c := s.snap.Chain(id)
	if c == nil {
		if s.trace {
			s.step(portDevice(p), "chain %s missing", shortID(id))
		}
		return s.drop(ReasonTopologyIncomplete)
	}
	s.ctRead, s.ctErr, s.ctZone = false, false, b.FloodKey
	act := s.evalChain(c, 0)
	if act == 0 || act == topology.RuleReturn {
		act = c.Default
		if act == 0 {
			act = topology.RuleAccept
		}
		if s.trace {
			s.step(s.chainDevice(c), "end of chain: %s", act)
		}
	}
	switch act {
	case topology.RuleAccept:
		if s.ctRead && !s.ctErr && s.ctState == topology.CTNew {
			if s.dpct {
				s.dpctCommit = true
			} else {
				s.addConn(s.ctKey)
			}
			if s.trace {
				s.step(s.chainDevice(c), "conntrack commit %s (zone %d)", keyString(s.ctKey), s.ctZone)
			}
		}
		if s.trace {
			s.step(portDevice(p), "accepted")
		}
		return next
	case topology.RuleReject:
		s.noCache = true
		s.reject()
		if s.trace {
			s.step(portDevice(p), "rejected")
		}
		return s.drop(ReasonFilterReject)
	}
	if s.ctRead && s.ctState&topology.CTEstablished == 0 && (!s.dpct || s.ctErr) {
		s.noCache = true
	}
	if s.trace {
		s.step(portDevice(p), "dropped")
	}
	return s.drop(ReasonFilterDrop)
}

// evalChain returns the deciding action of c (0 when it falls off the
// end, RuleReturn when a rule returns).
func (s *sim) evalChain(c *topology.Chain, depth int) topology.RuleAction {
	for i := range c.Rules {
		r := &c.Rules[i]
		if !s.ruleMatches(r) {
			if s.trace {
				s.step(s.chainDevice(c), "rule %d %s: no match", i, ruleName(r))
			}
			continue
		}
		switch r.Action {
		case topology.RuleAccept, topology.RuleDrop, topology.RuleReject, topology.RuleReturn:
			if s.trace {
				s.step(s.chainDevice(c), "rule %d %s: match -> %s", i, ruleName(r), r.Action)
			}
			return r.Action
		case topology.RuleJump:
			s.tag(topology.TagChain(r.JumpChain))
			j := s.snap.Chain(r.JumpChain)
			if j == nil || depth >= maxJumpDepth {
				if s.trace {
					s.step(s.chainDevice(c), "rule %d %s: jump to %s: missing or too deep: drop", i, ruleName(r), shortID(r.JumpChain))
				}
				return topology.RuleDrop
			}
			if s.trace {
				s.step(s.chainDevice(c), "rule %d %s: match -> jump to %s", i, ruleName(r), s.chainDevice(j))
			}
			switch a := s.evalChain(j, depth+1); a {
			case topology.RuleAccept, topology.RuleDrop, topology.RuleReject:
				return a
			}
			if s.trace {
				s.step(s.chainDevice(c), "back from %s", s.chainDevice(j))
			}
		default:
			if s.trace {
				s.step(s.chainDevice(c), "rule %d %s: unknown action %d: drop", i, ruleName(r), r.Action)
			}
			return topology.RuleDrop
		}
	}
	return 0
}

func ruleName(r *topology.Rule) string {
	if r.Comment != "" {
		return r.Comment
	}
	if r.ID != "" {
		return shortID(r.ID)
	}
	return "-"
}

// ruleMatches tests r's conditions in order, recording each field read.
func (s *sim) ruleMatches(r *topology.Rule) bool {
	m := &s.cur
	if r.EthType != 0 {
		s.use(packet.FEthType)
		if m.EthType != r.EthType {
			return false
		}
	}
	if r.Proto != 0 {
		s.use(packet.FIPProto)
		if m.IPProto != r.Proto {
			return false
		}
	}
	if r.SrcPrefix.IsValid() {
		s.use(packet.FIPSrc)
		if !r.SrcPrefix.Contains(m.Src()) {
			return false
		}
	}
	if r.DstPrefix.IsValid() {
		s.use(packet.FIPDst)
		if !r.DstPrefix.Contains(m.Dst()) {
			return false
		}
	}
	if r.SrcGroup != "" {
		s.use(packet.FIPSrc)
		s.tag(topology.TagAddrGroup(r.SrcGroup))
		if !s.snap.InAddrGroup(r.SrcGroup, m.Src()) {
			return false
		}
	}
	if r.DstGroup != "" {
		s.use(packet.FIPDst)
		s.tag(topology.TagAddrGroup(r.DstGroup))
		if !s.snap.InAddrGroup(r.DstGroup, m.Dst()) {
			return false
		}
	}
	if !r.SrcPorts.Any() || !r.DstPorts.Any() {
		s.use(packet.FIPProto)
		if m.IPProto != packet.ProtoTCP && m.IPProto != packet.ProtoUDP && m.IPProto != 132 { // SCTP
			return false
		}
		if !r.SrcPorts.Any() {
			s.use(packet.FSrcPort)
			if !r.SrcPorts.Contains(m.SrcPort) {
				return false
			}
		}
		if !r.DstPorts.Any() {
			s.use(packet.FDstPort)
			if !r.DstPorts.Contains(m.DstPort) {
				return false
			}
		}
	}
	if r.Proto == packet.ProtoICMP || r.Proto == packet.ProtoICMPv6 {
		if r.ICMPType >= 0 {
			s.use(packet.FSrcPort)
			if m.SrcPort != uint16(r.ICMPType) {
				return false
			}
		}
		if r.ICMPCode >= 0 {
			s.use(packet.FDstPort)
			if m.DstPort != uint16(r.ICMPCode) {
				return false
			}
		}
	}
	if r.CTState != 0 {
		if s.conntrack()&r.CTState == 0 {
			return false
		}
	}
	return true
}

// conntrack returns the connection-tracking state of the current packet
// in the zone of the port being filtered (looked up once per chain).
func (s *sim) conntrack() topology.CTState {
	if s.ctRead {
		return s.ctState
	}
	s.ctRead = true
	if s.dpct && s.cur.IPSrc == s.pkt.Match.IPSrc && s.cur.IPDst == s.pkt.Match.IPDst &&
		s.cur.SrcPort == s.pkt.Match.SrcPort && s.cur.DstPort == s.pkt.Match.DstPort && s.cur.ICMPID == s.pkt.Match.ICMPID {
		return s.datapathConntrack()
	}
	if s.dpct {
		// Translated before this chain: the whole path is simulated again
		// with the agents' tables (also when no chain read the datapath's
		// state: this chain's commit must go to the tables).
		s.dpctUsed, s.dpctFail = true, true
	}
	s.use(fiveTuple)
	s.ctKey = flowstate.KeyOf(s.ctZone, &s.cur)
	if s.isICMPError() && s.parseInner() {
		s.noCache, s.ctErr = true, true
		s.ctState = topology.CTNew
		if s.st.ConnState(flowstate.KeyOf(s.ctZone, &s.inner)) != topology.CTNew {
			s.ctState = topology.CTEstablished | topology.CTReply
		}
		if s.trace {
			s.step("conntrack", "icmp error about %s: %s", keyString(flowstate.KeyOf(s.ctZone, &s.inner)), ctString(s.ctState))
		}
		return s.ctState
	}
	s.ctState = s.st.ConnState(s.ctKey)
	if s.trace {
		s.step("conntrack", "%s zone %d: %s", keyString(s.ctKey), s.ctZone, ctString(s.ctState))
	}
	return s.ctState
}

// datapathConntrack is conntrack for a packet the datapath tracked, on a
// path that has not translated it: the state is the packet's CTState (the
// ingress zone's), and the flow matches it instead of the 5-tuple. An
// ICMP error is RELATED when the datapath (through the flow-state view)
// tracks the connection of its embedded header in the ingress zone; that
// reads the payload, so it is not cached.
func (s *sim) datapathConntrack() topology.CTState {
	s.dpctUsed = true
	s.ctKey = flowstate.KeyOf(s.zoneIn, &s.cur)
	if s.isICMPError() && s.parseInner() {
		s.use(fiveTuple)
		s.noCache, s.ctErr = true, true
		s.ctState = topology.CTNew
		inner := flowstate.KeyOf(s.zoneIn, &s.inner)
		if s.st.ConnState(inner) != topology.CTNew {
			s.ctState = topology.CTEstablished | topology.CTReply
		}
		if s.trace {
			s.step("conntrack", "icmp error about %s (datapath): %s", keyString(inner), ctString(s.ctState))
		}
		return s.ctState
	}
	s.use(packet.FCTState)
	s.ctState = topology.CTState(s.pkt.Match.CTState)
	if s.trace {
		s.step("conntrack", "%s zone %d (datapath): %s", keyString(s.ctKey), s.zoneIn, ctString(s.ctState))
	}
	return s.ctState
}

func ctString(st topology.CTState) string {
	switch st {
	case topology.CTNew:
		return "new"
	case topology.CTEstablished:
		return "established"
	case topology.CTEstablished | topology.CTReply:
		return "established reply"
	}
	return "state?"
}
