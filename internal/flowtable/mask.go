package flowtable

import (
	"unsafe"

	"hivenet/internal/packet"
)

// matchWords is the size of a FlowMatch in 32-bit words.
const matchWords = unsafe.Sizeof(packet.FlowMatch{}) / 4

// FlowMatch must be made of whole 32-bit words for maskedKey.
var _ [0]struct{} = [unsafe.Sizeof(packet.FlowMatch{}) % 4]struct{}{}

// key is a FlowMatch as plain words: the map key of a mask table. An
// array of words hashes and compares as one block of memory, where the
// struct, having blank padding fields, gets field-by-field hash and
// equality functions.
type key [matchWords]uint32

// maskedKey returns the key of m masked by mask, as packet.FlowMatch.Masked
// does but a word at a time (several times faster; see BenchmarkMasked).
// Blank padding fields of mask are zero (MaskOf never sets them), so they
// come out zero.
func maskedKey(m, mask *packet.FlowMatch) key {
	var r key
	mw := (*key)(unsafe.Pointer(m))
	kw := (*key)(unsafe.Pointer(mask))
	for i := range r {
		r[i] = mw[i] & kw[i]
	}
	return r
}

// allOnes masks every field and none of the padding.
var allOnes = packet.MaskOf(^packet.Field(0))

// keyOf returns m as a key, padding zeroed so that equal matches give
// equal keys.
func keyOf(m *packet.FlowMatch) key { return maskedKey(m, &allOnes) }
