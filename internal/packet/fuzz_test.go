package packet

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzParse checks, for any frame: Parse never panics; on error the
// match is zero and the error is one of the sentinels; on success the
// layer offsets are ordered and inside the frame; parsing again gives the
// same result; and Parse agrees with ParseLayers.
func FuzzParse(f *testing.F) {
	// Every case of the table test: valid frames of each kind (TCP, UDP,
	// ICMP over IPv4 and IPv6, ARP, VLAN, fragments, extension headers,
	// superframes) and each malformation.
	for _, tt := range parseCases() {
		if len(tt.frame) < 4096 { // the superframes are too big for the fuzzer's taste
			f.Add(tt.frame)
		}
	}
	// Truncations of valid frames at every header boundary.
	for _, fr := range [][]byte{tcp4Frame(4), udp4Frame(4), tcp6Frame(4), arpRequestFrame()} {
		for _, n := range []int{13, 14, 20, 33, 34, 41, 53, 54, 60, 73} {
			if n < len(fr) {
				f.Add(fr[:n])
			}
		}
	}
	// Built frames: ARP, UDP, ICMP, a DHCP reply.
	f.Add(AppendARPReply(nil, macA, ip4A, macB, ip4B))
	f.Add(AppendUDP4(nil, macA, macB, netip.AddrPortFrom(ip4A, 1), netip.AddrPortFrom(ip4B, 2), 64, []byte("x")))
	f.Add(AppendICMP4Echo(nil, macA, macB, ip4A, ip4B, 64, ICMPEchoRequest, 1, 2, []byte("ping")))
	f.Add(AppendDHCPReply(nil, fullReply()))

	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := bytes.Clone(frame)
		var m FlowMatch
		err := Parse(frame, 5, &m)
		if !bytes.Equal(frame, orig) {
			t.Fatalf("Parse modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%x) = %v, not a sentinel", frame, err)
			}
			if m != (FlowMatch{}) {
				t.Fatalf("Parse(%x) = %v but match %+v is not zero", frame, err, m)
			}
		} else if m.InPort != 5 {
			t.Fatalf("Parse(%x) InPort = %d, want 5", frame, m.InPort)
		}
		var m2 FlowMatch
		if err2 := Parse(frame, 5, &m2); err2 != err || m2 != m {
			t.Fatalf("Parse(%x) twice: %+v, %v then %+v, %v", frame, m, err, m2, err2)
		}
		m3 := FlowMatch{InPort: 5}
		var l Layers
		err3 := ParseLayers(frame, &m3, &l)
		if err3 != err || m3 != m {
			t.Fatalf("ParseLayers(%x) = %+v, %v; Parse = %+v, %v", frame, m3, err3, m, err)
		}
		if err != nil {
			return
		}
		if l.End < 0 || l.End > len(frame) {
			t.Fatalf("ParseLayers(%x): End %d outside the frame", frame, l.End)
		}
		prev := 0
		for _, off := range []int{l.L3, l.L4, l.Payload} {
			if off == -1 {
				continue
			}
			if off < prev || off > l.End {
				t.Fatalf("ParseLayers(%x): offsets %+v out of order or beyond End", frame, l)
			}
			prev = off
		}
		if l.L4 >= 0 && m.IPFrag == FragLater {
			t.Fatalf("ParseLayers(%x): later fragment with an L4 offset", frame)
		}
	})
}

// FuzzParseDHCP checks, for any message: ParseDHCP never panics; on
// error the message is zero and the error a sentinel; on success parsing
// again gives the same result and ParamRequest points into the input.
func FuzzParseDHCP(f *testing.F) {
	// The table's client messages (DISCOVER, REQUEST, renewing REQUEST,
	// hand-made options) and each malformation.
	for _, tt := range dhcpCases(f) {
		f.Add(tt.msg)
	}
	// Replies we build (OFFER with every option, NAK), and truncations of
	// a DISCOVER inside the fixed part, at the cookie and inside options.
	r := fullReply()
	full := AppendDHCPReply(nil, r)
	f.Add(full[42:])
	r.Type = DHCPNak
	f.Add(AppendDHCPReply(nil, r)[42:])
	disc := dhcpCases(f)[0].msg
	for _, n := range []int{1, 100, 236, 239, 240, 243, 250} {
		f.Add(disc[:n])
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var d DHCPMessage
		err := ParseDHCP(msg, &d)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseDHCP(%x) = %v, not a sentinel", msg, err)
			}
			if d.Op != 0 || d.Type != 0 || d.ParamRequest != nil || d.Hostname != "" || d.CIAddr.IsValid() {
				t.Fatalf("ParseDHCP(%x) = %v but message %+v is not zero", msg, err, d)
			}
			return
		}
		if d.Op != BOOTRequest && d.Op != BOOTReply {
			t.Fatalf("ParseDHCP(%x) accepted op %d", msg, d.Op)
		}
		if len(d.ParamRequest) > 0 {
			p := &d.ParamRequest[0]
			inside := false
			for i := range msg {
				if &msg[i] == p {
					inside = true
				}
			}
			if !inside {
				t.Fatalf("ParseDHCP(%x): ParamRequest is not a sub-slice of the input", msg)
			}
		}
		var d2 DHCPMessage
		if err2 := ParseDHCP(msg, &d2); err2 != nil || d2.XID != d.XID || d2.Type != d.Type ||
			d2.RequestedIP != d.RequestedIP || d2.ServerID != d.ServerID || d2.Hostname != d.Hostname ||
			!bytes.Equal(d2.ParamRequest, d.ParamRequest) {
			t.Fatalf("ParseDHCP(%x) twice: %+v then %+v, %v", msg, d, d2, err2)
		}
	})
}

// FuzzBuildUDP4 checks parse(build(x)) == x for UDP frames: Parse gives
// back every header field and the checksums verify.
func FuzzBuildUDP4(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 0, 1}, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, uint16(68), uint16(67), uint8(64), []byte("payload")) // DHCP ports
	f.Add([]byte{}, []byte{}, []byte{}, uint16(0), uint16(0), uint8(0), []byte{})                                                   // all zero
	f.Add([]byte{0xff}, []byte{255, 255, 255, 255}, []byte{0, 0, 0, 0}, uint16(65535), uint16(1), uint8(255), make([]byte, 1473))   // odd, MTU-sized
	f.Fuzz(func(t *testing.T, mac, src, dst []byte, sport, dport uint16, ttl uint8, payload []byte) {
		if len(payload) > maxUDP4Payload {
			return
		}
		var srcMAC, dstMAC [6]byte
		copy(srcMAC[:], mac)
		copy(dstMAC[:], src)
		var s4, d4 [4]byte
		copy(s4[:], src)
		copy(d4[:], dst)
		sa, da := netip.AddrPortFrom(netip.AddrFrom4(s4), sport), netip.AddrPortFrom(netip.AddrFrom4(d4), dport)
		fr := AppendUDP4(nil, srcMAC, dstMAC, sa, da, ttl, payload)
		var m FlowMatch
		var l Layers
		if err := ParseLayers(fr, &m, &l); err != nil {
			t.Fatalf("ParseLayers(AppendUDP4(...)) = %v on %x", err, fr)
		}
		want := matchSpec{ethSrc: srcMAC, ethDst: dstMAC, ethType: EthTypeIPv4, src: sa.Addr(), dst: da.Addr(),
			proto: ProtoUDP, ttl: ttl, sport: sport, dport: dport}.m()
		if m != want {
			t.Fatalf("ParseLayers(AppendUDP4(...)) = %+v, want %+v", m, want)
		}
		if !bytes.Equal(fr[l.Payload:], payload) {
			t.Fatalf("payload %x, want %x", fr[l.Payload:], payload)
		}
		checkIPv4Checksums(t, fr)
	})
}

// FuzzAppendDHCPReply builds replies from arbitrary fields and checks
// that the frame parses, the checksums verify, ParseDHCP recovers the
// header fields, and insomniacslk/dhcp decodes the same options
// (including options split by RFC 3396).
func FuzzAppendDHCPReply(f *testing.F) {
	f.Add(uint8(DHCPAck), uint32(1), uint16(0), []byte{}, "vm-1", "openstacklocal", "", uint8(2), uint8(2), uint32(600), uint16(1450), uint8(24))
	f.Add(uint8(DHCPOffer), uint32(0xffffffff), uint16(0x8000), []byte{10, 0, 0, 9}, "", "", "", uint8(0), uint8(0), uint32(0), uint16(0), uint8(0))
	f.Add(uint8(DHCPNak), uint32(7), uint16(0), []byte{10, 0, 0, 9}, "h", "d", "no", uint8(1), uint8(1), uint32(1), uint16(1), uint8(33))
	f.Add(uint8(DHCPAck), uint32(2), uint16(0), []byte{}, string(make([]byte, 300)), string(bytes.Repeat([]byte("a"), 600)), "", uint8(100), uint8(80), uint32(0xffffffff), uint16(9000), uint8(32)) // long options split
	f.Fuzz(func(t *testing.T, typ uint8, xid uint32, flags uint16, ci []byte, host, domain, msg string, nRoutes, nDNS uint8, lease uint32, mtu uint16, plen uint8) {
		r := &DHCPReply{Type: typ, XID: xid, Flags: flags, ClientMAC: clientMAC, ServerMAC: serverMAC,
			YourIP: yourIP, ServerIP: serverIP, PrefixLen: int(plen), Router: serverIP,
			LeaseSeconds: lease, MTU: mtu, DomainName: domain, Hostname: host, Message: msg}
		if len(ci) >= 4 {
			r.CIAddr = netip.AddrFrom4([4]byte(ci[:4]))
		}
		for i := range int(nRoutes) {
			r.HostRoutes = append(r.HostRoutes, Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 1, 0}), i%33), Gateway: yourIP})
		}
		for i := range int(nDNS) {
			r.DNS = append(r.DNS, netip.AddrFrom4([4]byte{8, 8, byte(i), 8}))
		}
		_, p := parseReplyFrame(t, AppendDHCPReply(nil, r))
		var d DHCPMessage
		if err := ParseDHCP(p, &d); err != nil {
			t.Fatalf("ParseDHCP(AppendDHCPReply(%+v)) = %v", r, err)
		}
		if d.XID != xid || d.Type != typ || d.Flags != flags || d.CHAddr != clientMAC || d.ServerID != serverIP || d.Op != BOOTReply {
			t.Fatalf("ParseDHCP(AppendDHCPReply(%+v)) = %+v", r, d)
		}
		x, err := dhcpv4.FromBytes(p)
		if err != nil {
			t.Fatalf("dhcpv4.FromBytes(AppendDHCPReply(%+v)) = %v", r, err)
		}
		if typ == DHCPNak {
			if x.Message() != msg {
				t.Fatalf("NAK message %q, want %q", x.Message(), msg)
			}
			return
		}
		// Raw option bytes: HostName() trims trailing NULs.
		gotHost, gotDomain := string(x.Options.Get(dhcpv4.OptionHostName)), string(x.Options.Get(dhcpv4.OptionDomainName))
		if gotHost != host || gotDomain != domain {
			t.Fatalf("hostname %q domain %q, want %q %q", gotHost, gotDomain, host, domain)
		}
		if len(x.DNS()) != int(nDNS) {
			t.Fatalf("%d DNS servers, want %d", len(x.DNS()), nDNS)
		}
		// Route 0 has prefix length 0, a default route: the router is
		// then not added.
		if n := len(x.ClasslessStaticRoute()); n != int(nRoutes) {
			t.Fatalf("%d classless routes, want %d", n, nRoutes)
		}
	})
}
