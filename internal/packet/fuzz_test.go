package packet

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
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
