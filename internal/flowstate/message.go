package flowstate

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Replication messages carry new flow state from the host that created it
// to the hosts that will see the reply, over the tunnel with the reserved
// flow-state key. One message fits one tunnel datagram: at most
// MaxMessageSize bytes. The format (all integers big-endian):
//
//	 0       1       2               4               6
//	+-------+-------+---------------+---------------+---------------------+
//	|version| flags |    nConns     |     nNATs     | records ...         |
//	+-------+-------+---------------+---------------+---------------------+
//
//	version  MessageVersion (1)
//	flags    bit 0 (msgFlagIPv4): every address is an IPv4-mapped address
//	         and is carried in 4 bytes instead of 16; bit 1
//	         (msgFlagResync): a resync request (below); other bits are 0
//	records  nConns conntrack keys, then nNATs bindings (Orig, then Xlat)
//
// A resync request asks the receiver for all its flow state: a host that
// (re)starts, its tables lost or stale, sends one to every other host.
// It has no records (both counts 0) but the requester's host name, one
// length byte then the name, zero-padded to ResyncMinSize bytes in all.
//
// A key record is fixed-size, 41 bytes (17 with msgFlagIPv4):
//
//	zone (4) | proto (1) | src (16 or 4) | dst (16 or 4) | src port (2) | dst port (2)
//
// Parsing is strict: a short or long buffer, an unknown version or flag,
// or a count the buffer does not hold is an error.

// MessageVersion is the version byte of the messages AppendMessage writes.
const MessageVersion = 1

// MaxMessageSize bounds an encoded message: it fits a VXLAN datagram over
// a 1500-byte underlay MTU with room to spare.
const MaxMessageSize = 1400

// ResyncMinSize is the least size of an encoded resync request (padded:
// the receiving VXLAN device of the eBPF datapath reads an Ethernet
// header, 14 bytes).
const ResyncMinSize = 16

const (
	msgHeaderSize = 6
	msgFlagIPv4   = 1 << 0
	msgFlagResync = 1 << 1
	keySize16     = 4 + 1 + 16 + 16 + 2 + 2 // 41
	keySize4      = 4 + 1 + 4 + 4 + 2 + 2   // 17
)

// ErrBadMessage is returned (wrapped, with the detail) for a message or
// snapshot that does not parse.
var ErrBadMessage = errors.New("flowstate: malformed message")

// Message is a batch of flow state to replicate: conntrack keys (forward
// keys of connections) and NAT bindings.
type Message struct {
	Conns []Key
	NATs  []NAT
	// Resync, when set, makes the message a resync request from the host
	// of that name (Conns and NATs are then empty).
	Resync string
}

// AppendResync appends a resync request from host to b; host must be 1
// to 255 bytes long (AppendResync panics otherwise, a programmer error).
func AppendResync(b []byte, host string) []byte {
	if host == "" || len(host) > 255 {
		panic(fmt.Sprintf("flowstate: resync request from a host name of %d bytes", len(host)))
	}
	start := len(b)
	b = append(b, MessageVersion, msgFlagResync, 0, 0, 0, 0, byte(len(host)))
	b = append(b, host...)
	for len(b)-start < ResyncMinSize {
		b = append(b, 0)
	}
	return b
}

// v4mapped is the 12-byte prefix of an IPv4-mapped IPv6 address.
var v4mapped = [12]byte{10: 0xff, 11: 0xff}

func isV4(a *[16]byte) bool { return [12]byte(a[:12]) == v4mapped }

func keyIsV4(k *Key) bool { return isV4(&k.Src) && isV4(&k.Dst) }

// allV4 reports whether every address in m is IPv4-mapped.
func (m *Message) allV4() bool {
	for i := range m.Conns {
		if !keyIsV4(&m.Conns[i]) {
			return false
		}
	}
	for i := range m.NATs {
		if !keyIsV4(&m.NATs[i].Orig) || !keyIsV4(&m.NATs[i].Xlat) {
			return false
		}
	}
	return true
}

func messageSize(conns, nats int, v4 bool) int {
	ks := keySize16
	if v4 {
		ks = keySize4
	}
	return msgHeaderSize + (conns+2*nats)*ks
}

// Size returns the length of m's encoding.
func (m *Message) Size() int { return messageSize(len(m.Conns), len(m.NATs), m.allV4()) }

// Split cuts m into messages that each encode to at most MaxMessageSize
// bytes, in order (conntrack keys first, then bindings). The parts share
// m's backing arrays. An empty m gives no parts.
func Split(m *Message) []Message {
	var out []Message
	cur := Message{}
	curV4 := true
	fits := func(dc, dn int, v4 bool) bool {
		return messageSize(len(cur.Conns)+dc, len(cur.NATs)+dn, curV4 && v4) <= MaxMessageSize
	}
	ci, ni := 0, 0 // start of cur in m.Conns / m.NATs
	flush := func() {
		if len(cur.Conns)+len(cur.NATs) > 0 {
			out = append(out, cur)
		}
		cur, curV4 = Message{}, true
	}
	for i := range m.Conns {
		v4 := keyIsV4(&m.Conns[i])
		if !fits(1, 0, v4) {
			flush()
			ci = i
		}
		cur.Conns = m.Conns[ci : i+1 : i+1]
		curV4 = curV4 && v4
	}
	for i := range m.NATs {
		v4 := keyIsV4(&m.NATs[i].Orig) && keyIsV4(&m.NATs[i].Xlat)
		if !fits(0, 1, v4) {
			flush()
			ni = i
		}
		cur.NATs = m.NATs[ni : i+1 : i+1]
		curV4 = curV4 && v4
	}
	flush()
	return out
}

// AppendMessage appends the encoding of m to b and returns the extended
// buffer. m must fit: m.Size() <= MaxMessageSize (Split makes parts that
// do); AppendMessage panics otherwise, a programmer error.
func AppendMessage(b []byte, m *Message) []byte {
	v4 := m.allV4()
	if n := messageSize(len(m.Conns), len(m.NATs), v4); n > MaxMessageSize {
		panic(fmt.Sprintf("flowstate: message of %d bytes exceeds %d; Split it", n, MaxMessageSize))
	}
	var flags byte
	if v4 {
		flags |= msgFlagIPv4
	}
	b = append(b, MessageVersion, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Conns)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.NATs)))
	for i := range m.Conns {
		b = appendKey(b, &m.Conns[i], v4)
	}
	for i := range m.NATs {
		b = appendKey(b, &m.NATs[i].Orig, v4)
		b = appendKey(b, &m.NATs[i].Xlat, v4)
	}
	return b
}

func appendKey(b []byte, k *Key, v4 bool) []byte {
	b = binary.BigEndian.AppendUint32(b, k.Zone)
	b = append(b, k.Proto)
	if v4 {
		b = append(b, k.Src[12:]...)
		b = append(b, k.Dst[12:]...)
	} else {
		b = append(b, k.Src[:]...)
		b = append(b, k.Dst[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, k.SrcPort)
	return binary.BigEndian.AppendUint16(b, k.DstPort)
}

// parseKey decodes one key record from the front of b, which the caller
// has checked holds one.
func parseKey(b []byte, v4 bool) (Key, []byte) {
	k := Key{Zone: binary.BigEndian.Uint32(b), Proto: b[4]}
	b = b[5:]
	if v4 {
		copy(k.Src[:12], v4mapped[:])
		copy(k.Src[12:], b[:4])
		copy(k.Dst[:12], v4mapped[:])
		copy(k.Dst[12:], b[4:8])
		b = b[8:]
	} else {
		copy(k.Src[:], b[:16])
		copy(k.Dst[:], b[16:32])
		b = b[32:]
	}
	k.SrcPort = binary.BigEndian.Uint16(b)
	k.DstPort = binary.BigEndian.Uint16(b[2:])
	return k, b[4:]
}

// ParseMessage decodes b into m, reusing m's slices. On error m is left
// empty (zero length slices) and the error wraps ErrBadMessage. m does not
// refer to b afterwards.
func ParseMessage(b []byte, m *Message) error {
	m.Conns, m.NATs, m.Resync = m.Conns[:0], m.NATs[:0], ""
	if len(b) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrBadMessage, len(b), MaxMessageSize)
	}
	if len(b) < msgHeaderSize {
		return fmt.Errorf("%w: truncated header (%d bytes)", ErrBadMessage, len(b))
	}
	if b[0] != MessageVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadMessage, b[0], MessageVersion)
	}
	if b[1] == msgFlagResync {
		return parseResync(b, m)
	}
	if b[1]&^msgFlagIPv4 != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrBadMessage, b[1])
	}
	v4 := b[1]&msgFlagIPv4 != 0
	nc, nn := int(binary.BigEndian.Uint16(b[2:])), int(binary.BigEndian.Uint16(b[4:]))
	if want := messageSize(nc, nn, v4); len(b) != want {
		return fmt.Errorf("%w: %d conns and %d bindings need %d bytes, have %d", ErrBadMessage, nc, nn, want, len(b))
	}
	b = b[msgHeaderSize:]
	var k Key
	for range nc {
		k, b = parseKey(b, v4)
		m.Conns = append(m.Conns, k)
	}
	for range nn {
		var n NAT
		n.Orig, b = parseKey(b, v4)
		n.Xlat, b = parseKey(b, v4)
		m.NATs = append(m.NATs, n)
	}
	return nil
}

// parseResync decodes a resync request (see the format above).
func parseResync(b []byte, m *Message) error {
	if len(b) < msgHeaderSize+1 || binary.BigEndian.Uint32(b[2:]) != 0 {
		return fmt.Errorf("%w: resync request with records or truncated (%d bytes)", ErrBadMessage, len(b))
	}
	n := int(b[msgHeaderSize])
	if want := max(ResyncMinSize, msgHeaderSize+1+n); n == 0 || len(b) != want {
		return fmt.Errorf("%w: resync request of %d bytes for a %d-byte host name, want %d", ErrBadMessage, len(b), n, want)
	}
	for _, c := range b[msgHeaderSize+1+n:] {
		if c != 0 {
			return fmt.Errorf("%w: resync request padding is not zero", ErrBadMessage)
		}
	}
	m.Resync = string(b[msgHeaderSize+1 : msgHeaderSize+1+n])
	return nil
}
