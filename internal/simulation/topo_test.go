package simulation

// A small text format for test topologies and packets, shared by the
// table tests and the golden files.
//
// Topology, one object per line ('#' starts a comment):
//
//	local host1                                   the simulating host
//	host host1 tunnel=192.0.2.1                   a live host
//	bridge net-a key=100 mtu=1450 [down]          key: flood key
//	subnet sub-a net-a 10.0.0.0/24 gw=10.0.0.1 dns=10.0.0.3,8.8.8.8 server=10.0.0.2
//	       lease=3600 route=192.168.0.0/16:10.0.0.254 [nodhcp]
//	port vm-a1 net-a mac=fa:16:3e:00:00:01 ip=sub-a:10.0.0.5 key=17 bound=host1
//	       [down] [nosec] [noname] pair=10.0.0.100/32 pair=10.9.0.0/24@fa:16:3e:00:00:aa
//	learned net-a fa:16:3e:00:00:99 vm-a1
//
// Object IDs are the names with a kind prefix ("id-vm-a1", "br-net-a",
// "sn-sub-a") so that a trace printing an ID instead of a name shows.
// "bound=H" creates the binding of the port on H (and sets HostID).
//
// Packet, one line of key=value fields:
//
//	from=vm-a1                  ingress port (by name; unknown names are unknown ports)
//	eth_src=MAC|@port           default: the ingress port's MAC
//	eth_dst=MAC|@port|bcast     required
//	type=ipv4|ipv6|arp|0xNNNN   default ipv4
//	vlan=N
//	proto=icmp|tcp|udp|N        default icmp (echo request)
//	ip_src=IP|@port ip_dst=IP|@port   default ip_src: the port's first fixed IP
//	sport=N dport=N
//	arp_op=request|reply arp_sha=MAC|@port   defaults: request, eth_src
//	dhcp=discover|request|inform|release|decline [req_ip=IP] [server_id=IP] [ciaddr=IP] [xid=N]
//	                            builds a real frame (with insomniacslk/dhcp)
//	frame=arp                   builds the ARP frame too (else Frame is nil)

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// world is a parsed test topology.
type world struct {
	snap  *topology.Snapshot
	local string
	// names maps tags to stable names for printing.
	names map[topology.Tag]string
	// portName maps port IDs to names.
	portName map[string]string
	ports    map[string]*topology.Port // by name
	bridges  []string                  // bridge IDs
	// st is the flow state the packets are simulated with (see l3_test.go).
	st *fakeView
	// l3 holds the parser state of the L3 objects.
	l3 l3Parse
}

func portID(name string) string   { return "id-" + name }
func bridgeID(name string) string { return "br-" + name }
func subnetID(name string) string { return "sn-" + name }

func mustMAC(t testing.TB, s string) topology.MAC {
	t.Helper()
	m, err := topology.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// parseWorld builds a snapshot from the topology text.
func parseWorld(t testing.TB, text string) *world {
	t.Helper()
	w := &world{names: map[topology.Tag]string{}, portName: map[string]string{}, ports: map[string]*topology.Port{}, st: newFakeView()}
	var changes []topology.Change
	bridgeName := map[string]string{}
	for ln, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("topology line %d %q: %s", ln+1, line, fmt.Sprintf(format, args...))
		}
		kv, flags := splitFields(f[1:])
		switch f[0] {
		case "local":
			w.local = f[1]
		case "host":
			h := &topology.Host{Name: f[1], TunnelPort: 4789, TunnelIP: mustAddr(t, kv["tunnel"]), Conntrack: flags["conntrack"]}
			changes = append(changes, topology.Change{Kind: topology.KindHost, ID: h.Name, Host: h})
			w.names[topology.TagHost(h.Name)] = "host(" + h.Name + ")"
		case "bridge":
			b := &topology.Bridge{ID: bridgeID(f[1]), Name: f[1], AdminUp: !flags["down"], FloodKey: uint32(atoi(t, kv["key"])), MTU: atoi(t, kv["mtu"]),
				External: flags["external"], PhysNet: kv["physnet"]}
			w.l3.bridgeKey(f[1], b.FloodKey)
			changes = append(changes, topology.Change{Kind: topology.KindBridge, ID: b.ID, Bridge: b})
			w.names[topology.TagBridge(b.ID)] = "bridge(" + b.Name + ")"
			w.names[topology.TagFlood(b.ID)] = "flood(" + b.Name + ")"
			bridgeName[b.ID] = b.Name
			w.bridges = append(w.bridges, b.ID)
		case "subnet":
			if len(f) < 4 {
				fail("want: subnet NAME BRIDGE CIDR ...")
			}
			sn := &topology.Subnet{ID: subnetID(f[1]), BridgeID: bridgeID(f[2]), CIDR: netip.MustParsePrefix(f[3]), DHCP: !flags["nodhcp"]}
			if v, ok := kv["gw"]; ok {
				sn.Gateway = mustAddr(t, v)
			}
			if v, ok := kv["server"]; ok {
				sn.DHCPServer = mustAddr(t, v)
			}
			if v, ok := kv["dns"]; ok {
				for _, a := range strings.Split(v, ",") {
					sn.DNS = append(sn.DNS, mustAddr(t, a))
				}
			}
			for _, r := range kvAll(f[1:], "route") {
				dst, gw, ok := strings.Cut(r, ":")
				if !ok {
					fail("route wants DST:GW")
				}
				sn.HostRoutes = append(sn.HostRoutes, topology.HostRoute{Destination: netip.MustParsePrefix(dst), NextHop: mustAddr(t, gw)})
			}
			if v, ok := kv["lease"]; ok {
				sn.LeaseSeconds = uint32(atoi(t, v))
			}
			changes = append(changes, topology.Change{Kind: topology.KindSubnet, ID: sn.ID, Subnet: sn})
			w.names[topology.TagSubnet(sn.ID)] = "subnet(" + f[1] + ")"
		case "port":
			if len(f) < 3 {
				fail("want: port NAME BRIDGE ...")
			}
			p := &topology.Port{ID: portID(f[1]), Name: f[1], BridgeID: bridgeID(f[2]), AdminUp: !flags["down"], PortSecurity: !flags["nosec"],
				MAC: mustMAC(t, kv["mac"]), TunnelKey: uint32(atoi(t, kv["key"]))}
			if flags["noname"] {
				p.Name = ""
			}
			if r, ok := kv["router"]; ok {
				p.RouterID, p.PortSecurity = routerID(r), false
			}
			if c, ok := kv["in"]; ok {
				p.InboundChain = chainID(c)
			}
			if c, ok := kv["out"]; ok {
				p.OutboundChain = chainID(c)
			}
			for _, ip := range kvAll(f[1:], "ip") {
				sn, a, ok := strings.Cut(ip, ":")
				if !ok {
					fail("ip wants SUBNET:ADDR")
				}
				p.FixedIPs = append(p.FixedIPs, topology.FixedIP{SubnetID: subnetID(sn), Addr: mustAddr(t, a)})
			}
			for _, pr := range kvAll(f[1:], "pair") {
				pfx, m, _ := strings.Cut(pr, "@")
				ap := topology.AddressPair{Prefix: netip.MustParsePrefix(pfx)}
				if m != "" {
					ap.MAC = mustMAC(t, m)
				}
				p.AllowedAddressPairs = append(p.AllowedAddressPairs, ap)
			}
			if h, ok := kv["bound"]; ok {
				p.HostID = h
				w.names[topology.TagHost(h)] = "host(" + h + ")"
				changes = append(changes, topology.Change{Kind: topology.KindPortBinding, ID: p.ID, Binding: &topology.PortBinding{PortID: p.ID, Host: h}})
			}
			changes = append(changes, topology.Change{Kind: topology.KindPort, ID: p.ID, Port: p})
			w.ports[f[1]] = p
			w.portName[p.ID] = f[1]
			w.names[topology.TagBridge(p.BridgeID)] = "bridge(" + f[2] + ")"
		case "learned":
			if len(f) != 4 {
				fail("want: learned BRIDGE MAC PORT")
			}
			e := &topology.MACEntry{BridgeID: bridgeID(f[1]), MAC: mustMAC(t, f[2]), PortID: portID(f[3])}
			changes = append(changes, topology.Change{Kind: topology.KindMAC, ID: e.ID(), MAC: e})
			if _, ok := w.portName[e.PortID]; !ok {
				w.portName[e.PortID] = f[3]
			}
		default:
			if err := w.parseL3(t, f, kv, flags, &changes); err != nil {
				fail("%v", err)
			}
		}
		for _, x := range f[1:] {
			w.l3.noteAddrs(x)
		}
	}
	w.snap, _ = topology.Empty().Apply(changes)
	w.nameL3Tags()
	// Name every MAC tag any test may meet: all configured and learned MACs
	// on every bridge.
	var macs []topology.MAC
	w.snap.Ports(func(p *topology.Port) {
		macs = append(macs, p.MAC)
		for _, ap := range p.AllowedAddressPairs {
			macs = append(macs, ap.MAC)
		}
	})
	for _, c := range changes {
		if c.MAC != nil {
			macs = append(macs, c.MAC.MAC)
		}
	}
	for _, b := range w.bridges {
		for _, m := range macs {
			w.names[topology.TagMAC(b, m)] = "mac(" + bridgeName[b] + "," + m.String() + ")"
		}
	}
	for id, name := range w.portName {
		w.names[topology.TagPort(id)] = "port(" + name + ")"
	}
	return w
}

// nameMAC names the MAC tags of m on every bridge (for packet MACs).
func (w *world) nameMAC(m topology.MAC) {
	for _, b := range w.bridges {
		t := topology.TagMAC(b, m)
		if _, ok := w.names[t]; !ok {
			w.names[t] = "mac(" + strings.TrimPrefix(b, "br-") + "," + m.String() + ")"
		}
	}
}

func splitFields(f []string) (map[string]string, map[string]bool) {
	kv, flags := map[string]string{}, map[string]bool{}
	for _, s := range f {
		if k, v, ok := strings.Cut(s, "="); ok {
			kv[k] = v
		} else {
			flags[s] = true
		}
	}
	return kv, flags
}

func kvAll(f []string, key string) []string {
	var out []string
	for _, s := range f {
		if k, v, ok := strings.Cut(s, "="); ok && k == key {
			out = append(out, v)
		}
	}
	return out
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// packet builds a Packet from a description line.
func (w *world) packet(t testing.TB, desc string) Packet {
	t.Helper()
	kv, _ := splitFields(strings.Fields(desc))
	from := w.ports[kv["from"]]
	pkt := Packet{Ingress: portID(kv["from"])}
	if strings.HasPrefix(kv["from"], UplinkPortPrefix) {
		pkt.Ingress = kv["from"]
	}
	w.names[topology.TagPort(pkt.Ingress)] = "port(" + kv["from"] + ")"
	m := &pkt.Match
	if from != nil {
		m.InPort = from.TunnelKey
	} else if u := w.snap.Uplink(strings.TrimPrefix(kv["from"], UplinkPortPrefix)); u != nil {
		m.InPort = u.TunnelKey
	}
	macOf := func(v string) [6]byte {
		t.Helper()
		switch {
		case v == "bcast":
			return topology.BroadcastMAC
		case strings.HasPrefix(v, "@"):
			p := w.ports[v[1:]]
			if p == nil {
				t.Fatalf("packet %q: no port %s", desc, v)
			}
			return p.MAC
		}
		return mustMAC(t, v)
	}
	ipOf := func(v string) netip.Addr {
		t.Helper()
		if strings.HasPrefix(v, "@") {
			p := w.ports[v[1:]]
			if p == nil || len(p.FixedIPs) == 0 {
				t.Fatalf("packet %q: no port with an address %s", desc, v)
			}
			return p.FixedIPs[0].Addr
		}
		return mustAddr(t, v)
	}
	if v, ok := kv["eth_src"]; ok {
		m.EthSrc = macOf(v)
	} else if from != nil {
		m.EthSrc = from.MAC
	}
	if v, ok := kv["eth_dst"]; ok {
		m.EthDst = macOf(v)
	} else {
		t.Fatalf("packet %q: eth_dst is required", desc)
	}
	w.nameMAC(m.EthSrc)
	w.nameMAC(m.EthDst)
	if v, ok := kv["vlan"]; ok {
		m.VLAN = uint16(atoi(t, v))
	}
	src := netip.Addr{}
	if v, ok := kv["ip_src"]; ok {
		src = ipOf(v)
	} else if from != nil && len(from.FixedIPs) > 0 {
		src = from.FixedIPs[0].Addr
	}
	if kv["dhcp"] != "" {
		return w.dhcpPacket(t, pkt, kv)
	}
	switch typ := kv["type"]; typ {
	case "", "ipv4", "ipv6":
		m.EthType = packet.EthTypeIPv4
		if typ == "ipv6" {
			m.EthType = packet.EthTypeIPv6
		}
		if src.IsValid() {
			m.SetSrc(src)
		}
		if v, ok := kv["ip_dst"]; ok {
			m.SetDst(ipOf(v))
		}
		m.IPTTL = 64
		switch p := kv["proto"]; p {
		case "", "icmp":
			m.IPProto = packet.ProtoICMP
			m.SrcPort = 8 // echo request
			if m.EthType == packet.EthTypeIPv6 {
				m.IPProto, m.SrcPort = packet.ProtoICMPv6, 128
			}
		case "tcp":
			m.IPProto = packet.ProtoTCP
		case "udp":
			m.IPProto = packet.ProtoUDP
		default:
			m.IPProto = uint8(atoi(t, p))
		}
		if v, ok := kv["sport"]; ok {
			m.SrcPort = uint16(atoi(t, v))
		}
		if v, ok := kv["dport"]; ok {
			m.DstPort = uint16(atoi(t, v))
		}
		if v, ok := kv["ttl"]; ok {
			m.IPTTL = uint8(atoi(t, v))
		}
		if v, ok := kv["id"]; ok {
			m.ICMPID = uint16(atoi(t, v))
		}
		if v, ok := kv["icmp"]; ok {
			typ, code, _ := strings.Cut(v, "/")
			m.SrcPort, m.DstPort = uint16(atoi(t, typ)), uint16(atoi(t, code))
		}
		var ok bool
		if m.CTState, ok = packet.ParseCTState(kv["ct"]); !ok {
			t.Fatalf("packet %q: ct=%s: want new, est or rpl", desc, kv["ct"])
		}
		if kv["frag"] == "later" {
			m.IPFrag, m.SrcPort, m.DstPort, m.ICMPID = packet.FragLater, 0, 0, 0
		}
		if kv["frame"] == "ip" {
			pkt.Frame = w.ipFrame(t, desc, m, kv["inner"])
		}
	case "arp":
		m.EthType = packet.EthTypeARP
		m.IPProto = packet.ARPRequest
		if kv["arp_op"] == "reply" {
			m.IPProto = packet.ARPReply
		}
		m.ARPSha = m.EthSrc
		if v, ok := kv["arp_sha"]; ok {
			m.ARPSha = macOf(v)
		}
		if src.IsValid() {
			m.SetSrc(src)
		}
		if v, ok := kv["ip_dst"]; ok {
			m.SetDst(ipOf(v))
		}
		if kv["frame"] == "arp" {
			if m.IPProto != packet.ARPRequest || m.EthDst != topology.BroadcastMAC || m.ARPSha != m.EthSrc {
				t.Fatalf("packet %q: frame=arp builds broadcast requests only", desc)
			}
			pkt.Frame = packet.AppendARPRequest(nil, m.EthSrc, m.Src(), m.Dst())
			var pm packet.FlowMatch
			if err := packet.Parse(pkt.Frame, m.InPort, &pm); err != nil || pm != *m {
				t.Fatalf("packet %q: built ARP frame parses to %+v (%v), want %+v", desc, pm, err, *m)
			}
		}
	default:
		m.EthType = uint16(atoi(t, typ))
	}
	return pkt
}

// dhcpPacket builds a real DHCP client frame with insomniacslk/dhcp and
// parses it into the match, as the agent would.
func (w *world) dhcpPacket(t testing.TB, pkt Packet, kv map[string]string) Packet {
	t.Helper()
	hw := net.HardwareAddr(pkt.Match.EthSrc[:])
	mods := []dhcpv4.Modifier{dhcpv4.WithTransactionID(dhcpv4.TransactionID{0x12, 0x34, 0x56, 0x78})}
	if v, ok := kv["xid"]; ok {
		x := uint32(atoi(t, v))
		mods[0] = dhcpv4.WithTransactionID(dhcpv4.TransactionID{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	if v, ok := kv["req_ip"]; ok {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(mustAddr(t, v).AsSlice()))))
	}
	if v, ok := kv["server_id"]; ok {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(mustAddr(t, v).AsSlice()))))
	}
	ciaddr := netip.IPv4Unspecified()
	if v, ok := kv["ciaddr"]; ok {
		ciaddr = mustAddr(t, v)
		mods = append(mods, dhcpv4.WithClientIP(net.IP(ciaddr.AsSlice())))
	}
	types := map[string]dhcpv4.MessageType{
		"discover": dhcpv4.MessageTypeDiscover, "request": dhcpv4.MessageTypeRequest, "inform": dhcpv4.MessageTypeInform,
		"release": dhcpv4.MessageTypeRelease, "decline": dhcpv4.MessageTypeDecline, "offer": dhcpv4.MessageTypeOffer,
	}
	mt, ok := types[kv["dhcp"]]
	if !ok {
		t.Fatalf("unknown dhcp message %q", kv["dhcp"])
	}
	mods = append(mods, dhcpv4.WithMessageType(mt), dhcpv4.WithHwAddr(hw),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionInterfaceMTU, dhcpv4.OptionClasslessStaticRoute))
	d, err := dhcpv4.New(mods...)
	if err != nil {
		t.Fatal(err)
	}
	if mt == dhcpv4.MessageTypeOffer {
		d.OpCode = dhcpv4.OpcodeBootReply
	}
	dst := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	if v, ok := kv["ip_dst"]; ok {
		dst = mustAddr(t, v)
	}
	frame := packet.AppendUDP4(nil, pkt.Match.EthSrc, pkt.Match.EthDst,
		netip.AddrPortFrom(ciaddr, 68), netip.AddrPortFrom(dst, 67), 64, d.ToBytes())
	pkt.Frame = frame
	if err := packet.Parse(frame, pkt.Match.InPort, &pkt.Match); err != nil {
		t.Fatalf("parsing the built DHCP frame: %v", err)
	}
	return pkt
}

// render prints a Result with stable names, one item per line.
func (w *world) render(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: %s\n", r.Verdict)
	if r.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", r.Reason)
	}
	fmt.Fprintf(&b, "cacheable: %t\n", r.Cacheable)
	for _, o := range r.Outputs {
		where := "remote"
		if o.Local {
			where = "local"
		}
		fmt.Fprintf(&b, "output: port %s on %s (%s) key %d\n", w.nameOfPort(o.PortID), o.Host, where, o.TunnelKey)
	}
	if r.Flood != nil {
		fmt.Fprintf(&b, "flood: bridge %s key %d\n", strings.TrimPrefix(r.Flood.BridgeID, "br-"), r.Flood.Key)
	}
	for _, l := range r.Learn {
		fmt.Fprintf(&b, "learn: %s on bridge %s -> port %s\n", l.MAC, strings.TrimPrefix(l.BridgeID, "br-"), w.nameOfPort(l.PortID))
	}
	for _, e := range r.Emit {
		fmt.Fprintf(&b, "emit: to port %s: %s\n", w.nameOfPort(e.PortID), describeFrame(e.Frame))
	}
	w.renderL3(&b, &r)
	fmt.Fprintf(&b, "mask: %s\n", maskString(r.Mask))
	var tags []string
	for _, tg := range r.Tags {
		n, ok := w.names[tg]
		if !ok {
			n = fmt.Sprintf("tag(%016x)", uint64(tg))
		}
		tags = append(tags, n)
	}
	slices.Sort(tags)
	fmt.Fprintf(&b, "tags: %s\n", strings.Join(tags, " "))
	if len(r.Trace) > 0 {
		b.WriteString("trace:\n")
		for _, s := range r.Trace {
			fmt.Fprintf(&b, "  %s | %s | %s\n", s.Device, s.Stage, s.Detail)
		}
	}
	return b.String()
}

func (w *world) nameOfPort(id string) string {
	if n, ok := w.portName[id]; ok {
		return n
	}
	return id
}

// maskString names the fields set in a mask; a partly set field is shown
// with its bits.
func maskString(mk packet.FlowMatch) string {
	type field struct {
		name string
		bits []byte
	}
	u16 := func(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }
	u32 := func(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
	fs := []field{
		{"in_port", u32(mk.InPort)}, {"eth_src", mk.EthSrc[:]}, {"eth_dst", mk.EthDst[:]}, {"eth_type", u16(mk.EthType)},
		{"vlan", u16(mk.VLAN)}, {"ip_src", mk.IPSrc[:]}, {"ip_dst", mk.IPDst[:]}, {"ip_proto", []byte{mk.IPProto}},
		{"ip_ttl", []byte{mk.IPTTL}}, {"ip_frag", []byte{mk.IPFrag}}, {"src_port", u16(mk.SrcPort)}, {"dst_port", u16(mk.DstPort)},
		{"arp_sha", mk.ARPSha[:]}, {"icmp_id", u16(mk.ICMPID)}, {"ct_state", []byte{mk.CTState}},
	}
	var out []string
	for _, f := range fs {
		all, none := true, true
		for _, c := range f.bits {
			all = all && c == 0xff
			none = none && c == 0
		}
		switch {
		case all:
			out = append(out, f.name)
		case !none:
			out = append(out, fmt.Sprintf("%s/%x", f.name, f.bits))
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, " ")
}

// describeFrame summarises an emitted frame: ARP replies by their fields,
// DHCP replies by their type, addresses and options (decoded by
// insomniacslk/dhcp, independently of our builder's parser).
func describeFrame(f []byte) string {
	var m packet.FlowMatch
	var l packet.Layers
	if err := packet.ParseLayers(f, &m, &l); err != nil {
		return fmt.Sprintf("unparseable (%v) %x", err, f)
	}
	switch {
	case m.EthType == packet.EthTypeARP:
		return fmt.Sprintf("arp op %d eth %s -> %s: %s is-at %s, to %s", m.IPProto, topology.MAC(m.EthSrc), topology.MAC(m.EthDst),
			m.Src(), topology.MAC(m.ARPSha), m.Dst())
	case m.EthType == packet.EthTypeIPv4 && m.IPProto == packet.ProtoUDP && m.SrcPort == 67:
		d, err := dhcpv4.FromBytes(f[l.Payload:l.End])
		if err != nil {
			return fmt.Sprintf("dhcp unparseable: %v", err)
		}
		s := fmt.Sprintf("dhcp %s eth %s -> %s ip %s -> %s xid %s yiaddr %s", d.MessageType(), topology.MAC(m.EthSrc), topology.MAC(m.EthDst),
			m.Src(), m.Dst(), d.TransactionID, d.YourIPAddr)
		if sid := d.ServerIdentifier(); sid != nil {
			s += " server " + sid.String()
		}
		if mk := d.SubnetMask(); mk != nil {
			ones, _ := mk.Size()
			s += fmt.Sprintf(" mask /%d", ones)
		}
		if r := d.Router(); r != nil {
			s += fmt.Sprintf(" router %v", r)
		}
		if dns := d.DNS(); dns != nil {
			s += fmt.Sprintf(" dns %v", dns)
		}
		if rs := d.ClasslessStaticRoute(); rs != nil {
			s += fmt.Sprintf(" routes %v", rs)
		}
		if v := d.GetOneOption(dhcpv4.OptionIPAddressLeaseTime); v != nil {
			s += fmt.Sprintf(" lease %.0fs", d.IPAddressLeaseTime(0).Seconds())
		}
		if v := d.GetOneOption(dhcpv4.OptionInterfaceMTU); len(v) == 2 {
			s += fmt.Sprintf(" mtu %d", int(v[0])<<8|int(v[1]))
		}
		if msg := d.Message(); msg != "" {
			s += fmt.Sprintf(" message %q", msg)
		}
		return s
	}
	if s := describeL3Frame(f, &m, &l); s != "" {
		return s
	}
	return fmt.Sprintf("ethertype 0x%04x %d bytes", m.EthType, len(f))
}
