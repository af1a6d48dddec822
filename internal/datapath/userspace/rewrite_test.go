package userspace

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

var (
	tSNAT    = netip.MustParseAddr("192.0.2.10")
	tDNAT    = netip.MustParseAddr("10.252.9.9")
	tRouter  = [6]byte{0xfa, 0x16, 0x3e, 0, 0, 1}
	tNextHop = [6]byte{0xfa, 0x16, 0x3e, 0, 0, 2}
)

func natActions() []flowtable.Action {
	return []flowtable.Action{
		{Kind: flowtable.ActSetEthSrc, MAC: tRouter},
		{Kind: flowtable.ActSetEthDst, MAC: tNextHop},
		{Kind: flowtable.ActDecTTL, Port: 1},
		{Kind: flowtable.ActSetIPv4Src, Remote: tSNAT.As4()},
		{Kind: flowtable.ActSetIPv4Dst, Remote: tDNAT.As4()},
		{Kind: flowtable.ActSetL4Src, RemotePort: 61000},
		{Kind: flowtable.ActSetL4Dst, RemotePort: 8080},
	}
}

func rewriteAll(t *testing.T, frame []byte, g datapath.GSO, as []flowtable.Action) {
	t.Helper()
	var rw datapath.Rewriter
	for i := range as {
		if err := rw.Apply(frame, g, &as[i]); err != nil {
			t.Fatalf("Apply(%+v) = %v", as[i], err)
		}
	}
}

// TestRewriteThenSegment rewrites a TSO superframe (partial checksum)
// the way a routed, NATed flow does, then cuts it as the tunnel output
// does: every segment carries the new headers with valid checksums, and
// the superframe's partial checksum is exactly what the guest would have
// written for the new addresses (what the receiving kernel relies on
// when the superframe goes out of a local port unsplit).
func TestRewriteThenSegment(t *testing.T) {
	payload := pattern(20000)
	frame := tcpFrame(tIP4A, tIP4B, 5000, tcpACK|tcpPSH, payload, true)
	g := datapath.GSO{Flags: vnetFlagNeedsCsum, GSOType: gsoTCPv4, HdrLen: 34 + 32, GSOSize: 1398, CsumStart: 34, CsumOffset: 16}
	rewriteAll(t, frame, g, natActions())
	want := tcpFrame(tSNAT, tDNAT, 5000, tcpACK|tcpPSH, payload, true)
	if got, w := binary.BigEndian.Uint16(frame[34+16:]), binary.BigEndian.Uint16(want[34+16:]); got != w {
		t.Errorf("partial checksum after rewrite = %#04x, want %#04x (the pseudo-header sum of the new addresses)", got, w)
	}
	if c := packet.Checksum(frame[14:34], 0); c != 0 {
		t.Errorf("superframe IPv4 header checksum does not verify")
	}
	segs, _, err := segmentAll(t, frame, g)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for i, seg := range segs {
		m, _, p := checkSegment(t, seg)
		if m.Src() != tSNAT || m.Dst() != tDNAT || m.SrcPort != 61000 || m.DstPort != 8080 || m.IPTTL != 63 ||
			m.EthSrc != tRouter || m.EthDst != tNextHop {
			t.Errorf("segment %d: %+v, want the rewritten headers", i, m)
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("segments carry %d payload bytes, not the original %d", len(got), len(payload))
	}
}

// TestRewritePartialThenComplete: a plain frame with a partial checksum
// (a guest's small TCP segment or UDP datagram) is rewritten, then
// completed as the tunnel output does: the checksum verifies.
func TestRewritePartialThenComplete(t *testing.T) {
	tcp := tcpFrame(tIP4A, tIP4B, 1, tcpACK, pattern(333), true)
	udp := packet.AppendUDP4(nil, tMacA, tMacB, addrPort(tIP4A, 1111), addrPort(tIP4B, 53), 64, pattern(101))
	// Make the UDP checksum partial: the folded pseudo-header sum.
	psum := packet.PseudoHeaderChecksum(packet.ProtoUDP, tIP4A, tIP4B, uint16(8+101))
	binary.BigEndian.PutUint16(udp[34+6:], ^packet.Checksum(nil, psum))
	tests := []struct {
		name  string
		frame []byte
		off   uint16
	}{
		{name: "tcp", frame: tcp, off: 16},
		{name: "udp", frame: udp, off: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := datapath.GSO{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: tt.off}
			f := bytes.Clone(tt.frame)
			rewriteAll(t, f, g, natActions())
			if err := completeChecksum(f, g); err != nil {
				t.Fatal(err)
			}
			m, _, _ := checkSegment(t, f)
			if m.Src() != tSNAT || m.DstPort != 8080 {
				t.Errorf("rewritten frame has %+v", m)
			}
		})
	}
}
