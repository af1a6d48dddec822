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

// FuzzSimulateL3 is FuzzSimulate on the routed topology (router, security
// groups with conntrack state, gateway, SNAT, floating IP, uplinks), with
// the destination MAC picked among the router ports' and the TTL and echo
// identifier fuzzed too. The frame, when given, lets ICMP errors reach the
// NAT and RELATED code with arbitrary payloads.
func FuzzSimulateL3(f *testing.F) {
	w := parseWorld(f, l3Topology)
	from := []string{portID("vm-a1"), portID("vm-a2"), portID("vm-b1"), "uplink:host3/physnet1", "uplink:host1/physnet1", "uplink:host9/physnet1"}
	dsts := []string{"r1-a", "r1-b", "r1-ext", "vm-a1", "vm-a2", "vm-b1"}
	ip := func(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
	// Seeds: a routed SSH connection; its reply; SNAT to the internet; a
	// floating IP from outside; TTL 1; an ICMP error with a garbage body.
	f.Add(uint8(2), uint8(1), ip("10.1.0.5"), ip("10.0.0.6"), uint8(packet.ProtoTCP), uint16(50000), uint16(22), uint8(64), uint16(0), []byte(nil))
	f.Add(uint8(1), uint8(0), ip("10.0.0.6"), ip("10.1.0.5"), uint8(packet.ProtoTCP), uint16(22), uint16(50001), uint8(64), uint16(0), []byte(nil))
	f.Add(uint8(0), uint8(0), ip("10.0.0.5"), ip("198.51.100.7"), uint8(packet.ProtoICMP), uint16(8), uint16(0), uint8(64), uint16(7), []byte(nil))
	f.Add(uint8(3), uint8(2), ip("198.51.100.9"), ip("203.0.113.10"), uint8(packet.ProtoTCP), uint16(50001), uint16(22), uint8(60), uint16(0), []byte(nil))
	f.Add(uint8(0), uint8(0), ip("10.0.0.5"), ip("10.1.0.5"), uint8(packet.ProtoUDP), uint16(33434), uint16(33435), uint8(1), uint16(0), []byte(nil))
	f.Add(uint8(3), uint8(2), ip("198.51.100.7"), ip("203.0.113.2"), uint8(packet.ProtoICMP), uint16(3), uint16(3), uint8(60), uint16(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x45\x00\x00\x14garbage"))
	f.Fuzz(func(t *testing.T, in, dst uint8, ipSrc, ipDst []byte, proto uint8, sport, dport uint16, ttl uint8, id uint16, frame []byte) {
		pkt := Packet{Ingress: from[int(in)%len(from)], Frame: frame}
		m := &pkt.Match
		m.InPort = uint32(in%8) + 1
		if p := w.snap.Port(pkt.Ingress); p != nil {
			m.EthSrc = p.MAC
		} else {
			m.EthSrc = [6]byte{2, 0, 0, 0, 0, 1}
		}
		m.EthDst = w.ports[dsts[int(dst)%len(dsts)]].MAC
		m.EthType, m.IPProto, m.SrcPort, m.DstPort, m.IPTTL, m.ICMPID = packet.EthTypeIPv4, proto, sport, dport, ttl, id
		var a, b [4]byte
		copy(a[:], ipSrc)
		copy(b[:], ipDst)
		m.SetSrc(netip.AddrFrom4(a))
		m.SetDst(netip.AddrFrom4(b))
		checkInvariants(t, w, "fuzz-l3", pkt)
	})
}
