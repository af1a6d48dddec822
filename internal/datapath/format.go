package datapath

import (
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// FormatFlow renders a flow on one line, in the spirit of ovs-dpctl:
// the matched fields (only those the mask covers; a partial IP mask as a
// prefix), the actions, then the statistics. For example:
//
//	in_port=3 eth_dst=fa:16:3e:00:00:05 ip ip_dst=10.0.0.5 tcp dst_port=22 actions=set_eth_src:fa:16:3e:00:00:01,dec_ttl,tunnel(10.250.0.2,key=17) packets=12 bytes=1400 idle=1.2s
//
// An empty action list is "actions=drop".
func FormatFlow(f FlowInfo) string {
	var b strings.Builder
	m, k := &f.Match, &f.Mask
	field := func(name, val string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(name)
		if val != "" {
			b.WriteByte('=')
			b.WriteString(val)
		}
	}
	if k.InPort != 0 {
		field("in_port", strconv.FormatUint(uint64(m.InPort), 10))
	}
	if k.EthSrc != ([6]byte{}) {
		field("eth_src", macString(m.EthSrc, k.EthSrc))
	}
	if k.EthDst != ([6]byte{}) {
		field("eth_dst", macString(m.EthDst, k.EthDst))
	}
	v4 := m.EthType == packet.EthTypeIPv4 && k.EthType == 0xffff
	v6 := m.EthType == packet.EthTypeIPv6 && k.EthType == 0xffff
	arp := m.EthType == packet.EthTypeARP && k.EthType == 0xffff
	switch {
	case k.EthType == 0:
	case v4:
		field("ip", "")
	case v6:
		field("ipv6", "")
	case arp:
		field("arp", "")
	default:
		field("eth_type", fmt.Sprintf("%#04x", m.EthType&k.EthType))
	}
	if k.VLAN != 0 {
		field("vlan", strconv.Itoa(int(m.VLAN&k.VLAN)))
	}
	src, dst := "ip_src", "ip_dst"
	if arp {
		src, dst = "arp_spa", "arp_tpa"
	}
	if k.IPSrc != ([16]byte{}) {
		field(src, addrString(m.IPSrc, k.IPSrc, !v6))
	}
	if k.IPDst != ([16]byte{}) {
		field(dst, addrString(m.IPDst, k.IPDst, !v6))
	}
	icmp := false
	if k.IPProto != 0 {
		switch p := m.IPProto & k.IPProto; {
		case arp && k.IPProto == 0xff:
			op := "request"
			if p == packet.ARPReply {
				op = "reply"
			}
			field("arp_op", op)
		case p == packet.ProtoTCP && k.IPProto == 0xff:
			field("tcp", "")
		case p == packet.ProtoUDP && k.IPProto == 0xff:
			field("udp", "")
		case (p == packet.ProtoICMP || p == packet.ProtoICMPv6) && k.IPProto == 0xff:
			icmp = true
			field(map[bool]string{true: "icmp6", false: "icmp"}[p == packet.ProtoICMPv6], "")
		default:
			field("ip_proto", strconv.Itoa(int(p)))
		}
	}
	if k.IPTTL != 0 {
		field("ttl", strconv.Itoa(int(m.IPTTL&k.IPTTL)))
	}
	if k.IPFrag != 0 {
		field("frag", [...]string{"no", "first", "later"}[min(int(m.IPFrag&k.IPFrag), 2)])
	}
	if k.CTState != 0 {
		field("ct_state", ctStateString(m.CTState&k.CTState))
	}
	sp, dp := "src_port", "dst_port"
	if icmp {
		sp, dp = "icmp_type", "icmp_code"
	}
	if k.SrcPort != 0 {
		field(sp, maskedUint(m.SrcPort, k.SrcPort))
	}
	if k.DstPort != 0 {
		field(dp, maskedUint(m.DstPort, k.DstPort))
	}
	if k.ICMPID != 0 {
		field("icmp_id", maskedUint(m.ICMPID, k.ICMPID))
	}
	if k.ARPSha != ([6]byte{}) {
		field("arp_sha", macString(m.ARPSha, k.ARPSha))
	}
	field("actions", FormatActions(&f.Actions))
	field("packets", strconv.FormatUint(f.Packets, 10))
	field("bytes", strconv.FormatUint(f.Bytes, 10))
	field("idle", formatIdle(f.IdleNano))
	return b.String()
}

// FormatActions renders an action list as comma-separated actions, "drop"
// when empty.
func FormatActions(as *flowtable.Actions) string {
	if as.IsDrop() {
		return "drop"
	}
	var b strings.Builder
	for i, a := range as.List() {
		if i > 0 {
			b.WriteByte(',')
		}
		switch a.Kind {
		case flowtable.ActOutput:
			fmt.Fprintf(&b, "output:%d", a.Port)
		case flowtable.ActTunnel:
			fmt.Fprintf(&b, "tunnel(%s", netip.AddrFrom4(a.Remote))
			if a.RemotePort != 0 {
				fmt.Fprintf(&b, ":%d", a.RemotePort)
			}
			fmt.Fprintf(&b, ",key=%d", a.Key)
			if a.Flags&flowtable.FlagCommit != 0 {
				b.WriteString(",commit")
			}
			b.WriteByte(')')
		case flowtable.ActFlood:
			fmt.Fprintf(&b, "flood(key=%d)", a.Key)
		case flowtable.ActSetEthSrc:
			fmt.Fprintf(&b, "set_eth_src:%s", net.HardwareAddr(a.MAC[:]))
		case flowtable.ActSetEthDst:
			fmt.Fprintf(&b, "set_eth_dst:%s", net.HardwareAddr(a.MAC[:]))
		case flowtable.ActDecTTL:
			b.WriteString("dec_ttl")
			if a.Port != 1 {
				fmt.Fprintf(&b, ":%d", a.Port)
			}
		case flowtable.ActSetIPv4Src:
			fmt.Fprintf(&b, "set_ip_src:%s", netip.AddrFrom4(a.Remote))
		case flowtable.ActSetIPv4Dst:
			fmt.Fprintf(&b, "set_ip_dst:%s", netip.AddrFrom4(a.Remote))
		case flowtable.ActSetL4Src:
			fmt.Fprintf(&b, "set_l4_src:%d", a.RemotePort)
		case flowtable.ActSetL4Dst:
			fmt.Fprintf(&b, "set_l4_dst:%d", a.RemotePort)
		case flowtable.ActCTCommit:
			fmt.Fprintf(&b, "ct(commit,zone=%d", a.Key)
			if a.Port != 0 {
				fmt.Fprintf(&b, ",zone=%d", a.Port)
			}
			b.WriteByte(')')
		default:
			fmt.Fprintf(&b, "unknown(%d)", a.Kind)
		}
	}
	return b.String()
}

// macString prints a MAC, with "/mask" unless the mask is all ones.
func macString(v, mask [6]byte) string {
	for i := range v {
		v[i] &= mask[i]
	}
	s := net.HardwareAddr(v[:]).String()
	if mask != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
		s += "/" + net.HardwareAddr(mask[:]).String()
	}
	return s
}

// addrString prints an address masked by mask: IPv4 (the last 4 bytes)
// when is4, as a prefix when the mask is a prefix mask, else as
// addr/mask.
func addrString(v, mask [16]byte, is4 bool) string {
	for i := range v {
		v[i] &= mask[i]
	}
	a, m, bs := netip.AddrFrom16(v), netip.AddrFrom16(mask), mask[:]
	if is4 {
		a, m, bs = netip.AddrFrom4([4]byte(v[12:])), netip.AddrFrom4([4]byte(mask[12:])), mask[12:]
	}
	ones, prefix := 0, true
	for i, x := range bs {
		n := bits.LeadingZeros8(^x)
		ones += n
		if x != 0xff {
			prefix = bits.TrailingZeros8(x) == 8-n && allZero(bs[i+1:])
			break
		}
	}
	switch {
	case ones == len(bs)*8:
		return a.String()
	case prefix:
		return netip.PrefixFrom(a, ones).String()
	}
	return a.String() + "/" + m.String()
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func maskedUint(v, mask uint16) string {
	s := strconv.Itoa(int(v & mask))
	if mask != 0xffff {
		s += "/" + fmt.Sprintf("%#04x", mask)
	}
	return s
}

// formatIdle prints nanoseconds as a duration rounded to 0.1 s (to 1 ms
// below a second).
func formatIdle(ns int64) string {
	d := time.Duration(ns)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// ctStateString renders a FlowMatch.CTState as OVS does: "+new",
// "+est", "+est+rpl" (and "-trk" for a packet the datapath did not track).
func ctStateString(st uint8) string {
	if st == 0 {
		return "-trk"
	}
	var b strings.Builder
	for _, f := range []struct {
		bit  uint8
		name string
	}{{packet.CTNew, "+new"}, {packet.CTEstablished, "+est"}, {packet.CTReply, "+rpl"}} {
		if st&f.bit != 0 {
			b.WriteString(f.name)
		}
	}
	return b.String()
}
