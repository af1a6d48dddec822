package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// checkIPv4Checksums verifies the IPv4 header checksum and the UDP/ICMP
// checksum of a frame built by this package.
func checkIPv4Checksums(t *testing.T, f []byte) {
	t.Helper()
	var m FlowMatch
	var l Layers
	if err := ParseLayers(f, &m, &l); err != nil {
		t.Fatalf("ParseLayers(%x) = %v", f, err)
	}
	if c := Checksum(f[l.L3:l.L4], 0); c != 0 {
		t.Errorf("IPv4 header checksum of %x does not verify (%#04x)", f, c)
	}
	seg := f[l.L4:l.End]
	var c uint16
	switch m.IPProto {
	case ProtoUDP:
		c = Checksum(seg, PseudoHeaderChecksum(ProtoUDP, m.Src(), m.Dst(), uint16(len(seg))))
		if binary.BigEndian.Uint16(seg[6:8]) == 0 {
			t.Errorf("UDP checksum of %x is 0 (means none)", f)
		}
	case ProtoICMP:
		c = Checksum(seg, 0)
	}
	if c != 0 {
		t.Errorf("L4 checksum of %x does not verify (%#04x)", f, c)
	}
}

func TestBuildersRoundTrip(t *testing.T) {
	prefix := []byte{0xde, 0xad} // builders append: what is already in b stays
	tests := []struct {
		name      string
		build     func(b []byte) []byte
		want      FlowMatch
		wantLen   int
		wantL4    []byte // bytes from L4 on (nil: not checked)
		checksums bool
	}{
		{name: "arp reply",
			build: func(b []byte) []byte { return AppendARPReply(b, macA, ip4A, macB, ip4B) },
			want: matchSpec{inPort: 3, ethSrc: macA, ethDst: macB, ethType: EthTypeARP, src: ip4A, dst: ip4B,
				proto: ARPReply, arpSha: macA}.m(),
			wantLen: 42},
		{name: "arp request",
			build: func(b []byte) []byte { return AppendARPRequest(b, macA, ip4A, ip4B) },
			want: matchSpec{inPort: 3, ethSrc: macA, ethDst: BroadcastMAC, ethType: EthTypeARP, src: ip4A, dst: ip4B,
				proto: ARPRequest, arpSha: macA}.m(),
			wantLen: 42},
		{name: "arp request from v4-mapped addresses",
			build: func(b []byte) []byte {
				return AppendARPRequest(b, macA, netip.AddrFrom16(ip4A.As16()), netip.AddrFrom16(ip4B.As16()))
			},
			want: matchSpec{inPort: 3, ethSrc: macA, ethDst: BroadcastMAC, ethType: EthTypeARP, src: ip4A, dst: ip4B,
				proto: ARPRequest, arpSha: macA}.m(),
			wantLen: 42},
		{name: "arp request with an ipv6 address writes 0.0.0.0",
			build: func(b []byte) []byte { return AppendARPRequest(b, macA, ip6A, ip4B) },
			want: matchSpec{inPort: 3, ethSrc: macA, ethDst: BroadcastMAC, ethType: EthTypeARP,
				src: netip.IPv4Unspecified(), dst: ip4B, proto: ARPRequest, arpSha: macA}.m(),
			wantLen: 42},
		{name: "udp4",
			build: func(b []byte) []byte {
				return AppendUDP4(b, macA, macB, netip.AddrPortFrom(ip4A, 5353), netip.AddrPortFrom(ip4B, 53), 17, []byte("hello"))
			},
			want: matchSpec{inPort: 3, ethSrc: macA, ethDst: macB, ethType: EthTypeIPv4, src: ip4A, dst: ip4B,
				proto: ProtoUDP, ttl: 17, sport: 5353, dport: 53}.m(),
			wantLen: 14 + 20 + 8 + 5, checksums: true},
		{name: "udp4 empty payload",
			build: func(b []byte) []byte {
				return AppendUDP4(b, macA, macB, netip.AddrPortFrom(ip4A, 1), netip.AddrPortFrom(ip4B, 2), 64, nil)
			},
			want: matchSpec{inPort: 3, ethSrc: macA, ethDst: macB, ethType: EthTypeIPv4, src: ip4A, dst: ip4B,
				proto: ProtoUDP, ttl: 64, sport: 1, dport: 2}.m(),
			wantLen: 14 + 20 + 8, checksums: true},
		{name: "icmp4 echo request",
			build: func(b []byte) []byte {
				return AppendICMP4Echo(b, macA, macB, ip4A, ip4B, 64, ICMPEchoRequest, 0x1234, 7, []byte("abcdefg"))
			},
			want: matchSpec{inPort: 3, ethSrc: macA, ethDst: macB, ethType: EthTypeIPv4, src: ip4A, dst: ip4B,
				proto: ProtoICMP, ttl: 64, sport: ICMPEchoRequest, icmpID: 0x1234}.m(),
			wantLen: 14 + 20 + 8 + 7, checksums: true,
			wantL4: cat([]byte{8, 0}, []byte{0, 0}, []byte{0x12, 0x34, 0, 7}, []byte("abcdefg"))},
		{name: "icmp4 echo reply",
			build: func(b []byte) []byte {
				return AppendICMP4Echo(b, macB, macA, ip4B, ip4A, 255, ICMPEchoReply, 1, 65535, nil)
			},
			want: matchSpec{inPort: 3, ethSrc: macB, ethDst: macA, ethType: EthTypeIPv4, src: ip4B, dst: ip4A,
				proto: ProtoICMP, ttl: 255, sport: ICMPEchoReply, icmpID: 1}.m(),
			wantLen: 14 + 20 + 8, checksums: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.build(bytes.Clone(prefix))
			if !bytes.Equal(f[:2], prefix) {
				t.Fatalf("builder overwrote the existing bytes: %x", f[:2])
			}
			f = f[2:]
			if len(f) != tt.wantLen {
				t.Errorf("built %d bytes (%x), want %d", len(f), f, tt.wantLen)
			}
			var m FlowMatch
			var l Layers
			m.InPort = 3
			if err := ParseLayers(f, &m, &l); err != nil {
				t.Fatalf("ParseLayers(%x) = %v", f, err)
			}
			if m != tt.want {
				t.Errorf("ParseLayers(%x) = %+v, want %+v", f, m, tt.want)
			}
			if l.End != len(f) {
				t.Errorf("ParseLayers(%x).End = %d, want %d", f, l.End, len(f))
			}
			if tt.checksums {
				checkIPv4Checksums(t, f)
			}
			if tt.wantL4 != nil {
				got := bytes.Clone(f[l.L4:])
				got[2], got[3] = 0, 0 // checksum checked above
				if !bytes.Equal(got, tt.wantL4) {
					t.Errorf("L4 of %x = %x, want %x", f, got, tt.wantL4)
				}
			}
		})
	}
}

func TestARPBytes(t *testing.T) {
	// Every field written at its RFC 826 place.
	want := cat(ethHdr(macB, macA, EthTypeARP), arpBody(1, EthTypeIPv4, 6, 4, ARPReply, macA, ip4A, macB, ip4B))
	if got := AppendARPReply(nil, macA, ip4A, macB, ip4B); !bytes.Equal(got, want) {
		t.Errorf("AppendARPReply = %x, want %x", got, want)
	}
	want = arpRequestFrame()
	if got := AppendARPRequest(nil, macA, ip4A, ip4B); !bytes.Equal(got, want) {
		t.Errorf("AppendARPRequest = %x, want %x", got, want)
	}
}

func TestUDPChecksumZeroIsSentAsOnes(t *testing.T) {
	// Find a payload whose UDP checksum computes to 0: it must go out as
	// 0xffff (RFC 768), since 0 means "no checksum".
	src, dst := netip.AddrPortFrom(ip4A, 1), netip.AddrPortFrom(ip4B, 2)
	f := AppendUDP4(nil, macA, macB, src, dst, 64, []byte{0, 0})
	c := binary.BigEndian.Uint16(f[40:42])
	// Adding c to the payload word makes the sum all ones, the checksum 0.
	p := []byte{byte(c >> 8), byte(c)}
	f = AppendUDP4(nil, macA, macB, src, dst, 64, p)
	if got := binary.BigEndian.Uint16(f[40:42]); got != 0xffff {
		t.Errorf("UDP checksum field = %#04x, want 0xffff", got)
	}
	checkIPv4Checksums(t, f)
}

func TestBuildersPanicOnHugePayload(t *testing.T) {
	huge := make([]byte, 65508)
	for _, tt := range []struct {
		name  string
		build func()
	}{
		{name: "udp4", build: func() {
			AppendUDP4(nil, macA, macB, netip.AddrPortFrom(ip4A, 1), netip.AddrPortFrom(ip4B, 2), 1, huge)
		}},
		{name: "icmp4", build: func() { AppendICMP4Echo(nil, macA, macB, ip4A, ip4B, 1, 8, 1, 1, huge) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic for a %d-byte payload", len(huge))
				}
			}()
			tt.build()
		})
	}
	// The largest legal payload builds.
	f := AppendUDP4(nil, macA, macB, netip.AddrPortFrom(ip4A, 1), netip.AddrPortFrom(ip4B, 2), 1, huge[1:])
	checkIPv4Checksums(t, f)
}

func TestBuildersAllocs(t *testing.T) {
	buf := make([]byte, 0, 2048)
	payload := make([]byte, 100)
	src, dst := netip.AddrPortFrom(ip4A, 1), netip.AddrPortFrom(ip4B, 2)
	reply := fullReply()
	for _, tt := range []struct {
		name string
		f    func()
	}{
		{name: "arp reply", f: func() { AppendARPReply(buf[:0], macA, ip4A, macB, ip4B) }},
		{name: "arp request", f: func() { AppendARPRequest(buf[:0], macA, ip4A, ip4B) }},
		{name: "udp4", f: func() { AppendUDP4(buf[:0], macA, macB, src, dst, 64, payload) }},
		{name: "icmp4 echo", f: func() { AppendICMP4Echo(buf[:0], macA, macB, ip4A, ip4B, 64, 0, 1, 2, payload) }},
		{name: "dhcp reply", f: func() { AppendDHCPReply(buf[:0], reply) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(50, tt.f); n != 0 {
				t.Errorf("%v allocs/op with a large enough buffer, want 0", n)
			}
		})
	}
}

func TestVXLAN(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		wantVNI uint32
		wantErr error
	}{
		{name: "vni 1", b: []byte{0x08, 0, 0, 0, 0, 0, 1, 0}, wantVNI: 1},
		{name: "max vni", b: []byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0}, wantVNI: MaxVNI},
		{name: "reserved bits ignored", b: []byte{0xff, 0xff, 0xff, 0xff, 0x12, 0x34, 0x56, 0xff}, wantVNI: 0x123456},
		{name: "with payload", b: []byte{0x08, 0, 0, 0, 0, 0x10, 0, 0, 0xaa}, wantVNI: 0x1000},
		{name: "I flag clear", b: []byte{0x00, 0, 0, 0, 0, 0, 1, 0}, wantErr: ErrMalformed},
		{name: "truncated", b: []byte{0x08, 0, 0, 0, 0, 0, 1}, wantErr: ErrTruncated},
		{name: "empty", b: nil, wantErr: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vni, err := ParseVXLAN(tt.b)
			if err != tt.wantErr || vni != tt.wantVNI {
				t.Errorf("ParseVXLAN(%x) = %d, %v, want %d, %v", tt.b, vni, err, tt.wantVNI, tt.wantErr)
			}
		})
	}
}

func TestPutVXLAN(t *testing.T) {
	for _, vni := range []uint32{0, 1, 0xabcdef, MaxVNI} {
		b := bytes.Repeat([]byte{0xee}, VXLANHeaderLen)
		PutVXLAN(b, vni)
		want := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
		if !bytes.Equal(b, want) {
			t.Errorf("PutVXLAN(%d) = %x, want %x", vni, b, want)
		}
		if got, err := ParseVXLAN(b); got != vni || err != nil {
			t.Errorf("ParseVXLAN(PutVXLAN(%d)) = %d, %v", vni, got, err)
		}
	}
	b := make([]byte, 8)
	PutVXLAN(b, 1<<24|5)
	if got, _ := ParseVXLAN(b); got != 5 {
		t.Errorf("PutVXLAN(1<<24|5) keeps VNI %d, want the low 24 bits (5)", got)
	}
}
