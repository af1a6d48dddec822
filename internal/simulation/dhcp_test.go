package simulation

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"hivenet/internal/packet"
)

const dhcpTopology = `
local host1
host host1 tunnel=192.0.2.1
bridge net-a key=0x0a0b0c mtu=1450
subnet sub-a net-a 10.0.0.0/24 gw=10.0.0.1 dns=10.0.0.3,9.9.9.9 server=10.0.0.2 route=192.168.0.0/16:10.0.0.254
subnet sub-b net-a 10.0.1.0/24 gw=10.0.1.1 lease=600
port vm net-a mac=fa:16:3e:00:00:01 ip=sub-a:10.0.0.5 ip=sub-b:10.0.1.5 key=17 bound=host1
port vm2 net-a mac=fa:16:3e:00:00:02 ip=sub-b:10.0.1.6 key=18 bound=host1
`

// dhcpFrame wraps a client message in Ethernet/IPv4/UDP 68 -> 67 and
// builds the Packet the agent would simulate.
func dhcpFrame(t *testing.T, w *world, from string, d *dhcpv4.DHCPv4, src, dst netip.Addr, dstMAC [6]byte) Packet {
	t.Helper()
	p := w.ports[from]
	frame := packet.AppendUDP4(nil, p.MAC, dstMAC, netip.AddrPortFrom(src, 68), netip.AddrPortFrom(dst, 67), 64, d.ToBytes())
	pkt := Packet{Ingress: p.ID, Frame: frame}
	if err := packet.Parse(frame, p.TunnelKey, &pkt.Match); err != nil {
		t.Fatal(err)
	}
	return pkt
}

// reply runs pkt and decodes the one emitted DHCP reply with
// insomniacslk/dhcp, checking the Ethernet, IP and UDP headers on the way.
func reply(t *testing.T, w *world, pkt Packet, wantDstMAC [6]byte, wantDstIP netip.Addr) *dhcpv4.DHCPv4 {
	t.Helper()
	frame := bytes.Clone(pkt.Frame)
	r := Simulate(w.snap, w.local, pkt, w.st, 0)
	if !bytes.Equal(frame, pkt.Frame) {
		t.Fatal("Simulate modified the frame")
	}
	if r.Verdict != Consumed || r.Cacheable || len(r.Emit) != 1 || r.Emit[0].PortID != pkt.Ingress {
		t.Fatalf("Simulate(dhcp) = %s %s cacheable %t, %d emits; want one reply to the ingress port", r.Verdict, r.Reason, r.Cacheable, len(r.Emit))
	}
	var m packet.FlowMatch
	var l packet.Layers
	if err := packet.ParseLayers(r.Emit[0].Frame, &m, &l); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	wantSrcMAC := DHCPServerMAC(0x0a0b0c)
	if m.EthSrc != wantSrcMAC || m.EthDst != wantDstMAC || m.IPProto != packet.ProtoUDP || m.SrcPort != 67 || m.DstPort != 68 || m.Dst() != wantDstIP {
		t.Errorf("reply headers: eth %x -> %x, proto %d, udp %d -> %d, ip dst %s; want eth %x -> %x, udp 67 -> 68, ip dst %s",
			m.EthSrc, m.EthDst, m.IPProto, m.SrcPort, m.DstPort, m.Dst(), wantSrcMAC, wantDstMAC, wantDstIP)
	}
	d, err := dhcpv4.FromBytes(r.Emit[0].Frame[l.Payload:l.End])
	if err != nil {
		t.Fatalf("dhcpv4.FromBytes(reply): %v", err)
	}
	if d.OpCode != dhcpv4.OpcodeBootReply {
		t.Errorf("reply op = %v", d.OpCode)
	}
	if m.Src() != netip.MustParseAddr(d.ServerIdentifier().String()) {
		t.Errorf("reply from %s, server identifier %s", m.Src(), d.ServerIdentifier())
	}
	return d
}

// checkLease checks the options of an OFFER or ACK for port vm on sub-a.
func checkLease(t *testing.T, d *dhcpv4.DHCPv4, typ dhcpv4.MessageType, xid dhcpv4.TransactionID) {
	t.Helper()
	if d.MessageType() != typ || d.TransactionID != xid {
		t.Errorf("reply is %s xid %s, want %s xid %s", d.MessageType(), d.TransactionID, typ, xid)
	}
	if !d.YourIPAddr.Equal(net.IPv4(10, 0, 0, 5)) {
		t.Errorf("yiaddr = %s, want 10.0.0.5", d.YourIPAddr)
	}
	if ones, _ := d.SubnetMask().Size(); ones != 24 { // option 1
		t.Errorf("option 1 mask = /%d, want /24", ones)
	}
	if r := d.Router(); len(r) != 1 || !r[0].Equal(net.IPv4(10, 0, 0, 1)) { // option 3
		t.Errorf("option 3 router = %v, want [10.0.0.1]", r)
	}
	if dns := d.DNS(); len(dns) != 2 || !dns[0].Equal(net.IPv4(10, 0, 0, 3)) || !dns[1].Equal(net.IPv4(9, 9, 9, 9)) { // option 6
		t.Errorf("option 6 dns = %v, want [10.0.0.3 9.9.9.9]", dns)
	}
	if mtu := d.GetOneOption(dhcpv4.OptionInterfaceMTU); !bytes.Equal(mtu, []byte{0x05, 0xaa}) { // option 26: 1450
		t.Errorf("option 26 mtu = %x, want 05aa", mtu)
	}
	if lease := d.IPAddressLeaseTime(0); lease != DefaultLeaseSeconds*time.Second { // option 51
		t.Errorf("option 51 lease = %v, want %ds", lease, DefaultLeaseSeconds)
	}
	if sid := d.ServerIdentifier(); !sid.Equal(net.IPv4(10, 0, 0, 2)) { // option 54
		t.Errorf("option 54 server = %v, want 10.0.0.2", sid)
	}
	routes := d.ClasslessStaticRoute() // option 121
	want := map[string]string{"192.168.0.0/16": "10.0.0.254", "0.0.0.0/0": "10.0.0.1"}
	if len(routes) != len(want) {
		t.Errorf("option 121 routes = %v, want %v", routes, want)
	}
	for _, r := range routes {
		if want[r.Dest.String()] != r.Router.String() {
			t.Errorf("option 121 route %s via %s, want %v", r.Dest, r.Router, want)
		}
	}
}

// TestDHCPExchange runs a whole DORA exchange, then a renewal and a
// release, with messages built by insomniacslk/dhcp as a real client
// would, and decodes the answers with the same library.
func TestDHCPExchange(t *testing.T) {
	w := parseWorld(t, dhcpTopology)
	vm := w.ports["vm"]
	hw := net.HardwareAddr(vm.MAC[:])
	bcast := netip.MustParseAddr("255.255.255.255")
	zero := netip.IPv4Unspecified()

	discover, err := dhcpv4.NewDiscovery(hw, dhcpv4.WithRequestedOptions(dhcpv4.OptionInterfaceMTU, dhcpv4.OptionClasslessStaticRoute))
	if err != nil {
		t.Fatal(err)
	}
	offer := reply(t, w, dhcpFrame(t, w, "vm", discover, zero, bcast, packet.BroadcastMAC), packet.BroadcastMAC, bcast)
	checkLease(t, offer, dhcpv4.MessageTypeOffer, discover.TransactionID)

	request, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	ack := reply(t, w, dhcpFrame(t, w, "vm", request, zero, bcast, packet.BroadcastMAC), packet.BroadcastMAC, bcast)
	checkLease(t, ack, dhcpv4.MessageTypeAck, request.TransactionID)

	// Renewal (RFC 2131 4.4.5): unicast from the leased address to the
	// server, with ciaddr; the ACK is unicast back.
	renew, err := dhcpv4.NewRenewFromAck(ack)
	if err != nil {
		t.Fatal(err)
	}
	leased := netip.MustParseAddr("10.0.0.5")
	server := netip.MustParseAddr("10.0.0.2")
	reack := reply(t, w, dhcpFrame(t, w, "vm", renew, leased, server, DHCPServerMAC(0x0a0b0c)), vm.MAC, leased)
	checkLease(t, reack, dhcpv4.MessageTypeAck, renew.TransactionID)

	// A request for someone else's address is refused.
	bad, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 6))))
	if err != nil {
		t.Fatal(err)
	}
	nak := reply(t, w, dhcpFrame(t, w, "vm", bad, zero, bcast, packet.BroadcastMAC), packet.BroadcastMAC, bcast)
	if nak.MessageType() != dhcpv4.MessageTypeNak || !nak.YourIPAddr.IsUnspecified() {
		t.Errorf("request for 10.0.0.6 got %s yiaddr %s, want NAK with no address", nak.MessageType(), nak.YourIPAddr)
	}

	release, err := dhcpv4.NewReleaseFromACK(ack)
	if err != nil {
		t.Fatal(err)
	}
	r := Simulate(w.snap, w.local, dhcpFrame(t, w, "vm", release, leased, server, DHCPServerMAC(0x0a0b0c)), w.st, 0)
	if r.Verdict != Consumed || len(r.Emit) != 0 {
		t.Errorf("RELEASE = %s with %d emits, want consumed silently", r.Verdict, len(r.Emit))
	}
}

// TestDHCPSubnetDefaults: a port whose DHCP subnet has no server address
// is served from the gateway, with the subnet's lease.
func TestDHCPSubnetDefaults(t *testing.T) {
	w := parseWorld(t, dhcpTopology)
	vm2 := w.ports["vm2"]
	discover, err := dhcpv4.NewDiscovery(net.HardwareAddr(vm2.MAC[:]))
	if err != nil {
		t.Fatal(err)
	}
	bcast := netip.MustParseAddr("255.255.255.255")
	offer := reply(t, w, dhcpFrame(t, w, "vm2", discover, netip.IPv4Unspecified(), bcast, packet.BroadcastMAC), packet.BroadcastMAC, bcast)
	if !offer.YourIPAddr.Equal(net.IPv4(10, 0, 1, 6)) || !offer.ServerIdentifier().Equal(net.IPv4(10, 0, 1, 1)) || offer.IPAddressLeaseTime(0) != 600*time.Second {
		t.Errorf("offer yiaddr %s server %s lease %v, want 10.0.1.6 from 10.0.1.1 for 600s", offer.YourIPAddr, offer.ServerIdentifier(), offer.IPAddressLeaseTime(0))
	}
}

// TestDHCPBadInput: broken DHCP frames are dropped, never answered, never
// cached.
func TestDHCPBadInput(t *testing.T) {
	w := parseWorld(t, dhcpTopology)
	vm := w.ports["vm"]
	good, err := dhcpv4.NewDiscovery(net.HardwareAddr(vm.MAC[:]))
	if err != nil {
		t.Fatal(err)
	}
	payload := good.ToBytes()
	badCookie := bytes.Clone(payload)
	badCookie[236] = 0
	tests := []struct {
		name    string
		payload []byte
	}{
		{name: "truncated-bootp", payload: payload[:100]},
		{name: "bad-magic-cookie", payload: badCookie},
		{name: "empty", payload: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := packet.AppendUDP4(nil, vm.MAC, packet.BroadcastMAC, netip.AddrPortFrom(netip.IPv4Unspecified(), 68),
				netip.AddrPortFrom(netip.MustParseAddr("255.255.255.255"), 67), 64, tt.payload)
			pkt := Packet{Ingress: vm.ID, Frame: frame}
			if err := packet.Parse(frame, vm.TunnelKey, &pkt.Match); err != nil {
				t.Fatal(err)
			}
			r := Simulate(w.snap, w.local, pkt, w.st, 0)
			if r.Verdict != Drop || r.Reason != ReasonDHCPMalformed || r.Cacheable || len(r.Emit) != 0 {
				t.Errorf("Simulate(%s) = %s %q cacheable %t emits %d, want an uncached drop %q", tt.name, r.Verdict, r.Reason, r.Cacheable, len(r.Emit), ReasonDHCPMalformed)
			}
		})
	}
}
