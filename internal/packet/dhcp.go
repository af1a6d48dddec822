package packet

// DHCPv4 (RFC 2131, options RFC 2132, classless static routes RFC 3442),
// on top of the BOOTP message (RFC 951):
//
//	 0               1               2               3
//	+---------------+---------------+---------------+---------------+
//	|  op (1)       |  htype (1)    |  hlen (1)     |  hops (1)     |
//	|                            xid (4)                            |
//	|           secs (2)            |           flags (2)           |
//	|                          ciaddr (4)                           |
//	|                          yiaddr (4)                           |
//	|                          siaddr (4)                           |
//	|                          giaddr (4)                           |
//	|                          chaddr (16)                          |
//	|                          sname (64)                           |
//	|                          file (128)                           |
//	|                magic cookie 99.130.83.99 (4)                  |
//	|                          options (variable)                   |
//
// Only Ethernet clients (htype 1, hlen 6) are handled. Option overload
// (option 52, options in sname/file) is not supported: those fields are
// ignored.

import (
	"encoding/binary"
	"net/netip"
)

// DHCP message types (option 53).
const (
	DHCPDiscover = 1
	DHCPOffer    = 2
	DHCPRequest  = 3
	DHCPDecline  = 4
	DHCPAck      = 5
	DHCPNak      = 6
	DHCPRelease  = 7
	DHCPInform   = 8
)

// BOOTP opcodes, ports and flags.
const (
	BOOTRequest = 1
	BOOTReply   = 2

	DHCPServerPort = 67
	DHCPClientPort = 68

	// DHCPFlagBroadcast is the broadcast bit of the flags field.
	DHCPFlagBroadcast = 0x8000
)

// DHCP option codes (RFC 2132, RFC 3442).
const (
	optPad             = 0
	optSubnetMask      = 1
	optRouter          = 3
	optDNS             = 6
	optHostname        = 12
	optDomainName      = 15
	optMTU             = 26
	optBroadcast       = 28
	optRequestedIP     = 50
	optLeaseTime       = 51
	optMessageType     = 53
	optServerID        = 54
	optParamRequest    = 55
	optMessage         = 56
	optRenewalTime     = 58
	optRebindingTime   = 59
	optClasslessRoutes = 121
	optEnd             = 255
)

const (
	bootpFixedLen = 236
	dhcpMagic     = 0x63825363
	dhcpOptsOff   = bootpFixedLen + 4
	bootpMinLen   = 300 // BOOTP minimum message length (RFC 951, RFC 1542)
)

// DHCPMessage is a parsed DHCP message (normally from a client). The
// fixed address fields are always valid addresses (0.0.0.0 when zero);
// RequestedIP and ServerID are the zero Addr when the option is absent.
type DHCPMessage struct {
	Op    uint8
	XID   uint32
	Secs  uint16
	Flags uint16 // broadcast bit DHCPFlagBroadcast

	CIAddr, YIAddr, SIAddr, GIAddr netip.Addr

	CHAddr [6]byte
	// Type is option 53 (DHCPDiscover...DHCPInform), 0 when absent (plain
	// BOOTP).
	Type uint8
	// RequestedIP is option 50.
	RequestedIP netip.Addr
	// ServerID is option 54.
	ServerID netip.Addr
	// ParamRequest is option 55, a sub-slice of the input: valid only as
	// long as the input is.
	ParamRequest []byte
	// Hostname is option 12 (allocates; slow path only).
	Hostname string
}

// ParseDHCP fills d from a DHCP message (a UDP payload). It allocates
// only for Hostname. Errors: ErrTruncated when the message is shorter than
// the fixed part or an option runs past the end; ErrMalformed for a bad
// op, hardware type or length, magic cookie, or a fixed-size option (50,
// 53, 54) of the wrong length. Options after the end option (255) are
// ignored, and a missing end option is tolerated. Unknown options are
// skipped; when an option repeats, the last one wins. On error *d is zero.
func ParseDHCP(udpPayload []byte, d *DHCPMessage) error {
	err := parseDHCP(udpPayload, d)
	if err != nil {
		*d = DHCPMessage{}
	}
	return err
}

func parseDHCP(p []byte, d *DHCPMessage) error {
	*d = DHCPMessage{}
	if len(p) < dhcpOptsOff {
		return ErrTruncated
	}
	if (p[0] != BOOTRequest && p[0] != BOOTReply) || p[1] != 1 || p[2] != 6 ||
		binary.BigEndian.Uint32(p[bootpFixedLen:]) != dhcpMagic {
		return ErrMalformed
	}
	d.Op = p[0]
	d.XID = binary.BigEndian.Uint32(p[4:8])
	d.Secs = binary.BigEndian.Uint16(p[8:10])
	d.Flags = binary.BigEndian.Uint16(p[10:12])
	d.CIAddr = addr4(p[12:16])
	d.YIAddr = addr4(p[16:20])
	d.SIAddr = addr4(p[20:24])
	d.GIAddr = addr4(p[24:28])
	copy(d.CHAddr[:], p[28:34])

	o := p[dhcpOptsOff:]
	for len(o) > 0 {
		code := o[0]
		if code == optEnd {
			break
		}
		if code == optPad {
			o = o[1:]
			continue
		}
		if len(o) < 2 || len(o) < 2+int(o[1]) {
			return ErrTruncated
		}
		v := o[2 : 2+int(o[1])]
		o = o[2+len(v):]
		switch code {
		case optMessageType:
			if len(v) != 1 {
				return ErrMalformed
			}
			d.Type = v[0]
		case optRequestedIP:
			if len(v) != 4 {
				return ErrMalformed
			}
			d.RequestedIP = addr4(v)
		case optServerID:
			if len(v) != 4 {
				return ErrMalformed
			}
			d.ServerID = addr4(v)
		case optParamRequest:
			d.ParamRequest = v[:len(v):len(v)]
		case optHostname:
			d.Hostname = string(v)
		}
	}
	return nil
}

func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

// DHCPReply describes a server reply (DHCPOffer, DHCPAck or DHCPNak).
// Invalid (zero) addresses, zero numbers and empty strings and lists are
// omitted.
type DHCPReply struct {
	Type  uint8  // DHCPOffer, DHCPAck or DHCPNak
	XID   uint32 // copied from the request
	Flags uint16 // copied from the request

	ClientMAC, ServerMAC [6]byte
	// CIAddr is the client's ciaddr from the request (renewing, INFORM).
	CIAddr netip.Addr

	// YourIP is yiaddr; ServerIP is the IP source and option 54.
	YourIP, ServerIP netip.Addr
	// PrefixLen gives option 1 (subnet mask) when in 1..32.
	PrefixLen int
	// Router is option 3 (and the default route in option 121).
	Router netip.Addr

	DNS []netip.Addr // option 6
	// HostRoutes is option 121. When it is non-empty and Router is valid,
	// a 0.0.0.0/0 route via Router is added (unless one is listed), since
	// RFC 3442 clients ignore option 3 when option 121 is present.
	HostRoutes []Route

	// LeaseSeconds is option 51, with T1 (58) at 1/2 and T2 (59) at 7/8
	// of it (not for 0xffffffff, infinite); 0 omits all three (as for an
	// ACK to DHCPINFORM).
	LeaseSeconds uint32
	MTU          uint16 // option 26
	DomainName   string // option 15
	Hostname     string // option 12

	BroadcastAddr netip.Addr // option 28
	Message       string     // option 56, for DHCPNak
}

// Route is a classless static route (RFC 3442).
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
}

// AppendDHCPReply appends an Ethernet/IPv4/UDP (67 -> 68) frame carrying
// the DHCP reply r, from r.ServerMAC/r.ServerIP, and returns the extended
// slice. With enough capacity in b it allocates nothing.
//
// Destination (RFC 2131 section 4.1, no relay): a DHCPNak, a request with
// the broadcast flag set or a client without a ciaddr gets
// ff:ff:ff:ff:ff:ff / 255.255.255.255; otherwise the reply is unicast to
// r.ClientMAC and r.CIAddr.
//
// Options, in this order, as applicable: 53, 54, 51, 58, 59, 1, 3, 6, 12,
// 15, 26, 28, 121, 56, then 255; the message is padded with zeros to the
// BOOTP minimum of 300 bytes. Options longer than 255 bytes (many routes
// or DNS servers) are split into several instances (RFC 3396).
// Non-IPv4 addresses in DNS and HostRoutes are skipped.
func AppendDHCPReply(b []byte, r *DHCPReply) []byte {
	b, off := startUDP4(b)
	start := len(b)
	b, p := grow(b, dhcpOptsOff)
	p[0] = BOOTReply
	p[1], p[2] = 1, 6
	binary.BigEndian.PutUint32(p[4:8], r.XID)
	binary.BigEndian.PutUint16(p[10:12], r.Flags)
	putAddr4(p[12:16], r.CIAddr)
	if r.Type != DHCPNak {
		putAddr4(p[16:20], r.YourIP)
	}
	copy(p[28:34], r.ClientMAC[:])
	binary.BigEndian.PutUint32(p[bootpFixedLen:], dhcpMagic)

	b = append(b, optMessageType, 1, r.Type)
	if r.ServerIP.Unmap().Is4() {
		b = appendAddrOption(b, optServerID, r.ServerIP)
	}
	if r.Type == DHCPNak {
		b = appendLongOption(b, optMessage, func(b []byte) []byte { return append(b, r.Message...) })
	} else {
		b = appendReplyOptions(b, r)
	}
	b = append(b, optEnd)
	if n := len(b) - start; n < bootpMinLen {
		b, _ = grow(b, bootpMinLen-n)
	}

	dstMAC, dstIP := BroadcastMAC, netip.AddrFrom4([4]byte{255, 255, 255, 255})
	if ci := r.CIAddr.Unmap(); r.Type != DHCPNak && r.Flags&DHCPFlagBroadcast == 0 && ci.Is4() && !ci.IsUnspecified() {
		dstMAC, dstIP = r.ClientMAC, ci
	}
	finishUDP4(b, off, r.ServerMAC, dstMAC,
		netip.AddrPortFrom(r.ServerIP, DHCPServerPort), netip.AddrPortFrom(dstIP, DHCPClientPort), 64)
	return b
}

// appendReplyOptions appends the options of an OFFER or ACK after 53 and 54.
func appendReplyOptions(b []byte, r *DHCPReply) []byte {
	if l := r.LeaseSeconds; l != 0 {
		b = appendUint32Option(b, optLeaseTime, l)
		if l != 0xffffffff {
			b = appendUint32Option(b, optRenewalTime, l/2)
			b = appendUint32Option(b, optRebindingTime, uint32(uint64(l)*7/8))
		}
	}
	if r.PrefixLen >= 1 && r.PrefixLen <= 32 {
		mask := ^uint32(0) << (32 - r.PrefixLen)
		b = appendUint32Option(b, optSubnetMask, mask)
	}
	if r.Router.Unmap().Is4() {
		b = appendAddrOption(b, optRouter, r.Router)
	}
	if len(r.DNS) > 0 {
		b = appendLongOption(b, optDNS, func(b []byte) []byte {
			for _, a := range r.DNS {
				if a.Unmap().Is4() {
					a4 := a.Unmap().As4()
					b = append(b, a4[:]...)
				}
			}
			return b
		})
	}
	if r.Hostname != "" {
		b = appendLongOption(b, optHostname, func(b []byte) []byte { return append(b, r.Hostname...) })
	}
	if r.DomainName != "" {
		b = appendLongOption(b, optDomainName, func(b []byte) []byte { return append(b, r.DomainName...) })
	}
	if r.MTU != 0 {
		b = append(b, optMTU, 2, byte(r.MTU>>8), byte(r.MTU))
	}
	if r.BroadcastAddr.Unmap().Is4() {
		b = appendAddrOption(b, optBroadcast, r.BroadcastAddr)
	}
	if len(r.HostRoutes) > 0 {
		b = appendLongOption(b, optClasslessRoutes, func(b []byte) []byte {
			hasDefault := false
			for _, rt := range r.HostRoutes {
				if rt.Dst.IsValid() && rt.Dst.Bits() == 0 {
					hasDefault = true
				}
				b = appendRoute(b, rt.Dst, rt.Gateway)
			}
			if !hasDefault && r.Router.Unmap().Is4() {
				b = appendRoute(b, netip.PrefixFrom(netip.IPv4Unspecified(), 0), r.Router)
			}
			return b
		})
	}
	return b
}

// appendRoute appends one RFC 3442 route: the prefix length, the
// significant octets of the destination, the gateway. Non-IPv4 routes
// are skipped.
func appendRoute(b []byte, dst netip.Prefix, gw netip.Addr) []byte {
	if !dst.IsValid() || !dst.Addr().Is4() || !gw.Unmap().Is4() {
		return b
	}
	dst = dst.Masked()
	d, g := dst.Addr().As4(), gw.Unmap().As4()
	b = append(b, byte(dst.Bits()))
	b = append(b, d[:(dst.Bits()+7)/8]...)
	return append(b, g[:]...)
}

func putAddr4(b []byte, a netip.Addr) {
	a4 := ip4(a)
	copy(b, a4[:])
}

func appendAddrOption(b []byte, code byte, a netip.Addr) []byte {
	a4 := ip4(a)
	return append(b, code, 4, a4[0], a4[1], a4[2], a4[3])
}

func appendUint32Option(b []byte, code byte, v uint32) []byte {
	return append(b, code, 4, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendLongOption appends option code with the value fill appends,
// split into instances of at most 255 bytes (RFC 3396). An empty value
// appends nothing.
func appendLongOption(b []byte, code byte, fill func([]byte) []byte) []byte {
	start := len(b)
	b = fill(append(b, code, 0))
	n := len(b) - start - 2
	switch {
	case n == 0:
		return b[:start]
	case n <= 255:
		b[start+1] = byte(n)
		return b
	}
	k := (n + 254) / 255
	b, _ = grow(b, 2*(k-1))
	// Move the chunks, last first, to make room for their headers.
	for i := k - 1; i >= 0; i-- {
		from := start + 2 + 255*i
		to := start + 257*i
		size := min(255, n-255*i)
		copy(b[to+2:to+2+size], b[from:from+size])
		b[to], b[to+1] = code, byte(size)
	}
	return b
}
