package flowstate

import (
	"net/netip"

	"hivenet/internal/topology"
)

// NAT is a NAT binding of one connection in a router's zone: packets
// whose key is Orig are rewritten to Xlat (source for SNAT, destination
// for DNAT, or both); replies, whose key is Xlat.Reverse(), are rewritten
// back to Orig.Reverse().
type NAT struct {
	Orig Key
	Xlat Key
}

// View is the flow state the simulation reads. Implementations are safe
// for concurrent use; the simulation never writes through a View (it
// returns state writes in its Result).
type View interface {
	// ConnState returns the connection-tracking state of a packet with key
	// k: CTNew when neither k nor k.Reverse() is tracked, CTEstablished
	// when k is a tracked forward key, CTEstablished|CTReply when
	// k.Reverse() is.
	ConnState(k Key) topology.CTState
	// NATByOrig returns the binding whose Orig is k (a later packet of a
	// translated connection, in its original direction).
	NATByOrig(k Key) (NAT, bool)
	// NATByReply returns the binding whose Xlat.Reverse() is k (a reply to
	// a translated connection).
	NATByReply(k Key) (NAT, bool)
	// SNATInUse reports whether some binding already has translated key
	// k (Xlat == k): the SNAT port allocator probes with it.
	SNATInUse(k Key) bool
	// SNATBlocks returns the first ports of the SNAT port blocks this host
	// holds for address a (each SNATBlockSize ports long), in the order
	// they were leased.
	SNATBlocks(a netip.Addr) []uint16
}

// SNATBlockSize is the number of source ports in one SNAT block. Blocks
// start at multiples of it from SNATPortMin; a host leases whole blocks
// from the store, so ports are unique across hosts without per-connection
// coordination.
const (
	SNATBlockSize = 256
	SNATPortMin   = 1024
)

// Empty is a View with no state and no SNAT blocks.
type Empty struct{}

func (Empty) ConnState(Key) topology.CTState { return topology.CTNew }
func (Empty) NATByOrig(Key) (NAT, bool)      { return NAT{}, false }
func (Empty) NATByReply(Key) (NAT, bool)     { return NAT{}, false }
func (Empty) SNATInUse(Key) bool             { return false }
func (Empty) SNATBlocks(netip.Addr) []uint16 { return nil }

var _ View = Empty{}
