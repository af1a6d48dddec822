package packet

// A differential check against github.com/gopacket/gopacket (test only):
// the slow, general decoder is the obvious version of Parse. Whenever
// Parse accepts a frame and gopacket decodes the same headers without an
// error, both must extract the same flow key.

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// gopacketMatch derives a FlowMatch from gopacket's decoding of frame,
// walking its layers in order: Ethernet, [802.1Q], ARP or IPv4 or IPv6,
// IPv6 extension headers, transport. Layers after that (tunnelled
// packets, application protocols) are ignored, as Parse ignores them. ok
// is false when gopacket failed to decode something.
func gopacketMatch(frame []byte, inPort uint32, want *FlowMatch) (m FlowMatch, ok bool) {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	if p.ErrorLayer() != nil {
		return m, false
	}
	m.InPort = inPort
	ls := p.Layers()
	eth, _ := ls[0].(*layers.Ethernet)
	if eth == nil {
		return m, false
	}
	ls = ls[1:]
	copy(m.EthSrc[:], eth.SrcMAC)
	copy(m.EthDst[:], eth.DstMAC)
	m.EthType = uint16(eth.EthernetType)
	if eth.Length != 0 || eth.EthernetType == layers.EthernetTypeLLC {
		m.EthType = binary.BigEndian.Uint16(frame[12:14]) // 802.3: Parse keeps the raw field
	}
	if eth.EthernetType == layers.EthernetTypeDot1Q {
		if len(ls) == 0 {
			return m, false
		}
		q, _ := ls[0].(*layers.Dot1Q)
		if q == nil {
			return m, false
		}
		ls = ls[1:]
		m.VLAN = q.VLANIdentifier
		m.EthType = uint16(q.Type)
	}
	switch m.EthType {
	case EthTypeARP, EthTypeIPv4, EthTypeIPv6: // 802.1ad (0x88a8) outer tags are not parsed either
	default:
		return m, true // gopacket decodes more EtherTypes than Parse
	}
	if len(ls) == 0 {
		return m, false
	}
	frag := false
	switch l := ls[0].(type) {
	case *layers.ARP:
		m.IPProto = uint8(l.Operation)
		copy(m.ARPSha[:], l.SourceHwAddress)
		m.IPSrc = netip.AddrFrom4([4]byte(l.SourceProtAddress)).As16()
		m.IPDst = netip.AddrFrom4([4]byte(l.DstProtAddress)).As16()
		return m, true
	case *layers.IPv4:
		m.IPSrc = netip.AddrFrom4([4]byte(l.SrcIP.To4())).As16()
		m.IPDst = netip.AddrFrom4([4]byte(l.DstIP.To4())).As16()
		m.IPTTL = l.TTL
		m.IPProto = uint8(l.Protocol)
		switch {
		case l.FragOffset != 0:
			m.IPFrag = FragLater
		case l.Flags&layers.IPv4MoreFragments != 0:
			m.IPFrag = FragFirst
		}
		frag = m.IPFrag != FragNone
	case *layers.IPv6:
		m.IPSrc = [16]byte(l.SrcIP.To16())
		m.IPDst = [16]byte(l.DstIP.To16())
		m.IPTTL = l.HopLimit
		m.IPProto = uint8(l.NextHeader)
		if l.HopByHop != nil { // gopacket folds Hop-by-Hop into the IPv6 layer
			m.IPProto = uint8(l.HopByHop.NextHeader)
		}
	ext:
		for len(ls) > 1 {
			switch h := ls[1].(type) {
			case *layers.IPv6HopByHop:
				m.IPProto = uint8(h.NextHeader)
			case *layers.IPv6Destination:
				m.IPProto = uint8(h.NextHeader)
			case *layers.IPv6Routing:
				m.IPProto = uint8(h.NextHeader)
			case *layers.IPSecAH:
				m.IPProto = uint8(h.NextHeader)
			case *layers.IPv6Fragment:
				m.IPProto = uint8(h.NextHeader)
				switch {
				case h.FragmentOffset != 0:
					m.IPFrag = FragLater
				case h.MoreFragments:
					m.IPFrag = FragFirst
				}
				// gopacket decodes nothing after a Fragment header,
				// even an atomic one or a first fragment, where Parse
				// goes on through further extension headers.
				frag = true
				if h.FragmentOffset == 0 {
					m.IPProto, m.IPFrag = want.IPProto, want.IPFrag
				}
			default:
				break ext
			}
			ls = ls[1:]
		}
	default:
		return m, false
	}
	ls = ls[1:]
	if frag {
		// gopacket does not decode the transport header of any fragment;
		// take the first fragment's ports from Parse.
		m.SrcPort, m.DstPort = want.SrcPort, want.DstPort
		return m, true
	}
	if len(ls) == 0 {
		return m, true
	}
	switch l := ls[0].(type) {
	case *layers.TCP:
		m.SrcPort, m.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
	case *layers.UDP:
		m.SrcPort, m.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
	case *layers.ICMPv4:
		if m.EthType == EthTypeIPv4 {
			m.SrcPort, m.DstPort = uint16(l.TypeCode.Type()), uint16(l.TypeCode.Code())
			if t := l.TypeCode.Type(); t == ICMPEchoRequest || t == ICMPEchoReply {
				m.ICMPID = l.Id
			}
		}
	case *layers.ICMPv6:
		if m.EthType == EthTypeIPv6 {
			m.SrcPort, m.DstPort = uint16(l.TypeCode.Type()), uint16(l.TypeCode.Code())
			if t := l.TypeCode.Type(); (t == 128 || t == 129) && len(l.Payload) >= 2 {
				m.ICMPID = uint16(l.Payload[0])<<8 | uint16(l.Payload[1]) // echo id opens the message body
			}
		}
	}
	return m, true
}

// checkAgainstGopacket reports whether the comparison happened.
func checkAgainstGopacket(t *testing.T, frame []byte) bool {
	t.Helper()
	var m FlowMatch
	if Parse(frame, 9, &m) != nil {
		return false
	}
	g, ok := gopacketMatch(frame, 9, &m)
	if !ok {
		return false
	}
	if g != m {
		t.Errorf("Parse(%x) = %+v, gopacket says %+v", trunc(frame), m, g)
	}
	return true
}

func TestParseAgainstGopacket(t *testing.T) {
	compared := 0
	for _, tt := range parseCases() {
		if tt.wantErr == nil && checkAgainstGopacket(t, tt.frame) {
			compared++
		}
	}
	// gopacket rejects a few valid cases (IPv6 payload length 0 without a
	// jumbo option, an unknown protocol after AH); the rest must compare.
	t.Logf("%d valid frames compared with gopacket", compared)
	if compared < 25 {
		t.Errorf("only %d valid frames were compared with gopacket, want at least 25", compared)
	}
}

// FuzzParseAgainstGopacket runs the differential check on any frame.
func FuzzParseAgainstGopacket(f *testing.F) {
	// Seeds: every valid and malformed frame of the table test.
	for _, tt := range parseCases() {
		if len(tt.frame) < 4096 {
			f.Add(tt.frame)
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) { checkAgainstGopacket(t, frame) })
}
