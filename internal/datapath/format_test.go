package datapath

import (
	"net/netip"
	"testing"
	"time"

	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

func TestFormatFlow(t *testing.T) {
	tcpTo22 := func() packet.FlowMatch {
		var m packet.FlowMatch
		m.InPort = 3
		m.EthDst = [6]byte{0xfa, 0x16, 0x3e, 0, 0, 5}
		m.EthType = packet.EthTypeIPv4
		m.SetDst(netip.MustParseAddr("10.0.0.5"))
		m.IPProto = packet.ProtoTCP
		m.DstPort = 22
		return m
	}
	routed := func() (as flowtable.Actions) {
		as.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: [6]byte{0xfa, 0x16, 0x3e, 0, 0, 1}})
		as.Append(flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1})
		as.Append(flowtable.Action{Kind: flowtable.ActSetIPv4Src, Remote: [4]byte{192, 0, 2, 10}})
		as.Append(flowtable.Action{Kind: flowtable.ActSetL4Src, RemotePort: 40001})
		as.Append(flowtable.Action{Kind: flowtable.ActTunnel, Remote: [4]byte{10, 250, 0, 2}, Key: 17})
		return as
	}
	prefixMask := packet.MaskOf(packet.FEthType | packet.FIPDst)
	prefixMask.IPDst[15] = 0
	oddMask := packet.MaskOf(packet.FEthType | packet.FIPDst)
	oddMask.IPDst[14] = 0
	var ping packet.FlowMatch
	ping.EthType = packet.EthTypeIPv4
	ping.IPProto = packet.ProtoICMP
	ping.SrcPort = 8
	ping.ICMPID = 77
	var v6 packet.FlowMatch
	v6.EthType = packet.EthTypeIPv6
	v6.SetSrc(netip.MustParseAddr("fd00::1"))
	tests := []struct {
		name string
		flow FlowInfo
		want string
	}{
		{
			name: "routed tcp",
			flow: FlowInfo{Match: tcpTo22(), Mask: packet.MaskOf(packet.FInPort | packet.FEthDst | packet.FEthType | packet.FIPDst | packet.FIPProto | packet.FDstPort),
				Actions: routed(), Packets: 12, Bytes: 1400, IdleNano: int64(1234 * time.Millisecond)},
			want: "in_port=3 eth_dst=fa:16:3e:00:00:05 ip ip_dst=10.0.0.5 tcp dst_port=22 actions=set_eth_src:fa:16:3e:00:00:01,dec_ttl,set_ip_src:192.0.2.10,set_l4_src:40001,tunnel(10.250.0.2,key=17) packets=12 bytes=1400 idle=1.2s",
		},
		{
			name: "prefix mask and drop",
			flow: FlowInfo{Match: tcpTo22().Masked(prefixMask), Mask: prefixMask, IdleNano: int64(5 * time.Millisecond)},
			want: "ip ip_dst=10.0.0.0/24 actions=drop packets=0 bytes=0 idle=5ms",
		},
		{
			name: "non-prefix mask",
			flow: FlowInfo{Match: tcpTo22().Masked(oddMask), Mask: oddMask},
			want: "ip ip_dst=10.0.0.5/255.255.0.255 actions=drop packets=0 bytes=0 idle=0s",
		},
		{
			name: "icmp echo with output and flood",
			flow: FlowInfo{Match: ping, Mask: packet.MaskOf(packet.FEthType | packet.FIPProto | packet.FSrcPort | packet.FICMPID),
				Actions: func() (as flowtable.Actions) {
					as.Append(flowtable.Action{Kind: flowtable.ActSetL4Dst, RemotePort: 5})
					as.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: 2})
					as.Append(flowtable.Action{Kind: flowtable.ActFlood, Key: 9})
					as.Append(flowtable.Action{Kind: flowtable.ActDecTTL, Port: 2})
					return as
				}()},
			want: "ip icmp icmp_type=8 icmp_id=77 actions=set_l4_dst:5,output:2,flood(key=9),dec_ttl:2 packets=0 bytes=0 idle=0s",
		},
		{
			name: "ipv6",
			flow: FlowInfo{Match: v6, Mask: packet.MaskOf(packet.FEthType | packet.FIPSrc)},
			want: "ipv6 ip_src=fd00::1 actions=drop packets=0 bytes=0 idle=0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatFlow(tt.flow); got != tt.want {
				t.Errorf("FormatFlow() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
