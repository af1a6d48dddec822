package userspace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
	"hivenet/internal/packet"
)

var (
	tMacA = [6]byte{2, 0, 0, 0, 0, 0xa}
	tMacB = [6]byte{2, 0, 0, 0, 0, 0xb}
	tIP4A = netip.MustParseAddr("10.252.0.1")
	tIP4B = netip.MustParseAddr("10.252.0.2")
	tIP6A = netip.MustParseAddr("fd00::1")
	tIP6B = netip.MustParseAddr("fd00::2")
)

// tcpFrame builds an Ethernet/IP/TCP frame with a 12-byte timestamp
// option. With partial, the TCP checksum field holds the pseudo-header
// sum (CHECKSUM_PARTIAL), as a guest hands a TSO superframe over.
func tcpFrame(src, dst netip.Addr, seq uint32, flags byte, payload []byte, partial bool) []byte {
	const tcpLen = 32
	var f []byte
	eth := make([]byte, 14)
	copy(eth[0:], tMacB[:])
	copy(eth[6:], tMacA[:])
	var ipHdr []byte
	l4len := tcpLen + len(payload)
	if src.Is4() {
		binary.BigEndian.PutUint16(eth[12:], packet.EthTypeIPv4)
		ipHdr = make([]byte, 20)
		ipHdr[0] = 0x45
		binary.BigEndian.PutUint16(ipHdr[2:], uint16(20+l4len))
		binary.BigEndian.PutUint16(ipHdr[4:], 0x1234)
		ipHdr[6] = 0x40 // DF
		ipHdr[8], ipHdr[9] = 64, packet.ProtoTCP
		a, b := src.As4(), dst.As4()
		copy(ipHdr[12:], a[:])
		copy(ipHdr[16:], b[:])
		binary.BigEndian.PutUint16(ipHdr[10:], packet.Checksum(ipHdr, 0))
	} else {
		binary.BigEndian.PutUint16(eth[12:], packet.EthTypeIPv6)
		ipHdr = make([]byte, 40)
		ipHdr[0] = 0x60
		binary.BigEndian.PutUint16(ipHdr[4:], uint16(l4len))
		ipHdr[6], ipHdr[7] = packet.ProtoTCP, 64
		a, b := src.As16(), dst.As16()
		copy(ipHdr[8:], a[:])
		copy(ipHdr[24:], b[:])
	}
	t := make([]byte, tcpLen)
	binary.BigEndian.PutUint16(t[0:], 40000)
	binary.BigEndian.PutUint16(t[2:], 5201)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 777)
	t[12] = tcpLen / 4 << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], 501)
	t[20], t[21], t[22], t[23] = 1, 1, 8, 10 // NOP NOP TS
	binary.BigEndian.PutUint32(t[24:], 11111)
	binary.BigEndian.PutUint32(t[28:], 22222)
	f = append(append(append(eth, ipHdr...), t...), payload...)
	l4 := 14 + len(ipHdr)
	psum := packet.PseudoHeaderChecksum(packet.ProtoTCP, src, dst, uint16(l4len))
	if partial {
		binary.BigEndian.PutUint16(f[l4+16:], ^packet.Checksum(nil, psum))
	} else {
		binary.BigEndian.PutUint16(f[l4+16:], packet.Checksum(f[l4:], psum))
	}
	return f
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// checkSegment verifies that seg is a well-formed frame with correct IP
// and L4 checksums and returns its flow key, layers and payload.
func checkSegment(t *testing.T, seg []byte) (packet.FlowMatch, packet.Layers, []byte) {
	t.Helper()
	var m packet.FlowMatch
	var l packet.Layers
	if err := packet.ParseLayers(seg, &m, &l); err != nil {
		t.Fatalf("ParseLayers(segment) = %v", err)
	}
	if m.EthType == packet.EthTypeIPv4 {
		if c := packet.Checksum(seg[l.L3:l.L4], 0); c != 0 {
			t.Errorf("IPv4 header checksum does not verify (%#x)", c)
		}
	}
	psum := packet.PseudoHeaderChecksum(m.IPProto, m.Src(), m.Dst(), uint16(l.End-l.L4))
	if c := packet.Checksum(seg[l.L4:l.End], psum); c != 0 {
		t.Errorf("L4 checksum does not verify (%#x)", c)
	}
	return m, l, seg[l.Payload:l.End]
}

type chunk struct {
	data   []byte
	segLen int
}

func segmentAll(t *testing.T, frame []byte, g datapath.GSO) ([][]byte, []chunk, error) {
	t.Helper()
	var chunks []chunk
	s := newTestSegmenter(func(b []byte, segLen int) {
		chunks = append(chunks, chunk{data: b, segLen: segLen})
	})
	if err := s.segment(frame, g); err != nil {
		return nil, nil, err
	}
	if err := s.flush(); err != nil {
		return nil, nil, err
	}
	var segs [][]byte
	for _, c := range chunks {
		for off := 0; off < len(c.data); off += c.segLen {
			end := min(off+c.segLen, len(c.data))
			if end-off != c.segLen && end != len(c.data) {
				t.Fatalf("short segment in the middle of a chunk")
			}
			segs = append(segs, c.data[off+8:end])
		}
	}
	return segs, chunks, nil
}

func TestSegmentTCP(t *testing.T) {
	tests := []struct {
		name       string
		src, dst   netip.Addr
		payload    int
		mss        int
		flags      byte
		wantSegs   int
		wantChunks int
	}{
		{name: "v4 exact multiple", src: tIP4A, dst: tIP4B, payload: 1398 * 10, mss: 1398, flags: tcpACK | tcpPSH, wantSegs: 10, wantChunks: 1},
		{name: "v4 short last", src: tIP4A, dst: tIP4B, payload: 1398*3 + 100, mss: 1398, flags: tcpACK, wantSegs: 4, wantChunks: 1},
		{name: "v4 64K superframe needs two sends", src: tIP4A, dst: tIP4B, payload: 65000, mss: 1398, flags: tcpACK | tcpPSH | tcpFIN, wantSegs: 47, wantChunks: 2},
		{name: "v6", src: tIP6A, dst: tIP6B, payload: 5000, mss: 1378, flags: tcpACK | tcpCWR, wantSegs: 4, wantChunks: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := pattern(tt.payload)
			frame := tcpFrame(tt.src, tt.dst, 1000, tt.flags, payload, true)
			typ := uint8(gsoTCPv4)
			if tt.src.Is6() {
				typ = gsoTCPv6
			}
			l4 := 34
			if tt.src.Is6() {
				l4 = 54
			}
			g := datapath.GSO{Flags: vnetFlagNeedsCsum, GSOType: typ, HdrLen: uint16(l4 + 32), GSOSize: uint16(tt.mss), CsumStart: uint16(l4), CsumOffset: 16}
			orig := bytes.Clone(frame)
			segs, chunks, err := segmentAll(t, frame, g)
			if err != nil {
				t.Fatalf("segment() = %v", err)
			}
			if !bytes.Equal(frame, orig) {
				t.Errorf("segment() modified its input")
			}
			if len(segs) != tt.wantSegs || len(chunks) != tt.wantChunks {
				t.Fatalf("segment() = %d segments in %d chunks, want %d in %d", len(segs), len(chunks), tt.wantSegs, tt.wantChunks)
			}
			for _, c := range chunks {
				if len(c.data) > 65507 {
					t.Errorf("chunk of %d bytes exceeds a UDP datagram", len(c.data))
				}
			}
			var got []byte
			for i, seg := range segs {
				_, l, p := checkSegment(t, seg)
				if len(p) > tt.mss {
					t.Errorf("segment %d payload %d > mss %d", i, len(p), tt.mss)
				}
				tcp := seg[l.L4:]
				if seq := binary.BigEndian.Uint32(tcp[4:]); seq != 1000+uint32(len(got)) {
					t.Errorf("segment %d seq = %d, want %d", i, seq, 1000+len(got))
				}
				last := i == len(segs)-1
				wantFlags := tt.flags
				if !last {
					wantFlags &^= tcpPSH | tcpFIN
				}
				if i > 0 {
					wantFlags &^= tcpCWR
				}
				if tcp[13] != wantFlags {
					t.Errorf("segment %d flags = %#x, want %#x", i, tcp[13], wantFlags)
				}
				if tt.src.Is4() {
					if id := binary.BigEndian.Uint16(seg[18:]); id != 0x1234+uint16(i) {
						t.Errorf("segment %d IP id = %#x, want %#x", i, id, 0x1234+i)
					}
				}
				got = append(got, p...)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("reassembled payload differs from the original (%d vs %d bytes)", len(got), len(payload))
			}

			// The coalescer turns the train back into superframes.
			var out [][]byte
			c := coalescer{buf: make([]byte, 70000), write: func(_ datapath.PortNo, b []byte) { out = append(out, bytes.Clone(b)) }}
			for _, seg := range segs {
				c.add(1, seg)
			}
			c.flush()
			var re []byte
			for _, b := range out {
				h := datapath.DecodeVnetHdr(b)
				f := b[vnetHdrLen:]
				if h.GSOType == gsoNone {
					_, _, p := checkSegment(t, f)
					re = append(re, p...)
					continue
				}
				if h.GSOType != typ || h.GSOSize != uint16(tt.mss) || h.Flags != vnetFlagNeedsCsum || int(h.CsumStart) != l4 || int(h.HdrLen) != l4+32 {
					t.Errorf("coalesced header = %+v", h)
				}
				// Completing the partial checksum must give a valid frame.
				if err := completeChecksum(f, h); err != nil {
					t.Fatal(err)
				}
				_, _, p := checkSegment(t, f)
				re = append(re, p...)
			}
			if !bytes.Equal(re, payload) {
				t.Errorf("coalesced payload differs from the original (%d vs %d bytes)", len(re), len(payload))
			}
			if len(out) > 2 {
				t.Errorf("coalescer wrote %d frames for one superframe, want at most 2", len(out))
			}
		})
	}
}

func TestCoalesceRefusesGaps(t *testing.T) {
	tests := []struct {
		name      string
		frames    func() [][]byte
		wantOut   int
		wantMerge bool
	}{
		{
			name: "in order merges",
			frames: func() [][]byte {
				return [][]byte{tcpFrame(tIP4A, tIP4B, 0, tcpACK, pattern(1000), false), tcpFrame(tIP4A, tIP4B, 1000, tcpACK, pattern(1000), false)}
			},
			wantOut: 1, wantMerge: true,
		},
		{
			name: "sequence gap",
			frames: func() [][]byte {
				return [][]byte{tcpFrame(tIP4A, tIP4B, 0, tcpACK, pattern(1000), false), tcpFrame(tIP4A, tIP4B, 1500, tcpACK, pattern(1000), false)}
			},
			wantOut: 2,
		},
		{
			name: "different flow",
			frames: func() [][]byte {
				return [][]byte{tcpFrame(tIP4A, tIP4B, 0, tcpACK, pattern(1000), false), tcpFrame(tIP4B, tIP4A, 1000, tcpACK, pattern(1000), false)}
			},
			wantOut: 2,
		},
		{
			name: "push closes",
			frames: func() [][]byte {
				return [][]byte{tcpFrame(tIP4A, tIP4B, 0, tcpACK|tcpPSH, pattern(1000), false), tcpFrame(tIP4A, tIP4B, 1000, tcpACK, pattern(1000), false)}
			},
			wantOut: 2,
		},
		{
			name: "SYN is never merged",
			frames: func() [][]byte {
				return [][]byte{tcpFrame(tIP4A, tIP4B, 0, tcpSYN, nil, false), tcpFrame(tIP4A, tIP4B, 1, tcpACK, pattern(10), false)}
			},
			wantOut: 2,
		},
		{
			name: "not TCP",
			frames: func() [][]byte {
				u := packet.AppendUDP4(nil, tMacA, tMacB, netip.AddrPortFrom(tIP4A, 1), netip.AddrPortFrom(tIP4B, 2), 64, pattern(100))
				return [][]byte{u, u}
			},
			wantOut: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out [][]byte
			c := coalescer{buf: make([]byte, 70000), write: func(_ datapath.PortNo, b []byte) { out = append(out, bytes.Clone(b)) }}
			for _, f := range tt.frames() {
				c.add(3, f)
			}
			c.flush()
			if len(out) != tt.wantOut {
				t.Fatalf("coalescer wrote %d frames, want %d", len(out), tt.wantOut)
			}
			if merged := datapath.DecodeVnetHdr(out[0]).GSOType != gsoNone; merged != tt.wantMerge {
				t.Errorf("first frame merged = %v, want %v", merged, tt.wantMerge)
			}
		})
	}
}

func TestSegmentPlainAndErrors(t *testing.T) {
	partial := tcpFrame(tIP4A, tIP4B, 5, tcpACK, pattern(300), true)
	tests := []struct {
		name    string
		frame   []byte
		gso     datapath.GSO
		wantErr error
	}{
		{name: "complete partial checksum", frame: partial, gso: datapath.GSO{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}},
		{name: "UFO unsupported", frame: partial, gso: datapath.GSO{GSOType: gsoUDP, GSOSize: 1000}, wantErr: errOffload},
		{name: "tiny gso_size", frame: partial, gso: datapath.GSO{GSOType: gsoTCPv4, GSOSize: 1}, wantErr: errBadOffload},
		{name: "v6 type on v4 frame", frame: partial, gso: datapath.GSO{GSOType: gsoTCPv6, GSOSize: 100}, wantErr: errBadOffload},
		{name: "csum_start out of frame", frame: partial, gso: datapath.GSO{Flags: vnetFlagNeedsCsum, CsumStart: 5000, CsumOffset: 16}, wantErr: errBadOffload},
		{name: "garbage", frame: []byte{1, 2, 3}, gso: datapath.GSO{GSOType: gsoTCPv4, GSOSize: 100}, wantErr: packet.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, _, err := segmentAll(t, tt.frame, tt.gso)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("segment() = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if len(segs) != 1 {
					t.Fatalf("plain frame gave %d segments", len(segs))
				}
				checkSegment(t, segs[0])
			}
		})
	}
}

func TestSegmentUDPL4(t *testing.T) {
	payload := pattern(4000)
	f := packet.AppendUDP4(nil, tMacA, tMacB, netip.AddrPortFrom(tIP4A, 1000), netip.AddrPortFrom(tIP4B, 2000), 64, payload)
	g := datapath.GSO{GSOType: gsoUDPL4, GSOSize: 1200, Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 6}
	segs, _, err := segmentAll(t, f, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 4 {
		t.Fatalf("got %d datagrams, want 4", len(segs))
	}
	var got []byte
	for _, s := range segs {
		_, _, p := checkSegment(t, s)
		got = append(got, p...)
	}
	if !bytes.Equal(got, payload) {
		t.Error("datagram payloads differ from the original")
	}
}

func TestVnetRoundTrip(t *testing.T) {
	g := datapath.GSO{Flags: 1, GSOType: 4, HdrLen: 86, GSOSize: 1378, CsumStart: 54, CsumOffset: 16}
	var b [vnetHdrLen]byte
	datapath.EncodeVnetHdr(b[:], g)
	if got := datapath.DecodeVnetHdr(b[:]); got != g {
		t.Errorf("datapath.DecodeVnetHdr(datapath.EncodeVnetHdr(%+v)) = %+v", g, got)
	}
}

func addrPort(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }

func TestUpcallTokenBucket(t *testing.T) {
	tests := []struct {
		name  string
		times []int64 // ns of each miss
		rate  int
		burst int
		want  int // upcalls allowed
	}{
		{name: "burst then refused", times: []int64{1, 1, 1, 1}, rate: 1, burst: 2, want: 2},
		{name: "refills with time", times: []int64{1, 1, 1, 1e9 + 1, 1e9 + 1}, rate: 1, burst: 2, want: 3},
		{name: "never above burst", times: []int64{1, 100e9, 100e9, 100e9, 100e9}, rate: 1000, burst: 3, want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c txCtx
			got := 0
			for _, at := range tt.times {
				if c.takeToken(at, tt.rate, tt.burst) {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("takeToken allowed %d of %v, want %d", got, tt.times, tt.want)
			}
		})
	}
}

// newTestSegmenter returns a segmenter with the datapath's limits whose
// chunks are flattened into one new byte slice each and passed to fn; it
// checks the iovec list adds up to the total it is given.
func newTestSegmenter(fn func(chunk []byte, segLen int)) *segmenter {
	return &segmenter{
		hdrs: make([]byte, 8+maxFrame), iov: make([]unix.Iovec, 2*maxGSOSegs),
		prefix: 8, maxBytes: maxUDPPayload, maxSegs: maxGSOSegs,
		fillPrefix: func(b []byte) { packet.PutVXLAN(b, 42) },
		emit: func(iov []unix.Iovec, total, segLen int) error {
			var b []byte
			for _, v := range iov {
				b = append(b, unsafe.Slice(v.Base, v.Len)...)
			}
			if len(b) != total {
				return fmt.Errorf("iovecs hold %d bytes, total says %d", len(b), total)
			}
			fn(b, segLen)
			return nil
		},
	}
}
