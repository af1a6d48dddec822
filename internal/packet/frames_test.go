package packet

// Hand-assembled test frames. These helpers write header bytes field by
// field, independently of the package's builders, so that parsing tests
// do not only check the builders against themselves.

import (
	"encoding/binary"
	"net/netip"
)

var (
	macA = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macB = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
	ip4A = netip.MustParseAddr("10.0.0.1")
	ip4B = netip.MustParseAddr("10.0.0.2")
	ip6A = netip.MustParseAddr("fd00::1")
	ip6B = netip.MustParseAddr("fd00::2")
)

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func ethHdr(dst, src [6]byte, et uint16) []byte {
	return cat(dst[:], src[:], u16(et))
}

func vlanTag(tci, et uint16) []byte { return cat(u16(tci), u16(et)) }

// ipv4Opts describes an IPv4 header to assemble.
type ipv4Opts struct {
	ihl      int // in 32-bit words; 0 means 5 (+ options)
	version  byte
	total    int // -1: computed from payloadLen
	frag     uint16
	ttl      uint8
	proto    uint8
	src, dst netip.Addr
	options  []byte
}

func ipv4Hdr(o ipv4Opts, payloadLen int) []byte {
	hl := 20 + len(o.options)
	ihl := o.ihl
	if ihl == 0 {
		ihl = hl / 4
	}
	ver := o.version
	if ver == 0 {
		ver = 4
	}
	total := o.total
	if total < 0 {
		total = hl + payloadLen
	}
	h := make([]byte, 20, hl)
	h[0] = ver<<4 | byte(ihl)
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	binary.BigEndian.PutUint16(h[6:], o.frag)
	h[8], h[9] = o.ttl, o.proto
	s, d := o.src.As4(), o.dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	h = append(h, o.options...)
	binary.BigEndian.PutUint16(h[10:], refChecksum(h))
	return h
}

func ipv6Hdr(next, hop uint8, src, dst netip.Addr, payloadLen int) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(payloadLen))
	h[6], h[7] = next, hop
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return h
}

// ext6 is an IPv6 extension header of 8*(1+hdrExtLen) bytes.
func ext6(next uint8, hdrExtLen uint8) []byte {
	h := make([]byte, 8*(1+int(hdrExtLen)))
	h[0], h[1] = next, hdrExtLen
	return h
}

func frag6(next uint8, offset uint16, more bool) []byte {
	h := make([]byte, 8)
	h[0] = next
	fo := offset << 3
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(h[2:], fo)
	return h
}

func tcpHdr(sport, dport uint16, doff int, flags byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = byte(doff) << 4
	h[13] = flags
	if doff > 5 {
		h = append(h, make([]byte, (doff-5)*4)...)
	}
	return h
}

func udpHdr(sport, dport uint16, length int) []byte {
	return cat(u16(sport), u16(dport), u16(uint16(length)), u16(0))
}

func icmpHdr(typ, code uint8) []byte { return []byte{typ, code, 0, 0, 0, 1, 0, 2} }

func arpBody(htype, ptype uint16, hlen, plen uint8, op uint16, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr) []byte {
	s, t := spa.As4(), tpa.As4()
	return cat(u16(htype), u16(ptype), []byte{hlen, plen}, u16(op), sha[:], s[:], tha[:], t[:])
}

// tcp4Frame is a plain Ethernet/IPv4/TCP frame with n payload bytes.
func tcp4Frame(n int) []byte {
	l4 := cat(tcpHdr(40000, 80, 5, 0x02), make([]byte, n))
	return cat(ethHdr(macB, macA, EthTypeIPv4),
		ipv4Hdr(ipv4Opts{total: -1, ttl: 64, proto: ProtoTCP, src: ip4A, dst: ip4B}, len(l4)), l4)
}

func udp4Frame(n int) []byte {
	l4 := cat(udpHdr(5000, 53, 8+n), make([]byte, n))
	return cat(ethHdr(macB, macA, EthTypeIPv4),
		ipv4Hdr(ipv4Opts{total: -1, ttl: 64, proto: ProtoUDP, src: ip4A, dst: ip4B}, len(l4)), l4)
}

func tcp6Frame(n int) []byte {
	l4 := cat(tcpHdr(40000, 443, 5, 0x02), make([]byte, n))
	return cat(ethHdr(macB, macA, EthTypeIPv6), ipv6Hdr(ProtoTCP, 64, ip6A, ip6B, len(l4)), l4)
}

func arpRequestFrame() []byte {
	return cat(ethHdr(BroadcastMAC, macA, EthTypeARP),
		arpBody(1, EthTypeIPv4, 6, 4, ARPRequest, macA, ip4A, [6]byte{}, ip4B))
}

// refChecksum is the obvious RFC 1071 checksum, 16 bits at a time.
func refChecksum(b []byte) uint16 { return ^refFold(refSum(b, 0)) }

func refSum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
		s = s&0xffff + s>>16
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
		s = s&0xffff + s>>16
	}
	return s
}

func refFold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// match builds an expected FlowMatch.
type matchSpec struct {
	inPort           uint32
	ethSrc, ethDst   [6]byte
	ethType, vlan    uint16
	src, dst         netip.Addr
	proto, ttl, frag uint8
	sport, dport     uint16
	arpSha           [6]byte
	icmpID           uint16
}

func (s matchSpec) m() FlowMatch {
	m := FlowMatch{InPort: s.inPort, EthSrc: s.ethSrc, EthDst: s.ethDst, EthType: s.ethType, VLAN: s.vlan,
		IPProto: s.proto, IPTTL: s.ttl, IPFrag: s.frag, SrcPort: s.sport, DstPort: s.dport, ARPSha: s.arpSha, ICMPID: s.icmpID}
	if s.src.IsValid() {
		m.IPSrc = s.src.As16()
	}
	if s.dst.IsValid() {
		m.IPDst = s.dst.As16()
	}
	return m
}
