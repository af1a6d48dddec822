package packet

import (
	"errors"
	"fmt"
	"testing"
)

type parseCase struct {
	name    string
	frame   []byte
	wantErr error
	want    FlowMatch
	wantL   Layers
}

const testInPort = 7

// parseCases are shared by the table test, the allocation test and the
// fuzz seeds.
func parseCases() []parseCase {
	tcp4 := tcp4Frame(10)
	udpPadded := cat(ethHdr(macB, macA, EthTypeIPv4),
		ipv4Hdr(ipv4Opts{total: -1, ttl: 64, proto: ProtoUDP, src: ip4A, dst: ip4B}, 9),
		udpHdr(1, 2, 9), []byte{0xaa}, make([]byte, 60-43)) // 43-byte packet padded to 60
	bigTCP4 := cat(ethHdr(macB, macA, EthTypeIPv4),
		ipv4Hdr(ipv4Opts{total: 0, ttl: 64, proto: ProtoTCP, src: ip4A, dst: ip4B}, 0),
		tcpHdr(1, 2, 5, 0x10), make([]byte, 70000))
	bigTCP6 := cat(ethHdr(macB, macA, EthTypeIPv6), ipv6Hdr(ProtoTCP, 64, ip6A, ip6B, 0),
		tcpHdr(1, 2, 5, 0x10), make([]byte, 70000))
	v4 := func(o ipv4Opts, l4 []byte) []byte {
		if o.ttl == 0 {
			o.ttl = 64
		}
		o.src, o.dst = ip4A, ip4B
		return cat(ethHdr(macB, macA, EthTypeIPv4), ipv4Hdr(o, len(l4)), l4)
	}
	v6 := func(next uint8, l4 []byte) []byte {
		return cat(ethHdr(macB, macA, EthTypeIPv6), ipv6Hdr(next, 64, ip6A, ip6B, len(l4)), l4)
	}
	arp := func(htype, ptype uint16, hlen, plen uint8, op uint16) []byte {
		return cat(ethHdr(BroadcastMAC, macA, EthTypeARP), arpBody(htype, ptype, hlen, plen, op, macA, ip4A, [6]byte{}, ip4B))
	}
	m4 := func(proto, frag uint8, sport, dport uint16) FlowMatch {
		return matchSpec{inPort: testInPort, ethSrc: macA, ethDst: macB, ethType: EthTypeIPv4, src: ip4A, dst: ip4B,
			proto: proto, ttl: 64, frag: frag, sport: sport, dport: dport}.m()
	}
	m6 := func(proto, frag uint8, sport, dport uint16) FlowMatch {
		return matchSpec{inPort: testInPort, ethSrc: macA, ethDst: macB, ethType: EthTypeIPv6, src: ip6A, dst: ip6B,
			proto: proto, ttl: 64, frag: frag, sport: sport, dport: dport}.m()
	}
	bad := func(name string, frame []byte, err error) parseCase {
		return parseCase{name: name, frame: frame, wantErr: err}
	}
	return []parseCase{
		{name: "tcp4", frame: tcp4, want: m4(ProtoTCP, FragNone, 40000, 80),
			wantL: Layers{L3: 14, L4: 34, Payload: 54, End: len(tcp4)}},
		{name: "tcp4 with IP options and TCP options",
			frame: v4(ipv4Opts{total: -1, proto: ProtoTCP, options: []byte{1, 1, 1, 0}}, tcpHdr(22, 2222, 8, 0x12)),
			want:  m4(ProtoTCP, FragNone, 22, 2222), wantL: Layers{L3: 14, L4: 38, Payload: 70, End: 70}},
		{name: "udp4", frame: udp4Frame(4), want: m4(ProtoUDP, FragNone, 5000, 53),
			wantL: Layers{L3: 14, L4: 34, Payload: 42, End: 46}},
		{name: "udp4 with Ethernet padding", frame: udpPadded, want: m4(ProtoUDP, FragNone, 1, 2),
			wantL: Layers{L3: 14, L4: 34, Payload: 42, End: 43}},
		{name: "udp4 checksum-less zero length (jumbo)", frame: v4(ipv4Opts{total: -1, proto: ProtoUDP}, udpHdr(1, 2, 0)),
			want: m4(ProtoUDP, FragNone, 1, 2), wantL: Layers{L3: 14, L4: 34, Payload: 42, End: 42}},
		{name: "icmp4 echo request", frame: v4(ipv4Opts{total: -1, proto: ProtoICMP}, icmpHdr(8, 0)),
			want: withICMPID(m4(ProtoICMP, FragNone, 8, 0), 1), wantL: Layers{L3: 14, L4: 34, Payload: 42, End: 42}},
		{name: "icmp4 port unreachable", frame: v4(ipv4Opts{total: -1, proto: ProtoICMP}, icmpHdr(3, 3)),
			want: m4(ProtoICMP, FragNone, 3, 3), wantL: Layers{L3: 14, L4: 34, Payload: 42, End: 42}},
		{name: "ipv4 first fragment", frame: v4(ipv4Opts{total: -1, proto: ProtoUDP, frag: 0x2000}, udpHdr(1, 2, 3000)),
			want: m4(ProtoUDP, FragFirst, 1, 2), wantL: Layers{L3: 14, L4: 34, Payload: 42, End: 42}},
		{name: "ipv4 later fragment", frame: v4(ipv4Opts{total: -1, proto: ProtoUDP, frag: 0x0100}, []byte{1, 2, 3, 4}),
			want: m4(ProtoUDP, FragLater, 0, 0), wantL: Layers{L3: 14, L4: -1, Payload: 34, End: 38}},
		{name: "ipv4 last fragment (no MF)", frame: v4(ipv4Opts{total: -1, proto: ProtoTCP, frag: 0x0001}, []byte{1}),
			want: m4(ProtoTCP, FragLater, 0, 0), wantL: Layers{L3: 14, L4: -1, Payload: 34, End: 35}},
		{name: "ipv4 DF set is not a fragment", frame: v4(ipv4Opts{total: -1, proto: ProtoTCP, frag: 0x4000}, tcpHdr(1, 2, 5, 0)),
			want: m4(ProtoTCP, FragNone, 1, 2), wantL: Layers{L3: 14, L4: 34, Payload: 54, End: 54}},
		{name: "ipv4 unknown protocol (GRE)", frame: v4(ipv4Opts{total: -1, proto: 47}, []byte{0, 0, 0x65, 0x58}),
			want: m4(47, FragNone, 0, 0), wantL: Layers{L3: 14, L4: 34, Payload: 34, End: 38}},
		{name: "ipv4 total length 0 (BIG TCP superframe)", frame: bigTCP4, want: m4(ProtoTCP, FragNone, 1, 2),
			wantL: Layers{L3: 14, L4: 34, Payload: 54, End: len(bigTCP4)}},
		{name: "vlan tcp4", frame: cat(ethHdr(macB, macA, EthTypeVLAN), vlanTag(0x2064, EthTypeIPv4), tcp4[14:]),
			want:  func() FlowMatch { m := m4(ProtoTCP, FragNone, 40000, 80); m.VLAN = 100; return m }(),
			wantL: Layers{L3: 18, L4: 38, Payload: 58, End: len(tcp4) + 4, VLAN: true}},
		{name: "double vlan tag is an unknown ethertype", frame: cat(ethHdr(macB, macA, EthTypeVLAN), vlanTag(5, EthTypeVLAN), vlanTag(6, EthTypeIPv4)),
			want:  matchSpec{inPort: testInPort, ethSrc: macA, ethDst: macB, ethType: EthTypeVLAN, vlan: 5}.m(),
			wantL: Layers{L3: -1, L4: -1, Payload: -1, End: 22, VLAN: true}},
		{name: "arp request", frame: arpRequestFrame(),
			want: matchSpec{inPort: testInPort, ethSrc: macA, ethDst: BroadcastMAC, ethType: EthTypeARP,
				src: ip4A, dst: ip4B, proto: ARPRequest, arpSha: macA}.m(),
			wantL: Layers{L3: 14, L4: -1, Payload: -1, End: 42}},
		{name: "arp reply padded to 60", frame: cat(ethHdr(macA, macB, EthTypeARP),
			arpBody(1, EthTypeIPv4, 6, 4, ARPReply, macB, ip4B, macA, ip4A), make([]byte, 18)),
			want: matchSpec{inPort: testInPort, ethSrc: macB, ethDst: macA, ethType: EthTypeARP,
				src: ip4B, dst: ip4A, proto: ARPReply, arpSha: macB}.m(),
			wantL: Layers{L3: 14, L4: -1, Payload: -1, End: 42}},
		{name: "unknown ethertype (LLDP)", frame: cat(ethHdr(macB, macA, 0x88cc), []byte{1, 2, 3}),
			want:  matchSpec{inPort: testInPort, ethSrc: macA, ethDst: macB, ethType: 0x88cc}.m(),
			wantL: Layers{L3: -1, L4: -1, Payload: -1, End: 17}},
		{name: "802.3 length field", frame: cat(ethHdr(macB, macA, 3), []byte{0x42, 0x42, 0x03}),
			want:  matchSpec{inPort: testInPort, ethSrc: macA, ethDst: macB, ethType: 3}.m(),
			wantL: Layers{L3: -1, L4: -1, Payload: -1, End: 17}},
		{name: "tcp6", frame: tcp6Frame(0), want: m6(ProtoTCP, FragNone, 40000, 443),
			wantL: Layers{L3: 14, L4: 54, Payload: 74, End: 74}},
		{name: "udp6", frame: v6(ProtoUDP, udpHdr(546, 547, 8)), want: m6(ProtoUDP, FragNone, 546, 547),
			wantL: Layers{L3: 14, L4: 54, Payload: 62, End: 62}},
		{name: "icmpv6 neighbor solicitation", frame: v6(ProtoICMPv6, icmpHdr(135, 0)), want: m6(ProtoICMPv6, FragNone, 135, 0),
			wantL: Layers{L3: 14, L4: 54, Payload: 62, End: 62}},
		{name: "icmp (v4 number) inside ipv6 is unknown", frame: v6(ProtoICMP, icmpHdr(8, 0)), want: m6(ProtoICMP, FragNone, 0, 0),
			wantL: Layers{L3: 14, L4: 54, Payload: 54, End: 62}},
		{name: "ipv6 hop-by-hop, destination options, routing then tcp",
			frame: v6(protoHopByHop, cat(ext6(protoDestOpts, 0), ext6(protoRouting, 1), ext6(ProtoTCP, 0), tcpHdr(1, 2, 5, 0))),
			want:  m6(ProtoTCP, FragNone, 1, 2), wantL: Layers{L3: 14, L4: 54 + 32, Payload: 54 + 52, End: 54 + 52}},
		{name: "ipv6 authentication header then udp",
			frame: v6(protoAH, cat([]byte{ProtoUDP, 4, 0, 0}, make([]byte, 20), udpHdr(1, 2, 8))),
			want:  m6(ProtoUDP, FragNone, 1, 2), wantL: Layers{L3: 14, L4: 54 + 24, Payload: 54 + 32, End: 54 + 32}},
		{name: "ipv6 first fragment", frame: v6(protoFragment, cat(frag6(ProtoUDP, 0, true), udpHdr(1, 2, 3000))),
			want: m6(ProtoUDP, FragFirst, 1, 2), wantL: Layers{L3: 14, L4: 62, Payload: 70, End: 70}},
		{name: "ipv6 later fragment", frame: v6(protoFragment, cat(frag6(ProtoUDP, 100, false), []byte{9, 9})),
			want: m6(ProtoUDP, FragLater, 0, 0), wantL: Layers{L3: 14, L4: -1, Payload: 62, End: 64}},
		{name: "ipv6 atomic fragment", frame: v6(protoFragment, cat(frag6(ProtoTCP, 0, false), tcpHdr(1, 2, 5, 0))),
			want: m6(ProtoTCP, FragNone, 1, 2), wantL: Layers{L3: 14, L4: 62, Payload: 82, End: 82}},
		{name: "ipv6 no next header", frame: v6(protoNoNext, nil), want: m6(protoNoNext, FragNone, 0, 0),
			wantL: Layers{L3: 14, L4: 54, Payload: 54, End: 54}},
		{name: "ipv6 payload length 0 (BIG TCP superframe)", frame: bigTCP6, want: m6(ProtoTCP, FragNone, 1, 2),
			wantL: Layers{L3: 14, L4: 54, Payload: 74, End: len(bigTCP6)}},

		// Malformations.
		bad("empty", nil, ErrTruncated),
		bad("13-byte ethernet header", make([]byte, 13), ErrTruncated),
		bad("vlan tag cut", cat(ethHdr(macB, macA, EthTypeVLAN), []byte{0, 1}), ErrTruncated),
		bad("arp cut", arpRequestFrame()[:41], ErrTruncated),
		bad("arp hardware type 6", arp(6, EthTypeIPv4, 6, 4, ARPRequest), ErrMalformed),
		bad("arp protocol type ipv6", arp(1, EthTypeIPv6, 6, 4, ARPRequest), ErrMalformed),
		bad("arp hardware length 8", arp(1, EthTypeIPv4, 8, 4, ARPRequest), ErrMalformed),
		bad("arp protocol length 16", arp(1, EthTypeIPv4, 6, 16, ARPRequest), ErrMalformed),
		bad("arp opcode 0x0101", arp(1, EthTypeIPv4, 6, 4, 0x0101), ErrMalformed),
		bad("ipv4 header cut", tcp4[:14+19], ErrTruncated),
		bad("ipv4 version 6", v4(ipv4Opts{total: -1, version: 6, proto: ProtoTCP}, tcpHdr(1, 2, 5, 0)), ErrMalformed),
		bad("ipv4 ihl 4", v4(ipv4Opts{total: -1, ihl: 4, proto: 47}, tcpHdr(1, 2, 5, 0)), ErrMalformed),
		bad("ipv4 ihl 0", func() []byte {
			f := v4(ipv4Opts{total: -1, proto: 47}, tcpHdr(1, 2, 5, 0))
			f[14] = 0x40
			return f
		}(), ErrMalformed),
		bad("ipv4 ihl 15 beyond frame", v4(ipv4Opts{total: 60, ihl: 15, proto: ProtoTCP}, nil), ErrTruncated),
		bad("ipv4 total length below ihl", v4(ipv4Opts{total: 19, proto: ProtoTCP}, tcpHdr(1, 2, 5, 0)), ErrMalformed),
		bad("ipv4 total length beyond frame", v4(ipv4Opts{total: 41, proto: ProtoTCP}, tcpHdr(1, 2, 5, 0)[:20]), ErrTruncated),
		bad("ipv4 options beyond total length", v4(ipv4Opts{total: 20, ihl: 6, proto: ProtoTCP}, tcpHdr(1, 2, 5, 0)), ErrMalformed),
		bad("tcp header cut", tcp4Frame(0)[:53], ErrTruncated),
		bad("tcp cut by ip total length (rest is padding)", v4(ipv4Opts{total: 20 + 19, proto: ProtoTCP}, tcpHdr(1, 2, 5, 0)), ErrTruncated),
		bad("tcp data offset 4", v4(ipv4Opts{total: -1, proto: ProtoTCP}, tcpHdr(1, 2, 4, 0)), ErrMalformed),
		bad("tcp data offset beyond packet", v4(ipv4Opts{total: -1, proto: ProtoTCP}, tcpHdr(1, 2, 15, 0)[:40]), ErrTruncated),
		bad("udp header cut", v4(ipv4Opts{total: -1, proto: ProtoUDP}, udpHdr(1, 2, 8)[:7]), ErrTruncated),
		bad("udp length 7", v4(ipv4Opts{total: -1, proto: ProtoUDP}, udpHdr(1, 2, 7)), ErrMalformed),
		bad("udp length beyond packet", v4(ipv4Opts{total: -1, proto: ProtoUDP}, udpHdr(1, 2, 9)), ErrTruncated),
		bad("icmp header cut", v4(ipv4Opts{total: -1, proto: ProtoICMP}, icmpHdr(8, 0)[:7]), ErrTruncated),
		bad("ipv6 header cut", tcp6Frame(0)[:14+39], ErrTruncated),
		bad("ipv6 version 4", cat(ethHdr(macB, macA, EthTypeIPv6), tcp4[14:], make([]byte, 40)), ErrMalformed),
		bad("ipv6 payload length beyond frame", cat(ethHdr(macB, macA, EthTypeIPv6), ipv6Hdr(ProtoTCP, 64, ip6A, ip6B, 21), tcpHdr(1, 2, 5, 0)), ErrTruncated),
		bad("ipv6 extension header cut", v6(protoHopByHop, make([]byte, 7)), ErrTruncated),
		bad("ipv6 extension header length beyond packet", v6(protoHopByHop, cat(ext6(ProtoTCP, 0), tcpHdr(1, 2, 5, 0))[:8]), ErrTruncated),
		bad("ipv6 extension header length beyond packet (long)", v6(protoHopByHop, []byte{ProtoTCP, 3, 0, 0, 0, 0, 0, 0, 1, 2, 3}), ErrTruncated),
		bad("ipv6 fragment header cut", v6(protoFragment, frag6(ProtoUDP, 0, true)[:6]), ErrTruncated),
		bad("ipv6 too many extension headers", v6(protoDestOpts, func() []byte {
			var b []byte
			for range maxIPv6ExtHdrs + 1 {
				b = append(b, ext6(protoDestOpts, 0)...)
			}
			return cat(b, ext6(ProtoTCP, 0), tcpHdr(1, 2, 5, 0))
		}()), ErrMalformed),
		bad("tcp6 cut", tcp6Frame(0)[:14+40+19], ErrTruncated),
		bad("icmpv6 cut", v6(ProtoICMPv6, icmpHdr(128, 0)[:4]), ErrTruncated),
	}
}

func TestParse(t *testing.T) {
	for _, tt := range parseCases() {
		t.Run(tt.name, func(t *testing.T) {
			var m FlowMatch
			m.EthType = 0xdead // Parse must overwrite everything
			err := Parse(tt.frame, testInPort, &m)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse(%x) error = %v, want %v", trunc(tt.frame), err, tt.wantErr)
			}
			want := tt.want
			if tt.wantErr != nil {
				want = FlowMatch{}
			}
			if m != want {
				t.Errorf("Parse(%x) = %+v, want %+v", trunc(tt.frame), m, want)
			}
		})
	}
}

func TestParseLayers(t *testing.T) {
	for _, tt := range parseCases() {
		t.Run(tt.name, func(t *testing.T) {
			m := FlowMatch{InPort: testInPort}
			l := Layers{L3: 99}
			err := ParseLayers(tt.frame, &m, &l)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseLayers(%x) error = %v, want %v", trunc(tt.frame), err, tt.wantErr)
			}
			wantL, want := tt.wantL, tt.want
			if tt.wantErr != nil {
				wantL, want = Layers{L3: -1, L4: -1, Payload: -1, End: -1}, FlowMatch{}
			}
			if l != wantL {
				t.Errorf("ParseLayers(%x) layers = %+v, want %+v", trunc(tt.frame), l, wantL)
			}
			if m != want {
				t.Errorf("ParseLayers(%x) = %+v, want %+v", trunc(tt.frame), m, want)
			}
		})
	}
}

// TestParseAllocs checks that Parse allocates nothing, on every case.
func TestParseAllocs(t *testing.T) {
	for _, tt := range parseCases() {
		t.Run(tt.name, func(t *testing.T) {
			var m FlowMatch
			var l Layers
			if n := testing.AllocsPerRun(50, func() { _ = Parse(tt.frame, 1, &m) }); n != 0 {
				t.Errorf("Parse(%x): %v allocs/op, want 0", trunc(tt.frame), n)
			}
			if n := testing.AllocsPerRun(50, func() { _ = ParseLayers(tt.frame, &m, &l) }); n != 0 {
				t.Errorf("ParseLayers(%x): %v allocs/op, want 0", trunc(tt.frame), n)
			}
		})
	}
}

// trunc keeps failure messages readable for superframes.
func trunc(b []byte) []byte {
	if len(b) > 128 {
		return b[:128]
	}
	return b
}

func TestFlowMatchAccessors(t *testing.T) {
	var m FlowMatch
	if err := Parse(tcp4Frame(0), 1, &m); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m.Src(), m.Dst(), m.IsIPv4()); got != "10.0.0.1 10.0.0.2 true" {
		t.Errorf("Src, Dst, IsIPv4 = %s, want 10.0.0.1 10.0.0.2 true", got)
	}
}

func withICMPID(m FlowMatch, id uint16) FlowMatch {
	m.ICMPID = id
	return m
}

func TestParseCTState(t *testing.T) {
	for _, tc := range []struct {
		name string
		want uint8
		ok   bool
	}{
		{"", 0, true}, {"new", CTNew, true}, {"est", CTEstablished, true}, {"rpl", CTEstablished | CTReply, true},
		{"related", 0, false}, {"NEW", 0, false},
	} {
		if got, ok := ParseCTState(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("ParseCTState(%q) = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
