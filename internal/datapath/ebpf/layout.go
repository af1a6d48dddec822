package ebpf

import (
	"encoding/binary"
	"unsafe"

	"hivenet/internal/flowstate"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// Layout of the values shared with bpf/datapath.c. layout_test.go checks
// every offset and size below against the BTF of the compiled object.
const (
	maxMasks = 16 // MAX_MASKS
	maxFlood = 32 // MAX_FLOOD

	flowKeySize   = int(unsafe.Sizeof(packet.FlowMatch{}))      // struct flow_key
	lookupKeySize = 4 + flowKeySize                             // struct lookup_key {mask_id; k}
	actionsSize   = int(unsafe.Sizeof(flowtable.Actions{}))     // struct actions
	offLastOut    = actionsSize                                 // flow_val.last_out
	offPackets    = (offLastOut + 4 + 7) &^ 7                   // flow_val.packets
	offBytes      = offPackets + 8                              // flow_val.bytes
	offLastUsed   = offBytes + 8                                // flow_val.last_used
	flowValSize   = offLastUsed + 8                             // struct flow_val
	maskSize      = 4 + flowKeySize                             // struct mask {used; m}
	floodSize     = 8 + 8*maxFlood                              // struct flood
	configSize    = 16                                          // struct config
	portInfoSize  = 16                                          // struct port_info
	execTunSize   = 12                                          // struct exec_tun
	ctKeySize     = int(unsafe.Sizeof(flowstate.Key{}))         // struct ct_key
	ctValSize     = 16                                          // struct ct_val {state; pad[7]; last_seen}
	offCTSeen     = 8                                           // ct_val.last_seen
	metaSize      = 12                                          // struct upcall_meta
	outNone       = 0xffffffff                                  // OUT_NONE
	upcallMagic   = 0x484e                                      // UPCALL_MAGIC
	execMark      = 0x484e0000                                  // EXEC_MARK
	actionSize    = int(unsafe.Sizeof(flowtable.Action{}))      // struct action
	actionsOffA   = int(unsafe.Offsetof(flowtable.Actions{}.A)) // actions.a
)

// Upcall reasons (enum reason).
const (
	reasonMiss  = 1
	reasonState = 2
)

// Counters of hn_stats (enum stat).
const (
	stRx = iota
	stTx
	stHits
	stMisses
	stDrops
	stTunRx
	stTunTx
	stUnknownKey
	stStateRx
	stUpcallFail
	stCTCommit
	stCTCommitRx
	stMax
)

// matchBytes returns the in-memory bytes of m: the layout of struct
// flow_key (fixed-size, no implicit padding; the explicit pad byte is
// zero in every FlowMatch the parsers and Masked produce).
func matchBytes(m *packet.FlowMatch) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(m)), flowKeySize)
}

// lookupKey is struct lookup_key as bytes.
type lookupKey [lookupKeySize]byte

func makeLookupKey(slot int, m *packet.FlowMatch) lookupKey {
	var k lookupKey
	binary.LittleEndian.PutUint32(k[:4], uint32(slot))
	mm := *m
	mm = mm.Masked(packet.MaskOf(^packet.Field(0))) // zero the pad byte
	copy(k[4:], matchBytes(&mm))
	return k
}

func (k *lookupKey) slot() int { return int(binary.LittleEndian.Uint32(k[:4])) }

func (k *lookupKey) match() packet.FlowMatch {
	var m packet.FlowMatch
	copy(matchBytes(&m), k[4:])
	return m
}

// encodeFlowVal builds struct flow_val for actions with zero statistics.
func encodeFlowVal(a *flowtable.Actions) []byte {
	b := make([]byte, flowValSize)
	aa := *a
	copy(b[:actionsSize], unsafe.Slice((*byte)(unsafe.Pointer(&aa)), actionsSize))
	for i := 1; i < actionsOffA; i++ {
		b[i] = 0 // implicit padding after N
	}
	binary.LittleEndian.PutUint32(b[offLastOut:], lastOutput(a))
	return b
}

// lastOutput is the index of the action after which the frame can be
// handed over rather than cloned: the last output or tunnel action when
// no flood follows it (outNone otherwise).
func lastOutput(a *flowtable.Actions) uint32 {
	last := uint32(outNone)
	for i, x := range a.List() {
		switch x.Kind {
		case flowtable.ActOutput, flowtable.ActTunnel:
			last = uint32(i)
		case flowtable.ActFlood:
			last = outNone
		}
	}
	return last
}

// decodeFlowVal reads the actions and statistics of struct flow_val.
func decodeFlowVal(b []byte) (a flowtable.Actions, packets, bytes, lastUsed uint64) {
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&a)), actionsSize), b[:actionsSize])
	return a, binary.LittleEndian.Uint64(b[offPackets:]), binary.LittleEndian.Uint64(b[offBytes:]),
		binary.LittleEndian.Uint64(b[offLastUsed:])
}

// flowLastUsed reads the last-used time of struct flow_val b.
func flowLastUsed(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b[offLastUsed:])) }

func encodeMask(m *packet.FlowMatch) []byte {
	b := make([]byte, maskSize)
	binary.LittleEndian.PutUint32(b, 1)
	copy(b[4:], matchBytes(m))
	return b
}

func decodeMask(b []byte) (used bool, m packet.FlowMatch) {
	copy(matchBytes(&m), b[4:])
	return binary.LittleEndian.Uint32(b) != 0, m
}

// encodeFlood builds struct flood; remotes are IPv4 in host order.
func encodeFlood(local []uint32, remote []uint32) []byte {
	b := make([]byte, floodSize)
	binary.LittleEndian.PutUint32(b[0:], uint32(len(local)))
	binary.LittleEndian.PutUint32(b[4:], uint32(len(remote)))
	for i, p := range local {
		binary.LittleEndian.PutUint32(b[8+4*i:], p)
	}
	for i, r := range remote {
		binary.LittleEndian.PutUint32(b[8+4*maxFlood+4*i:], r)
	}
	return b
}

func encodePortInfo(port uint32, mac [6]byte, zone uint32) []byte {
	b := make([]byte, portInfoSize)
	binary.LittleEndian.PutUint32(b, port)
	copy(b[4:], mac[:])
	binary.LittleEndian.PutUint32(b[12:], zone)
	return b
}

// decodePortInfo reads struct port_info.
func decodePortInfo(b []byte) (port uint32, mac [6]byte, zone uint32) {
	copy(mac[:], b[4:10])
	return binary.LittleEndian.Uint32(b), mac, binary.LittleEndian.Uint32(b[12:])
}

// encodeExecTun builds struct exec_tun; remote is IPv4 in host order.
func encodeExecTun(k execKey) []byte {
	b := make([]byte, execTunSize)
	binary.LittleEndian.PutUint32(b[0:], k.vni)
	binary.LittleEndian.PutUint32(b[4:], k.remote)
	binary.LittleEndian.PutUint32(b[8:], uint32(k.flags))
	return b
}

// ctKeyBytes returns the in-memory bytes of k: the layout of struct
// ct_key (no implicit padding; the explicit pad bytes are zero in every
// Key built by flowstate.KeyOf).
func ctKeyBytes(k *flowstate.Key) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(k)), ctKeySize)
}

// ctVal is struct ct_val as bytes.
type ctVal [ctValSize]byte

func makeCTVal(state uint8, lastSeen int64) ctVal {
	var v ctVal
	v[0] = state
	binary.LittleEndian.PutUint64(v[offCTSeen:], uint64(lastSeen))
	return v
}

func (v *ctVal) state() uint8    { return v[0] }
func (v *ctVal) lastSeen() int64 { return int64(binary.LittleEndian.Uint64(v[offCTSeen:])) }

func encodeConfig(upcall, vxlan, nmasks uint32) []byte {
	b := make([]byte, configSize)
	binary.LittleEndian.PutUint32(b[0:], upcall)
	binary.LittleEndian.PutUint32(b[4:], vxlan)
	binary.LittleEndian.PutUint32(b[8:], nmasks)
	return b
}

// meta is struct upcall_meta.
type meta struct {
	magic     uint16
	reason    uint8
	ctState   uint8
	inPort    uint32
	vlanTCI   uint16
	vlanProto uint16
}

func decodeMeta(b []byte) meta {
	return meta{
		magic:     binary.LittleEndian.Uint16(b[0:]),
		reason:    b[2],
		ctState:   b[3],
		inPort:    binary.LittleEndian.Uint32(b[4:]),
		vlanTCI:   binary.LittleEndian.Uint16(b[8:]),
		vlanProto: binary.LittleEndian.Uint16(b[10:]),
	}
}
