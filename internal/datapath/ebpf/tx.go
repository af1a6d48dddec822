package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
)

// The slow path's system calls are made with unix.RawSyscall on
// non-blocking descriptors: a blocking-style syscall (syscall.Syscall)
// tells the Go scheduler the thread may block, and with a miss every
// few tens of microseconds the runtime's monitor thread (sysmon) then
// wakes every 20 µs to retake the processor, which cost a quarter of
// the agent's CPU under a connection storm. A full socket makes the
// caller wait in the netpoller (RawConn.Write), not spin.

// maxBatch bounds the frames of one sendmmsg; Execute and
// ExecuteWithState flush earlier when they have more.
const maxBatch = 64

// oobLen is the room of one SO_MARK control message.
var oobLen = unix.CmsgSpace(4)

type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// txBatch collects frames (each with a virtio_net_hdr, an output
// interface and an optional mark) for one sendmmsg on the AF_PACKET
// socket. The frames' bytes are referenced, not copied: they must stay
// untouched until flush. Not safe for concurrent use; Datapath keeps a
// pool of them.
type txBatch struct {
	d    *Datapath
	n    int
	hdr  [maxBatch][vnetHdrLen]byte
	iov  [maxBatch][2]unix.Iovec
	sa   [maxBatch]unix.RawSockaddrLinklayer
	oob  [maxBatch][]byte
	mm   [maxBatch]mmsghdr
	ifx  [maxBatch]int
	errs []error
	// sent counts the frames the kernel took, stateSent those of them
	// that were flow-state messages: the first nstate frames queued
	// (base counts the frames of earlier flushes).
	sent, stateSent, nstate, base int

	from   int // first frame not yet sent (flush)
	done   int
	serr   unix.Errno
	sendFn func(fd uintptr) bool
}

var txPool = sync.Pool{New: func() any {
	b := &txBatch{}
	for i := range b.oob {
		b.oob[i] = make([]byte, oobLen)
	}
	b.sendFn = func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.mm[b.from])), uintptr(b.n-b.from), unix.MSG_DONTWAIT, 0, 0)
		b.done, b.serr = int(r), e
		return e != unix.EAGAIN
	}
	return b
}}

func (d *Datapath) getBatch() *txBatch {
	b := txPool.Get().(*txBatch)
	b.d = d
	return b
}

// release forgets the frames (no references kept) and returns b to the
// pool.
func (b *txBatch) release() {
	for i := range b.n {
		b.iov[i][1].Base = nil
	}
	b.n, b.errs, b.sent, b.stateSent, b.nstate, b.base, b.d = 0, nil, 0, 0, 0, 0, nil
	txPool.Put(b)
}

// add queues frame (virtio_net_hdr for gso) to ifindex with mark
// (0: none), flushing first when the batch is full.
func (b *txBatch) add(ifindex int, frame []byte, gso datapath.GSO, mark uint32) {
	if b.n == maxBatch {
		b.flush()
	}
	i := b.n
	datapath.EncodeVnetHdr(b.hdr[i][:], gso)
	et := binary.BigEndian.Uint16(frame[12:])
	b.sa[i] = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: htons(et), Ifindex: int32(ifindex)}
	b.iov[i][0] = unix.Iovec{Base: &b.hdr[i][0]}
	b.iov[i][0].SetLen(vnetHdrLen)
	b.iov[i][1] = unix.Iovec{Base: &frame[0]}
	b.iov[i][1].SetLen(len(frame))
	h := &b.mm[i].hdr
	*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.sa[i])), Namelen: unix.SizeofSockaddrLinklayer, Iov: &b.iov[i][0], Iovlen: 2}
	if mark != 0 {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&b.oob[i][0]))
		c.Level, c.Type = unix.SOL_SOCKET, unix.SO_MARK
		c.SetLen(unix.CmsgLen(4))
		binary.NativeEndian.PutUint32(b.oob[i][unix.CmsgLen(0):], mark)
		h.Control = &b.oob[i][0]
		h.SetControllen(oobLen)
	}
	b.ifx[i] = ifindex
	b.n++
}

// flush sends the queued frames with as few sendmmsg calls as the
// kernel allows: a frame it refuses is recorded as an error and skipped.
func (b *txBatch) flush() {
	if b.n == 0 {
		return
	}
	rc := b.d.txRC
	for b.from = 0; b.from < b.n; {
		if err := rc.Write(b.sendFn); err != nil {
			b.errs = append(b.errs, fmt.Errorf("ebpf: sending: %w", err))
			break
		}
		switch {
		case b.serr == unix.EINTR:
		case b.serr != 0:
			b.errs = append(b.errs, fmt.Errorf("ebpf: sending to ifindex %d: %w", b.ifx[b.from], b.serr))
			b.from++
		default:
			b.count(b.from, b.done)
			b.from += b.done
		}
	}
	for i := range b.n {
		b.iov[i][1].Base = nil
		b.mm[i].hdr.Control = nil
	}
	b.base += b.n
	b.n = 0
}

// count records frames [from, from+n) as sent.
func (b *txBatch) count(from, n int) {
	b.sent += n
	b.stateSent += max(0, min(n, b.nstate-(b.base+from)))
}

func (b *txBatch) err() error { return errors.Join(b.errs...) }

// bpfElemAttr is the kernel's union bpf_attr for BPF_MAP_*_ELEM
// commands (64-bit platforms: the pointers are the __aligned_u64s).
type bpfElemAttr struct {
	mapFD uint32
	_     uint32
	key   unsafe.Pointer
	value unsafe.Pointer
	flags uint64
}

// mapUpdate is BPF_MAP_UPDATE_ELEM(BPF_ANY) as a raw system call (the
// map library's calls go through syscall.Syscall; see above).
func mapUpdate(fd int, key, value unsafe.Pointer) error {
	const bpfMapUpdateElem = 2
	attr := bpfElemAttr{mapFD: uint32(fd), key: key, value: value}
	_, _, e := unix.RawSyscall(unix.SYS_BPF, bpfMapUpdateElem, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if e != 0 {
		return e
	}
	return nil
}

// The attribute must be the kernel's 32 bytes.
var _ = [1]struct{}{}[unsafe.Sizeof(bpfElemAttr{})-32]

// mapLookup is BPF_MAP_LOOKUP_ELEM as a raw system call: false when key
// is absent (or the lookup failed).
func mapLookup(fd int, key, value unsafe.Pointer) bool {
	const bpfMapLookupElem = 1
	attr := bpfElemAttr{mapFD: uint32(fd), key: key, value: value}
	_, _, e := unix.RawSyscall(unix.SYS_BPF, bpfMapLookupElem, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	return e == 0
}

// mapDelete is BPF_MAP_DELETE_ELEM as a raw system call; an absent key
// is no error.
func mapDelete(fd int, key unsafe.Pointer) error {
	const bpfMapDeleteElem = 3
	attr := bpfElemAttr{mapFD: uint32(fd), key: key}
	_, _, e := unix.RawSyscall(unix.SYS_BPF, bpfMapDeleteElem, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if e != 0 && e != unix.ENOENT {
		return e
	}
	return nil
}
