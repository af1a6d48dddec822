package simulation

// Routers. A frame a bridge delivers to a router port's MAC enters the
// router, on the simulating host (routers are distributed):
//
//	router-ingress  router and port up, hop limit; ARP to the router is
//	                answered (requests) or learned (replies)
//	dnat            from the gateway port: NAT-rewritten ICMP errors,
//	                replies of SNAT bindings, later packets of DNAT
//	                bindings, floating IPs (dst -> fixed IP)
//	router-local    echo requests to the router's addresses are answered
//	routing         TTL check (time exceeded), longest-prefix match over
//	                connected, static and default routes (net unreachable)
//	snat            to the gateway port: replies of DNAT bindings, later
//	                packets of SNAT bindings, floating IPs (src -> FIP),
//	                source NAT to the router's address with a port from
//	                this host's blocks
//	arp-resolve     the next hop's MAC: a port's on the egress bridge, or
//	                the shared ARP table; unknown -> ARP request, drop
//	router-egress   rewrite MACs and TTL; on to the egress bridge's
//	                mac-lookup
//
// TTL: the routing stage branches on TTL <= 1, so a routed flow matches
// the exact TTL (the mask has ip_ttl): later packets of a connection
// carry the same TTL, and a traceroute probe of another TTL is another
// flow. Packets that expire are answered and never cached.
//
// NAT lookups depend on the exact connection, so a flow that reads NAT
// state (through the gateway) matches the whole 5-tuple; east-west routing
// between tenant subnets reads none and matches on the destination.

import (
	"net/netip"

	"hivenet/internal/flowstate"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// fiveTuple are the fields a conntrack or NAT key is built from.
const fiveTuple = packet.FEthType | packet.FIPSrc | packet.FIPDst | packet.FIPProto | packet.FSrcPort | packet.FDstPort | packet.FICMPID

func (s *sim) routerName(id string) string {
	if r := s.snap.Router(id); r != nil && r.Name != "" {
		return r.Name
	}
	return shortID(id)
}

func (s *sim) routerDevice() string { return "router " + s.routerName(s.router.ID) }

// portIPv4 returns p's first IPv4 address, preferring one inside want's
// subnet when want is valid.
func (s *sim) portIPv4(p *topology.Port, want netip.Addr) netip.Addr {
	var first netip.Addr
	for _, f := range p.FixedIPs {
		if !f.Addr.Is4() {
			continue
		}
		if !first.IsValid() {
			first = f.Addr
		}
		if want.IsValid() {
			if sn := s.snap.Subnet(f.SubnetID); sn != nil && sn.CIDR.Contains(want) {
				return f.Addr
			}
		}
	}
	return first
}

// routerIngress: the frame is for router port s.egress.
func (s *sim) routerIngress() outcome {
	p := s.egress
	if s.hops++; s.hops > maxHops {
		if s.trace {
			s.step("router "+s.routerName(p.RouterID), "more than %d devices traversed", maxHops)
		}
		return s.drop(ReasonLoopDetected)
	}
	s.tag(topology.TagRouter(p.RouterID))
	r := s.snap.Router(p.RouterID)
	if r == nil {
		if s.trace {
			s.step(portDevice(p), "router %s missing", shortID(p.RouterID))
		}
		return s.drop(ReasonTopologyIncomplete)
	}
	s.router, s.rin = r, p
	if !r.AdminUp || !p.AdminUp {
		if s.trace {
			s.step(s.routerDevice(), "router or port %s admin down", portName(p))
		}
		return s.drop(ReasonRouterAdminDown)
	}
	m := &s.cur
	s.use(packet.FEthType)
	switch m.EthType {
	case packet.EthTypeARP:
		return s.routerARP()
	case packet.EthTypeIPv4:
	default:
		if s.trace {
			s.step(s.routerDevice(), "ethertype 0x%04x: IPv4 only", m.EthType)
		}
		return s.drop(ReasonRouterNotIPv4)
	}
	if s.trace {
		s.step(s.routerDevice(), "in port %s (%s)", portName(p), s.portIPv4(p, netip.Addr{}))
	}
	return next
}

// hasAddr reports whether ip is one of p's fixed IPs.
func hasAddr(p *topology.Port, ip netip.Addr) bool {
	for _, f := range p.FixedIPs {
		if f.Addr == ip {
			return true
		}
	}
	return false
}

// routerARP: ARP sent to a router port's MAC (unicast). Requests for the
// port's address are answered; replies to the port teach the router a
// neighbour (Result.LearnARP). Never cached: rare, and answered here.
func (s *sim) routerARP() outcome {
	m, p := &s.cur, s.rin
	s.noCache = true
	s.use(packet.FIPProto | packet.FIPSrc | packet.FIPDst | packet.FARPSha)
	spa, tpa := m.Src(), m.Dst()
	switch {
	case m.IPProto == packet.ARPRequest && hasAddr(p, tpa):
		frame := packet.AppendARPReply(nil, p.MAC, tpa, m.ARPSha, spa)
		s.r.Emit = append(s.r.Emit, Emit{PortID: s.pkt.Ingress, Frame: frame})
		s.r.Verdict = Consumed
		if s.trace {
			s.step(s.routerDevice(), "arp who-has %s tell %s: is-at %s", tpa, spa, p.MAC)
		}
		return done
	case m.IPProto == packet.ARPReply && hasAddr(p, tpa) && spa.Is4() && !spa.IsUnspecified():
		sha := mac(m.ARPSha)
		if e := s.snap.ARP(p.BridgeID, spa); e == nil || e.MAC != sha {
			s.r.LearnARP = append(s.r.LearnARP, topology.ARPEntry{BridgeID: p.BridgeID, IP: spa, MAC: sha})
		}
		s.r.Verdict = Consumed
		if s.trace {
			s.step(s.routerDevice(), "arp reply: %s is-at %s, learned on %s", spa, sha, bridgeDevice(s.br))
		}
		return done
	}
	if s.trace {
		s.step(s.routerDevice(), "arp op %d for %s: ignored", m.IPProto, tpa)
	}
	return s.drop(ReasonRouterARP)
}

// routerLocal: packets to one of the router's own addresses. Echo
// requests are answered from the port the packet entered by; anything
// else is dropped.
func (s *sim) routerLocal() outcome {
	m, r := &s.cur, s.router
	s.use(packet.FIPDst)
	dst := m.Dst()
	var owner *topology.Port
	for _, p := range s.snap.RouterPorts(r.ID) {
		if hasAddr(p, dst) {
			owner = p
			break
		}
	}
	if owner == nil {
		return next
	}
	s.use(packet.FIPProto | packet.FSrcPort)
	if m.IPProto == packet.ProtoICMP && m.SrcPort == packet.ICMPEchoRequest {
		s.noCache = true
		s.use(packet.FICMPID | packet.FIPSrc | packet.FEthSrc | packet.FEthDst)
		seq, payload := echoBody(s.pkt.Frame)
		o := &s.pkt.Match
		frame := packet.AppendICMP4Echo(nil, o.EthDst, o.EthSrc, dst, m.Src(), 64, packet.ICMPEchoReply, m.ICMPID, seq, payload)
		s.r.Emit = append(s.r.Emit, Emit{PortID: s.pkt.Ingress, Frame: frame})
		s.r.Verdict = Consumed
		if s.trace {
			s.step(s.routerDevice(), "echo request to %s (port %s) from %s id %d: echo reply", dst, portName(owner), m.Src(), m.ICMPID)
		}
		return done
	}
	if s.trace {
		s.step(s.routerDevice(), "to the router's address %s (port %s), not an echo request", dst, portName(owner))
	}
	return s.drop(ReasonToRouter)
}

// route is one candidate of the route lookup.
type route struct {
	dst     netip.Prefix
	nextHop netip.Addr // invalid: directly connected
	port    *topology.Port
	kind    string
}

// routing: TTL, then the longest-prefix match over the connected routes
// (every router port's subnets), the static routes (next hop reached
// through the port whose subnet holds it) and the default route through
// the gateway port. On equal prefix length connected beats static beats
// default.
func (s *sim) routing() outcome {
	m, r := &s.cur, s.router
	s.use(packet.FIPTTL)
	if m.IPTTL <= 1 {
		s.noCache = true
		if s.isICMPError() {
			if s.trace {
				s.step(s.routerDevice(), "ttl %d on an icmp error: dropped silently", m.IPTTL)
			}
			return s.drop(ReasonTTLExceeded)
		}
		s.icmpErrorBack(packet.ICMPTimeExceeded, 0, s.portIPv4(s.rin, s.pkt.Match.Src()))
		s.r.Verdict = Consumed
		if s.trace {
			s.step(s.routerDevice(), "ttl %d: time exceeded sent to %s", m.IPTTL, s.pkt.Match.Src())
		}
		return done
	}
	s.use(packet.FIPDst)
	dst := m.Dst()
	var best route
	bits := -1
	consider := func(c route) {
		if c.dst.Contains(dst) && c.dst.Bits() > bits {
			best, bits = c, c.dst.Bits()
		}
	}
	ports := s.snap.RouterPorts(r.ID)
	for _, p := range ports {
		for _, f := range p.FixedIPs {
			if sn := s.snap.Subnet(f.SubnetID); sn != nil && sn.CIDR.Contains(f.Addr) {
				consider(route{dst: sn.CIDR.Masked(), port: p, kind: "connected"})
			}
		}
	}
	for _, rt := range r.Routes {
		if !rt.Dst.Contains(dst) || rt.Dst.Bits() <= bits {
			continue
		}
		if p := s.connectedPort(ports, rt.NextHop); p != nil {
			consider(route{dst: rt.Dst, nextHop: rt.NextHop, port: p, kind: "static"})
		}
	}
	if r.GatewayPortID != "" && r.DefaultNextHop.IsValid() && bits < 0 {
		if gw := s.snap.Port(r.GatewayPortID); gw != nil {
			consider(route{dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), nextHop: r.DefaultNextHop, port: gw, kind: "default"})
		}
	}
	if best.port == nil {
		s.noCache = true // the error echoes the packet's header
		if !s.isICMPError() {
			s.icmpErrorBack(packet.ICMPDestUnreachable, 0, s.portIPv4(s.rin, s.pkt.Match.Src()))
		}
		if s.trace {
			s.step(s.routerDevice(), "no route to %s: net unreachable", dst)
		}
		return s.drop(ReasonNoRoute)
	}
	s.rout = best.port
	s.nextHop = best.nextHop
	if !s.nextHop.IsValid() {
		s.nextHop = dst
	}
	if s.trace {
		via := "direct"
		if best.nextHop.IsValid() {
			via = "via " + best.nextHop.String()
		}
		s.step(s.routerDevice(), "%s route %s %s out port %s, ttl %d", best.kind, best.dst, via, portName(best.port), m.IPTTL)
	}
	if !best.port.AdminUp {
		if s.trace {
			s.step(s.routerDevice(), "egress port %s admin down", portName(best.port))
		}
		return s.drop(ReasonRouterAdminDown)
	}
	return next
}

// connectedPort returns the router port whose subnet contains ip.
func (s *sim) connectedPort(ports []*topology.Port, ip netip.Addr) *topology.Port {
	for _, p := range ports {
		for _, f := range p.FixedIPs {
			if sn := s.snap.Subnet(f.SubnetID); sn != nil && sn.CIDR.Contains(f.Addr) && sn.CIDR.Contains(ip) {
				return p
			}
		}
	}
	return nil
}

// arpResolve: the MAC of the next hop on the egress port's bridge: the
// port holding that fixed IP, else the shared ARP table. Unknown: an ARP
// request leaves the egress router port (through an uplink on an external
// network, else to every bound port of the bridge, one Emit each) and the
// packet is dropped, uncached, so the next packet asks again until the
// reply (Result.LearnARP on some host) fills the table.
func (s *sim) arpResolve() outcome {
	p, nh := s.rout, s.nextHop
	if t := s.snap.PortByIP(p.BridgeID, nh); t != nil && t != p {
		s.tag(topology.TagPort(t.ID))
		s.blk.eth[1] = t.MAC
		if s.trace {
			s.step(s.routerDevice(), "next hop %s is port %s: %s", nh, portName(t), t.MAC)
		}
		return next
	}
	s.tag(topology.TagARP(p.BridgeID, nh))
	if e := s.snap.ARP(p.BridgeID, nh); e != nil {
		s.blk.eth[1] = e.MAC
		if s.trace {
			s.step(s.routerDevice(), "next hop %s is-at %s (arp table)", nh, e.MAC)
		}
		return next
	}
	s.noCache = true
	src := s.portIPv4(p, nh)
	b := s.snap.Bridge(p.BridgeID)
	var to []string
	if b != nil && b.External {
		s.tag(topology.TagUplinks(b.PhysNet))
		u := s.pickUplink(b.PhysNet)
		if u == nil {
			if s.trace {
				s.step(s.routerDevice(), "next hop %s unknown and no uplink on %s to ask", nh, b.PhysNet)
			}
			return s.drop(ReasonNoUplink)
		}
		to = append(to, UplinkPortID(u))
	} else {
		for _, q := range s.snap.PortsOfBridge(p.BridgeID) {
			if q.RouterID == "" && q.AdminUp && s.snap.PortHost(q.ID) != nil {
				to = append(to, q.ID)
			}
		}
	}
	for _, id := range to {
		s.r.Emit = append(s.r.Emit, Emit{PortID: id, Frame: packet.AppendARPRequest(nil, p.MAC, src, nh)})
	}
	if s.trace {
		s.step(s.routerDevice(), "next hop %s unknown: arp request from %s sent to %v", nh, src, to)
	}
	return s.drop(ReasonARPPending)
}

// routerEgress: rewrite and hand the packet to the egress bridge.
func (s *sim) routerEgress() outcome {
	p := s.rout
	s.tag(topology.TagBridge(p.BridgeID))
	b := s.snap.Bridge(p.BridgeID)
	if b == nil {
		if s.trace {
			s.step(s.routerDevice(), "bridge %s of port %s missing", shortID(p.BridgeID), portName(p))
		}
		return s.drop(ReasonTopologyIncomplete)
	}
	if !b.AdminUp {
		if s.trace {
			s.step(s.routerDevice(), "%s admin down", bridgeDevice(b))
		}
		return s.drop(ReasonBridgeAdminDown)
	}
	s.blk.eth[0] = p.MAC
	s.r.Rewrite.EthSrc, s.r.Rewrite.EthDst = &s.blk.eth[0], &s.blk.eth[1]
	s.r.Rewrite.DecTTL++
	s.cur.EthSrc, s.cur.EthDst = s.blk.eth[0], s.blk.eth[1]
	s.cur.IPTTL--
	if s.trace {
		s.step(s.routerDevice(), "out port %s: eth %s -> %s, ttl %d, to %s", portName(p), s.blk.eth[0], s.blk.eth[1], s.cur.IPTTL, bridgeDevice(b))
	}
	s.br, s.egress = b, nil
	s.router, s.rin, s.rout = nil, nil, nil
	return s.jumpTo(StageMACLookup)
}

// zone is the NAT zone of the router being traversed.
func (s *sim) zone() uint32 { return flowstate.RouterZone(s.router.ID) }
