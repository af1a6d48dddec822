package userspace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// txCtx is the per-goroutine state of the hot path: the frame buffer with
// headroom, the segment buffer for software TSO, and pre-built syscall
// arguments, so that executing a flow allocates nothing. A reader owns
// one for its life; Execute borrows one from the pool.
type txCtx struct {
	d   *Datapath
	buf []byte // headroom + frame (the frame always starts at buf[headroom:])
	seg segmenter

	m  packet.FlowMatch
	up datapath.Upcall
	rw datapath.Rewriter // rewrite actions of the frame being executed
	// Upcall token bucket of the port this context reads (reader only).
	tokens     float64
	tokensTime int64

	// Port write: set wbuf, then call rc.Write(writeFn).
	wbuf    []byte
	werr    error
	writeFn func(fd uintptr) bool

	// Tunnel send: set the destination and payload, then call
	// udpRC.Write(sendFn).
	msg    unix.Msghdr
	iov1   [1]unix.Iovec
	sa     unix.RawSockaddrInet4
	oob    [24]byte // one cmsg holding a uint16 (UDP_SEGMENT)
	serr   unix.Errno
	sendFn func(fd uintptr) bool
	vni    uint32

	// Flow-state messages to send before the next datagram or port write
	// (ExecuteWithState; see batch.go); nil until first used.
	pend *pendState
}

func (d *Datapath) newTxCtx() *txCtx {
	c := &txCtx{d: d, buf: make([]byte, headroom+maxFrame)}
	c.seg = segmenter{
		hdrs:       make([]byte, packet.VXLANHeaderLen+maxFrame),
		iov:        make([]unix.Iovec, 2*maxGSOSegs),
		prefix:     packet.VXLANHeaderLen,
		maxBytes:   maxUDPPayload,
		maxSegs:    maxGSOSegs,
		fillPrefix: c.putVXLAN,
		emit:       c.sendChunk,
	}
	c.writeFn = func(fd uintptr) bool {
		_, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&c.wbuf[0])), uintptr(len(c.wbuf)))
		c.werr = nil
		if e != 0 {
			c.werr = e
		}
		return e != unix.EAGAIN
	}
	c.sendFn = func(fd uintptr) bool {
		_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&c.msg)), 0)
		c.serr = e
		return e != unix.EAGAIN
	}
	c.msg.Name = (*byte)(unsafe.Pointer(&c.sa))
	c.msg.Namelen = unix.SizeofSockaddrInet4
	return c
}

// readPort is the reader of one bound port (see the package comment).
func (d *Datapath) readPort(p *port) {
	defer d.wg.Done()
	defer close(p.done)
	c := d.newTxCtx()
	var n int
	var rerr unix.Errno
	rbuf := c.buf[headroom-vnetHdrLen:]
	readFn := func(fd uintptr) bool {
		// MSG_TRUNC: the return value is the real length, so an
		// oversized frame is seen and dropped rather than truncated.
		r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&rbuf[0])), uintptr(len(rbuf)),
			unix.MSG_TRUNC, 0, 0)
		n, rerr = int(r), e
		return e != unix.EAGAIN
	}
	loggedErr := false
	for {
		if err := p.rc.Read(readFn); err != nil {
			return // closed by RemovePort or Close
		}
		if rerr != 0 {
			if rerr == unix.EINTR {
				continue
			}
			// ENETDOWN and friends: the interface went down or away. Not
			// per packet: once per port until a packet arrives again.
			if !loggedErr {
				d.log.Warn("port read failed", "port", p.no, "interface", p.name, "err", rerr)
				loggedErr = true
			}
			time.Sleep(time.Millisecond) // never spin on a failing socket
			continue
		}
		loggedErr = false
		d.process(c, p.no, n)
	}
}

// process handles one packet of n bytes (virtio_net_hdr included) read
// into c.buf at headroom-vnetHdrLen from port in: the whole per-packet
// work of a port reader.
func (d *Datapath) process(c *txCtx, in datapath.PortNo, n int) {
	d.st.rx.Add(1)
	if n < vnetHdrLen+14 || n > len(c.buf)-(headroom-vnetHdrLen) {
		d.st.malformed.Add(1)
		return
	}
	g := datapath.DecodeVnetHdr(c.buf[headroom-vnetHdrLen:])
	frame := c.buf[headroom : headroom-vnetHdrLen+n]
	if err := packet.Parse(frame, uint32(in), &c.m); err != nil {
		d.st.malformed.Add(1)
		return
	}
	if a, ok := d.table.Lookup(&c.m, d.now(), len(frame)); ok {
		d.st.hits.Add(1)
		_ = d.execute(c, in, frame, g, &a)
		return
	}
	d.st.misses.Add(1)
	if !c.takeToken(d.now(), d.cfg.UpcallRate, d.cfg.UpcallBurst) {
		d.st.upcallsLimited.Add(1)
		return
	}
	if h := d.handler.Load(); h != nil {
		c.up = datapath.Upcall{InPort: in, Match: c.m, Frame: frame, GSO: g}
		(*h)(&c.up)
		c.up.Frame = nil
	}
}

// takeToken refills the upcall bucket for the time since the last call
// and takes one token if there is one.
func (c *txCtx) takeToken(now int64, rate, burst int) bool {
	if c.tokensTime == 0 {
		c.tokens = float64(burst)
	} else {
		c.tokens = min(float64(burst), c.tokens+float64(now-c.tokensTime)*float64(rate)/1e9)
	}
	c.tokensTime = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// execute runs actions on frame, which must start at c.buf[headroom:].
func (d *Datapath) execute(c *txCtx, in datapath.PortNo, frame []byte, g datapath.GSO, as *flowtable.Actions) error {
	if as.IsDrop() {
		d.st.drops.Add(1)
		return nil
	}
	s := d.state.Load()
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	c.rw.Reset()
	for i := range int(as.N) {
		a := &as.A[i]
		switch a.Kind {
		case flowtable.ActSetEthSrc, flowtable.ActSetEthDst, flowtable.ActDecTTL,
			flowtable.ActSetIPv4Src, flowtable.ActSetIPv4Dst, flowtable.ActSetL4Src, flowtable.ActSetL4Dst:
			// In place, in list order: outputs before this one sent the
			// frame as it was; g tells whether the checksum is still
			// partial (an earlier tunnel output completes it).
			if err := c.rw.Apply(frame, g, a); err != nil {
				d.st.drops.Add(1)
				note(err)
				return first // the rest of the list must not see a half-rewritten frame
			}
		case flowtable.ActOutput:
			note(d.output(c, s, datapath.PortNo(a.Port), frame, g))
		case flowtable.ActTunnel:
			c.sa = sockaddr4(a.Remote, a.RemotePort, d.cfg.TunnelPort)
			note(d.tunnel(c, frame, &g, a.Key))
		case flowtable.ActFlood:
			fs := s.floods[a.Key]
			if fs == nil {
				d.st.drops.Add(1)
				continue
			}
			for _, p := range fs.local {
				if p != in {
					note(d.output(c, s, p, frame, g))
				}
			}
			for _, r := range fs.remote {
				c.sa = r
				note(d.tunnel(c, frame, &g, a.Key))
			}
		default:
			d.st.drops.Add(1)
			note(errBadAction)
		}
	}
	return first
}

// output writes frame with its virtio_net_hdr to local port p.
func (d *Datapath) output(c *txCtx, s *state, p datapath.PortNo, frame []byte, g datapath.GSO) error {
	pt := s.ports[p]
	if pt == nil {
		d.st.drops.Add(1)
		return ErrNoPort // not wrapped: this path must not allocate
	}
	b := c.buf[headroom-vnetHdrLen : headroom+len(frame)]
	datapath.EncodeVnetHdr(b, g)
	return d.writePort(c, pt, b)
}

// writePort writes b (virtio_net_hdr + frame) to pt's socket.
func (d *Datapath) writePort(c *txCtx, pt *port, b []byte) error {
	if c.hasState() { // ExecuteWithState: the flow-state messages go first
		c.flushState()
	}
	c.wbuf = b
	err := pt.rc.Write(c.writeFn)
	c.wbuf = nil
	if err == nil && c.werr != nil {
		err = c.werr
	}
	if err != nil {
		d.st.drops.Add(1)
		return err
	}
	d.st.tx.Add(1)
	return nil
}

// tunnel sends frame to c.sa with VNI key. A plain frame is sent in place
// (its partial checksum completed first, and *g updated to say so); a GSO
// superframe is segmented.
func (d *Datapath) tunnel(c *txCtx, frame []byte, g *datapath.GSO, key uint32) error {
	c.vni = key
	if g.GSOType == gsoNone {
		if g.Flags&vnetFlagNeedsCsum != 0 {
			if err := completeChecksum(frame, *g); err != nil {
				d.st.malformed.Add(1)
				return err
			}
			g.Flags &^= vnetFlagNeedsCsum
			g.CsumStart, g.CsumOffset = 0, 0
		}
		b := c.buf[headroom-packet.VXLANHeaderLen : headroom+len(frame)]
		packet.PutVXLAN(b, key)
		return c.send(b, len(b))
	}
	if err := c.seg.segment(frame, *g); err != nil {
		c.seg.reset()
		if errors.Is(err, errOffload) {
			d.st.drops.Add(1)
		} else {
			d.st.malformed.Add(1)
		}
		return err
	}
	return c.seg.flush()
}

// putVXLAN is the segmenter's fillPrefix: the VXLAN header with c.vni.
func (c *txCtx) putVXLAN(b []byte) { packet.PutVXLAN(b, c.vni) }

// sendChunk is the segmenter's emit: it sends the chunk as one UDP GSO
// train (segments of segLen bytes), or one datagram.
func (c *txCtx) sendChunk(iov []unix.Iovec, total, segLen int) error {
	return c.sendv(iov, total, segLen)
}

// send sends b to c.sa (see sendv).
func (c *txCtx) send(b []byte, segLen int) error {
	c.iov1[0] = unix.Iovec{Base: &b[0]}
	c.iov1[0].SetLen(len(b))
	err := c.sendv(c.iov1[:], len(b), segLen)
	c.iov1[0].Base = nil
	return err
}

// sendv sends the total bytes gathered by iov to c.sa in one sendmsg;
// when segLen < total the kernel splits them into datagrams of segLen
// bytes (UDP_SEGMENT).
func (c *txCtx) sendv(iov []unix.Iovec, total, segLen int) error {
	d := c.d
	c.msg.Iov = &iov[0]
	c.msg.SetIovlen(len(iov))
	segs := 1
	if segLen < total {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c.oob[0]))
		h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
		h.SetLen(unix.CmsgLen(2))
		binary.NativeEndian.PutUint16(c.oob[unix.CmsgLen(0):], uint16(segLen))
		c.msg.Control = &c.oob[0]
		c.msg.SetControllen(unix.CmsgSpace(2))
		segs = (total + segLen - 1) / segLen
	} else {
		c.msg.Control = nil
		c.msg.SetControllen(0)
	}
	if c.hasState() { // ExecuteWithState: the flow-state messages go first
		if segs == 1 {
			err := c.sendWithState()
			c.msg.Iov = nil
			return err
		}
		c.flushState()
	}
	err := d.udpRC.Write(c.sendFn)
	c.msg.Iov = nil
	if err == nil && c.serr != 0 {
		err = c.serr
	}
	if segs > 1 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EMSGSIZE)) {
		// The segments do not fit the underlay MTU (a guest MTU set too
		// large), which UDP GSO refuses: send them one by one and let the
		// kernel fragment them, as a kernel VXLAN device would.
		return c.sendEach(iov, segLen)
	}
	if err != nil {
		d.st.drops.Add(uint64(segs))
		return err // an Errno, not wrapped: a failing underlay must not cost an allocation per packet
	}
	d.st.tunnelTx.Add(uint64(segs))
	return nil
}

// sendEach sends the segments gathered by iov one datagram each: it
// walks the iovecs, cutting them at every segLen bytes.
func (c *txCtx) sendEach(iov []unix.Iovec, segLen int) error {
	var first error
	var part [2 * maxGSOSegs]unix.Iovec
	np, acc := 0, 0
	for _, v := range iov {
		b := unsafe.Slice(v.Base, v.Len)
		for len(b) > 0 {
			k := min(len(b), segLen-acc)
			part[np] = unix.Iovec{Base: &b[0]}
			part[np].SetLen(k)
			np++
			acc += k
			b = b[k:]
			if acc == segLen || np == len(part) {
				if err := c.sendv(part[:np], acc, acc); err != nil && first == nil {
					first = err
				}
				np, acc = 0, 0
			}
		}
	}
	if np > 0 {
		if err := c.sendv(part[:np], acc, acc); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// openTunnel opens the VXLAN UDP socket with UDP_GRO.
func (d *Datapath) openTunnel() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("userspace: tunnel socket: %w", err)
	}
	fail := func(what string, e error) error {
		unix.Close(fd)
		return fmt.Errorf("userspace: tunnel socket %v:%d: %s: %w", d.cfg.TunnelIP, d.cfg.TunnelPort, what, e)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1); err != nil {
		return fail("UDP_GRO", err)
	}
	setBufs(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(d.cfg.TunnelPort), Addr: d.cfg.TunnelIP.As4()}); err != nil {
		return fail("bind", err)
	}
	d.udp = os.NewFile(uintptr(fd), "vxlan")
	rc, err := d.udp.SyscallConn()
	if err != nil {
		d.udp.Close()
		return fail("poller", err)
	}
	d.udpRC = rc
	return nil
}

// readTunnel is the tunnel reader (see the package comment).
func (d *Datapath) readTunnel() {
	defer d.wg.Done()
	buf := make([]byte, 65536)
	var oob [64]byte
	var iov unix.Iovec
	var msg unix.Msghdr
	msg.Iov, msg.Iovlen = &iov, 1
	wc := d.newTxCtx()
	co := coalescer{buf: make([]byte, vnetHdrLen+maxFrame)}
	co.write = func(p datapath.PortNo, b []byte) {
		if pt := d.state.Load().ports[p]; pt != nil {
			_ = d.writePort(wc, pt, b)
		} else {
			d.st.drops.Add(1)
		}
	}
	var n int
	var rerr unix.Errno
	recvFn := func(fd uintptr) bool {
		iov.Base = &buf[0]
		iov.SetLen(len(buf))
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
		r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), 0)
		n, rerr = int(r), e
		if e == unix.EAGAIN {
			// Nothing more queued: write out what the coalescer holds
			// before sleeping. Holding it until now lets a superframe
			// that the sender split over two UDP GSO sends be merged
			// whole, and adds no delay (the queue is empty).
			co.flush()
			return false
		}
		return true
	}
	for {
		if err := d.udpRC.Read(recvFn); err != nil {
			return // closed
		}
		if rerr != 0 {
			continue // EINTR, or an ICMP error queued on the socket
		}
		segSize := n
		if msg.Controllen >= uint64(unix.CmsgLen(4)) {
			h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
				segSize = int(binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):]))
			}
		}
		if segSize <= 0 {
			segSize = n
		}
		s := d.state.Load()
		for off := 0; off < n; off += segSize {
			seg := buf[off:min(off+segSize, n)]
			d.st.tunnelRx.Add(1)
			vni, err := packet.ParseVXLAN(seg)
			inner := seg[min(len(seg), packet.VXLANHeaderLen):]
			if err == nil && vni == datapath.StateKey {
				// Flow state: applied before anything that follows it,
				// and after everything before it (flushed first).
				co.flush()
				d.st.stateRx.Add(1)
				if h := d.stateHandler.Load(); h != nil {
					(*h)(inner)
				} else {
					d.st.stateUnhandled.Add(1)
				}
				continue
			}
			if err != nil || len(inner) < 14 {
				d.st.malformed.Add(1)
				continue
			}
			if p, ok := s.keys[vni]; ok {
				co.add(p, inner)
				continue
			}
			if fs := s.floods[vni]; fs != nil {
				co.flush()
				for _, p := range fs.local {
					co.writePlain(p, inner)
				}
				continue
			}
			d.st.unknownKey.Add(1)
		}
	}
}
