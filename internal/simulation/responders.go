package simulation

// Local responders: ARP suppression and DHCP. Both answer on the ingress
// host, from the snapshot, and their decisions never become flows: ARP
// requests and DHCP client messages (UDP 68 -> 67) are not cacheable even
// when they are bridged, because the answer depends on the set of
// addresses on the bridge, which no single tag covers, and for DHCP on the
// payload. Their rate is low (a VM ARPs and renews its lease now and then).

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// DHCPServerMAC is the Ethernet source of the DHCP replies on the bridge
// whose flood key is floodKey, and the MAC the ARP responder gives for the
// subnet's DHCP server address when no port holds it:
// 02:68:6e:KK:KK:KK, a locally administered unicast address ("hn") whose
// last three octets are the 24-bit flood key. It is unique per bridge
// because flood keys are, and stable across agents and restarts.
func DHCPServerMAC(floodKey uint32) topology.MAC {
	return topology.MAC{0x02, 0x68, 0x6e, byte(floodKey >> 16), byte(floodKey >> 8), byte(floodKey)}
}

// DefaultLeaseSeconds is the lease offered when Subnet.LeaseSeconds is 0.
const DefaultLeaseSeconds = 86400

// arp: ARP suppression. A request for a fixed IP of another port on the
// bridge is answered with that port's MAC; a request for a DHCP-enabled
// subnet's server address that no port holds is answered with
// DHCPServerMAC. Other requests (unknown targets, gratuitous ARP, probes
// for the sender's own address) and all other ARP opcodes are bridged.
// Router addresses come with routers.
func (s *sim) arp() outcome {
	m, b := &s.pkt.Match, s.br
	s.use(packet.FEthType)
	if m.EthType != packet.EthTypeARP {
		return next
	}
	s.use(packet.FIPProto)
	if m.IPProto != packet.ARPRequest {
		if s.trace {
			s.step(bridgeDevice(b), "arp op %d: bridged", m.IPProto)
		}
		return next
	}
	s.noCache = true
	s.use(packet.FIPSrc | packet.FIPDst)
	spa, tpa := m.Src(), m.Dst()
	if spa == tpa {
		if s.trace {
			s.step(bridgeDevice(b), "gratuitous arp for %s: bridged", tpa)
		}
		return next
	}
	var hw topology.MAC
	var owner string
	router := false // a router answers: it learns the asker too
	if t := s.snap.PortByIP(b.ID, tpa); t != nil {
		if t == s.in {
			if s.trace {
				s.step(bridgeDevice(b), "who-has %s: the sender's own address: bridged", tpa)
			}
			return next
		}
		hw, owner = t.MAC, "port "+portName(t)
		router = t.RouterID != ""
	} else if sn := s.dhcpServerSubnet(tpa); sn != nil {
		hw, owner = DHCPServerMAC(b.FloodKey), "dhcp server of subnet "+sn.CIDR.String()
	} else if gw := s.fipGateway(tpa); gw != nil {
		hw, owner, router = gw.MAC, "floating ip, gateway port "+portName(gw), true
	} else {
		if s.trace {
			s.step(bridgeDevice(b), "who-has %s: unknown address: bridged", tpa)
		}
		return next
	}
	s.use(packet.FARPSha)
	if router && spa.Is4() && !spa.IsUnspecified() && s.snap.PortByIP(b.ID, spa) == nil {
		// As a Linux router does, learn the asker from its request: the
		// answer to it will need its MAC. Ports' addresses are known
		// without ARP (arp-resolve finds them by IP): not learned.
		sha := mac(m.ARPSha)
		if e := s.snap.ARP(b.ID, spa); e == nil || e.MAC != sha {
			s.r.LearnARP = append(s.r.LearnARP, topology.ARPEntry{BridgeID: b.ID, IP: spa, MAC: sha})
			if s.trace {
				s.step(bridgeDevice(b), "router learns %s is-at %s", spa, sha)
			}
		}
	}
	frame := packet.AppendARPReply(nil, hw, tpa, m.ARPSha, spa)
	s.r.Emit = append(s.r.Emit, Emit{PortID: s.pkt.Ingress, Frame: frame})
	s.r.Verdict = Consumed
	if s.trace {
		s.step(bridgeDevice(b), "who-has %s tell %s: %s is-at %s (%s), reply to port %s", tpa, spa, tpa, hw, owner, portName(s.in))
	}
	return done
}

// fipGateway returns, on an external bridge, the gateway port of the
// router that holds floating IP ip (it answers ARP for it), or nil.
func (s *sim) fipGateway(ip netip.Addr) *topology.Port {
	if !s.br.External {
		return nil
	}
	f := s.snap.FloatingIPByAddr(ip)
	if f == nil || f.BridgeID != s.br.ID || f.RouterID == "" {
		return nil
	}
	s.tag(topology.TagRouter(f.RouterID))
	r := s.snap.Router(f.RouterID)
	if r == nil || r.GatewayPortID == "" {
		return nil
	}
	gw := s.snap.Port(r.GatewayPortID)
	if gw == nil || gw.BridgeID != s.br.ID {
		return nil
	}
	return gw
}

func (s *sim) dhcpServerSubnet(ip netip.Addr) *topology.Subnet {
	for _, sn := range s.snap.SubnetsOfBridge(s.br.ID) {
		if sn.DHCP && sn.DHCPServer.IsValid() && sn.DHCPServer == ip {
			return sn
		}
	}
	return nil
}

// dhcpSubnet returns the port's first fixed IPv4 address on a DHCP-enabled
// subnet of its bridge, and that subnet.
func (s *sim) dhcpSubnet() (netip.Addr, *topology.Subnet) {
	for _, f := range s.in.FixedIPs {
		sn := s.snap.Subnet(f.SubnetID)
		if sn != nil && sn.DHCP && sn.BridgeID == s.in.BridgeID && f.Addr.Is4() && sn.CIDR.Contains(f.Addr) {
			return f.Addr, sn
		}
	}
	return netip.Addr{}, nil
}

// serverID is the DHCP server identifier (option 54) of a subnet: its
// DHCPServer address, else its gateway. A subnet with neither cannot be
// served: a DHCP client needs a server identifier to request a lease.
func serverID(sn *topology.Subnet) netip.Addr {
	if sn.DHCPServer.IsValid() {
		return sn.DHCPServer
	}
	return sn.Gateway
}

var dhcpTypeNames = [...]string{"", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"}

func dhcpTypeName(t uint8) string {
	if int(t) < len(dhcpTypeNames) && t != 0 {
		return dhcpTypeNames[t]
	}
	return "type " + strconv.Itoa(int(t))
}

// dhcp: the DHCP server (RFC 2131) of the port's subnet. It handles UDP
// 68 -> 67 sent to the broadcast address or to the server identifier:
// DISCOVER -> OFFER, REQUEST -> ACK for the port's address (else NAK),
// INFORM -> ACK without a lease, DECLINE and RELEASE are consumed.
// The offered address is the port's first fixed IP on a DHCP-enabled
// subnet; the options are the subnet's (mask, router, DNS, classless
// routes, lease) and the bridge's MTU.
func (s *sim) dhcp() outcome {
	if s.upIn != nil {
		return next // DHCP on a physical network is not ours to answer
	}
	m := &s.pkt.Match
	s.use(packet.FEthType)
	if m.EthType != packet.EthTypeIPv4 {
		return next
	}
	s.use(packet.FIPProto)
	if m.IPProto != packet.ProtoUDP {
		return next
	}
	if !s.mayBeDHCP() {
		return next
	}
	s.use(packet.FDstPort)
	if m.DstPort != packet.DHCPServerPort {
		return next
	}
	s.use(packet.FSrcPort)
	if m.SrcPort != packet.DHCPClientPort {
		return next
	}
	s.use(packet.FIPDst)
	s.noCache = true
	var dev string
	if s.trace {
		dev = portDevice(s.in)
	}
	fip, sn := s.dhcpSubnet()
	var server netip.Addr
	if sn != nil {
		s.tag(topology.TagSubnet(sn.ID))
		server = serverID(sn)
	}
	if dst := m.Dst(); dst != ipv4Broadcast && (!server.IsValid() || dst != server) {
		if s.trace {
			s.step(dev, "udp 68->67 to %s: not this subnet's server: bridged", dst)
		}
		return next
	}
	if sn == nil {
		if s.trace {
			s.step(dev, "no address on a dhcp-enabled subnet")
		}
		return s.drop(ReasonNoDHCP)
	}
	if !server.IsValid() {
		if s.trace {
			s.step(dev, "subnet %s has no dhcp server nor gateway address", sn.CIDR)
		}
		return s.drop(ReasonNoDHCP)
	}
	if s.pkt.Frame == nil {
		s.r.Verdict = Consumed
		if s.trace {
			s.step(dev, "dhcp request without a frame: not answered")
		}
		return done
	}
	var fm packet.FlowMatch
	var l packet.Layers
	var d packet.DHCPMessage
	if err := packet.ParseLayers(s.pkt.Frame, &fm, &l); err != nil || l.Payload < 0 || l.End < l.Payload || l.End > len(s.pkt.Frame) {
		return s.badDHCP(dev, "frame does not parse")
	}
	if err := packet.ParseDHCP(s.pkt.Frame[l.Payload:l.End], &d); err != nil {
		return s.badDHCP(dev, "payload does not parse: "+err.Error())
	}
	if d.Op != packet.BOOTRequest {
		return s.badDHCP(dev, "op "+strconv.Itoa(int(d.Op))+" is not a request")
	}
	rep := packet.DHCPReply{
		XID:       d.XID,
		Flags:     d.Flags,
		ClientMAC: d.CHAddr,
		ServerMAC: DHCPServerMAC(s.br.FloodKey),
		ServerIP:  server,
	}
	switch d.Type {
	case packet.DHCPDiscover:
		rep.Type = packet.DHCPOffer
		s.lease(&rep, fip, sn)
	case packet.DHCPRequest:
		if d.ServerID.IsValid() && d.ServerID != server {
			s.r.Verdict = Consumed
			if s.trace {
				s.step(dev, "REQUEST xid 0x%08x for server %s: not us, ignored", d.XID, d.ServerID)
			}
			return done
		}
		want := d.RequestedIP
		if !want.IsValid() || want.IsUnspecified() {
			want = d.CIAddr
		}
		if want == fip {
			rep.Type = packet.DHCPAck
			rep.CIAddr = d.CIAddr
			s.lease(&rep, fip, sn)
		} else {
			rep.Type = packet.DHCPNak
			rep.Flags |= packet.DHCPFlagBroadcast // RFC 2131 4.3.2: a NAK is broadcast
			rep.Message = "requested address not available"
		}
	case packet.DHCPInform:
		rep.Type = packet.DHCPAck
		rep.CIAddr = d.CIAddr
		s.lease(&rep, netip.Addr{}, sn)
		rep.LeaseSeconds = 0
	case packet.DHCPDecline, packet.DHCPRelease:
		s.r.Verdict = Consumed
		if s.trace {
			s.step(dev, "%s xid 0x%08x from %s: consumed", dhcpTypeName(d.Type), d.XID, topology.MAC(d.CHAddr))
		}
		return done
	default:
		return s.badDHCP(dev, "message "+dhcpTypeName(d.Type)+" is not a client message")
	}
	frame := packet.AppendDHCPReply(nil, &rep)
	s.r.Emit = append(s.r.Emit, Emit{PortID: s.in.ID, Frame: frame})
	s.r.Verdict = Consumed
	if s.trace {
		if rep.Type == packet.DHCPNak {
			s.step(dev, "%s xid 0x%08x for %s -> NAK from %s", dhcpTypeName(d.Type), d.XID, d.RequestedIP, server)
		} else {
			s.step(dev, "%s xid 0x%08x from %s -> %s from %s: %s", dhcpTypeName(d.Type), d.XID, topology.MAC(d.CHAddr),
				dhcpTypeName(rep.Type), server, describeReply(&rep))
		}
	}
	return done
}

// describeReply summarises the options of an OFFER or ACK for the trace.
func describeReply(r *packet.DHCPReply) string {
	var b []byte
	if r.YourIP.IsValid() {
		b = fmt.Appendf(b, "%s/%d", r.YourIP, r.PrefixLen)
	} else {
		b = fmt.Appendf(b, "no address, /%d", r.PrefixLen)
	}
	if r.Router.IsValid() {
		b = fmt.Appendf(b, " router %s", r.Router)
	}
	if len(r.DNS) > 0 {
		b = fmt.Appendf(b, " dns %v", r.DNS)
	}
	for _, hr := range r.HostRoutes {
		b = fmt.Appendf(b, " route %s via %s", hr.Dst, hr.Gateway)
	}
	if r.LeaseSeconds != 0 {
		b = fmt.Appendf(b, " lease %ds", r.LeaseSeconds)
	}
	if r.MTU != 0 {
		b = fmt.Appendf(b, " mtu %d", r.MTU)
	}
	return string(b)
}

// lease fills the offer/ack options from the subnet and bridge.
func (s *sim) lease(rep *packet.DHCPReply, ip netip.Addr, sn *topology.Subnet) {
	rep.YourIP = ip
	rep.PrefixLen = sn.CIDR.Bits()
	rep.Router = sn.Gateway
	rep.DNS = sn.DNS
	for _, hr := range sn.HostRoutes {
		rep.HostRoutes = append(rep.HostRoutes, packet.Route{Dst: hr.Destination, Gateway: hr.NextHop})
	}
	rep.LeaseSeconds = sn.LeaseSeconds
	if rep.LeaseSeconds == 0 {
		rep.LeaseSeconds = DefaultLeaseSeconds
	}
	if mtu := s.br.MTU; mtu >= 68 && mtu <= 0xffff {
		rep.MTU = uint16(mtu)
	}
	rep.BroadcastAddr = lastAddr(sn.CIDR)
}

func (s *sim) badDHCP(dev, why string) outcome {
	if s.trace {
		s.step(dev, "%s", why)
	}
	return s.drop(ReasonDHCPMalformed)
}

// lastAddr is the directed broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() {
		return netip.Addr{}
	}
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | uint32(uint64(1)<<(32-p.Bits())-1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}
