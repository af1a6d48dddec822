package packet_test

import (
	"fmt"
	"net/netip"

	"hivenet/internal/packet"
)

func ExampleParse() {
	vm := [6]byte{0xfa, 0x16, 0x3e, 0, 0, 1}
	gw := [6]byte{0xfa, 0x16, 0x3e, 0, 0, 2}
	frame := packet.AppendUDP4(nil, vm, gw,
		netip.MustParseAddrPort("10.0.0.5:33000"), netip.MustParseAddrPort("10.0.0.1:53"), 64, []byte("query"))

	var m packet.FlowMatch
	if err := packet.Parse(frame, 3, &m); err != nil {
		fmt.Println("drop:", err)
		return
	}
	fmt.Println(m.InPort, m.Src(), m.SrcPort, "->", m.Dst(), m.DstPort, "proto", m.IPProto)

	err := packet.Parse(frame[:30], 3, &m)
	fmt.Println(err, m == packet.FlowMatch{})
	// Output:
	// 3 10.0.0.5 33000 -> 10.0.0.1 53 proto 17
	// packet: truncated true
}

func ExampleAppendDHCPReply() {
	r := &packet.DHCPReply{
		Type: packet.DHCPOffer, XID: 0x1234,
		ClientMAC: [6]byte{0xfa, 0x16, 0x3e, 0, 0, 1}, ServerMAC: [6]byte{0xfa, 0x16, 0x3e, 0, 0, 2},
		YourIP: netip.MustParseAddr("10.0.0.5"), ServerIP: netip.MustParseAddr("10.0.0.2"),
		PrefixLen: 24, Router: netip.MustParseAddr("10.0.0.1"), LeaseSeconds: 86400, MTU: 1450,
	}
	frame := packet.AppendDHCPReply(nil, r)

	var m packet.FlowMatch
	var l packet.Layers
	if err := packet.ParseLayers(frame, &m, &l); err != nil {
		panic(err)
	}
	var d packet.DHCPMessage
	if err := packet.ParseDHCP(frame[l.Payload:l.End], &d); err != nil {
		panic(err)
	}
	fmt.Println(m.Dst(), m.SrcPort, "->", m.DstPort, "type", d.Type, "yiaddr", d.YIAddr, "server", d.ServerID, "bytes", l.End-l.Payload)
	// Output:
	// 255.255.255.255 67 -> 68 type 2 yiaddr 10.0.0.5 server 10.0.0.2 bytes 300
}
