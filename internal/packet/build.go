package packet

import (
	"encoding/binary"
	"net/netip"
)

// Builders. Each appends one complete Ethernet frame to b and returns the
// extended slice; with enough capacity in b they allocate nothing. Frames
// are not padded to the 60-byte Ethernet minimum (TAP, veth and VXLAN do
// not need it; a NIC pads on transmit). IPv4 headers are 20 bytes,
// identification 0, no flags, and carry a correct header checksum; UDP
// and ICMP checksums are computed.
//
// Addresses are IPv4; an address that is not IPv4 (or v4-mapped) is
// written as 0.0.0.0.

// BroadcastMAC is the Ethernet broadcast address. It is a variable only
// because Go has no array constants: never modify it.
var BroadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

const (
	ipv4HeaderLen  = 20
	maxUDP4Payload = 0xffff - ipv4HeaderLen - udpHeaderLen
)

// ip4 returns a as 4 bytes, or 0.0.0.0 when a is not IPv4.
func ip4(a netip.Addr) [4]byte {
	a = a.Unmap()
	if !a.Is4() {
		return [4]byte{}
	}
	return a.As4()
}

// grow appends n zero bytes to b and returns the extended slice and the
// new bytes.
func grow(b []byte, n int) ([]byte, []byte) {
	l := len(b)
	b = append(b, make([]byte, n)...)
	return b, b[l:]
}

func putEth(h []byte, dst, src [6]byte, et uint16) {
	copy(h[0:6], dst[:])
	copy(h[6:12], src[:])
	binary.BigEndian.PutUint16(h[12:14], et)
}

func putARP(b []byte, op uint16, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr) {
	binary.BigEndian.PutUint16(b[0:2], 1) // Ethernet
	binary.BigEndian.PutUint16(b[2:4], EthTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], op)
	s, t := ip4(spa), ip4(tpa)
	copy(b[8:14], sha[:])
	copy(b[14:18], s[:])
	copy(b[18:24], tha[:])
	copy(b[24:28], t[:])
}

// AppendARPReply appends an ARP reply (RFC 826) from srcMAC/srcIP ("srcIP
// is at srcMAC") to dstMAC/dstIP, sent to dstMAC.
func AppendARPReply(b []byte, srcMAC [6]byte, srcIP netip.Addr, dstMAC [6]byte, dstIP netip.Addr) []byte {
	b, f := grow(b, ethHeaderLen+arpLen)
	putEth(f, dstMAC, srcMAC, EthTypeARP)
	putARP(f[ethHeaderLen:], ARPReply, srcMAC, srcIP, dstMAC, dstIP)
	return b
}

// AppendARPRequest appends a broadcast ARP request ("who has targetIP?
// tell srcIP") with a zero target hardware address.
func AppendARPRequest(b []byte, srcMAC [6]byte, srcIP netip.Addr, targetIP netip.Addr) []byte {
	b, f := grow(b, ethHeaderLen+arpLen)
	putEth(f, BroadcastMAC, srcMAC, EthTypeARP)
	putARP(f[ethHeaderLen:], ARPRequest, srcMAC, srcIP, [6]byte{}, targetIP)
	return b
}

// putIPv4 writes a 20-byte IPv4 header with its checksum into h.
func putIPv4(h []byte, proto, ttl uint8, src, dst [4]byte, payloadLen int) {
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:4], uint16(ipv4HeaderLen+payloadLen))
	h[8] = ttl
	h[9] = proto
	copy(h[12:16], src[:])
	copy(h[16:20], dst[:])
	binary.BigEndian.PutUint16(h[10:12], Checksum(h[:ipv4HeaderLen], 0))
}

// startUDP4 reserves the Ethernet, IPv4 and UDP headers; the caller
// appends the payload and calls finishUDP4 with the returned offset.
func startUDP4(b []byte) ([]byte, int) {
	off := len(b)
	b, _ = grow(b, ethHeaderLen+ipv4HeaderLen+udpHeaderLen)
	return b, off
}

// finishUDP4 fills the headers reserved by startUDP4 at off, the payload
// being everything after them.
func finishUDP4(b []byte, off int, srcMAC, dstMAC [6]byte, src, dst netip.AddrPort, ttl uint8) {
	f := b[off:]
	udpLen := len(f) - ethHeaderLen - ipv4HeaderLen
	if udpLen > 0xffff-ipv4HeaderLen {
		panic("packet: UDP payload too long")
	}
	putEth(f, dstMAC, srcMAC, EthTypeIPv4)
	s, d := ip4(src.Addr()), ip4(dst.Addr())
	putIPv4(f[ethHeaderLen:], ProtoUDP, ttl, s, d, udpLen)
	u := f[ethHeaderLen+ipv4HeaderLen:]
	binary.BigEndian.PutUint16(u[0:2], src.Port())
	binary.BigEndian.PutUint16(u[2:4], dst.Port())
	binary.BigEndian.PutUint16(u[4:6], uint16(udpLen))
	c := Checksum(u, PseudoHeaderChecksum(ProtoUDP, netip.AddrFrom4(s), netip.AddrFrom4(d), uint16(udpLen)))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(u[6:8], c)
}

// AppendUDP4 appends an Ethernet/IPv4/UDP frame carrying payload. It
// panics if payload is longer than 65507 bytes (a programming error).
func AppendUDP4(b []byte, srcMAC, dstMAC [6]byte, src, dst netip.AddrPort, ttl uint8, payload []byte) []byte {
	if len(payload) > maxUDP4Payload {
		panic("packet: UDP payload too long")
	}
	b, off := startUDP4(b)
	b = append(b, payload...)
	finishUDP4(b, off, srcMAC, dstMAC, src, dst, ttl)
	return b
}

// ICMPv4 types used by the builders and the simulation (RFC 792).
const (
	ICMPEchoReply       = 0
	ICMPDestUnreachable = 3
	ICMPEchoRequest     = 8
	ICMPTimeExceeded    = 11
)

const maxICMP4Payload = 0xffff - ipv4HeaderLen - icmpHeaderLen

// AppendICMP4Echo appends an Ethernet/IPv4/ICMP echo message of type typ
// (ICMPEchoRequest or ICMPEchoReply), code 0, with identifier id,
// sequence number seq and payload. It panics if payload is longer than
// 65507 bytes (a programming error).
func AppendICMP4Echo(b []byte, srcMAC, dstMAC [6]byte, src, dst netip.Addr, ttl uint8, typ uint8, id, seq uint16, payload []byte) []byte {
	if len(payload) > maxICMP4Payload {
		panic("packet: ICMP payload too long")
	}
	off := len(b)
	b, _ = grow(b, ethHeaderLen+ipv4HeaderLen+icmpHeaderLen)
	b = append(b, payload...)
	f := b[off:]
	putEth(f, dstMAC, srcMAC, EthTypeIPv4)
	putIPv4(f[ethHeaderLen:], ProtoICMP, ttl, ip4(src), ip4(dst), icmpHeaderLen+len(payload))
	c := f[ethHeaderLen+ipv4HeaderLen:]
	c[0] = typ
	binary.BigEndian.PutUint16(c[4:6], id)
	binary.BigEndian.PutUint16(c[6:8], seq)
	binary.BigEndian.PutUint16(c[2:4], Checksum(c, 0))
	return b
}
