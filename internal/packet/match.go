package packet

import "net/netip"

// FlowMatch is the flow key: every header field a forwarding decision may
// read. It is fixed-size, comparable and pointer-free, so it is used
// directly as a map key and mirrors a BPF map key in the eBPF datapath.
// IP addresses are stored 16 bytes wide (IPv4 as v4-mapped IPv6).
//
// The same type is used as a mask: a field's bits set to one in a mask
// mean the flow depends on them (see Masked).
type FlowMatch struct {
	// InPort is the datapath port number the packet entered on.
	InPort  uint32
	EthSrc  [6]byte
	EthDst  [6]byte
	EthType uint16
	// VLAN is the 802.1Q VLAN ID, 0 when untagged.
	VLAN uint16
	// IPSrc and IPDst are the IP addresses, or for ARP the sender and
	// target protocol addresses.
	IPSrc [16]byte
	IPDst [16]byte
	// IPProto is the IP protocol, or for ARP the low byte of the opcode.
	IPProto uint8
	IPTTL   uint8
	// IPFrag is FragNone, FragFirst or FragLater.
	IPFrag uint8
	// CTState is the connection-tracking state a datapath that tracks
	// connections itself found for the packet, in the zone of the ingress
	// port (a topology.CTState: 1 new, 2 established, 2|4 established
	// reply); 0 when the datapath does not track (see CTNew below).
	CTState uint8
	// SrcPort/DstPort are the TCP/UDP ports; for ICMP, the type and code.
	SrcPort uint16
	DstPort uint16
	// ARPSha is the ARP sender hardware address.
	ARPSha [6]byte
	// ICMPID is the identifier of an ICMP(v6) echo request or reply (the
	// "port" NAT translates for ICMP), 0 otherwise.
	ICMPID uint16
}

// Connection-tracking states for FlowMatch.CTState, as the datapath
// reports them (the same bits as topology.CTState).
const (
	CTNew         = 1
	CTEstablished = 2
	CTReply       = 4
)

// ParseCTState returns the CTState named "new", "est" (established) or
// "rpl" (established reply), 0 for "", and false for anything else.
func ParseCTState(name string) (uint8, bool) {
	switch name {
	case "":
		return 0, true
	case "new":
		return CTNew, true
	case "est":
		return CTEstablished, true
	case "rpl":
		return CTEstablished | CTReply, true
	}
	return 0, false
}

// IP fragment classes for FlowMatch.IPFrag.
const (
	FragNone  = 0
	FragFirst = 1
	FragLater = 2
)

// EtherTypes and IP protocols used by the simulation.
const (
	EthTypeIPv4 = 0x0800
	EthTypeARP  = 0x0806
	EthTypeVLAN = 0x8100
	EthTypeIPv6 = 0x86dd

	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58

	ARPRequest = 1
	ARPReply   = 2
)

// Masked returns m with every bit not set in mask cleared.
func (m FlowMatch) Masked(mask FlowMatch) FlowMatch {
	var r FlowMatch
	r.InPort = m.InPort & mask.InPort
	for i := range m.EthSrc {
		r.EthSrc[i] = m.EthSrc[i] & mask.EthSrc[i]
		r.EthDst[i] = m.EthDst[i] & mask.EthDst[i]
		r.ARPSha[i] = m.ARPSha[i] & mask.ARPSha[i]
	}
	r.EthType = m.EthType & mask.EthType
	r.VLAN = m.VLAN & mask.VLAN
	for i := range m.IPSrc {
		r.IPSrc[i] = m.IPSrc[i] & mask.IPSrc[i]
		r.IPDst[i] = m.IPDst[i] & mask.IPDst[i]
	}
	r.IPProto = m.IPProto & mask.IPProto
	r.IPTTL = m.IPTTL & mask.IPTTL
	r.IPFrag = m.IPFrag & mask.IPFrag
	r.CTState = m.CTState & mask.CTState
	r.SrcPort = m.SrcPort & mask.SrcPort
	r.DstPort = m.DstPort & mask.DstPort
	r.ICMPID = m.ICMPID & mask.ICMPID
	return r
}

// Src returns IPSrc as an address (IPv4 unmapped).
func (m *FlowMatch) Src() netip.Addr { return netip.AddrFrom16(m.IPSrc).Unmap() }

// Dst returns IPDst as an address (IPv4 unmapped).
func (m *FlowMatch) Dst() netip.Addr { return netip.AddrFrom16(m.IPDst).Unmap() }

// SetSrc stores a as IPSrc.
func (m *FlowMatch) SetSrc(a netip.Addr) { m.IPSrc = a.As16() }

// SetDst stores a as IPDst.
func (m *FlowMatch) SetDst(a netip.Addr) { m.IPDst = a.As16() }

// IsIPv4 reports whether the frame is IPv4.
func (m *FlowMatch) IsIPv4() bool { return m.EthType == EthTypeIPv4 }

// Mask helpers: ones for whole fields. The simulation ORs these into the
// mask of the fields it read.
var (
	ones6  = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	ones16 = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// Field bits for MaskOf.
type Field uint16

const (
	FInPort Field = 1 << iota
	FEthSrc
	FEthDst
	FEthType
	FVLAN
	FIPSrc
	FIPDst
	FIPProto
	FIPTTL
	FIPFrag
	FSrcPort
	FDstPort
	FARPSha
	FICMPID
	FCTState
)

// MaskOf returns a mask with every field in fs set to all ones.
func MaskOf(fs Field) FlowMatch {
	var m FlowMatch
	if fs&FInPort != 0 {
		m.InPort = ^uint32(0)
	}
	if fs&FEthSrc != 0 {
		m.EthSrc = ones6
	}
	if fs&FEthDst != 0 {
		m.EthDst = ones6
	}
	if fs&FEthType != 0 {
		m.EthType = 0xffff
	}
	if fs&FVLAN != 0 {
		m.VLAN = 0xffff
	}
	if fs&FIPSrc != 0 {
		m.IPSrc = ones16
	}
	if fs&FIPDst != 0 {
		m.IPDst = ones16
	}
	if fs&FIPProto != 0 {
		m.IPProto = 0xff
	}
	if fs&FIPTTL != 0 {
		m.IPTTL = 0xff
	}
	if fs&FIPFrag != 0 {
		m.IPFrag = 0xff
	}
	if fs&FSrcPort != 0 {
		m.SrcPort = 0xffff
	}
	if fs&FDstPort != 0 {
		m.DstPort = 0xffff
	}
	if fs&FARPSha != 0 {
		m.ARPSha = ones6
	}
	if fs&FICMPID != 0 {
		m.ICMPID = 0xffff
	}
	if fs&FCTState != 0 {
		m.CTState = 0xff
	}
	return m
}
