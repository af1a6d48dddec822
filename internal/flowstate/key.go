package flowstate

import (
	"net/netip"
	"strconv"

	"hivenet/internal/packet"
)

// Key is one direction of a connection in a zone. Fixed-size, comparable,
// pointer-free. For ICMP echo, SrcPort is the identifier and DstPort 0;
// for other protocols without ports both are 0.
//
// Zone separates address spaces that may overlap: conntrack entries of a
// port's security groups live in the zone of the port's bridge
// (Bridge.FloodKey); NAT bindings in the zone of the router (RouterZone).
type Key struct {
	Zone    uint32
	Proto   uint8
	_       [3]byte
	Src     [16]byte
	Dst     [16]byte
	SrcPort uint16
	DstPort uint16
}

// KeyOf returns the key of the packet m in zone. ICMP echo requests and
// replies use the identifier as SrcPort/DstPort so both directions pair
// up: a request (id X) has SrcPort X, its reply has DstPort X.
func KeyOf(zone uint32, m *packet.FlowMatch) Key {
	k := Key{Zone: zone, Proto: m.IPProto, Src: m.IPSrc, Dst: m.IPDst}
	switch m.IPProto {
	case packet.ProtoTCP, packet.ProtoUDP:
		k.SrcPort, k.DstPort = m.SrcPort, m.DstPort
	case packet.ProtoICMP:
		switch m.SrcPort { // the ICMP type
		case packet.ICMPEchoRequest:
			k.SrcPort = m.ICMPID
		case packet.ICMPEchoReply:
			k.DstPort = m.ICMPID
		}
	}
	return k
}

// Reverse returns the key of the other direction.
func (k Key) Reverse() Key {
	r := k
	r.Src, r.Dst = k.Dst, k.Src
	r.SrcPort, r.DstPort = k.DstPort, k.SrcPort
	return r
}

// SrcAddr and DstAddr return the addresses (IPv4 unmapped).
func (k Key) SrcAddr() netip.Addr { return netip.AddrFrom16(k.Src).Unmap() }
func (k Key) DstAddr() netip.Addr { return netip.AddrFrom16(k.Dst).Unmap() }

// RouterZone is the NAT zone of a router (FNV-1a of its ID, 32 bit).
func RouterZone(routerID string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(routerID); i++ {
		h = (h ^ uint32(routerID[i])) * 16777619
	}
	return h | 0x80000000 // never collides with a 24-bit bridge flood key
}

// String formats k for traces and the CLI, e.g.
// "zone 7 tcp 10.0.0.5:40000 > 192.0.2.1:80".
func (k Key) String() string {
	var proto string
	switch k.Proto {
	case packet.ProtoTCP:
		proto = "tcp"
	case packet.ProtoUDP:
		proto = "udp"
	case packet.ProtoICMP:
		proto = "icmp"
	default:
		proto = "proto " + strconv.Itoa(int(k.Proto))
	}
	src := netip.AddrPortFrom(k.SrcAddr(), k.SrcPort)
	dst := netip.AddrPortFrom(k.DstAddr(), k.DstPort)
	return "zone " + strconv.FormatUint(uint64(k.Zone), 10) + " " + proto + " " + src.String() + " > " + dst.String()
}
