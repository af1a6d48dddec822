package flowtable

import (
	"unsafe"

	"hivenet/internal/packet"
)

// matchWords is the size of a FlowMatch in 32-bit words.
const matchWords = unsafe.Sizeof(packet.FlowMatch{}) / 4

// FlowMatch must be made of whole 32-bit words for maskedKey.
var _ [0]struct{} = [unsafe.Sizeof(packet.FlowMatch{}) % 4]struct{}{}

// maskedKey returns m masked by mask, as packet.FlowMatch.Masked does but
// a word at a time (about 4x faster; see BenchmarkMasked). Blank padding
// fields of mask are zero (MaskOf never sets them), so they come out zero.
func maskedKey(m, mask *packet.FlowMatch) packet.FlowMatch {
	var r packet.FlowMatch
	rw := (*[matchWords]uint32)(unsafe.Pointer(&r))
	mw := (*[matchWords]uint32)(unsafe.Pointer(m))
	kw := (*[matchWords]uint32)(unsafe.Pointer(mask))
	for i := range rw {
		rw[i] = mw[i] & kw[i]
	}
	return r
}
