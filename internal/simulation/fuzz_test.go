package simulation

import (
	"net/netip"
	"testing"

	"hivenet/internal/packet"
)

// FuzzSimulate feeds arbitrary flow keys (and frames) from every port of
// the unit topology. Invariants: Simulate never panics, and everything
// checkInvariants checks holds (determinism, Trace == Simulate, no
// mutation, consistent verdicts, a sound mask for cacheable results).
func FuzzSimulate(f *testing.F) {
	w := parseWorld(f, unitTopology)
	names := []string{"a1", "a2", "a3", "open", "down", "loose", "gone", "static", "off", "lost", "nobody"}
	ip := func(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
	mac := func(s string) []byte { m := mustMAC(f, s); return m[:] }
	// Seeds: a unicast TCP flow; a broadcast from a port without port
	// security; an ARP request for a known address; a DHCP DISCOVER with a
	// garbage payload; a spoofed source; an IPv6 link-local multicast.
	f.Add(uint8(0), mac("fa:16:3e:00:00:01"), mac("fa:16:3e:00:00:02"), uint16(packet.EthTypeIPv4), uint16(0), ip("10.0.0.5"), ip("10.0.0.6"), uint8(packet.ProtoTCP), uint16(40000), uint16(80), mac("00:00:00:00:00:00"), []byte(nil))
	f.Add(uint8(3), mac("fa:16:3e:00:00:66"), mac("ff:ff:ff:ff:ff:ff"), uint16(packet.EthTypeIPv4), uint16(0), ip("192.0.2.1"), ip("255.255.255.255"), uint8(packet.ProtoUDP), uint16(5000), uint16(5000), mac("00:00:00:00:00:00"), []byte(nil))
	f.Add(uint8(0), mac("fa:16:3e:00:00:01"), mac("ff:ff:ff:ff:ff:ff"), uint16(packet.EthTypeARP), uint16(0), ip("10.0.0.5"), ip("10.0.0.6"), uint8(packet.ARPRequest), uint16(0), uint16(0), mac("fa:16:3e:00:00:01"), []byte(nil))
	f.Add(uint8(0), mac("fa:16:3e:00:00:01"), mac("ff:ff:ff:ff:ff:ff"), uint16(packet.EthTypeIPv4), uint16(0), ip("0.0.0.0"), ip("255.255.255.255"), uint8(packet.ProtoUDP), uint16(68), uint16(67), mac("00:00:00:00:00:00"), []byte("\x01\x01\x06\x00garbage"))
	f.Add(uint8(2), mac("fa:16:3e:00:00:aa"), mac("fa:16:3e:00:00:01"), uint16(packet.EthTypeIPv4), uint16(0), ip("10.0.0.100"), ip("10.0.0.5"), uint8(packet.ProtoICMP), uint16(8), uint16(0), mac("00:00:00:00:00:00"), []byte(nil))
	f.Add(uint8(1), mac("fa:16:3e:00:00:02"), mac("33:33:00:00:00:01"), uint16(packet.EthTypeIPv6), uint16(0), ip("0.0.0.0"), ip("0.0.0.0"), uint8(packet.ProtoICMPv6), uint16(133), uint16(0), mac("00:00:00:00:00:00"), []byte(nil))
	f.Fuzz(func(t *testing.T, from uint8, ethSrc, ethDst []byte, ethType, vlan uint16, ipSrc, ipDst []byte, proto uint8, sport, dport uint16, arpSha, frame []byte) {
		pkt := Packet{Ingress: portID(names[int(from)%len(names)]), Frame: frame}
		m := &pkt.Match
		m.InPort = uint32(from) + 1
		copy(m.EthSrc[:], ethSrc)
		copy(m.EthDst[:], ethDst)
		copy(m.ARPSha[:], arpSha)
		m.EthType, m.VLAN, m.IPProto, m.SrcPort, m.DstPort = ethType, vlan%4096, proto, sport, dport
		var a, b [4]byte
		copy(a[:], ipSrc)
		copy(b[:], ipDst)
		m.SetSrc(netip.AddrFrom4(a))
		m.SetDst(netip.AddrFrom4(b))
		checkInvariants(t, w, "fuzz", pkt)
	})
}
