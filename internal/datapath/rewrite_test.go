package datapath

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// The rewrites are checked against a slow, obvious version: write the
// fields, then recompute every checksum from scratch with packet.Checksum.

// frameSpec describes a test frame.
type frameSpec struct {
	v6       bool
	vlan     bool
	proto    uint8 // packet.ProtoTCP, ProtoUDP, ProtoICMP (ICMPv6 when v6), or 47 (GRE)
	icmpType uint8
	udpZero  bool // UDP without checksum
	partial  bool // L4 checksum left partial (NEEDS_CSUM)
	payload  int
	ttl      uint8
}

var (
	rwMacA = [6]byte{2, 0, 0, 0, 0, 0xa}
	rwMacB = [6]byte{2, 0, 0, 0, 0, 0xb}
)

// buildFrame builds the frame fs describes with correct checksums (the
// L4 one full, or partial: the folded pseudo-header sum) and returns it
// with its GSO metadata.
func buildFrame(r *rand.Rand, fs frameSpec) ([]byte, GSO) {
	var f []byte
	f = append(f, rwMacB[:]...)
	f = append(f, rwMacA[:]...)
	if fs.vlan {
		f = binary.BigEndian.AppendUint16(f, packet.EthTypeVLAN)
		f = binary.BigEndian.AppendUint16(f, uint16(r.IntN(4095)+1))
	}
	var l4 []byte
	switch fs.proto {
	case packet.ProtoTCP:
		l4 = make([]byte, 20)
		l4[12] = 5 << 4
		l4[13] = 0x18
	case packet.ProtoUDP:
		l4 = make([]byte, 8)
	case packet.ProtoICMP:
		l4 = make([]byte, 8)
		l4[0] = fs.icmpType
	default:
		l4 = make([]byte, 4)
	}
	for i := range l4 {
		if fs.proto == packet.ProtoICMP && i < 4 || fs.proto == packet.ProtoTCP && i >= 12 {
			continue
		}
		l4[i] = byte(r.Uint32())
	}
	if fs.proto == packet.ProtoUDP {
		binary.BigEndian.PutUint16(l4[4:], uint16(8+fs.payload))
	}
	pl := make([]byte, fs.payload)
	for i := range pl {
		pl[i] = byte(r.Uint32())
	}
	seg := append(l4, pl...)
	src, dst := randAddr(r, fs.v6), randAddr(r, fs.v6)
	proto := fs.proto
	if fs.v6 && proto == packet.ProtoICMP {
		proto = packet.ProtoICMPv6
	}
	if fs.v6 {
		f = binary.BigEndian.AppendUint16(f, packet.EthTypeIPv6)
		h := make([]byte, 40)
		h[0] = 0x60
		binary.BigEndian.PutUint16(h[4:], uint16(len(seg)))
		h[6], h[7] = proto, fs.ttl
		a, b := src.As16(), dst.As16()
		copy(h[8:], a[:])
		copy(h[24:], b[:])
		f = append(f, h...)
	} else {
		f = binary.BigEndian.AppendUint16(f, packet.EthTypeIPv4)
		h := make([]byte, 20)
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(seg)))
		binary.BigEndian.PutUint16(h[4:], uint16(r.Uint32()))
		h[8], h[9] = fs.ttl, proto
		a, b := src.As4(), dst.As4()
		copy(h[12:], a[:])
		copy(h[16:], b[:])
		binary.BigEndian.PutUint16(h[10:], packet.Checksum(h, 0))
		f = append(f, h...)
	}
	l4at := len(f)
	f = append(f, seg...)
	g := GSO{}
	if off := csumOffset(proto); off >= 0 {
		f[l4at+off], f[l4at+off+1] = 0, 0
		var psum uint32
		if proto != packet.ProtoICMP {
			psum = packet.PseudoHeaderChecksum(proto, src, dst, uint16(len(seg)))
		}
		switch {
		case fs.proto == packet.ProtoUDP && fs.udpZero:
		case fs.partial:
			binary.BigEndian.PutUint16(f[l4at+off:], ^packet.Checksum(nil, psum))
			g = GSO{Flags: gsoNeedsCsum, CsumStart: uint16(l4at), CsumOffset: uint16(off)}
		default:
			c := packet.Checksum(f[l4at:], psum)
			if c == 0 && proto == packet.ProtoUDP {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(f[l4at+off:], c)
		}
	}
	return f, g
}

func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		var b [16]byte
		b[0] = 0xfd
		for i := 1; i < 16; i++ {
			b[i] = byte(r.Uint32())
		}
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
}

// csumOffset is the offset of the checksum in the transport header of
// proto, -1 when there is none we maintain.
func csumOffset(proto uint8) int {
	switch proto {
	case packet.ProtoTCP:
		return 16
	case packet.ProtoUDP:
		return 6
	case packet.ProtoICMP, packet.ProtoICMPv6:
		return 2
	}
	return -1
}

// refRewrite is the obvious version: it writes the fields the actions
// name, then recomputes the IPv4 header checksum and the L4 checksum
// (full, or the partial pseudo-header sum) from scratch. It reports false
// where Apply must fail. It handles unfragmented frames only.
func refRewrite(t *testing.T, frame []byte, g GSO, as []flowtable.Action) ([]byte, bool) {
	t.Helper()
	f := bytes.Clone(frame)
	var m packet.FlowMatch
	var l packet.Layers
	if err := packet.ParseLayers(f, &m, &l); err != nil {
		t.Fatalf("reference: test frame does not parse: %v", err)
	}
	if m.IPFrag != packet.FragNone {
		t.Fatalf("reference: fragments are not handled")
	}
	v4 := m.EthType == packet.EthTypeIPv4
	proto := m.IPProto
	udpZero := proto == packet.ProtoUDP && binary.BigEndian.Uint16(f[l.L4+6:]) == 0 && g.Flags&gsoNeedsCsum == 0
	for _, a := range as {
		switch a.Kind {
		case flowtable.ActSetEthSrc:
			copy(f[6:], a.MAC[:])
		case flowtable.ActSetEthDst:
			copy(f[0:], a.MAC[:])
		case flowtable.ActDecTTL:
			at := l.L3 + 8
			if !v4 {
				at = l.L3 + 7
			}
			if a.Port > 0 && uint32(f[at]) <= a.Port {
				return nil, false
			}
			f[at] -= uint8(a.Port)
		case flowtable.ActSetIPv4Src, flowtable.ActSetIPv4Dst:
			if !v4 {
				return nil, false
			}
			at := l.L3 + 12
			if a.Kind == flowtable.ActSetIPv4Dst {
				at += 4
			}
			copy(f[at:], a.Remote[:])
		case flowtable.ActSetL4Src, flowtable.ActSetL4Dst:
			switch {
			case proto == packet.ProtoTCP || proto == packet.ProtoUDP:
				at := l.L4
				if a.Kind == flowtable.ActSetL4Dst {
					at += 2
				}
				binary.BigEndian.PutUint16(f[at:], a.RemotePort)
			case proto == packet.ProtoICMP && v4 || proto == packet.ProtoICMPv6 && !v4:
				typ := f[l.L4]
				req := v4 && typ == packet.ICMPEchoRequest || !v4 && typ == 128
				rep := v4 && typ == packet.ICMPEchoReply || !v4 && typ == 129
				if req && a.Kind == flowtable.ActSetL4Src || rep && a.Kind == flowtable.ActSetL4Dst {
					binary.BigEndian.PutUint16(f[l.L4+4:], a.RemotePort)
				}
			}
		}
	}
	if v4 {
		f[l.L3+10], f[l.L3+11] = 0, 0
		binary.BigEndian.PutUint16(f[l.L3+10:], packet.Checksum(f[l.L3:l.L4], 0))
	}
	off := csumOffset(proto)
	if off < 0 || proto == packet.ProtoICMP && !v4 || proto == packet.ProtoICMPv6 && v4 || udpZero {
		return f, true
	}
	var src, dst netip.Addr
	if v4 {
		src, dst = netip.AddrFrom4([4]byte(f[l.L3+12:])), netip.AddrFrom4([4]byte(f[l.L3+16:]))
	} else {
		src, dst = netip.AddrFrom16([16]byte(f[l.L3+8:])), netip.AddrFrom16([16]byte(f[l.L3+24:]))
	}
	var psum uint32
	if proto != packet.ProtoICMP {
		psum = packet.PseudoHeaderChecksum(proto, src, dst, uint16(l.End-l.L4))
	}
	c := f[l.L4+off:]
	if g.Flags&gsoNeedsCsum != 0 {
		binary.BigEndian.PutUint16(c, ^packet.Checksum(nil, psum))
		return f, true
	}
	c[0], c[1] = 0, 0
	sum := packet.Checksum(f[l.L4:l.End], psum)
	if sum == 0 && proto == packet.ProtoUDP {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(c, sum)
	return f, true
}

// sameFrame compares got with want, where checksum fields (at csums) may
// differ in the representation of zero (0x0000 and 0xffff are the same
// one's complement number).
func sameFrame(got, want []byte, csums ...int) error {
	if len(got) != len(want) {
		return fmt.Errorf("length %d, want %d", len(got), len(want))
	}
	g, w := bytes.Clone(got), bytes.Clone(want)
	for _, at := range csums {
		if at < 0 || at+2 > len(g) {
			continue
		}
		a, b := binary.BigEndian.Uint16(g[at:]), binary.BigEndian.Uint16(w[at:])
		if (a == 0 || a == 0xffff) && (b == 0 || b == 0xffff) {
			copy(g[at:at+2], w[at:at+2])
		}
	}
	if i := firstDiff(g, w); i >= 0 {
		return fmt.Errorf("byte %d is %#02x, want %#02x\n got %x\nwant %x", i, g[i], w[i], got, want)
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// csumFields returns the offsets of the checksum fields in frame.
func csumFields(frame []byte) []int {
	var m packet.FlowMatch
	var l packet.Layers
	if packet.ParseLayers(frame, &m, &l) != nil {
		return nil
	}
	out := []int{-1, -1}
	if m.EthType == packet.EthTypeIPv4 {
		out[0] = l.L3 + 10
	}
	if off := csumOffset(m.IPProto); off >= 0 && l.L4 >= 0 {
		out[1] = l.L4 + off
	}
	return out
}

func randRewrites(r *rand.Rand) []flowtable.Action {
	kinds := []flowtable.ActionKind{flowtable.ActSetEthSrc, flowtable.ActSetEthDst, flowtable.ActDecTTL,
		flowtable.ActSetIPv4Src, flowtable.ActSetIPv4Dst, flowtable.ActSetL4Src, flowtable.ActSetL4Dst}
	var as []flowtable.Action
	for range 1 + r.IntN(6) {
		a := flowtable.Action{Kind: kinds[r.IntN(len(kinds))]}
		switch a.Kind {
		case flowtable.ActSetEthSrc, flowtable.ActSetEthDst:
			a.MAC = [6]byte{0xfa, 0x16, 0x3e, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
		case flowtable.ActDecTTL:
			a.Port = uint32(1 + r.IntN(2))
		case flowtable.ActSetIPv4Src, flowtable.ActSetIPv4Dst:
			a.Remote = randAddr(r, false).As4()
		default:
			a.RemotePort = uint16(r.Uint32())
		}
		as = append(as, a)
	}
	return as
}

func applyAll(frame []byte, g GSO, as []flowtable.Action) error {
	var rw Rewriter
	for i := range as {
		if err := rw.Apply(frame, g, &as[i]); err != nil {
			return err
		}
	}
	return nil
}

// TestRewriteMatchesRecompute applies random rewrite lists to random
// frames of every kind and compares the result with refRewrite.
func TestRewriteMatchesRecompute(t *testing.T) {
	kinds := []struct {
		name string
		spec frameSpec
	}{
		{name: "ipv4 tcp", spec: frameSpec{proto: packet.ProtoTCP}},
		{name: "ipv4 tcp partial", spec: frameSpec{proto: packet.ProtoTCP, partial: true}},
		{name: "ipv4 udp", spec: frameSpec{proto: packet.ProtoUDP}},
		{name: "ipv4 udp partial", spec: frameSpec{proto: packet.ProtoUDP, partial: true}},
		{name: "ipv4 udp no checksum", spec: frameSpec{proto: packet.ProtoUDP, udpZero: true}},
		{name: "ipv4 icmp echo request", spec: frameSpec{proto: packet.ProtoICMP, icmpType: packet.ICMPEchoRequest}},
		{name: "ipv4 icmp echo reply", spec: frameSpec{proto: packet.ProtoICMP, icmpType: packet.ICMPEchoReply}},
		{name: "ipv4 icmp unreachable", spec: frameSpec{proto: packet.ProtoICMP, icmpType: 3}},
		{name: "ipv4 gre", spec: frameSpec{proto: 47}},
		{name: "vlan ipv4 tcp", spec: frameSpec{vlan: true, proto: packet.ProtoTCP}},
		{name: "ipv6 tcp", spec: frameSpec{v6: true, proto: packet.ProtoTCP}},
		{name: "ipv6 udp partial", spec: frameSpec{v6: true, proto: packet.ProtoUDP, partial: true}},
		{name: "ipv6 icmpv6 echo request", spec: frameSpec{v6: true, proto: packet.ProtoICMP, icmpType: 128}},
		{name: "ipv6 icmpv6 echo reply", spec: frameSpec{v6: true, proto: packet.ProtoICMP, icmpType: 129}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for i := range 300 {
				fs := k.spec
				fs.payload = r.IntN(200)
				fs.ttl = uint8(1 + r.IntN(255))
				frame, g := buildFrame(r, fs)
				as := randRewrites(r)
				want, ok := refRewrite(t, frame, g, as)
				got := bytes.Clone(frame)
				err := applyAll(got, g, as)
				if ok != (err == nil) {
					t.Fatalf("#%d: Apply(%x, %+v) = %v, want ok=%v", i, frame, as, err, ok)
				}
				if !ok {
					continue
				}
				if err := sameFrame(got, want, csumFields(want)...); err != nil {
					t.Fatalf("#%d: Apply(%+v) on %x: %v", i, as, frame, err)
				}
				if fs.proto == packet.ProtoUDP && !fs.udpZero && !fs.partial {
					if c := binary.BigEndian.Uint16(got[csumFields(got)[1]:]); c == 0 {
						t.Fatalf("#%d: UDP checksum became 0 (\"no checksum\")", i)
					}
				}
			}
		})
	}
}

// TestRewriteFragments: a non-first fragment gets the L3 rewrites only; a
// first fragment's L4 checksum, which covers the whole datagram, comes
// out as the recomputed checksum of the rewritten whole datagram.
func TestRewriteFragments(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, proto := range []uint8{packet.ProtoTCP, packet.ProtoUDP} {
		for i := range 100 {
			whole, _ := buildFrame(r, frameSpec{proto: proto, payload: 200 + r.IntN(100), ttl: 64})
			as := randRewrites(r)
			want, ok := refRewrite(t, whole, GSO{}, as)
			// First fragment: the first 14+20+8+64 bytes of the datagram, MF set.
			first := bytes.Clone(whole[:14+20+8+64+16])
			ip := first[14:]
			binary.BigEndian.PutUint16(ip[2:], uint16(len(first)-14))
			binary.BigEndian.PutUint16(ip[6:], 0x2000)
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:], packet.Checksum(ip[:20], 0))
			err := applyAll(first, GSO{}, as)
			if ok != (err == nil) {
				t.Fatalf("proto %d #%d: Apply = %v, want ok=%v", proto, i, err, ok)
			}
			if !ok {
				continue
			}
			off := 14 + 20 + csumOffset(proto)
			if a, b := binary.BigEndian.Uint16(first[off:]), binary.BigEndian.Uint16(want[off:]); a != b &&
				!((a == 0 || a == 0xffff) && (b == 0 || b == 0xffff)) {
				t.Fatalf("proto %d #%d: first fragment L4 checksum %#04x, whole datagram recomputed %#04x", proto, i, a, b)
			}
			if c := packet.Checksum(first[14:34], 0); c != 0 {
				t.Fatalf("proto %d #%d: first fragment IP checksum does not verify", proto, i)
			}
			// Later fragment: offset 8 (64 bytes), no L4 header.
			later := bytes.Clone(whole[:14+20+40])
			ip = later[14:]
			binary.BigEndian.PutUint16(ip[2:], 60)
			binary.BigEndian.PutUint16(ip[6:], 8)
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:], packet.Checksum(ip[:20], 0))
			payload := bytes.Clone(later[34:])
			if err := applyAll(later, GSO{}, as); err != nil {
				t.Fatalf("later fragment: %v", err)
			}
			if !bytes.Equal(later[34:], payload) {
				t.Fatalf("proto %d #%d: later fragment payload changed by %+v", proto, i, as)
			}
			if c := packet.Checksum(later[14:34], 0); c != 0 {
				t.Fatalf("proto %d #%d: later fragment IP checksum does not verify", proto, i)
			}
			if !bytes.Equal(later[26:34], want[26:34]) || later[22] != want[22] {
				t.Fatalf("proto %d #%d: later fragment addresses/TTL %x, want %x", proto, i, later[22:34], want[22:34])
			}
		}
	}
}

func TestRewriteErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	v6, _ := buildFrame(r, frameSpec{v6: true, proto: packet.ProtoTCP, ttl: 64})
	ttl1, _ := buildFrame(r, frameSpec{proto: packet.ProtoUDP, ttl: 1})
	arp := packet.AppendARPRequest(nil, rwMacA, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"))
	tests := []struct {
		name    string
		frame   []byte
		action  flowtable.Action
		wantErr error
	}{
		{name: "ipv4 source on ipv6", frame: v6, action: flowtable.Action{Kind: flowtable.ActSetIPv4Src}, wantErr: ErrRewrite},
		{name: "ipv4 destination on arp", frame: arp, action: flowtable.Action{Kind: flowtable.ActSetIPv4Dst}, wantErr: ErrRewrite},
		{name: "ttl 1 decremented", frame: ttl1, action: flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1}, wantErr: ErrTTLExpired},
		{name: "dec ttl on arp", frame: arp, action: flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1}, wantErr: ErrRewrite},
		{name: "truncated frame", frame: []byte{1, 2, 3}, action: flowtable.Action{Kind: flowtable.ActSetL4Src}, wantErr: ErrRewrite},
		{name: "l4 port on arp is a no-op", frame: arp, action: flowtable.Action{Kind: flowtable.ActSetL4Src, RemotePort: 9}},
		{name: "eth on a short frame", frame: []byte{1, 2, 3}, action: flowtable.Action{Kind: flowtable.ActSetEthSrc}, wantErr: ErrRewrite},
		{name: "output is ignored", frame: arp, action: flowtable.Action{Kind: flowtable.ActOutput, Port: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := bytes.Clone(tt.frame)
			var rw Rewriter
			if err := rw.Apply(f, GSO{}, &tt.action); err != tt.wantErr {
				t.Errorf("Apply(%+v) = %v, want %v", tt.action, err, tt.wantErr)
			}
			if tt.wantErr == nil && !bytes.Equal(f, tt.frame) {
				t.Errorf("Apply(%+v) changed the frame", tt.action)
			}
		})
	}
}

// TestRewriteAllocs: applying a full SNAT + routing list allocates nothing.
func TestRewriteAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	frame, g := buildFrame(r, frameSpec{proto: packet.ProtoTCP, payload: 100, ttl: 64})
	as := snatActions()
	n := testing.AllocsPerRun(100, func() {
		var rw Rewriter
		for i := range as {
			frame[14+8] = 64 // keep the TTL from running out
			_ = rw.Apply(frame, g, &as[i])
		}
	})
	if n != 0 {
		t.Errorf("rewrites allocate %v times per frame, want 0", n)
	}
}

func snatActions() []flowtable.Action {
	return []flowtable.Action{
		{Kind: flowtable.ActSetEthSrc, MAC: [6]byte{0xfa, 0x16, 0x3e, 0, 0, 1}},
		{Kind: flowtable.ActSetEthDst, MAC: [6]byte{0xfa, 0x16, 0x3e, 0, 0, 2}},
		{Kind: flowtable.ActDecTTL, Port: 1},
		{Kind: flowtable.ActSetIPv4Src, Remote: [4]byte{192, 0, 2, 10}},
		{Kind: flowtable.ActSetL4Src, RemotePort: 40001},
	}
}

func benchRewrite(b *testing.B, fs frameSpec, as []flowtable.Action) {
	r := rand.New(rand.NewPCG(9, 10))
	frame, g := buildFrame(r, fs)
	ttlAt := 14 + 8
	b.ReportAllocs()
	for b.Loop() {
		frame[ttlAt] = 64
		var rw Rewriter
		for i := range as {
			_ = rw.Apply(frame, g, &as[i])
		}
	}
}

// BenchmarkRewriteSNAT: MACs, TTL, source address and port of a TCP
// frame with a full checksum (a routed, SNATed packet).
func BenchmarkRewriteSNAT(b *testing.B) {
	benchRewrite(b, frameSpec{proto: packet.ProtoTCP, payload: 1400, ttl: 64}, snatActions())
}

// BenchmarkRewriteSNATPartial: the same on a frame with a partial
// checksum (as a guest with TX offload sends).
func BenchmarkRewriteSNATPartial(b *testing.B) {
	benchRewrite(b, frameSpec{proto: packet.ProtoTCP, payload: 1400, ttl: 64, partial: true}, snatActions())
}

// BenchmarkRewriteRouteOnly: MACs and TTL, no NAT (the parse is paid for
// DecTTL).
func BenchmarkRewriteRouteOnly(b *testing.B) {
	benchRewrite(b, frameSpec{proto: packet.ProtoTCP, payload: 1400, ttl: 64}, snatActions()[:3])
}

// FuzzRewrite applies rewrite lists decoded from the input to arbitrary
// frames. Invariants: no panic; the length never changes; a frame whose
// checksums were made consistent first (full or partial, as flags say)
// comes out exactly as refRewrite makes it.
func FuzzRewrite(f *testing.F) {
	r := rand.New(rand.NewPCG(11, 12))
	// Seeds: TCP with a full checksum, UDP partial, ICMP echo request,
	// ICMPv6 echo reply, junk.
	tcp, _ := buildFrame(r, frameSpec{proto: packet.ProtoTCP, payload: 33, ttl: 64})
	udp, _ := buildFrame(r, frameSpec{proto: packet.ProtoUDP, payload: 10, ttl: 2})
	echo, _ := buildFrame(r, frameSpec{proto: packet.ProtoICMP, icmpType: 8, payload: 56, ttl: 64})
	echo6, _ := buildFrame(r, frameSpec{v6: true, proto: packet.ProtoICMP, icmpType: 129, payload: 56, ttl: 64})
	prog := []byte{4, 192, 0, 2, 1, 0, 0, 6, 0, 0, 0, 0, 0x9c, 0x41, 3, 1}
	f.Add(tcp, false, prog)
	f.Add(udp, true, prog)
	f.Add(echo, false, []byte{6, 0, 0, 0, 0, 0, 0, 0x12, 0x34})
	f.Add(echo6, false, []byte{7, 0, 0, 0, 0, 0, 0, 0x12, 0x34})
	f.Add([]byte{1, 2, 3}, true, []byte{0xff})
	f.Fuzz(func(t *testing.T, frame []byte, partial bool, prog []byte) {
		as := decodeProg(prog)
		g := GSO{}
		if partial {
			g.Flags = gsoNeedsCsum
		}
		fixed, consistent := fixChecksums(frame, partial)
		got := bytes.Clone(fixed)
		err := applyAll(got, g, as)
		if len(got) != len(fixed) {
			t.Fatalf("length changed")
		}
		if !consistent {
			return
		}
		want, ok := refRewrite(t, fixed, g, as)
		if ok != (err == nil) {
			t.Fatalf("Apply(%+v) = %v, want ok=%v", as, err, ok)
		}
		if ok {
			if err := sameFrame(got, want, csumFields(want)...); err != nil {
				t.Fatalf("Apply(%+v) on %x: %v", as, fixed, err)
			}
		}
	})
}

// decodeProg turns bytes into rewrite actions: a kind byte (mod 7) then
// 8 bytes of argument.
func decodeProg(p []byte) []flowtable.Action {
	var as []flowtable.Action
	for len(p) >= 1 && len(as) < flowtable.MaxActions {
		var arg [8]byte
		copy(arg[:], p[1:])
		a := flowtable.Action{Kind: flowtable.ActSetEthSrc + flowtable.ActionKind(p[0]%7)}
		copy(a.MAC[:], arg[:6])
		copy(a.Remote[:], arg[:4])
		a.RemotePort = binary.BigEndian.Uint16(arg[6:])
		a.Port = uint32(arg[7] % 4)
		as = append(as, a)
		p = p[min(len(p), 9):]
	}
	return as
}

// fixChecksums returns a copy of frame with consistent checksums (IPv4
// header, and L4 full or partial) when it is an unfragmented IP packet
// refRewrite handles, and whether it is one.
func fixChecksums(frame []byte, partial bool) ([]byte, bool) {
	f := bytes.Clone(frame)
	var m packet.FlowMatch
	var l packet.Layers
	if packet.ParseLayers(f, &m, &l) != nil || l.L3 < 0 || m.IPFrag != packet.FragNone || l.L4 < 0 {
		return f, false
	}
	v4 := m.EthType == packet.EthTypeIPv4
	if v4 {
		f[l.L3+10], f[l.L3+11] = 0, 0
		binary.BigEndian.PutUint16(f[l.L3+10:], packet.Checksum(f[l.L3:l.L4], 0))
	}
	off := csumOffset(m.IPProto)
	if off < 0 || m.IPProto == packet.ProtoICMP && !v4 || m.IPProto == packet.ProtoICMPv6 && v4 {
		return f, true
	}
	var psum uint32
	if m.IPProto != packet.ProtoICMP {
		psum = packet.PseudoHeaderChecksum(m.IPProto, m.Src(), m.Dst(), uint16(l.End-l.L4))
	}
	c := f[l.L4+off:]
	if partial {
		binary.BigEndian.PutUint16(c, ^packet.Checksum(nil, psum))
		return f, true
	}
	if m.IPProto == packet.ProtoUDP && c[0] == 0 && c[1] == 0 {
		return f, true // no checksum
	}
	c[0], c[1] = 0, 0
	s := packet.Checksum(f[l.L4:l.End], psum)
	if s == 0 && m.IPProto == packet.ProtoUDP {
		s = 0xffff
	}
	binary.BigEndian.PutUint16(c, s)
	return f, true
}
