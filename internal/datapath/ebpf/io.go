package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

const (
	vnetHdrLen = 10
	// maxFrame is the largest frame read or sent: a 64 KB superframe with
	// its Ethernet and VLAN headers.
	maxFrame = 65536 + 18
	// maxUDPPayload is the largest IPv4 UDP payload.
	maxUDPPayload = 65507
	sockBuf       = 4 << 20
	gsoNeedsCsum  = 1
	// minStateMsg is the shortest flow-state message the receiving
	// collect_md device passes on (it reads an Ethernet header).
	minStateMsg = 14
	// upcallQueueLen is the upcall TAP's queue length.
	upcallQueueLen = 8192
)

// openTap creates the upcall TAP (non-persistent: it vanishes with the
// process) with the virtio_net_hdr and offloads, so superframes and
// partial checksums come up unchanged.
func (d *Datapath) openTap() error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return unsupported("opening /dev/net/tun", err)
	}
	fail := func(what string, e error) error {
		unix.Close(fd)
		return fmt.Errorf("ebpf: upcall device %s: %s: %w", d.cfg.UpcallDevice, what, e)
	}
	ifr, err := unix.NewIfreq(d.cfg.UpcallDevice)
	if err != nil {
		return fail("name", err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fail("TUNSETIFF", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		return fail("TUNSETVNETHDRSZ", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		return fail("TUNSETOFFLOAD", err)
	}
	l, err := netlink.LinkByName(d.cfg.UpcallDevice)
	if err != nil {
		return fail("lookup", err)
	}
	_ = netlink.LinkSetARPOff(l)
	// The TAP's queue (tx_queue_len packets) absorbs bursts of misses
	// while the reader is busy; beyond it the kernel drops them.
	if err := netlink.LinkSetTxQLen(l, upcallQueueLen); err != nil {
		return fail("queue length", err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fail("up", err)
	}
	d.tapIndex = l.Attrs().Index
	d.tap = os.NewFile(uintptr(fd), "tap:"+d.cfg.UpcallDevice)
	return nil
}

// openSockets opens the non-blocking AF_PACKET socket Execute and
// SendState send with.
func (d *Datapath) openSockets() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("ebpf: AF_PACKET socket: %w", err)
	}
	d.tx = os.NewFile(uintptr(fd), "packet:tx")
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fmt.Errorf("ebpf: PACKET_VNET_HDR: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sockBuf)
	}
	if d.txRC, err = d.tx.SyscallConn(); err != nil {
		return fmt.Errorf("ebpf: AF_PACKET socket: %w", err)
	}
	// The VXLAN device sends from TunnelIP: the host must hold it.
	u, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ebpf: UDP socket: %w", err)
	}
	defer unix.Close(u)
	if err := unix.Bind(u, &unix.SockaddrInet4{Addr: d.cfg.TunnelIP.As4()}); err != nil {
		return fmt.Errorf("ebpf: tunnel IP %v is not an address of this host: %w", d.cfg.TunnelIP, err)
	}
	return nil
}

// readUpcalls reads the upcall TAP until it is closed.
func (d *Datapath) readUpcalls() {
	defer d.wg.Done()
	buf := make([]byte, vnetHdrLen+metaSize+maxFrame+4)
	var u datapath.Upcall
	rc, err := d.tap.SyscallConn()
	if err != nil {
		d.log.Error("upcall device unusable", "err", err)
		return
	}
	var n int
	var rerr unix.Errno
	readFn := func(fd uintptr) bool {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		n, rerr = int(r), e
		return e != unix.EAGAIN
	}
	for {
		if err := rc.Read(readFn); err != nil {
			return // closed
		}
		if rerr != 0 {
			if rerr == unix.EINTR {
				continue
			}
			d.st.upcallErr.Add(1)
			time.Sleep(time.Millisecond) // never spin on a failing device
			continue
		}
		if n < vnetHdrLen+metaSize {
			continue
		}
		m := decodeMeta(buf[vnetHdrLen:])
		if m.magic != upcallMagic {
			continue // the host stack's own traffic on the TAP (none expected: no addresses, no ARP)
		}
		gso := datapath.DecodeVnetHdr(buf[:vnetHdrLen])
		frame := buf[vnetHdrLen+metaSize : n]
		switch m.reason {
		case reasonState:
			if h := d.stateHandler.Load(); h != nil {
				(*h)(frame)
			} else {
				d.st.stateUnhandled.Add(1)
			}
			continue
		case reasonMiss:
		default:
			continue
		}
		// Offsets in the virtio_net_hdr count from the start of the data,
		// which held the upcall header.
		gso.CsumStart = subClamp(gso.CsumStart, metaSize)
		gso.HdrLen = subClamp(gso.HdrLen, metaSize)
		if m.vlanProto != 0 {
			// Put the offloaded tag back in the frame: the 12 bytes of
			// addresses move 4 bytes left into the header's room.
			start := vnetHdrLen + metaSize - 4
			copy(buf[start:start+12], buf[start+4:start+16])
			binary.BigEndian.PutUint16(buf[start+12:], m.vlanProto)
			binary.BigEndian.PutUint16(buf[start+14:], m.vlanTCI)
			frame = buf[start:n]
			if gso.Flags&gsoNeedsCsum != 0 {
				gso.CsumStart += 4
			}
			if gso.HdrLen != 0 {
				gso.HdrLen += 4
			}
		}
		in := datapath.PortNo(m.inPort)
		if !d.allowUpcall(in) {
			d.st.limited.Add(1)
			continue
		}
		h := d.handler.Load()
		if h == nil {
			continue
		}
		u = datapath.Upcall{InPort: in, Frame: frame, GSO: gso}
		if err := packet.Parse(frame, uint32(in), &u.Match); err != nil {
			d.st.malformed.Add(1)
			continue
		}
		u.Match.CTState = m.ctState // what the flow will be matched against
		(*h)(&u)
	}
}

func subClamp(v, n uint16) uint16 {
	if v < n {
		return 0
	}
	return v - n
}

// bucket is a per-port token bucket for upcalls, touched only by the
// upcall reader.
type bucket struct {
	tokens float64
	last   time.Duration
}

func (d *Datapath) allowUpcall(p datapath.PortNo) bool {
	now := time.Since(d.rateStart)
	v, _ := d.buckets.LoadOrStore(p, &bucket{tokens: float64(d.cfg.UpcallBurst), last: now})
	b := v.(*bucket)
	b.tokens = min(float64(d.cfg.UpcallBurst), b.tokens+(now-b.last).Seconds()*float64(d.cfg.UpcallRate))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Execute sends frame, entering at inPort with its GSO metadata, through
// actions: rewrites are applied to a copy in Go, outputs are sent by the
// kernel (AF_PACKET with the virtio_net_hdr, all outputs in one
// sendmmsg; tunnel outputs through the VXLAN device with an exec-slot
// mark, whose slot carries the commit bit of FlagCommit). ct(commit)
// records the frame's connection, as it entered, in hn_ct.
func (d *Datapath) Execute(inPort datapath.PortNo, frame []byte, gso datapath.GSO, actions *flowtable.Actions) error {
	b := d.getBatch()
	defer b.release()
	return d.execute(b, inPort, frame, gso, actions)
}

// ExecuteWithState implements datapath.StateExecuter: the messages go
// into the VXLAN device (VNI datapath.StateKey) ahead of the frame's
// outputs, all in one sendmmsg.
func (d *Datapath) ExecuteWithState(msgs []datapath.StateMessage, inPort datapath.PortNo, frame []byte, gso datapath.GSO, actions *flowtable.Actions) (int, error) {
	b := d.getBatch()
	defer b.release()
	var errs []error
	if d.closed.Load() {
		return 0, ErrClosed
	}
	d.execMu.RLock()
	for _, m := range msgs {
		if err := d.queueState(b, m.Remote, m.Msg); err != nil {
			errs = append(errs, err)
		}
	}
	bad := checkFrame(frame)
	if bad == nil {
		bad = checkActions(actions)
	}
	if bad != nil {
		b.flush() // the messages go even so
		errs = append(errs, bad, b.err())
	}
	d.execMu.RUnlock()
	if bad == nil { // the frame goes with the messages, in one sendmmsg
		errs = append(errs, d.execute(b, inPort, frame, gso, actions))
	}
	d.st.stateTx.Add(uint64(b.stateSent))
	return b.stateSent, errors.Join(errs...)
}

// SendState sends msg to remote as one VXLAN datagram with VNI
// datapath.StateKey, through the VXLAN device like the data (so a
// message sent before a packet leaves first). msg must be at least 14
// bytes (the receiving collect_md device reads an Ethernet header);
// remote.Port is not honoured (one UDP port for every host).
func (d *Datapath) SendState(remote datapath.Remote, msg []byte) error {
	if d.closed.Load() {
		return ErrClosed
	}
	b := d.getBatch()
	defer b.release()
	d.execMu.RLock()
	err := d.queueState(b, remote, msg)
	if err == nil {
		b.flush()
		err = b.err()
	}
	d.execMu.RUnlock()
	d.st.stateTx.Add(uint64(b.stateSent))
	return err
}

// queueState checks a flow-state message and queues it; execMu is read
// locked.
func (d *Datapath) queueState(b *txBatch, remote datapath.Remote, msg []byte) error {
	a := remote.Addr.Unmap()
	switch {
	case !a.Is4():
		return fmt.Errorf("ebpf: flow state to %v: the tunnel is IPv4", remote.Addr)
	case len(msg) > maxUDPPayload-packet.VXLANHeaderLen:
		return fmt.Errorf("ebpf: flow-state message of %d bytes exceeds %d", len(msg), maxUDPPayload-packet.VXLANHeaderLen)
	case len(msg) < minStateMsg:
		return fmt.Errorf("ebpf: flow-state message of %d bytes: at least %d are needed (the receiving VXLAN device drops shorter frames)", len(msg), minStateMsg)
	}
	if err := d.queueTunnel(b, datapath.StateKey, a.As4(), 0, msg, datapath.GSO{}); err != nil {
		return err
	}
	b.nstate++
	return nil
}

// execute queues frame's outputs on b and flushes it.
func (d *Datapath) execute(b *txBatch, inPort datapath.PortNo, frame []byte, gso datapath.GSO, actions *flowtable.Actions) error {
	if err := checkFrame(frame); err != nil {
		return err
	}
	if err := checkActions(actions); err != nil {
		return err
	}
	if d.closed.Load() {
		return ErrClosed
	}
	bp := d.bufPool.Get().(*[]byte)
	defer d.bufPool.Put(bp)
	f := (*bp)[:len(frame)]
	copy(f, frame)
	var rw datapath.Rewriter
	var errs []error
	queued := false // f is referenced by queued frames
	d.execMu.RLock()
	defer d.execMu.RUnlock()
	defer b.flush() // before f goes back to the pool
	for i := range actions.List() {
		a := &actions.A[i]
		switch a.Kind {
		case flowtable.ActOutput:
			if ifx, ok := d.portIfindex(datapath.PortNo(a.Port)); ok {
				b.add(ifx, f, gso, 0)
				queued = true
			} else {
				errs = append(errs, fmt.Errorf("%w: %d", ErrNoPort, a.Port))
			}
		case flowtable.ActTunnel:
			errs = append(errs, d.queueTunnel(b, a.Key, a.Remote, a.Flags&flowtable.FlagCommit, f, gso))
			queued = true
		case flowtable.ActCTCommit:
			// The tuple as the frame entered, before any rewrite.
			errs = append(errs, d.commitFrame(frame, uint32(inPort), a.Key, a.Port))
		case flowtable.ActFlood:
			errs = append(errs, d.queueFlood(b, inPort, a.Key, f, gso))
			queued = true
		default:
			if !datapath.IsRewrite(a.Kind) {
				return errors.Join(append(errs, fmt.Errorf("ebpf: unknown action kind %d", a.Kind))...)
			}
			if queued { // a rewrite after an output: send what was before it
				b.flush()
				queued = false
			}
			if err := rw.Apply(f, gso, a); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
	}
	b.flush()
	return errors.Join(append(errs, b.err())...)
}

// checkFrame refuses a frame Execute cannot send.
func checkFrame(frame []byte) error {
	if len(frame) > maxFrame {
		return fmt.Errorf("ebpf: frame of %d bytes exceeds %d", len(frame), maxFrame)
	}
	if len(frame) < 14 {
		return fmt.Errorf("ebpf: frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	return nil
}

func (d *Datapath) portIfindex(p datapath.PortNo) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pt, ok := d.ports[p]
	if !ok {
		return 0, false
	}
	return pt.ifindex, true
}

// queueTunnel queues f into the VXLAN device with the exec slot of
// (vni, remote, flags); execMu is read locked. A new slot is made with
// the queued frames flushed first, since making one may renumber the
// slots their marks name.
func (d *Datapath) queueTunnel(b *txBatch, vni uint32, remote [4]byte, flags uint8, f []byte, gso datapath.GSO) error {
	k := execKey{vni: vni, remote: binary.BigEndian.Uint32(remote[:]), flags: flags}
	for {
		if slot, ok := d.execSlots[k]; ok {
			b.add(d.vxIndex, f, gso, execMark|slot)
			return nil
		}
		b.flush()
		d.execMu.RUnlock()
		_, err := d.newExecSlot(k)
		d.execMu.RLock()
		if err != nil {
			return err
		}
	}
}

// newExecSlot allocates a mark for (vni, remote, flags); when the 65535 slots
// are used up they are all forgotten and numbering starts again.
func (d *Datapath) newExecSlot(k execKey) (uint32, error) {
	d.execMu.Lock()
	defer d.execMu.Unlock()
	if s, ok := d.execSlots[k]; ok {
		return s, nil
	}
	if len(d.execSlots) >= 0xffff {
		clear(d.execSlots)
	}
	s := uint32(len(d.execSlots) + 1)
	if err := d.objs.HnExec.Put(s, encodeExecTun(k)); err != nil {
		return 0, fmt.Errorf("ebpf: exec map: %w", err)
	}
	d.execSlots[k] = s
	return s, nil
}

// queueFlood queues f to every member of flood set key but in.
func (d *Datapath) queueFlood(b *txBatch, in datapath.PortNo, key uint32, f []byte, gso datapath.GSO) error {
	var v []byte
	if err := d.objs.HnFloods.Lookup(key, &v); err != nil {
		return nil // no flood set: nothing to do
	}
	nl, nr := binary.LittleEndian.Uint32(v[0:]), binary.LittleEndian.Uint32(v[4:])
	var errs []error
	for i := range min(nl, maxFlood) {
		p := datapath.PortNo(binary.LittleEndian.Uint32(v[8+4*i:]))
		if p == in {
			continue
		}
		if ifx, ok := d.portIfindex(p); ok {
			b.add(ifx, f, gso, 0)
		} else {
			errs = append(errs, fmt.Errorf("%w: %d", ErrNoPort, p))
		}
	}
	for i := range min(nr, maxFlood) {
		var r [4]byte
		binary.BigEndian.PutUint32(r[:], binary.LittleEndian.Uint32(v[8+4*maxFlood+4*i:]))
		errs = append(errs, d.queueTunnel(b, key, r, 0, f, gso))
	}
	return errors.Join(errs...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// SetStateHandler sets the function the upcall reader calls with every
// flow-state message; nil removes it (messages are then counted in
// StateUnhandled).
func (d *Datapath) SetStateHandler(h func(msg []byte)) {
	if h == nil {
		d.stateHandler.Store(nil)
		return
	}
	d.stateHandler.Store(&h)
}
