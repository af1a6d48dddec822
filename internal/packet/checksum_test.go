package packet

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestChecksum(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		initial uint32
		want    uint16
	}{
		// RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
		{name: "rfc1071 example", b: []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, want: ^uint16(0xddf2)},
		{name: "empty", b: nil, want: 0xffff},
		{name: "empty with initial", b: nil, initial: 0x1234, want: ^uint16(0x1234)},
		{name: "odd length pads with zero", b: []byte{0x12}, want: ^uint16(0x1200)},
		{name: "carry wraps", b: []byte{0xff, 0xff, 0x00, 0x01}, want: ^uint16(0x0001)},
		{name: "initial with high bits folds", b: []byte{0x00, 0x01}, initial: 0xffff0000, want: ^uint16(0x0001)},
		// A real IPv4 header with its checksum (b1e6) in place sums to 0.
		{name: "ipv4 header verifies", b: []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Checksum(tt.b, tt.initial); got != tt.want {
				t.Errorf("Checksum(%x, %#x) = %#04x, want %#04x", tt.b, tt.initial, got, tt.want)
			}
		})
	}
}

// TestChecksumMatchesReference checks the 8-bytes-at-a-time loop against
// the obvious 16-bit loop on every length up to 600 and every alignment.
func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 608)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := 0; n <= 600; n++ {
		for _, off := range []int{0, 1, 3, 7} {
			b := buf[off : off+n]
			init := r.Uint32()
			want := ^refFold(refSum(b, 0) + uint32(refFold(init>>16+init&0xffff)))
			if got := Checksum(b, init); got != want && !(got == 0 && want == 0xffff || got == 0xffff && want == 0) {
				t.Fatalf("Checksum(len %d, off %d, %#x) = %#04x, want %#04x", n, off, init, got, want)
			}
		}
	}
	// All ones: the largest per-word values stress the carries.
	ones := make([]byte, 1500)
	for i := range ones {
		ones[i] = 0xff
	}
	if got, want := Checksum(ones, 0xffffffff), ^refFold(refSum(ones, 0)+0xffff+0xffff); got != want && got^want != 0xffff {
		t.Errorf("Checksum(all ones) = %#04x, want %#04x", got, want)
	}
}

func TestChecksumChaining(t *testing.T) {
	b := make([]byte, 1001)
	for i := range b {
		b[i] = byte(i * 7)
	}
	whole := Checksum(b, 0x1234)
	chained := Checksum(b[600:], uint32(^Checksum(b[:600], 0x1234)))
	if whole != chained {
		t.Errorf("Checksum chained over 600+401 = %#04x, whole = %#04x", chained, whole)
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	tests := []struct {
		name     string
		proto    uint8
		src, dst netip.Addr
		length   uint16
		header   []byte // the pseudo-header, as RFC 768 / RFC 8200 lay it out
	}{
		{name: "udp4", proto: ProtoUDP, src: ip4A, dst: ip4B, length: 108,
			header: []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, ProtoUDP, 0, 108}},
		{name: "tcp4 v4-mapped", proto: ProtoTCP, src: netip.AddrFrom16(ip4A.As16()), dst: netip.AddrFrom16(ip4B.As16()), length: 0xffff,
			header: []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, ProtoTCP, 0xff, 0xff}},
		{name: "icmpv6", proto: ProtoICMPv6, src: netip.MustParseAddr("fe80::ffff:1"), dst: netip.MustParseAddr("ff02::1:ff00:2"), length: 32,
			header: cat(netip.MustParseAddr("fe80::ffff:1").AsSlice(), netip.MustParseAddr("ff02::1:ff00:2").AsSlice(),
				[]byte{0, 0, 0, 32, 0, 0, 0, ProtoICMPv6})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Checksum(nil, PseudoHeaderChecksum(tt.proto, tt.src, tt.dst, tt.length))
			if want := refChecksum(tt.header); got != want {
				t.Errorf("PseudoHeaderChecksum(%d, %v, %v, %d) gives %#04x, want %#04x", tt.proto, tt.src, tt.dst, tt.length, got, want)
			}
		})
	}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint32(0))                             // empty
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03}, uint32(0))       // RFC 1071 words
	f.Add(make([]byte, 33), uint32(0xffffffff))            // crosses the 32-byte loop, odd
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff}, uint32(1)) // carries
	f.Fuzz(func(t *testing.T, b []byte, init uint32) {
		got := Checksum(b, init)
		want := ^refFold(refSum(b, 0) + uint32(refFold(init>>16+init&0xffff)))
		if got != want && got^want != 0xffff { // 0 and 0xffff are both zero in one's complement
			t.Fatalf("Checksum(%x, %#x) = %#04x, want %#04x", b, init, got, want)
		}
	})
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Checksum(buf, 0)
	}
}

func BenchmarkChecksumRef1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		_ = refChecksum(buf)
	}
}
