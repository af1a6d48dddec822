package simulation

// The L3 part of the test format (see topo_test.go for the rest).
//
// Topology lines:
//
//	bridge ext key=900 external physnet=physnet1
//	router r1 [down] [gw=PORT] [nexthop=IP] [snat=IP] [route=DST:NH]...
//	port rp-a net-a mac=... ip=sub-a:10.0.0.1 router=r1   a router port (no host, no port security)
//	port vm-a1 net-a ... in=CHAIN out=CHAIN                 the port's inbound/outbound chains
//	fip NAME BRIDGE ADDR [router=R port=P fixed=IP]
//	chain NAME [default=accept|drop|reject]
//	rule CHAIN ACTION [jump=CHAIN] [type=ipv4|ipv6] [proto=tcp|udp|icmp|N] [src=CIDR] [dst=CIDR]
//	     [src_group=G] [dst_group=G] [sport=MIN-MAX] [dport=MIN-MAX] [icmp=TYPE/CODE] (-1: any)
//	     [ct=new,est,reply] [comment=WORD]
//	group NAME IP,IP,...
//	uplink HOST PHYSNET key=N iface=NAME
//	arp BRIDGE IP MAC                                     a shared router ARP entry
//
// Flow state (the fake View), after the objects they name:
//
//	ct BRIDGE PROTO SRC:SPORT DST:DPORT                   a tracked connection (forward key), zone of BRIDGE
//	nat ROUTER PROTO OSRC:OSPORT ODST:ODPORT XSRC:XSPORT XDST:XDPORT   a NAT binding
//	snatblocks ADDR FIRST,FIRST...                        this host's SNAT blocks for ADDR
//	snatfull ADDR                                         every translated key of ADDR is in use
//
// For ICMP keys the ports are the echo identifier (SrcPort of a request).
//
// Packet fields: from=uplink:HOST/PHYSNET, ttl=N, id=N (echo identifier),
// frag=later (a non-first fragment: no ports), ct=new|est|rpl (the state a
// datapath that tracks connections found: Match.CTState; rpl is est|rpl),
// icmp=TYPE/CODE, frame=ip (build the IPv4 frame), inner=PROTO:SRC:SPORT>DST:DPORT
// (the header embedded in an ICMP error frame).

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"hivenet/internal/flowstate"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

func routerID(name string) string { return "rt-" + name }
func chainID(name string) string  { return "ch-" + name }
func groupID(name string) string  { return "ag-" + name }

// l3Parse is the parser state of the L3 objects.
type l3Parse struct {
	keys    map[string]uint32 // bridge name -> flood key
	routers []string
	chains  []string
	addrs   []netip.Addr
	macs    []topology.MAC // of ARP entries
}

func (l *l3Parse) bridgeKey(name string, key uint32) {
	if l.keys == nil {
		l.keys = map[string]uint32{}
	}
	l.keys[name] = key
}

// noteAddrs remembers every IPv4 address in a topology word, to name the
// ARP tags of the next hops.
func (l *l3Parse) noteAddrs(word string) {
	for _, part := range strings.FieldsFunc(word, func(r rune) bool { return r == '=' || r == ':' || r == ',' || r == '/' || r == '>' }) {
		if a, err := netip.ParseAddr(part); err == nil && a.Is4() && !slices.Contains(l.addrs, a) {
			l.addrs = append(l.addrs, a)
		}
	}
}

// fakeView is the flow state of a test: a map, not the real tables.
type fakeView struct {
	conns  map[flowstate.Key]bool
	nats   []flowstate.NAT
	blocks map[netip.Addr][]uint16
	full   map[netip.Addr]bool
}

func newFakeView() *fakeView {
	return &fakeView{conns: map[flowstate.Key]bool{}, blocks: map[netip.Addr][]uint16{}, full: map[netip.Addr]bool{}}
}

func (v *fakeView) ConnState(k flowstate.Key) topology.CTState {
	switch {
	case v.conns[k]:
		return topology.CTEstablished
	case v.conns[k.Reverse()]:
		return topology.CTEstablished | topology.CTReply
	}
	return topology.CTNew
}

func (v *fakeView) NATByOrig(k flowstate.Key) (flowstate.NAT, bool) {
	for _, n := range v.nats {
		if n.Orig == k {
			return n, true
		}
	}
	return flowstate.NAT{}, false
}

func (v *fakeView) NATByReply(k flowstate.Key) (flowstate.NAT, bool) {
	for _, n := range v.nats {
		if n.Xlat.Reverse() == k {
			return n, true
		}
	}
	return flowstate.NAT{}, false
}

func (v *fakeView) SNATInUse(k flowstate.Key) bool {
	if v.full[k.SrcAddr()] {
		return true
	}
	for _, n := range v.nats {
		if n.Xlat == k {
			return true
		}
	}
	return false
}

func (v *fakeView) SNATBlocks(a netip.Addr) []uint16 { return v.blocks[a] }

var _ flowstate.View = (*fakeView)(nil)

func protoNum(s string) (uint8, error) {
	switch s {
	case "tcp":
		return packet.ProtoTCP, nil
	case "udp":
		return packet.ProtoUDP, nil
	case "icmp":
		return packet.ProtoICMP, nil
	}
	v, err := strconv.ParseUint(s, 0, 8)
	return uint8(v), err
}

// parseKey parses PROTO and ADDR:PORT ADDR:PORT into a key of zone.
func parseKey(zone uint32, proto, src, dst string) (flowstate.Key, error) {
	p, err := protoNum(proto)
	if err != nil {
		return flowstate.Key{}, err
	}
	s, err := netip.ParseAddrPort(src)
	if err != nil {
		return flowstate.Key{}, err
	}
	d, err := netip.ParseAddrPort(dst)
	if err != nil {
		return flowstate.Key{}, err
	}
	return flowstate.Key{Zone: zone, Proto: p, Src: s.Addr().As16(), Dst: d.Addr().As16(), SrcPort: s.Port(), DstPort: d.Port()}, nil
}

func parseRange(s string) (topology.PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return topology.PortRange{}, err
	}
	b, err := strconv.ParseUint(hi, 10, 16)
	return topology.PortRange{Min: uint16(a), Max: uint16(b)}, err
}

var actions = map[string]topology.RuleAction{"accept": topology.RuleAccept, "drop": topology.RuleDrop, "reject": topology.RuleReject,
	"jump": topology.RuleJump, "return": topology.RuleReturn}

// parseL3 parses one L3 or flow-state line.
func (w *world) parseL3(t testing.TB, f []string, kv map[string]string, flags map[string]bool, changes *[]topology.Change) error {
	t.Helper()
	need := func(n int, usage string) error {
		if len(f) < n {
			return fmt.Errorf("want: %s", usage)
		}
		return nil
	}
	switch f[0] {
	case "router":
		if err := need(2, "router NAME ..."); err != nil {
			return err
		}
		r := &topology.Router{ID: routerID(f[1]), Name: f[1], AdminUp: !flags["down"]}
		if v, ok := kv["gw"]; ok {
			r.GatewayPortID = portID(v)
		}
		if v, ok := kv["nexthop"]; ok {
			r.DefaultNextHop = mustAddr(t, v)
		}
		if v, ok := kv["snat"]; ok {
			r.SNAT, r.SNATAddr = true, mustAddr(t, v)
		}
		for _, rt := range kvAll(f[1:], "route") {
			dst, nh, ok := strings.Cut(rt, ":")
			if !ok {
				return fmt.Errorf("route wants DST:NEXTHOP")
			}
			r.Routes = append(r.Routes, topology.Route{Dst: netip.MustParsePrefix(dst), NextHop: mustAddr(t, nh)})
		}
		*changes = append(*changes, topology.Change{Kind: topology.KindRouter, ID: r.ID, Router: r})
		w.names[topology.TagRouter(r.ID)] = "router(" + f[1] + ")"
		w.l3.routers = append(w.l3.routers, f[1])
	case "fip":
		if err := need(4, "fip NAME BRIDGE ADDR [router=R port=P fixed=IP]"); err != nil {
			return err
		}
		fip := &topology.FloatingIP{ID: "fip-" + f[1], Addr: mustAddr(t, f[3]), BridgeID: bridgeID(f[2])}
		if v, ok := kv["router"]; ok {
			fip.RouterID = routerID(v)
		}
		if v, ok := kv["port"]; ok {
			fip.PortID = portID(v)
		}
		if v, ok := kv["fixed"]; ok {
			fip.FixedIP = mustAddr(t, v)
		}
		*changes = append(*changes, topology.Change{Kind: topology.KindFloatingIP, ID: fip.ID, FloatingIP: fip})
	case "chain":
		if err := need(2, "chain NAME [default=ACTION]"); err != nil {
			return err
		}
		c := &topology.Chain{ID: chainID(f[1]), Name: f[1]}
		if v, ok := kv["default"]; ok {
			c.Default = actions[v]
		}
		*changes = append(*changes, topology.Change{Kind: topology.KindChain, ID: c.ID, Chain: c})
		w.names[topology.TagChain(c.ID)] = "chain(" + f[1] + ")"
		w.l3.chains = append(w.l3.chains, f[1])
	case "rule":
		if err := need(3, "rule CHAIN ACTION ..."); err != nil {
			return err
		}
		var c *topology.Chain
		for _, ch := range *changes {
			if ch.Kind == topology.KindChain && ch.ID == chainID(f[1]) {
				c = ch.Chain
			}
		}
		if c == nil {
			return fmt.Errorf("rule before its chain %s", f[1])
		}
		r := topology.Rule{ID: fmt.Sprintf("%s-%d", f[1], len(c.Rules)), Action: actions[f[2]], ICMPType: -1, ICMPCode: -1, Comment: kv["comment"]}
		if r.Action == 0 {
			return fmt.Errorf("unknown action %q", f[2])
		}
		if v, ok := kv["jump"]; ok {
			r.JumpChain = chainID(v)
		}
		switch kv["type"] {
		case "ipv4":
			r.EthType = packet.EthTypeIPv4
		case "ipv6":
			r.EthType = packet.EthTypeIPv6
		}
		if v, ok := kv["proto"]; ok {
			p, err := protoNum(v)
			if err != nil {
				return err
			}
			r.Proto = p
		}
		if v, ok := kv["src"]; ok {
			r.SrcPrefix = netip.MustParsePrefix(v)
		}
		if v, ok := kv["dst"]; ok {
			r.DstPrefix = netip.MustParsePrefix(v)
		}
		if v, ok := kv["src_group"]; ok {
			r.SrcGroup = groupID(v)
		}
		if v, ok := kv["dst_group"]; ok {
			r.DstGroup = groupID(v)
		}
		var err error
		if v, ok := kv["sport"]; ok {
			if r.SrcPorts, err = parseRange(v); err != nil {
				return err
			}
		}
		if v, ok := kv["dport"]; ok {
			if r.DstPorts, err = parseRange(v); err != nil {
				return err
			}
		}
		if v, ok := kv["icmp"]; ok {
			typ, code, _ := strings.Cut(v, "/")
			r.ICMPType = int16(atoi(t, typ))
			if code != "" {
				r.ICMPCode = int16(atoi(t, code))
			}
		}
		for _, st := range strings.Split(kv["ct"], ",") {
			switch st {
			case "new":
				r.CTState |= topology.CTNew
			case "est":
				r.CTState |= topology.CTEstablished
			case "reply":
				r.CTState |= topology.CTReply
			case "":
			default:
				return fmt.Errorf("unknown ct state %q", st)
			}
		}
		c.Rules = append(c.Rules, r)
	case "group":
		if err := need(3, "group NAME IP,IP..."); err != nil {
			return err
		}
		g := &topology.IPAddrGroup{ID: groupID(f[1])}
		for _, a := range strings.Split(f[2], ",") {
			g.Addrs = append(g.Addrs, mustAddr(t, a))
		}
		*changes = append(*changes, topology.Change{Kind: topology.KindAddrGroup, ID: g.ID, AddrGroup: g})
		w.names[topology.TagAddrGroup(g.ID)] = "group(" + f[1] + ")"
	case "uplink":
		if err := need(3, "uplink HOST PHYSNET key=N iface=NAME"); err != nil {
			return err
		}
		u := &topology.Uplink{Host: f[1], PhysNet: f[2], Interface: kv["iface"], TunnelKey: uint32(atoi(t, kv["key"]))}
		*changes = append(*changes, topology.Change{Kind: topology.KindUplink, ID: u.ID(), Uplink: u})
		w.names[topology.TagUplinks(u.PhysNet)] = "uplinks(" + u.PhysNet + ")"
		w.names[topology.TagHost(u.Host)] = "host(" + u.Host + ")"
		w.names[topology.TagPort(UplinkPortID(u))] = "port(" + UplinkPortID(u) + ")"
	case "arp":
		if err := need(4, "arp BRIDGE IP MAC"); err != nil {
			return err
		}
		e := &topology.ARPEntry{BridgeID: bridgeID(f[1]), IP: mustAddr(t, f[2]), MAC: mustMAC(t, f[3])}
		w.l3.macs = append(w.l3.macs, e.MAC)
		*changes = append(*changes, topology.Change{Kind: topology.KindARP, ID: e.ID(), ARP: e})
	case "ct":
		if err := need(5, "ct BRIDGE PROTO SRC:PORT DST:PORT"); err != nil {
			return err
		}
		zone, ok := w.l3.keys[f[1]]
		if !ok {
			return fmt.Errorf("ct: unknown bridge %s", f[1])
		}
		k, err := parseKey(zone, f[2], f[3], f[4])
		if err != nil {
			return err
		}
		w.st.conns[k] = true
	case "nat":
		if err := need(7, "nat ROUTER PROTO OSRC ODST XSRC XDST"); err != nil {
			return err
		}
		z := flowstate.RouterZone(routerID(f[1]))
		o, err := parseKey(z, f[2], f[3], f[4])
		if err != nil {
			return err
		}
		x, err := parseKey(z, f[2], f[5], f[6])
		if err != nil {
			return err
		}
		w.st.nats = append(w.st.nats, flowstate.NAT{Orig: o, Xlat: x})
	case "snatblocks":
		if err := need(3, "snatblocks ADDR FIRST,FIRST..."); err != nil {
			return err
		}
		a := mustAddr(t, f[1])
		for _, b := range strings.Split(f[2], ",") {
			w.st.blocks[a] = append(w.st.blocks[a], uint16(atoi(t, b)))
		}
	case "snatfull":
		if err := need(2, "snatfull ADDR"); err != nil {
			return err
		}
		w.st.full[mustAddr(t, f[1])] = true
	default:
		return fmt.Errorf("unknown object %q", f[0])
	}
	return nil
}

// nameL3Tags names the ARP tags of every address in the topology on
// every bridge.
func (w *world) nameL3Tags() {
	for _, b := range w.bridges {
		for _, a := range w.l3.addrs {
			w.names[topology.TagARP(b, a)] = "arp(" + strings.TrimPrefix(b, "br-") + "," + a.String() + ")"
		}
		for _, m := range w.l3.macs {
			w.names[topology.TagMAC(b, m)] = "mac(" + strings.TrimPrefix(b, "br-") + "," + m.String() + ")"
		}
	}
}

// zoneName names a flow-state zone: a bridge's flood key or a router.
func (w *world) zoneName(z uint32) string {
	for name, k := range w.l3.keys {
		if k == z {
			return "bridge " + name
		}
	}
	for _, r := range w.l3.routers {
		if flowstate.RouterZone(routerID(r)) == z {
			return "router " + r
		}
	}
	return fmt.Sprintf("zone %d", z)
}

// renderL3 prints the L3 parts of a Result.
func (w *world) renderL3(b *strings.Builder, r *Result) {
	if rw := &r.Rewrite; !rw.IsZero() {
		var parts []string
		if rw.EthSrc != nil {
			parts = append(parts, "eth_src="+rw.EthSrc.String())
		}
		if rw.EthDst != nil {
			parts = append(parts, "eth_dst="+rw.EthDst.String())
		}
		if rw.DecTTL != 0 {
			parts = append(parts, fmt.Sprintf("dec_ttl=%d", rw.DecTTL))
		}
		if rw.IPSrc.IsValid() {
			parts = append(parts, "ip_src="+rw.IPSrc.String())
		}
		if rw.IPDst.IsValid() {
			parts = append(parts, "ip_dst="+rw.IPDst.String())
		}
		if rw.L4Src != 0 {
			parts = append(parts, fmt.Sprintf("l4_src=%d", rw.L4Src))
		}
		if rw.L4Dst != 0 {
			parts = append(parts, fmt.Sprintf("l4_dst=%d", rw.L4Dst))
		}
		fmt.Fprintf(b, "rewrite: %s\n", strings.Join(parts, " "))
	}
	for _, st := range r.State {
		switch {
		case st.Conn != nil:
			fmt.Fprintf(b, "state: conntrack %s: %s -> hosts %v\n", w.zoneName(st.Conn.Zone), keyString(*st.Conn), st.Hosts)
		case st.NAT != nil:
			fmt.Fprintf(b, "state: nat %s: %s => %s -> hosts %v\n", w.zoneName(st.NAT.Orig.Zone), keyString(st.NAT.Orig), keyString(st.NAT.Xlat), st.Hosts)
		}
	}
	if c := r.Commit; c != nil {
		fmt.Fprintf(b, "commit: %s -> %s\n", w.zoneName(c.ZoneIn), w.zoneName(c.ZoneOut))
	}
	for _, e := range r.LearnARP {
		fmt.Fprintf(b, "learn-arp: bridge %s %s is-at %s\n", strings.TrimPrefix(e.BridgeID, "br-"), e.IP, e.MAC)
	}
	if r.NeedSNATBlock.IsValid() {
		fmt.Fprintf(b, "need-snat-block: %s\n", r.NeedSNATBlock)
	}
}

// describeL3Frame summarises ICMP and TCP frames, checking every checksum
// independently of the builders ("csum ok" or "BAD csum").
func describeL3Frame(f []byte, m *packet.FlowMatch, l *packet.Layers) string {
	if m.EthType != packet.EthTypeIPv4 || l.L4 < 0 {
		return ""
	}
	ipOK := packet.Checksum(f[l.L3:l.L4], 0) == 0
	eth := fmt.Sprintf("eth %s -> %s ip %s -> %s ttl %d", topology.MAC(m.EthSrc), topology.MAC(m.EthDst), m.Src(), m.Dst(), m.IPTTL)
	ok := func(b bool) string {
		if b {
			return "csum ok"
		}
		return "BAD csum"
	}
	switch m.IPProto {
	case packet.ProtoICMP:
		icmpOK := packet.Checksum(f[l.L4:l.End], 0) == 0
		s := fmt.Sprintf("icmp type %d code %d %s", m.SrcPort, m.DstPort, eth)
		if m.SrcPort == packet.ICMPEchoRequest || m.SrcPort == packet.ICMPEchoReply {
			s += fmt.Sprintf(" id %d seq %d data %q", m.ICMPID, binary.BigEndian.Uint16(f[l.L4+6:]), f[l.Payload:l.End])
		} else if io := l.L4 + 8; io+20 <= l.End {
			ihl := int(f[io]&0x0f) * 4
			in := f[io:l.End]
			// The embedded header is quoted as received: its checksum is
			// reported, not required.
			embOK := "embedded csum ok"
			if ihl > len(in) || packet.Checksum(in[:ihl], 0) != 0 {
				embOK = "embedded csum wrong"
			}
			s += fmt.Sprintf(" embedded proto %d %s -> %s (%s)", in[9], netip.AddrFrom4([4]byte(in[12:16])), netip.AddrFrom4([4]byte(in[16:20])), embOK)
			if l4 := in[min(ihl, len(in)):]; len(l4) >= 8 {
				switch in[9] {
				case packet.ProtoTCP, packet.ProtoUDP:
					s += fmt.Sprintf(" ports %d > %d", binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]))
				case packet.ProtoICMP:
					s += fmt.Sprintf(" icmp type %d id %d", l4[0], binary.BigEndian.Uint16(l4[4:]))
				}
			}
		}
		return s + " (" + ok(ipOK && icmpOK) + ")"
	case packet.ProtoTCP:
		t := f[l.L4:l.End]
		tcpOK := packet.Checksum(t, packet.PseudoHeaderChecksum(packet.ProtoTCP, m.Src(), m.Dst(), uint16(len(t)))) == 0
		return fmt.Sprintf("tcp %d > %d flags 0x%02x seq %d ack %d %s (%s)", m.SrcPort, m.DstPort, t[13], binary.BigEndian.Uint32(t[4:]),
			binary.BigEndian.Uint32(t[8:]), eth, ok(ipOK && tcpOK))
	}
	return ""
}

// ipFrame builds the IPv4 frame of m: an echo with a short payload, a TCP
// SYN, a UDP datagram, or an ICMP error embedding inner
// (PROTO:SRC:SPORT>DST:DPORT, with a valid embedded checksum).
func (w *world) ipFrame(t testing.TB, desc string, m *packet.FlowMatch, inner string) []byte {
	t.Helper()
	var f []byte
	switch {
	case m.IPProto == packet.ProtoICMP && (m.SrcPort == packet.ICMPEchoRequest || m.SrcPort == packet.ICMPEchoReply):
		f = packet.AppendICMP4Echo(nil, m.EthSrc, m.EthDst, m.Src(), m.Dst(), m.IPTTL, uint8(m.SrcPort), m.ICMPID, 7, []byte("ping"))
	case m.IPProto == packet.ProtoICMP:
		proto, rest, _ := strings.Cut(inner, ":")
		src, dst, ok := strings.Cut(rest, ">")
		if !ok {
			t.Fatalf("packet %q: inner wants PROTO:SRC:PORT>DST:PORT", desc)
		}
		k, err := parseKey(0, proto, src, dst)
		if err != nil {
			t.Fatalf("packet %q: inner: %v", desc, err)
		}
		var in []byte
		switch k.Proto {
		case packet.ProtoUDP:
			in = packet.AppendUDP4(nil, [6]byte{}, [6]byte{}, netip.AddrPortFrom(k.SrcAddr(), k.SrcPort), netip.AddrPortFrom(k.DstAddr(), k.DstPort), 63, []byte("query"))[14:]
		case packet.ProtoICMP:
			in = packet.AppendICMP4Echo(nil, [6]byte{}, [6]byte{}, k.SrcAddr(), k.DstAddr(), 63, packet.ICMPEchoRequest, k.SrcPort, 7, []byte("ping"))[14:]
		default:
			in = tcpSYN(k.SrcAddr(), k.DstAddr(), k.SrcPort, k.DstPort)
		}
		f = appendICMPError(nil, m.EthSrc, m.EthDst, m.Src(), m.Dst(), uint8(m.SrcPort), uint8(m.DstPort), in)
		f[14+8] = m.IPTTL
		ipChecksum(f[14:])
	case m.IPProto == packet.ProtoUDP:
		f = packet.AppendUDP4(nil, m.EthSrc, m.EthDst, netip.AddrPortFrom(m.Src(), m.SrcPort), netip.AddrPortFrom(m.Dst(), m.DstPort), m.IPTTL, []byte("data"))
	case m.IPProto == packet.ProtoTCP:
		f = make([]byte, 14, 54)
		copy(f[0:6], m.EthDst[:])
		copy(f[6:12], m.EthSrc[:])
		binary.BigEndian.PutUint16(f[12:], packet.EthTypeIPv4)
		f = append(f, tcpSYN(m.Src(), m.Dst(), m.SrcPort, m.DstPort)...)
		f[14+8] = m.IPTTL
		ipChecksum(f[14:])
	default:
		t.Fatalf("packet %q: frame=ip builds icmp, tcp and udp", desc)
	}
	var pm packet.FlowMatch
	err := packet.Parse(f, m.InPort, &pm)
	pm.CTState = m.CTState // the datapath's, not the frame's
	if err != nil || pm != *m {
		t.Fatalf("packet %q: built frame parses to %+v (%v), want %+v", desc, pm, err, *m)
	}
	return f
}

// tcpSYN returns an IPv4 packet (no Ethernet) holding a TCP SYN, seq 1000.
func tcpSYN(src, dst netip.Addr, sport, dport uint16) []byte {
	b := make([]byte, 40)
	putIP4(b, packet.ProtoTCP, 64, src, dst, 20)
	tc := b[20:]
	binary.BigEndian.PutUint16(tc[0:], sport)
	binary.BigEndian.PutUint16(tc[2:], dport)
	binary.BigEndian.PutUint32(tc[4:], 1000)
	tc[12], tc[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(tc[14:], 64240)
	binary.BigEndian.PutUint16(tc[16:], packet.Checksum(tc, packet.PseudoHeaderChecksum(packet.ProtoTCP, src, dst, 20)))
	return b
}

type netipAddr = netip.Addr

// TestUplinkSpread: connections from a VM with a floating IP (1:1 NAT,
// source ports kept), all with even source ports as Linux connect()
// picks them, leave by both gateways of testdata/nat.txtar in fair
// shares: the flow hash is mixed before it is taken modulo the number
// of uplinks (FNV-1a's low bit is only the parity of its inputs, so
// every such connection left by the same gateway).
func TestUplinkSpread(t *testing.T) {
	ar, err := txtar.ParseFile("testdata/nat.txtar")
	if err != nil {
		t.Fatal(err)
	}
	w := parseWorld(t, string(ar.Files[0].Data))
	const n = 64 // nearby ports, as one client's: 40000-40126
	by := map[string]int{}
	for i := range n {
		pkt := w.packet(t, fmt.Sprintf("from=vm-a2 eth_dst=@r1-a ip_dst=198.51.100.7 proto=tcp sport=%d dport=80", 40000+2*i))
		r := Simulate(w.snap, w.local, pkt, w.st, 1e18)
		if r.Verdict != Forward || len(r.Outputs) != 1 {
			t.Fatalf("sport %d: verdict %v, %d outputs", 40000+2*i, r.Verdict, len(r.Outputs))
		}
		by[r.Outputs[0].PortID]++
	}
	t.Logf("%d connections: %v", n, by)
	if len(by) != 2 {
		t.Fatalf("%d connections left by %v, want both uplinks", n, by)
	}
	for u, c := range by {
		if c < n/4 {
			t.Errorf("uplink %s took %d of %d connections (all: %v), want a fair share", u, c, n, by)
		}
	}
}
