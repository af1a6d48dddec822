package userspace

import (
	"testing"

	"hivenet/internal/datapath"
	"hivenet/internal/packet"
)

// FuzzSegment feeds arbitrary frames and virtio_net_hdr values (what a
// hostile guest controls) to the segmenter. Invariants: no panic; every
// chunk fits a UDP datagram and the segment limit; on success every
// segment of a TCP/UDP superframe parses and carries valid IP and L4
// checksums.
func FuzzSegment(f *testing.F) {
	// Seeds: a TSO superframe, a v6 one, a UDP GSO datagram, a plain frame
	// with a partial checksum, and junk headers.
	f.Add(tcpFrame(tIP4A, tIP4B, 1, tcpACK|tcpPSH, pattern(5000), true), byte(1), byte(gsoTCPv4), uint16(1398), uint16(34), uint16(16))
	f.Add(tcpFrame(tIP6A, tIP6B, 1, tcpACK, pattern(3000), true), byte(1), byte(gsoTCPv6), uint16(1378), uint16(54), uint16(16))
	f.Add(packet.AppendUDP4(nil, tMacA, tMacB, addrPort(tIP4A, 1), addrPort(tIP4B, 2), 64, pattern(3000)), byte(1), byte(gsoUDPL4), uint16(1000), uint16(34), uint16(6))
	f.Add(tcpFrame(tIP4A, tIP4B, 1, tcpACK, pattern(100), true), byte(1), byte(gsoNone), uint16(0), uint16(34), uint16(16))
	f.Add([]byte{1, 2, 3}, byte(0xff), byte(0xff), uint16(0xffff), uint16(0xffff), uint16(0xffff))
	f.Fuzz(func(t *testing.T, frame []byte, flags, typ byte, size, start, off uint16) {
		if len(frame) > maxFrame {
			return
		}
		g := datapath.GSO{Flags: flags, GSOType: typ, GSOSize: size, CsumStart: start, CsumOffset: off}
		var segs [][]byte
		s := newTestSegmenter(func(b []byte, segLen int) {
			// A train of several segments must fit one UDP GSO send.
			if n := (len(b) + segLen - 1) / segLen; n > 1 && (len(b) > maxUDPPayload || n > maxGSOSegs) {
				t.Fatalf("chunk of %d bytes, %d-byte segments", len(b), segLen)
			}
			for o := 0; o < len(b); o += segLen {
				segs = append(segs, b[o+8:min(o+segLen, len(b))])
			}
		})
		err := s.segment(frame, g)
		if err == nil {
			err = s.flush()
		}
		if err != nil || typ&^gsoECN == gsoNone {
			return
		}
		for _, seg := range segs {
			var m packet.FlowMatch
			var l packet.Layers
			if err := packet.ParseLayers(seg, &m, &l); err != nil {
				t.Fatalf("segment does not parse: %v", err)
			}
			psum := packet.PseudoHeaderChecksum(m.IPProto, m.Src(), m.Dst(), uint16(l.End-l.L4))
			if c := packet.Checksum(seg[l.L4:l.End], psum); c != 0 {
				t.Fatalf("segment L4 checksum does not verify")
			}
		}
	})
}

// FuzzCoalesce feeds arbitrary tunnel payloads (what any host on the
// underlay controls) to the coalescer, split at fixed offsets into a
// train. Invariants: no panic; every frame written fits the buffer and,
// when it carries a GSO header, its lengths are consistent.
func FuzzCoalesce(f *testing.F) {
	a := tcpFrame(tIP4A, tIP4B, 0, tcpACK, pattern(1000), false)
	b := tcpFrame(tIP4A, tIP4B, 1000, tcpACK|tcpPSH, pattern(1000), false)
	f.Add(append(append([]byte{}, a...), b...), uint16(len(a)))
	f.Add([]byte{0, 1, 2}, uint16(1))
	f.Fuzz(func(t *testing.T, train []byte, segSize uint16) {
		if segSize == 0 || len(train) > 65536 {
			return
		}
		c := coalescer{buf: make([]byte, vnetHdrLen+maxFrame)}
		c.write = func(_ datapath.PortNo, out []byte) {
			if len(out) > len(c.buf) || len(out) < vnetHdrLen {
				t.Fatalf("wrote %d bytes", len(out))
			}
			g := datapath.DecodeVnetHdr(out)
			if g.GSOType != gsoNone && (int(g.HdrLen) >= len(out)-vnetHdrLen || int(g.CsumStart)+18 > len(out)-vnetHdrLen) {
				t.Fatalf("inconsistent GSO header %+v for %d bytes", g, len(out))
			}
		}
		for o := 0; o < len(train); o += int(segSize) {
			seg := train[o:min(o+int(segSize), len(train))]
			port := datapath.PortNo(1)
			if len(seg) > 0 && seg[0]&1 == 1 {
				port = 2
			}
			c.add(port, seg)
		}
		c.flush()
	})
}
