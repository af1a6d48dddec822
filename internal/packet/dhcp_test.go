package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var (
	clientMAC = [6]byte{0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01}
	serverMAC = [6]byte{0xfa, 0x16, 0x3e, 0xff, 0xff, 0xfe}
	serverIP  = netip.MustParseAddr("192.168.10.1")
	yourIP    = netip.MustParseAddr("192.168.10.23")
)

// fullReply is an ACK using every option.
func fullReply() *DHCPReply {
	return &DHCPReply{
		Type: DHCPAck, XID: 0xdeadbeef, Flags: 0,
		ClientMAC: clientMAC, ServerMAC: serverMAC,
		YourIP: yourIP, ServerIP: serverIP, PrefixLen: 24,
		Router: serverIP,
		DNS:    []netip.Addr{netip.MustParseAddr("192.168.10.2"), netip.MustParseAddr("8.8.8.8")},
		HostRoutes: []Route{
			{Dst: netip.MustParsePrefix("169.254.169.254/32"), Gateway: netip.MustParseAddr("192.168.10.3")},
			{Dst: netip.MustParsePrefix("10.20.0.0/14"), Gateway: netip.MustParseAddr("192.168.10.4")},
		},
		LeaseSeconds:  86400,
		MTU:           1450,
		DomainName:    "openstacklocal",
		Hostname:      "vm-1",
		BroadcastAddr: netip.MustParseAddr("192.168.10.255"),
	}
}

// parseReplyFrame checks the Ethernet/IPv4/UDP wrapping of a DHCP reply
// and returns the match and the DHCP payload.
func parseReplyFrame(t *testing.T, f []byte) (FlowMatch, []byte) {
	t.Helper()
	var m FlowMatch
	var l Layers
	if err := ParseLayers(f, &m, &l); err != nil {
		t.Fatalf("ParseLayers(%x) = %v", f, err)
	}
	if m.IPProto != ProtoUDP || m.SrcPort != 67 || m.DstPort != 68 {
		t.Fatalf("reply frame is proto %d %d -> %d, want UDP 67 -> 68", m.IPProto, m.SrcPort, m.DstPort)
	}
	checkIPv4Checksums(t, f)
	p := f[l.Payload:l.End]
	if len(p) < bootpMinLen {
		t.Errorf("DHCP message is %d bytes, want at least %d", len(p), bootpMinLen)
	}
	return m, p
}

func ip(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

// TestDHCPReplyAgainstDHCPv4 decodes our reply with insomniacslk/dhcp and
// checks every option.
func TestDHCPReplyAgainstDHCPv4(t *testing.T) {
	r := fullReply()
	_, p := parseReplyFrame(t, AppendDHCPReply(nil, r))
	d, err := dhcpv4.FromBytes(p)
	if err != nil {
		t.Fatalf("dhcpv4.FromBytes(%x) = %v", p, err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("op", d.OpCode, dhcpv4.OpcodeBootReply)
	check("xid", d.TransactionID, dhcpv4.TransactionID{0xde, 0xad, 0xbe, 0xef})
	check("yiaddr", d.YourIPAddr, yourIP)
	check("chaddr", d.ClientHWAddr, net.HardwareAddr(clientMAC[:]))
	check("message type", d.MessageType(), dhcpv4.MessageTypeAck)
	check("server id", d.ServerIdentifier(), serverIP)
	check("lease", d.IPAddressLeaseTime(0), 86400*time.Second)
	check("T1", d.IPAddressRenewalTime(0), 43200*time.Second)
	check("T2", d.IPAddressRebindingTime(0), 75600*time.Second)
	check("netmask", net.IP(d.SubnetMask()), net.IPv4(255, 255, 255, 0).To4())
	check("router", d.Router(), []net.IP{ip(serverIP)})
	check("dns", d.DNS(), []net.IP{net.IPv4(192, 168, 10, 2).To4(), net.IPv4(8, 8, 8, 8).To4()})
	check("domain", d.DomainName(), "openstacklocal")
	check("hostname", d.HostName(), "vm-1")
	check("mtu", d.GetOneOption(dhcpv4.OptionInterfaceMTU), []byte{0x05, 0xaa})
	check("broadcast", d.BroadcastAddress(), netip.MustParseAddr("192.168.10.255"))
	check("routes", d.ClasslessStaticRoute(),
		"[route to 169.254.169.254/32 via 192.168.10.3 route to 10.20.0.0/14 via 192.168.10.4 route to 0.0.0.0/0 via 192.168.10.1]")
	check("options present", d.Options.ToBytes() != nil, true)
	var codes []int
	for c := range d.Options {
		codes = append(codes, int(c))
	}
	slices.Sort(codes)
	check("option codes", codes, []int{1, 3, 6, 12, 15, 26, 28, 51, 53, 54, 58, 59, 121})
}

func TestDHCPReplyNak(t *testing.T) {
	r := &DHCPReply{Type: DHCPNak, XID: 9, ClientMAC: clientMAC, ServerMAC: serverMAC,
		YourIP: yourIP, ServerIP: serverIP, LeaseSeconds: 60, PrefixLen: 24, Router: serverIP,
		CIAddr: yourIP, Message: "address not available"}
	m, p := parseReplyFrame(t, AppendDHCPReply(nil, r))
	if m.EthDst != BroadcastMAC || m.Dst() != netip.MustParseAddr("255.255.255.255") {
		t.Errorf("NAK sent to %x %v, want broadcast", m.EthDst, m.Dst())
	}
	d, err := dhcpv4.FromBytes(p)
	if err != nil {
		t.Fatalf("dhcpv4.FromBytes(%x) = %v", p, err)
	}
	var codes []int
	for c := range d.Options {
		codes = append(codes, int(c))
	}
	slices.Sort(codes)
	if want := []int{53, 54, 56}; !slices.Equal(codes, want) {
		t.Errorf("NAK options = %v, want %v", codes, want)
	}
	if d.Message() != r.Message || d.MessageType() != dhcpv4.MessageTypeNak || !d.YourIPAddr.IsUnspecified() {
		t.Errorf("NAK = %s", d.Summary())
	}
}

func TestDHCPReplyDestination(t *testing.T) {
	bcast := netip.MustParseAddr("255.255.255.255")
	tests := []struct {
		name    string
		flags   uint16
		ciaddr  netip.Addr
		wantMAC [6]byte
		wantIP  netip.Addr
	}{
		{name: "no ciaddr, no flag: broadcast", wantMAC: BroadcastMAC, wantIP: bcast},
		{name: "ciaddr 0.0.0.0: broadcast", ciaddr: netip.IPv4Unspecified(), wantMAC: BroadcastMAC, wantIP: bcast},
		{name: "broadcast flag", flags: DHCPFlagBroadcast, wantMAC: BroadcastMAC, wantIP: bcast},
		{name: "renewing client with ciaddr: unicast", ciaddr: yourIP, wantMAC: clientMAC, wantIP: yourIP},
		{name: "ciaddr but broadcast flag", flags: DHCPFlagBroadcast, ciaddr: yourIP, wantMAC: BroadcastMAC, wantIP: bcast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fullReply()
			r.Flags, r.CIAddr = tt.flags, tt.ciaddr
			m, p := parseReplyFrame(t, AppendDHCPReply(nil, r))
			if m.EthDst != tt.wantMAC || m.Dst() != tt.wantIP || m.EthSrc != serverMAC || m.Src() != serverIP {
				t.Errorf("reply %x/%v -> %x/%v, want %x/%v -> %x/%v", m.EthSrc, m.Src(), m.EthDst, m.Dst(),
					serverMAC, serverIP, tt.wantMAC, tt.wantIP)
			}
			if got := binary.BigEndian.Uint16(p[10:12]); got != tt.flags {
				t.Errorf("flags = %#x, want %#x (echoed)", got, tt.flags)
			}
		})
	}
}

func TestDHCPReplyOptionEdges(t *testing.T) {
	many := make([]Route, 40) // 40 * 9 bytes: option 121 must be split
	for i := range many {
		many[i] = Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), Gateway: serverIP}
	}
	tests := []struct {
		name   string
		modify func(r *DHCPReply)
		check  func(t *testing.T, d *dhcpv4.DHCPv4)
	}{
		{name: "minimal reply has only type and server id", modify: func(r *DHCPReply) {
			*r = DHCPReply{Type: DHCPOffer, ClientMAC: clientMAC, ServerMAC: serverMAC, YourIP: yourIP, ServerIP: serverIP}
		}, check: func(t *testing.T, d *dhcpv4.DHCPv4) {
			if len(d.Options) != 2 || d.MessageType() != dhcpv4.MessageTypeOffer {
				t.Errorf("options = %s, want 53 and 54 only", d.Summary())
			}
		}},
		{name: "infinite lease has no T1/T2", modify: func(r *DHCPReply) { r.LeaseSeconds = 0xffffffff },
			check: func(t *testing.T, d *dhcpv4.DHCPv4) {
				if d.Options.Has(dhcpv4.OptionRenewTimeValue) || d.Options.Has(dhcpv4.OptionRebindingTimeValue) ||
					!bytes.Equal(d.GetOneOption(dhcpv4.OptionIPAddressLeaseTime), []byte{0xff, 0xff, 0xff, 0xff}) {
					t.Errorf("infinite lease options: %s", d.Summary())
				}
			}},
		{name: "host routes with their own default do not add the router", modify: func(r *DHCPReply) {
			r.HostRoutes = []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("192.168.10.9")}}
		}, check: func(t *testing.T, d *dhcpv4.DHCPv4) {
			if got := fmt.Sprint(d.ClasslessStaticRoute()); got != "[route to 0.0.0.0/0 via 192.168.10.9]" {
				t.Errorf("routes = %s", got)
			}
		}},
		{name: "host route prefix is masked, ipv6 routes skipped", modify: func(r *DHCPReply) {
			r.HostRoutes = []Route{
				{Dst: netip.MustParsePrefix("10.1.2.3/8"), Gateway: serverIP},
				{Dst: netip.MustParsePrefix("fd00::/8"), Gateway: serverIP},
			}
			r.Router = netip.Addr{}
		}, check: func(t *testing.T, d *dhcpv4.DHCPv4) {
			if got := fmt.Sprint(d.ClasslessStaticRoute()); got != "[route to 10.0.0.0/8 via 192.168.10.1]" {
				t.Errorf("routes = %s", got)
			}
			if d.Options.Has(dhcpv4.OptionRouter) {
				t.Errorf("router option present without a router")
			}
		}},
		{name: "40 routes split option 121 (RFC 3396)", modify: func(r *DHCPReply) { r.HostRoutes = many },
			check: func(t *testing.T, d *dhcpv4.DHCPv4) {
				routes := d.ClasslessStaticRoute()
				if len(routes) != 41 || routes[39].String() != "route to 10.39.0.0/16 via 192.168.10.1" ||
					routes[40].String() != "route to 0.0.0.0/0 via 192.168.10.1" {
					t.Errorf("got %d routes: %v", len(routes), routes)
				}
			}},
		{name: "no lease (ACK to INFORM)", modify: func(r *DHCPReply) { r.LeaseSeconds, r.YourIP = 0, netip.Addr{} },
			check: func(t *testing.T, d *dhcpv4.DHCPv4) {
				if d.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || !d.YourIPAddr.IsUnspecified() {
					t.Errorf("INFORM ack: %s", d.Summary())
				}
			}},
		{name: "prefix length 32", modify: func(r *DHCPReply) { r.PrefixLen = 32 },
			check: func(t *testing.T, d *dhcpv4.DHCPv4) {
				if got := net.IP(d.SubnetMask()).String(); got != "255.255.255.255" {
					t.Errorf("netmask = %s", got)
				}
			}},
		{name: "prefix length 0 omits the mask", modify: func(r *DHCPReply) { r.PrefixLen = 0 },
			check: func(t *testing.T, d *dhcpv4.DHCPv4) {
				if d.Options.Has(dhcpv4.OptionSubnetMask) {
					t.Errorf("netmask present: %s", d.Summary())
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fullReply()
			tt.modify(r)
			_, p := parseReplyFrame(t, AppendDHCPReply(nil, r))
			d, err := dhcpv4.FromBytes(p)
			if err != nil {
				t.Fatalf("dhcpv4.FromBytes(%x) = %v", p, err)
			}
			tt.check(t, d)
		})
	}
}

func TestAppendLongOption(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 510, 511, 1000} {
		val := make([]byte, n)
		for i := range val {
			val[i] = byte(i%251 + 1)
		}
		b := appendLongOption([]byte{0xaa}, 77, func(b []byte) []byte { return append(b, val...) })
		if b[0] != 0xaa {
			t.Fatalf("n=%d: prefix overwritten", n)
		}
		// Reassemble per RFC 3396.
		var got []byte
		o := b[1:]
		for len(o) > 0 {
			if o[0] != 77 || len(o) < 2+int(o[1]) || o[1] == 0 {
				t.Fatalf("n=%d: bad option instance at %x", n, o)
			}
			got = append(got, o[2:2+int(o[1])]...)
			o = o[2+int(o[1]):]
		}
		if !bytes.Equal(got, val) {
			t.Errorf("n=%d: reassembled %d bytes, differ from the value", n, len(got))
		}
		if want := 2*((n+254)/255) + n; len(b)-1 != want {
			t.Errorf("n=%d: encoded %d bytes, want %d", n, len(b)-1, want)
		}
	}
}

// TestDHCPRoundTrip parses replies built by AppendDHCPReply with ParseDHCP.
func TestDHCPRoundTrip(t *testing.T) {
	for _, typ := range []uint8{DHCPOffer, DHCPAck, DHCPNak} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			r := fullReply()
			r.Type, r.Flags, r.CIAddr = typ, DHCPFlagBroadcast, netip.MustParseAddr("192.168.10.77")
			_, p := parseReplyFrame(t, AppendDHCPReply(nil, r))
			var d DHCPMessage
			if err := ParseDHCP(p, &d); err != nil {
				t.Fatalf("ParseDHCP(%x) = %v", p, err)
			}
			want := DHCPMessage{Op: BOOTReply, XID: r.XID, Flags: r.Flags,
				CIAddr: r.CIAddr, YIAddr: r.YourIP, SIAddr: netip.IPv4Unspecified(), GIAddr: netip.IPv4Unspecified(),
				CHAddr: clientMAC, Type: typ, ServerID: serverIP, Hostname: "vm-1"}
			if typ == DHCPNak {
				want.YIAddr, want.Hostname = netip.IPv4Unspecified(), ""
			}
			if fmt.Sprintf("%+v", d) != fmt.Sprintf("%+v", want) {
				t.Errorf("ParseDHCP(AppendDHCPReply(%+v)) = %+v, want %+v", r, d, want)
			}
		})
	}
}

// dhcpv4Bytes builds a client message with insomniacslk/dhcp.
func dhcpv4Bytes(t testing.TB, typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) []byte {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithHwAddr(net.HardwareAddr(clientMAC[:])),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionInterfaceMTU, dhcpv4.OptionClasslessStaticRoute),
	}
	d, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatalf("dhcpv4.New: %v", err)
	}
	return d.ToBytes()
}

type dhcpCase struct {
	name    string
	msg     []byte
	want    DHCPMessage
	wantErr error
}

func dhcpCases(t testing.TB) []dhcpCase {
	zero := netip.IPv4Unspecified()
	prl := []byte{1, 3, 6, 26, 121}
	discover := dhcpv4Bytes(t, dhcpv4.MessageTypeDiscover, dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptHostName("vm-1")))
	request := dhcpv4Bytes(t, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip(yourIP))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip(serverIP))))
	renew := dhcpv4Bytes(t, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(ip(yourIP)))
	corrupt := func(b []byte, i int, v byte) []byte { b = bytes.Clone(b); b[i] = v; return b }
	withOpts := func(opts ...byte) []byte { return cat(discover[:dhcpOptsOff], opts) }
	return []dhcpCase{
		{name: "discover (dhcpv4)", msg: discover, want: DHCPMessage{Op: BOOTRequest, XID: 0x01020304,
			Flags: DHCPFlagBroadcast, CIAddr: zero, YIAddr: zero, SIAddr: zero, GIAddr: zero, CHAddr: clientMAC,
			Type: DHCPDiscover, ParamRequest: prl, Hostname: "vm-1"}},
		{name: "request (dhcpv4)", msg: request, want: DHCPMessage{Op: BOOTRequest, XID: 0x01020304,
			CIAddr: zero, YIAddr: zero, SIAddr: zero, GIAddr: zero, CHAddr: clientMAC,
			Type: DHCPRequest, RequestedIP: yourIP, ServerID: serverIP, ParamRequest: prl}},
		{name: "renewing request (dhcpv4)", msg: renew, want: DHCPMessage{Op: BOOTRequest, XID: 0x01020304,
			CIAddr: yourIP, YIAddr: zero, SIAddr: zero, GIAddr: zero, CHAddr: clientMAC,
			Type: DHCPRequest, ParamRequest: prl}},
		{name: "pads, no end option, unknown option skipped", msg: withOpts(0, 0, 53, 1, 1, 200, 2, 9, 9, 0),
			want: DHCPMessage{Op: BOOTRequest, XID: 0x01020304, Flags: DHCPFlagBroadcast, CIAddr: zero, YIAddr: zero,
				SIAddr: zero, GIAddr: zero, CHAddr: clientMAC, Type: DHCPDiscover}},
		{name: "options after end are ignored", msg: withOpts(53, 1, 3, 255, 53, 9),
			want: DHCPMessage{Op: BOOTRequest, XID: 0x01020304, Flags: DHCPFlagBroadcast, CIAddr: zero, YIAddr: zero,
				SIAddr: zero, GIAddr: zero, CHAddr: clientMAC, Type: DHCPRequest}},
		{name: "no options at all (BOOTP)", msg: discover[:dhcpOptsOff],
			want: DHCPMessage{Op: BOOTRequest, XID: 0x01020304, Flags: DHCPFlagBroadcast, CIAddr: zero, YIAddr: zero,
				SIAddr: zero, GIAddr: zero, CHAddr: clientMAC}},
		{name: "empty", msg: nil, wantErr: ErrTruncated},
		{name: "fixed part cut", msg: discover[:dhcpOptsOff-1], wantErr: ErrTruncated},
		{name: "bad magic cookie", msg: corrupt(discover, bootpFixedLen+3, 0x64), wantErr: ErrMalformed},
		{name: "op 3", msg: corrupt(discover, 0, 3), wantErr: ErrMalformed},
		{name: "htype 6 (IEEE 802)", msg: corrupt(discover, 1, 6), wantErr: ErrMalformed},
		{name: "hlen 16", msg: corrupt(discover, 2, 16), wantErr: ErrMalformed},
		{name: "option length runs past the end", msg: withOpts(53, 1, 1, 12, 10, 'a', 'b'), wantErr: ErrTruncated},
		{name: "option code without length", msg: withOpts(53, 1, 1, 12), wantErr: ErrTruncated},
		{name: "message type of length 2", msg: withOpts(53, 2, 1, 1, 255), wantErr: ErrMalformed},
		{name: "requested ip of length 3", msg: withOpts(50, 3, 1, 2, 3, 255), wantErr: ErrMalformed},
		{name: "server id of length 5", msg: withOpts(54, 5, 1, 2, 3, 4, 5, 255), wantErr: ErrMalformed},
	}
}

func TestParseDHCP(t *testing.T) {
	for _, tt := range dhcpCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			d := DHCPMessage{Hostname: "stale", Type: 99}
			err := ParseDHCP(tt.msg, &d)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseDHCP(%x) error = %v, want %v", tt.msg, err, tt.wantErr)
			}
			want := tt.want
			if tt.wantErr != nil {
				want = DHCPMessage{}
			}
			if fmt.Sprintf("%+v", d) != fmt.Sprintf("%+v", want) {
				t.Errorf("ParseDHCP(%x) = %+v, want %+v", tt.msg, d, want)
			}
		})
	}
}

func TestParseDHCPAllocs(t *testing.T) {
	msg := dhcpv4Bytes(t, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip(yourIP))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip(serverIP))))
	var d DHCPMessage
	if n := testing.AllocsPerRun(50, func() { _ = ParseDHCP(msg, &d) }); n != 0 {
		t.Errorf("ParseDHCP without a hostname: %v allocs/op, want 0", n)
	}
}

func BenchmarkAppendDHCPReply(b *testing.B) {
	r := fullReply()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendDHCPReply(buf[:0], r)
	}
}

func BenchmarkParseDHCP(b *testing.B) {
	msg := dhcpv4Bytes(b, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip(yourIP))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip(serverIP))))
	var d DHCPMessage
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseDHCP(msg, &d)
	}
}
