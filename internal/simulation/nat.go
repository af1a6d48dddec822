package simulation

// NAT on a router's gateway. Bindings live in the router's zone
// (flowstate.RouterZone); a binding maps a connection's original key to
// its translated key, and its replies back (flowstate.NAT). New bindings
// are Result.State writes pushed to the hosts where the reply will be
// simulated (commitState at the egress). Floating IPs are 1:1 NAT with a
// binding too, so the established connections of a floating IP keep their
// translation in both directions through any gateway.
//
// SNAT source ports come from the blocks this host leased for the SNAT
// address (View.SNATBlocks): a hash of the original key picks the first
// port to try, and ports are probed in order with View.SNATInUse. The
// choice is deterministic for a given state. All ports in use: the
// Result asks for another block (NeedSNATBlock) and drops, uncached.
//
// Non-first fragments carry no ports: leaving, they get the source
// address only (the one their first fragment got); entering, only a
// floating IP translates them, other ones are dropped (ReasonNATFragment)
// rather than guessed. No state is written for them.
//
// Hairpin: a packet from inside to a floating IP of the same router is
// translated both ways (destination to the fixed IP, source to the
// sender's floating IP or the SNAT address), as Neutron's routers do, so
// that the reply comes back through the router and is translated back.

import (
	"net/netip"

	"hivenet/internal/flowstate"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// dnat: translation of packets entering the router from its gateway.
func (s *sim) dnat() outcome {
	r := s.router
	if r.GatewayPortID == "" {
		return next
	}
	if s.rin.ID != r.GatewayPortID {
		// From inside: only packets to the router's external addresses
		// (a floating IP of a neighbour, or a reply to a hairpin SNAT)
		// are translated. East-west traffic reads no NAT state.
		s.use(packet.FIPDst)
		dst := s.cur.Dst()
		if !(r.SNAT && dst == r.SNATAddr) && s.fipByAddr(dst) == nil {
			return next
		}
		s.hairpin = true
	}
	if s.isICMPError() {
		return s.natICMPError()
	}
	if s.laterFragment() {
		// No ports to find a binding by: only a floating IP (1:1) can
		// be translated.
		s.use(packet.FIPDst | packet.FIPSrc)
		if f := s.fipByAddr(s.cur.Dst()); f != nil {
			k := flowstate.KeyOf(s.zone(), &s.cur)
			x := k
			x.Dst = f.FixedIP.As16()
			s.xlate(k, x, "fragment to floating ip "+f.Addr.String())
			return next
		}
		if s.trace {
			s.step(s.routerDevice(), "later fragment to %s: no floating ip, ports unknown", s.cur.Dst())
		}
		return s.drop(ReasonNATFragment)
	}
	s.use(fiveTuple)
	k := flowstate.KeyOf(s.zone(), &s.cur)
	if b, ok := s.st.NATByReply(k); ok {
		s.xlate(k, b.Orig.Reverse(), "reply of binding")
		return next
	}
	// Floating IPs are 1:1 and stateless on the way in: the current
	// association decides, so a disassociated or moved floating IP
	// reaches nobody or the new port at once, whatever bindings remain.
	dst := s.cur.Dst()
	if f := s.fipByAddr(dst); f != nil {
		x := k
		x.Dst = f.FixedIP.As16()
		if s.hairpin {
			// From inside to a neighbour's floating IP: the source is
			// translated too (snat stage), so the reply comes back
			// through the router; one binding covers both.
			s.hairpinOrig, s.hairpinDNAT = k, true
		} else {
			s.addNAT(k, x)
		}
		s.xlate(k, x, "floating ip "+dst.String())
		return next
	}
	if s.hairpin {
		s.hairpin = false // to the router itself: router-local decides
		return next
	}
	if s.trace {
		s.step(s.routerDevice(), "%s: no binding, no floating ip", keyString(k))
	}
	return next
}

// snat: translation of packets leaving the router through its gateway.
func (s *sim) snat() outcome {
	r := s.router
	if r.GatewayPortID == "" || (s.rout.ID != r.GatewayPortID && !s.hairpinDNAT) {
		return next
	}
	if s.hairpinDNAT {
		return s.hairpinSNAT()
	}
	if s.isICMPError() {
		return s.natICMPError()
	}
	if s.laterFragment() {
		// The first fragment carried the ports and got the binding;
		// later ones only need the address (the same for every
		// connection of a source: its floating IP, else the router's).
		s.use(packet.FIPSrc | packet.FIPDst)
		k := flowstate.KeyOf(s.zone(), &s.cur)
		x := k
		if f := s.snap.FloatingIPOf(r.ID, s.cur.Src()); f != nil {
			x.Src = f.Addr.As16()
		} else if r.SNAT && r.SNATAddr.IsValid() {
			x.Src = r.SNATAddr.As16()
		}
		s.xlate(k, x, "fragment")
		return next
	}
	s.use(fiveTuple)
	k := flowstate.KeyOf(s.zone(), &s.cur)
	if b, ok := s.st.NATByReply(k); ok {
		s.xlate(k, b.Orig.Reverse(), "reply of binding")
		return next
	}
	fip := s.snap.FloatingIPOf(r.ID, s.cur.Src())
	if b, ok := s.st.NATByOrig(k); ok {
		// A binding is kept while its translation is still one the
		// router makes: its SNAT address, or the source's current
		// floating IP (not one since disassociated).
		if (r.SNAT && b.Xlat.Src == r.SNATAddr.As16()) || (fip != nil && b.Xlat.Src == fip.Addr.As16()) {
			s.xlate(k, b.Xlat, "binding")
			return next
		}
		if s.trace {
			s.step(s.routerDevice(), "stale binding %s ignored", keyString(b.Xlat))
		}
	}
	if f := fip; f != nil {
		x := k
		x.Src = f.Addr.As16()
		s.addNAT(k, x)
		s.xlate(k, x, "floating ip "+f.Addr.String())
		return next
	}
	if !r.SNAT || !r.SNATAddr.IsValid() {
		if s.trace {
			s.step(s.routerDevice(), "%s: snat disabled", keyString(k))
		}
		return next
	}
	x, ok := s.allocSNAT(k)
	if !ok {
		s.noCache = true
		s.r.NeedSNATBlock = r.SNATAddr
		if s.trace {
			s.step(s.routerDevice(), "%s: no free port for %s in blocks %v: need a block", keyString(k), r.SNATAddr, s.st.SNATBlocks(r.SNATAddr))
		}
		return s.drop(ReasonSNATExhausted)
	}
	s.addNAT(k, x)
	s.xlate(k, x, "snat")
	return next
}

// laterFragment reports whether the packet is a non-first IPv4 fragment
// (no transport header: nothing to find a binding by).
func (s *sim) laterFragment() bool {
	s.use(packet.FIPFrag)
	return s.cur.IPFrag == packet.FragLater
}

// fipByAddr returns the floating IP with address a that this router
// translates to a port's fixed IP, or nil.
func (s *sim) fipByAddr(a netip.Addr) *topology.FloatingIP {
	f := s.snap.FloatingIPByAddr(a)
	if f == nil || f.RouterID != s.router.ID || f.PortID == "" || !f.FixedIP.IsValid() {
		return nil
	}
	return f
}

// hairpinSNAT translates the source of a packet from inside to a
// neighbour's floating IP: to the sender's own floating IP, else to the
// router's SNAT address and a port; the binding maps the packet as sent
// (to the floating IP) to the packet as delivered, so the reply's one
// lookup restores both addresses.
func (s *sim) hairpinSNAT() outcome {
	r := s.router
	k := flowstate.KeyOf(s.zone(), &s.cur)
	x := k
	if f := s.snap.FloatingIPOf(r.ID, s.cur.Src()); f != nil {
		x.Src = f.Addr.As16()
	} else if r.SNAT && r.SNATAddr.IsValid() {
		var ok bool
		if x, ok = s.allocSNAT(k); !ok {
			s.noCache = true
			s.r.NeedSNATBlock = r.SNATAddr
			return s.drop(ReasonSNATExhausted)
		}
	} else {
		if s.trace {
			s.step(s.routerDevice(), "hairpin to a floating ip without snat: source kept")
		}
		s.addNAT(s.hairpinOrig, k)
		return next
	}
	s.addNAT(s.hairpinOrig, x)
	s.xlate(k, x, "hairpin snat")
	return next
}

// hasPort reports whether a key's protocol has a translatable port: TCP
// and UDP ports, the identifier of an ICMP echo request.
func hasPort(k *flowstate.Key, m *packet.FlowMatch) bool {
	switch k.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		return true
	case packet.ProtoICMP:
		return m.SrcPort == packet.ICMPEchoRequest
	}
	return false
}

// allocSNAT picks the translated key of k: source = the router's SNAT
// address and a free port of this host's blocks.
func (s *sim) allocSNAT(k flowstate.Key) (flowstate.Key, bool) {
	addr := s.router.SNATAddr
	x := k
	x.Src = addr.As16()
	if !hasPort(&k, &s.cur) {
		return x, true
	}
	blocks := s.st.SNATBlocks(addr)
	n := uint32(len(blocks)) * flowstate.SNATBlockSize
	if n == 0 {
		return x, false
	}
	start := keyHash(&k) % n
	for i := uint32(0); i < n; i++ {
		j := (start + i) % n
		x.SrcPort = blocks[j/flowstate.SNATBlockSize] + uint16(j%flowstate.SNATBlockSize)
		if !s.st.SNATInUse(x) {
			return x, true
		}
	}
	return x, false
}

// keyHash is FNV-1a over a key's fields.
func keyHash(k *flowstate.Key) uint32 {
	h := uint32(2166136261)
	add := func(b byte) { h = (h ^ uint32(b)) * 16777619 }
	for i := range k.Src {
		add(k.Src[i])
		add(k.Dst[i])
	}
	add(k.Proto)
	add(byte(k.SrcPort >> 8))
	add(byte(k.SrcPort))
	add(byte(k.DstPort >> 8))
	add(byte(k.DstPort))
	add(byte(k.Zone >> 24))
	add(byte(k.Zone >> 16))
	add(byte(k.Zone >> 8))
	add(byte(k.Zone))
	return h
}

// xlate rewrites the current packet from key from to key to, and records
// the rewrite for the flow.
func (s *sim) xlate(from, to flowstate.Key, why string) {
	m, rw := &s.cur, &s.r.Rewrite
	if to.Src != from.Src {
		m.IPSrc = to.Src
		rw.IPSrc = to.SrcAddr()
	}
	if to.Dst != from.Dst {
		m.IPDst = to.Dst
		rw.IPDst = to.DstAddr()
	}
	switch from.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		if to.SrcPort != from.SrcPort {
			m.SrcPort, rw.L4Src = to.SrcPort, to.SrcPort
		}
		if to.DstPort != from.DstPort {
			m.DstPort, rw.L4Dst = to.DstPort, to.DstPort
		}
	case packet.ProtoICMP:
		switch m.SrcPort {
		case packet.ICMPEchoRequest:
			if to.SrcPort != from.SrcPort {
				m.ICMPID, rw.L4Src = to.SrcPort, to.SrcPort
			}
		case packet.ICMPEchoReply:
			if to.DstPort != from.DstPort {
				m.ICMPID, rw.L4Dst = to.DstPort, to.DstPort
			}
		}
	}
	if s.trace {
		s.step(s.routerDevice(), "%s: %s -> %s", why, keyString(from), keyString(to))
	}
}

// addNAT records a new binding, in the router's zone.
func (s *sim) addNAT(orig, xlat flowstate.Key) {
	s.stateBlock()
	var n *flowstate.NAT
	if s.nNAT < len(s.sblk.nat) {
		n = &s.sblk.nat[s.nNAT]
	} else {
		n = new(flowstate.NAT)
	}
	s.nNAT++
	*n = flowstate.NAT{Orig: orig, Xlat: xlat}
	s.r.State = append(s.r.State, StateWrite{NAT: n})
}

// stateBlock allocates the state block on the first state write.
func (s *sim) stateBlock() {
	if s.sblk == nil {
		s.sblk = new(stateBlock)
		s.r.State = s.sblk.state[:0]
	}
}

// addConn records a new conntrack entry (once: the two chains of ports on
// one bridge share its zone and may see the same key).
func (s *sim) addConn(k flowstate.Key) {
	for _, w := range s.r.State {
		if w.Conn != nil && *w.Conn == k {
			return
		}
	}
	s.stateBlock()
	var p *flowstate.Key
	if s.nKeys < len(s.sblk.keys) {
		p = &s.sblk.keys[s.nKeys]
	} else {
		p = new(flowstate.Key)
	}
	s.nKeys++
	*p = k
	s.r.State = append(s.r.State, StateWrite{Conn: p})
}

// natICMPError translates an ICMP error about a translated connection:
// the embedded header is the connection's packet as translated (a
// binding's Xlat), so the binding is the one whose reply key is its
// reverse. The embedded header goes back to Orig, the outer destination
// to Orig's source, the outer source (when it is the translated peer) to
// Orig's destination; the checksums are fixed. The result depends on the
// payload: never cached; the rewritten frame leaves as an Emit.
func (s *sim) natICMPError() outcome {
	s.noCache = true
	if !s.parseInner() {
		if s.trace {
			s.step(s.routerDevice(), "icmp error type %d without an embedded header: not translated", s.cur.SrcPort)
		}
		return next
	}
	ik := flowstate.KeyOf(s.zone(), &s.inner)
	b, ok := s.st.NATByReply(ik.Reverse())
	if !ok {
		if s.trace {
			s.step(s.routerDevice(), "icmp error about %s: no binding", keyString(ik))
		}
		return next
	}
	osrc, odst := s.cur.IPSrc, b.Orig.Src
	if osrc == b.Xlat.Dst {
		osrc = b.Orig.Dst
	}
	base := s.emitFrame
	if base == nil {
		base = s.pkt.Frame
	}
	f, ok := translateICMPError(base, osrc, odst, &b.Orig)
	if !ok {
		if s.trace {
			s.step(s.routerDevice(), "icmp error about %s: frame not translatable", keyString(ik))
		}
		return next
	}
	s.emitFrame = f
	s.cur.IPSrc, s.cur.IPDst = osrc, odst
	s.inner.IPSrc, s.inner.IPDst = b.Orig.Src, b.Orig.Dst
	switch s.inner.IPProto {
	case packet.ProtoTCP, packet.ProtoUDP:
		s.inner.SrcPort, s.inner.DstPort = b.Orig.SrcPort, b.Orig.DstPort
	case packet.ProtoICMP:
		if s.inner.SrcPort == packet.ICMPEchoRequest {
			s.inner.ICMPID = b.Orig.SrcPort
		} else if s.inner.SrcPort == packet.ICMPEchoReply {
			s.inner.ICMPID = b.Orig.DstPort
		}
	}
	if s.trace {
		s.step(s.routerDevice(), "icmp error type %d about %s: embedded -> %s, outer -> %s > %s",
			s.cur.SrcPort, keyString(ik), keyString(b.Orig), s.cur.Src(), s.cur.Dst())
	}
	return next
}
