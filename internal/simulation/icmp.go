package simulation

// ICMP and TCP frames the simulation generates or rewrites: echo replies
// from router ports, errors (time exceeded, unreachable, RFC 792) sent
// back to the sender, TCP resets for rejected connections (RFC 793), and
// NAT-translated ICMP errors (RFC 5508 section 4.2: the embedded header
// is translated too, and every checksum it touches is fixed).
//
// An ICMPv4 error carries the IP header of the packet that caused it and
// at least its first 8 bytes:
//
//	 0      7 8     15 16             31
//	+--------+--------+----------------+
//	|  type  |  code  |    checksum    |
//	+--------+--------+----------------+
//	|    unused (or next-hop MTU)      |
//	+----------------------------------+
//	| original IP header + 8 bytes ... |

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"hivenet/internal/flowstate"
	"hivenet/internal/packet"
)

const (
	ethLen  = 14
	ip4Len  = 20
	icmpLen = 8
	// ICMP types that are errors (they embed a header).
	icmpSourceQuench = 4
	icmpRedirect     = 5
	icmpParamProblem = 12
	// Destination unreachable codes.
	codePortUnreachable = 3
	codeAdminProhibited = 13
)

// isICMPError reports whether the current packet is an ICMPv4 error.
func (s *sim) isICMPError() bool {
	m := &s.cur
	s.use(packet.FEthType | packet.FIPProto)
	if m.EthType != packet.EthTypeIPv4 || m.IPProto != packet.ProtoICMP {
		return false
	}
	s.use(packet.FSrcPort)
	switch m.SrcPort {
	case packet.ICMPDestUnreachable, icmpSourceQuench, icmpRedirect, packet.ICMPTimeExceeded, icmpParamProblem:
		return true
	}
	return false
}

// parseInner parses the header embedded in the ICMP error in pkt.Frame
// into s.inner (addresses, protocol, ports or type/code and echo id), once.
func (s *sim) parseInner() bool {
	if s.innerTry {
		return s.innerOK
	}
	s.innerTry = true
	f := s.pkt.Frame
	var m packet.FlowMatch
	var l packet.Layers
	if f == nil || packet.ParseLayers(f, &m, &l) != nil || l.L4 < 0 || m.IPProto != packet.ProtoICMP {
		return false
	}
	io := l.L4 + icmpLen
	if io+ip4Len > l.End || f[io]>>4 != 4 {
		return false
	}
	ihl := int(f[io]&0x0f) * 4
	if ihl < ip4Len || io+ihl > l.End {
		return false
	}
	in := &s.inner
	in.EthType = packet.EthTypeIPv4
	in.IPProto = f[io+9]
	in.SetSrc(netip.AddrFrom4([4]byte(f[io+12 : io+16])))
	in.SetDst(netip.AddrFrom4([4]byte(f[io+16 : io+20])))
	l4 := f[io+ihl : l.End]
	switch in.IPProto {
	case packet.ProtoTCP, packet.ProtoUDP:
		if len(l4) < 4 {
			return false
		}
		in.SrcPort, in.DstPort = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
	case packet.ProtoICMP:
		if len(l4) < 8 {
			return false
		}
		in.SrcPort, in.DstPort = uint16(l4[0]), uint16(l4[1])
		if l4[0] == packet.ICMPEchoRequest || l4[0] == packet.ICMPEchoReply {
			in.ICMPID = binary.BigEndian.Uint16(l4[4:])
		}
	}
	s.innerOff = io
	s.innerOK = true
	return true
}

// csumAdjust updates an Internet checksum for bytes old replaced by new
// (even lengths; RFC 1624 eqn. 3).
func csumAdjust(c uint16, old, new []byte) uint16 {
	sum := uint32(^c)
	for i := 0; i+1 < len(old); i += 2 {
		sum += uint32(^binary.BigEndian.Uint16(old[i:]))
		sum += uint32(binary.BigEndian.Uint16(new[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ipChecksum recomputes the header checksum of the IPv4 header at h.
func ipChecksum(h []byte) {
	ihl := int(h[0]&0x0f) * 4
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], packet.Checksum(h[:ihl], 0))
}

// translateICMPError returns a copy of the ICMPv4 error frame with the
// outer source/destination set to osrc/odst and the embedded header set
// to the connection key in (addresses, TCP/UDP ports or echo id), with
// the embedded IP, L4 and the outer IP and ICMP checksums fixed.
func translateICMPError(frame []byte, osrc, odst [16]byte, in *flowstate.Key) ([]byte, bool) {
	var m packet.FlowMatch
	var l packet.Layers
	if packet.ParseLayers(frame, &m, &l) != nil || l.L4 < 0 {
		return nil, false
	}
	f := append([]byte(nil), frame[:l.End]...)
	io := l.L4 + icmpLen
	if io+ip4Len > len(f) {
		return nil, false
	}
	ihl := int(f[io]&0x0f) * 4
	if ihl < ip4Len || io+ihl > len(f) {
		return nil, false
	}
	copy(f[l.L3+12:], osrc[12:])
	copy(f[l.L3+16:], odst[12:])
	ipChecksum(f[l.L3:])

	var oldAddrs [8]byte
	copy(oldAddrs[:], f[io+12:io+20])
	copy(f[io+12:], in.Src[12:])
	copy(f[io+16:], in.Dst[12:])
	ipChecksum(f[io:])
	l4 := f[io+ihl:]
	switch f[io+9] {
	case packet.ProtoTCP, packet.ProtoUDP:
		if len(l4) >= 4 {
			var oldPorts [4]byte
			copy(oldPorts[:], l4[:4])
			binary.BigEndian.PutUint16(l4[0:], in.SrcPort)
			binary.BigEndian.PutUint16(l4[2:], in.DstPort)
			ck := 16 // TCP checksum offset
			if f[io+9] == packet.ProtoUDP {
				ck = 6
			}
			if len(l4) >= ck+2 {
				c := binary.BigEndian.Uint16(l4[ck:])
				if c != 0 || f[io+9] == packet.ProtoTCP {
					c = csumAdjust(c, oldAddrs[:], f[io+12:io+20])
					c = csumAdjust(c, oldPorts[:], l4[:4])
					if c == 0 && f[io+9] == packet.ProtoUDP {
						c = 0xffff // RFC 768: a computed zero is sent as all ones
					}
					binary.BigEndian.PutUint16(l4[ck:], c)
				}
			}
		}
	case packet.ProtoICMP:
		if len(l4) >= 8 && (l4[0] == packet.ICMPEchoRequest || l4[0] == packet.ICMPEchoReply) {
			id := in.SrcPort
			if l4[0] == packet.ICMPEchoReply {
				id = in.DstPort
			}
			var old [2]byte
			copy(old[:], l4[4:6])
			binary.BigEndian.PutUint16(l4[4:], id)
			binary.BigEndian.PutUint16(l4[2:], csumAdjust(binary.BigEndian.Uint16(l4[2:]), old[:], l4[4:6]))
		}
	}
	icmp := f[l.L4:]
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], packet.Checksum(icmp, 0))
	return f, true
}

// emitTranslated ends the simulation of a NAT-translated ICMP error: the
// rewritten frame, with the routers' MACs and TTL, goes to portID.
func (s *sim) emitTranslated(portID, host string) outcome {
	f := s.emitFrame
	rw := &s.r.Rewrite
	if rw.EthDst != nil {
		copy(f[0:6], rw.EthDst[:])
	}
	if rw.EthSrc != nil {
		copy(f[6:12], rw.EthSrc[:])
	}
	l3 := ethLen
	if binary.BigEndian.Uint16(f[12:]) == packet.EthTypeVLAN {
		l3 += 4
	}
	f[l3+8] -= rw.DecTTL
	ipChecksum(f[l3:])
	s.r.Emit = append(s.r.Emit, Emit{PortID: portID, Frame: f})
	s.r.Rewrite = Rewrite{}
	s.r.Verdict = Consumed
	if s.trace {
		s.step("port "+s.portLabel(portID), "translated icmp error emitted to %s on %s", s.portLabel(portID), host)
	}
	return done
}

func (s *sim) portLabel(id string) string {
	if p := s.snap.Port(id); p != nil {
		return portName(p)
	}
	return id
}

// echoBody returns the sequence number and data of the ICMP echo request
// in frame (zero and nil without a frame).
func echoBody(frame []byte) (uint16, []byte) {
	var m packet.FlowMatch
	var l packet.Layers
	if frame == nil || packet.ParseLayers(frame, &m, &l) != nil || l.L4 < 0 || l.L4+icmpLen > l.End {
		return 0, nil
	}
	return binary.BigEndian.Uint16(frame[l.L4+6:]), frame[l.Payload:l.End]
}

// origHeader returns the IPv4 header and first 8 bytes of the packet
// (RFC 792), from the frame, or built from the flow key without one.
func (s *sim) origHeader() []byte {
	if f := s.pkt.Frame; f != nil {
		var m packet.FlowMatch
		var l packet.Layers
		if packet.ParseLayers(f, &m, &l) == nil && l.L3 >= 0 && m.EthType == packet.EthTypeIPv4 {
			ihl := int(f[l.L3]&0x0f) * 4
			end := min(l.L3+ihl+8, l.End)
			return f[l.L3:end]
		}
	}
	m := &s.pkt.Match
	b := make([]byte, ip4Len+8)
	putIP4(b, m.IPProto, m.IPTTL, m.Src(), m.Dst(), 8)
	switch m.IPProto {
	case packet.ProtoTCP, packet.ProtoUDP:
		binary.BigEndian.PutUint16(b[ip4Len:], m.SrcPort)
		binary.BigEndian.PutUint16(b[ip4Len+2:], m.DstPort)
	case packet.ProtoICMP:
		b[ip4Len], b[ip4Len+1] = byte(m.SrcPort), byte(m.DstPort)
		binary.BigEndian.PutUint16(b[ip4Len+4:], m.ICMPID)
	}
	return b
}

// putIP4 writes a 20-byte IPv4 header with its checksum.
func putIP4(h []byte, proto, ttl uint8, src, dst netip.Addr, payload int) {
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(ip4Len+payload))
	h[8], h[9] = ttl, proto
	s4, d4 := src.Unmap().As4(), dst.Unmap().As4()
	copy(h[12:], s4[:])
	copy(h[16:], d4[:])
	binary.BigEndian.PutUint16(h[10:], packet.Checksum(h[:ip4Len], 0))
}

// appendICMPError appends an Ethernet/IPv4/ICMP error frame embedding orig.
func appendICMPError(b []byte, srcMAC, dstMAC [6]byte, src, dst netip.Addr, typ, code uint8, orig []byte) []byte {
	off := len(b)
	b = append(b, make([]byte, ethLen+ip4Len+icmpLen)...)
	b = append(b, orig...)
	f := b[off:]
	copy(f[0:6], dstMAC[:])
	copy(f[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(f[12:], packet.EthTypeIPv4)
	putIP4(f[ethLen:], packet.ProtoICMP, 64, src, dst, icmpLen+len(orig))
	c := f[ethLen+ip4Len:]
	c[0], c[1] = typ, code
	binary.BigEndian.PutUint16(c[2:], packet.Checksum(c, 0))
	return b
}

// icmpErrorBack emits an ICMP error about the original packet, from
// address src, back to the ingress port, addressed as the sender sent it
// (Ethernet source = the MAC the sender sent to).
func (s *sim) icmpErrorBack(typ, code uint8, src netip.Addr) {
	o := &s.pkt.Match
	s.use(packet.FEthSrc | packet.FEthDst | packet.FIPSrc)
	f := appendICMPError(nil, o.EthDst, o.EthSrc, src, o.Src(), typ, code, s.origHeader())
	s.r.Emit = append(s.r.Emit, Emit{PortID: s.pkt.Ingress, Frame: f})
}

// reject answers a rejected packet: a TCP RST (RST|ACK acknowledging the
// segment, or RST with the segment's ACK number, RFC 793 "Reset
// Generation"), else an ICMP port unreachable (UDP) or administratively
// prohibited (other protocols), from the packet's destination. IPv6 is
// dropped without an answer.
func (s *sim) reject() {
	o := &s.pkt.Match
	if o.EthType != packet.EthTypeIPv4 {
		return
	}
	if o.IPProto != packet.ProtoTCP {
		code := uint8(codeAdminProhibited)
		if o.IPProto == packet.ProtoUDP {
			code = codePortUnreachable
		}
		s.icmpErrorBack(packet.ICMPDestUnreachable, code, o.Dst())
		return
	}
	var seq, ack uint32
	flags := byte(0x04 | 0x10) // RST|ACK
	if f := s.pkt.Frame; f != nil {
		var m packet.FlowMatch
		var l packet.Layers
		if packet.ParseLayers(f, &m, &l) == nil && l.L4 >= 0 && l.L4+20 <= l.End {
			t := f[l.L4:]
			segLen := uint32(l.End - l.Payload)
			if t[13]&0x02 != 0 { // SYN
				segLen++
			}
			if t[13]&0x01 != 0 { // FIN
				segLen++
			}
			if t[13]&0x10 != 0 { // the segment has an ACK: RST with seq = its ack
				seq, flags = binary.BigEndian.Uint32(t[8:]), 0x04
			} else {
				ack = binary.BigEndian.Uint32(t[4:]) + segLen
			}
		}
	}
	b := make([]byte, ethLen+ip4Len+20)
	copy(b[0:6], o.EthSrc[:])
	copy(b[6:12], o.EthDst[:])
	binary.BigEndian.PutUint16(b[12:], packet.EthTypeIPv4)
	putIP4(b[ethLen:], packet.ProtoTCP, 64, o.Dst(), o.Src(), 20)
	t := b[ethLen+ip4Len:]
	binary.BigEndian.PutUint16(t[0:], o.DstPort)
	binary.BigEndian.PutUint16(t[2:], o.SrcPort)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12], t[13] = 5<<4, flags
	binary.BigEndian.PutUint16(t[16:], packet.Checksum(t, packet.PseudoHeaderChecksum(packet.ProtoTCP, o.Dst(), o.Src(), 20)))
	s.r.Emit = append(s.r.Emit, Emit{PortID: s.pkt.Ingress, Frame: b})
}

// keyString prints a flow-state key for the trace.
func keyString(k flowstate.Key) string {
	name := map[uint8]string{packet.ProtoTCP: "tcp", packet.ProtoUDP: "udp", packet.ProtoICMP: "icmp"}[k.Proto]
	if name == "" {
		name = fmt.Sprintf("proto %d", k.Proto)
	}
	return fmt.Sprintf("%s %s:%d > %s:%d", name, k.SrcAddr(), k.SrcPort, k.DstAddr(), k.DstPort)
}
