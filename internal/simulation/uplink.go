package simulation

// Uplinks: where external networks meet the physical network. A gateway
// host's agent publishes a topology.Uplink per physical network it maps;
// frames from outside enter with Packet.Ingress = UplinkPortID(u) and
// frames of the external bridge to the outside leave through an uplink
// chosen by a hash of the flow (ECMP across gateway hosts, deterministic).

import (
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// uplinkIngress: the frame came from the physical network through uplink
// u. It enters the external bridge of u's physical network as if from a
// port with no port security and no chains (a pseudo-port named after the
// uplink: one more allocation on this path).
func (s *sim) uplinkIngress() outcome {
	id := s.pkt.Ingress[len(UplinkPortPrefix):]
	u := s.snap.Uplink(id)
	if u == nil {
		if s.trace {
			s.step("uplink "+id, "no such uplink")
		}
		return s.drop(ReasonUnknownPort)
	}
	s.upIn = u
	s.tag(topology.TagUplinks(u.PhysNet))
	b := s.snap.ExternalBridge(u.PhysNet)
	if b == nil {
		// No tag covers "an external bridge appears on this physnet".
		s.noCache = true
		if s.trace {
			s.step("uplink "+id, "no external network on %s", u.PhysNet)
		}
		return s.drop(ReasonTopologyIncomplete)
	}
	s.tag(topology.TagBridge(b.ID))
	s.in = &topology.Port{ID: s.pkt.Ingress, Name: s.pkt.Ingress, BridgeID: b.ID, AdminUp: true}
	s.br = b
	if !b.AdminUp {
		if s.trace {
			s.step("uplink "+id, "%s admin down", bridgeDevice(b))
		}
		return s.drop(ReasonBridgeAdminDown)
	}
	if s.trace {
		s.step("uplink "+id, "physnet %s, %s", u.PhysNet, bridgeDevice(b))
	}
	return next
}

// pickUplink chooses one of physnet's uplinks by a hash of the flow; nil
// when there is none. With one uplink nothing is hashed (nor masked).
func (s *sim) pickUplink(physnet string) *topology.Uplink {
	us := s.snap.Uplinks(physnet)
	switch len(us) {
	case 0:
		return nil
	case 1:
		return us[0]
	}
	return us[mix(s.flowHash())%uint32(len(us))]
}

// flowHash is FNV-1a over the flow's addresses and ports (IP) or MACs
// (other frames); every field hashed is recorded in the mask.
// mix spreads every input bit over the result (murmur3's finalizer).
// flowHash is FNV-1a, whose low bit is only the parity of the inputs'
// low bits: taken modulo two uplinks, every connection from a client
// that uses even source ports (Linux connect() does) left by the same
// gateway.
func mix(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

func (s *sim) flowHash() uint32 {
	m := &s.cur
	h := uint32(2166136261)
	add := func(b byte) { h = (h ^ uint32(b)) * 16777619 }
	s.use(packet.FEthType)
	if m.EthType == packet.EthTypeIPv4 || m.EthType == packet.EthTypeIPv6 {
		s.use(packet.FIPSrc | packet.FIPDst | packet.FIPProto | packet.FSrcPort | packet.FDstPort)
		for i := range m.IPSrc {
			add(m.IPSrc[i])
			add(m.IPDst[i])
		}
		add(m.IPProto)
		add(byte(m.SrcPort >> 8))
		add(byte(m.SrcPort))
		add(byte(m.DstPort >> 8))
		add(byte(m.DstPort))
		return h
	}
	s.use(packet.FEthSrc | packet.FEthDst)
	for i := range m.EthSrc {
		add(m.EthSrc[i])
		add(m.EthDst[i])
	}
	return h
}

// setUplinkOutput makes u the (single) unicast output.
func (s *sim) setUplinkOutput(u *topology.Uplink) {
	s.tag(topology.TagHost(u.Host))
	s.blk.out[0] = Output{PortID: UplinkPortID(u), Host: u.Host, Local: u.Host == s.local, TunnelKey: u.TunnelKey}
	s.r.Outputs = s.blk.out[:1]
}

// outputUplink ends the simulation with the frame leaving through u. The
// reply may come back through any uplink of the physical network, so the
// flow state goes to all their hosts.
func (s *sim) outputUplink(u *topology.Uplink) outcome {
	if s.emitFrame != nil {
		return s.emitTranslated(UplinkPortID(u), u.Host)
	}
	s.setUplinkOutput(u)
	s.r.Verdict = Forward
	if len(s.r.State) > 0 {
		var hosts []string
		for _, x := range s.snap.Uplinks(u.PhysNet) {
			if x.Host != s.local && (len(hosts) == 0 || hosts[len(hosts)-1] != x.Host) {
				hosts = append(hosts, x.Host)
			}
		}
		s.commitState(hosts)
	}
	if s.trace {
		if u.Host == s.local {
			s.step("uplink "+u.ID(), "out of local interface %s", u.Interface)
		} else {
			s.step("uplink "+u.ID(), "tunnel to %s key %d", u.Host, u.TunnelKey)
		}
	}
	return done
}

// commitState sets the hosts every state write of the packet is pushed
// to: the hosts where its reply will be simulated.
func (s *sim) commitState(hosts []string) {
	for i := range s.r.State {
		s.r.State[i].Hosts = hosts
	}
}
