package simulation

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"hivenet/internal/flowstate"
	"hivenet/internal/packet"
)

// TestTranslateICMPError checks the rewrite of an ICMP error about a
// translated connection against checksums computed from scratch: the
// outer IP and ICMP checksums, the embedded IP header checksum, and the
// embedded transport checksum when the quote holds the whole segment
// (the incremental update must equal a full recomputation).
func TestTranslateICMPError(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name  string
		inner []byte // the quoted IP packet, as translated
		orig  flowstate.Key
	}{
		{
			name:  "udp",
			inner: packet.AppendUDP4(nil, [6]byte{}, [6]byte{}, netip.MustParseAddrPort("203.0.113.2:1600"), netip.MustParseAddrPort("198.51.100.7:53"), 63, []byte("query data"))[14:],
			orig:  flowstate.Key{Proto: packet.ProtoUDP, Src: a("10.0.0.5").As16(), Dst: a("198.51.100.7").As16(), SrcPort: 5353, DstPort: 53},
		},
		{
			name:  "tcp",
			inner: tcpSYN(a("203.0.113.2"), a("198.51.100.7"), 1500, 80),
			orig:  flowstate.Key{Proto: packet.ProtoTCP, Src: a("10.0.0.5").As16(), Dst: a("198.51.100.7").As16(), SrcPort: 40001, DstPort: 80},
		},
		{
			name:  "echo",
			inner: packet.AppendICMP4Echo(nil, [6]byte{}, [6]byte{}, a("203.0.113.2"), a("198.51.100.7"), 63, packet.ICMPEchoRequest, 1123, 9, []byte("ping"))[14:],
			orig:  flowstate.Key{Proto: packet.ProtoICMP, Src: a("10.0.0.5").As16(), Dst: a("198.51.100.7").As16(), SrcPort: 7},
		},
		{
			name: "udp-no-checksum",
			inner: func() []byte {
				b := packet.AppendUDP4(nil, [6]byte{}, [6]byte{}, netip.MustParseAddrPort("203.0.113.2:1600"), netip.MustParseAddrPort("198.51.100.7:53"), 63, []byte("q"))[14:]
				b[26], b[27] = 0, 0 // UDP checksum 0: none (stays none)
				return b
			}(),
			orig: flowstate.Key{Proto: packet.ProtoUDP, Src: a("10.0.0.5").As16(), Dst: a("198.51.100.7").As16(), SrcPort: 5353, DstPort: 53},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := appendICMPError(nil, [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, a("198.51.100.7"), a("203.0.113.2"), 3, 3, tt.inner)
			before := append([]byte(nil), frame...)
			osrc, odst := a("198.51.100.7").As16(), tt.orig.Src
			f, ok := translateICMPError(frame, osrc, odst, &tt.orig)
			if !ok {
				t.Fatalf("translateICMPError(%s) failed", tt.name)
			}
			if string(frame) != string(before) {
				t.Errorf("translateICMPError(%s) modified its input", tt.name)
			}
			ip := f[14:34]
			if packet.Checksum(ip, 0) != 0 {
				t.Errorf("outer IP checksum wrong")
			}
			if got := netip.AddrFrom4([4]byte(ip[16:20])); got != tt.orig.SrcAddr() {
				t.Errorf("outer dst = %s, want %s", got, tt.orig.SrcAddr())
			}
			if packet.Checksum(f[34:], 0) != 0 {
				t.Errorf("outer ICMP checksum wrong")
			}
			in := f[42:]
			if packet.Checksum(in[:20], 0) != 0 {
				t.Errorf("embedded IP checksum wrong")
			}
			src, dst := netip.AddrFrom4([4]byte(in[12:16])), netip.AddrFrom4([4]byte(in[16:20]))
			if src != tt.orig.SrcAddr() || dst != tt.orig.DstAddr() {
				t.Errorf("embedded %s > %s, want %s > %s", src, dst, tt.orig.SrcAddr(), tt.orig.DstAddr())
			}
			l4 := in[20:]
			switch tt.orig.Proto {
			case packet.ProtoUDP, packet.ProtoTCP:
				if sp, dp := binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]); sp != tt.orig.SrcPort || dp != tt.orig.DstPort {
					t.Errorf("embedded ports %d > %d, want %d > %d", sp, dp, tt.orig.SrcPort, tt.orig.DstPort)
				}
				ck := 16
				if tt.orig.Proto == packet.ProtoUDP {
					ck = 6
				}
				if c := binary.BigEndian.Uint16(l4[ck:]); c == 0 && tt.orig.Proto == packet.ProtoUDP {
					if tt.name != "udp-no-checksum" {
						t.Errorf("embedded UDP checksum became 0")
					}
					break
				}
				if packet.Checksum(l4, packet.PseudoHeaderChecksum(tt.orig.Proto, src, dst, uint16(len(l4)))) != 0 {
					t.Errorf("embedded %s checksum wrong after translation", tt.name)
				}
			case packet.ProtoICMP:
				if id := binary.BigEndian.Uint16(l4[4:]); id != tt.orig.SrcPort {
					t.Errorf("embedded echo id %d, want %d", id, tt.orig.SrcPort)
				}
				if packet.Checksum(l4, 0) != 0 {
					t.Errorf("embedded echo checksum wrong after translation")
				}
			}
		})
	}
}

// TestCsumAdjust checks the incremental update (RFC 1624) against a full
// recomputation over random-looking edits.
func TestCsumAdjust(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		at   int
		new  []byte
	}{
		{name: "address", data: []byte("\x45\x00\x00\x1c\x00\x00\x00\x00\x40\x11\x00\x00\x0a\x00\x00\x05\xc6\x33\x64\x07"), at: 12, new: []byte{203, 0, 113, 2}},
		{name: "port", data: []byte{0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 0}, at: 0, new: []byte{0x05, 0xdc}},
		{name: "to-ones", data: []byte{0x00, 0x00, 0xff, 0xff}, at: 0, new: []byte{0xff, 0xff}},
		{name: "to-zero", data: []byte{0xff, 0xff, 0x12, 0x34}, at: 0, new: []byte{0x00, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), tt.data...)
			c := packet.Checksum(b, 0)
			old := append([]byte(nil), b[tt.at:tt.at+len(tt.new)]...)
			copy(b[tt.at:], tt.new)
			got, want := csumAdjust(c, old, tt.new), packet.Checksum(b, 0)
			// 0x0000 and 0xffff are the same value in ones' complement.
			if got != want && !(got^want == 0xffff && (got == 0 || want == 0)) {
				t.Errorf("csumAdjust(%#04x, %x, %x) = %#04x, want %#04x", c, old, tt.new, got, want)
			}
		})
	}
}
