package userspace

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// Flow-state messages sent together with the packet that depends on them
// (ExecuteWithState): the messages wait in the txCtx (pend) while the
// actions run; the first tunnel datagram of the packet leaves with them in
// one sendmmsg, after them. A port write, a GSO train or the end of the
// actions sends them alone first. Either way every message leaves the
// tunnel socket before the packet, as with SendState.

// maxPendState bounds the messages batched with one packet; more are sent
// one sendmsg each before it.
const maxPendState = 7

// mmsghdr mirrors struct mmsghdr (linux, 64-bit).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// pendState is the batch of a txCtx.
type pendState struct {
	n   int
	hdr [maxPendState][packet.VXLANHeaderLen]byte
	iov [maxPendState][2]unix.Iovec
	sa  [maxPendState]unix.RawSockaddrInet4
	mm  [maxPendState + 1]mmsghdr
	// sent counts messages that left; first is the first error of a
	// message.
	sent  int
	first error
	// Set for one sendmmsg call: the entries, the result.
	batch  []mmsghdr
	done   int
	berr   unix.Errno
	sendFn func(fd uintptr) bool
}

// ExecuteWithState sends msgs and then frame through actions (see
// datapath.StateExecuter).
func (d *Datapath) ExecuteWithState(msgs []datapath.StateMessage, inPort datapath.PortNo, frame []byte, gso datapath.GSO, actions *flowtable.Actions) (int, error) {
	if len(frame) > maxFrame {
		return 0, fmt.Errorf("userspace: frame of %d bytes exceeds %d", len(frame), maxFrame)
	}
	if d.closed.Load() {
		return 0, ErrClosed
	}
	sent := 0
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	c := d.ctxPool.Get().(*txCtx)
	defer d.ctxPool.Put(c)
	p := c.pendState()
	for i := range msgs {
		m := &msgs[i]
		a := m.Remote.Addr.Unmap()
		switch {
		case !a.Is4():
			note(fmt.Errorf("userspace: flow state to %v: the tunnel is IPv4", m.Remote.Addr))
			continue
		case len(m.Msg) == 0 || len(m.Msg) > maxUDPPayload-packet.VXLANHeaderLen:
			note(fmt.Errorf("userspace: flow-state message of %d bytes (1 to %d)", len(m.Msg), maxUDPPayload-packet.VXLANHeaderLen))
			continue
		case p.n == maxPendState:
			if err := d.SendState(m.Remote, m.Msg); err != nil {
				note(err)
			} else {
				sent++
			}
			continue
		}
		j := p.n
		packet.PutVXLAN(p.hdr[j][:], datapath.StateKey)
		p.iov[j][0] = unix.Iovec{Base: &p.hdr[j][0]}
		p.iov[j][0].SetLen(packet.VXLANHeaderLen)
		p.iov[j][1] = unix.Iovec{Base: &m.Msg[0]}
		p.iov[j][1].SetLen(len(m.Msg))
		p.sa[j] = sockaddr4(a.As4(), m.Remote.Port, d.cfg.TunnelPort)
		p.n++
	}
	n := copy(c.buf[headroom:], frame)
	note(d.execute(c, inPort, c.buf[headroom:headroom+n], gso, actions))
	c.flushState() // a drop, or no tunnel or port output
	sent += p.sent
	if first == nil {
		first = p.first
	}
	p.reset()
	return sent, first
}

// pendState returns c's batch, made on first use.
func (c *txCtx) pendState() *pendState {
	if c.pend == nil {
		p := &pendState{}
		p.sendFn = func(fd uintptr) bool {
			r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&p.batch[0])), uintptr(len(p.batch)), 0, 0, 0)
			p.done, p.berr = int(r), e
			return e != unix.EAGAIN
		}
		c.pend = p
	}
	return c.pend
}

// reset forgets the batch and drops the references to the messages.
func (p *pendState) reset() {
	for j := range p.iov {
		p.iov[j][1].Base = nil
	}
	for j := range p.mm {
		p.mm[j].hdr = unix.Msghdr{}
	}
	p.n, p.sent, p.first, p.batch = 0, 0, nil, nil
}

// hasState reports whether messages wait to go before the next send.
func (c *txCtx) hasState() bool { return c.pend != nil && c.pend.n > 0 }

// fillState puts the waiting messages into p.mm[0:n].
func (p *pendState) fillState() int {
	for j := range p.n {
		h := &p.mm[j].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&p.sa[j])), Namelen: unix.SizeofSockaddrInet4}
		h.Iov = &p.iov[j][0]
		h.SetIovlen(2)
	}
	return p.n
}

// flushState sends the waiting messages alone.
func (c *txCtx) flushState() {
	if !c.hasState() {
		return
	}
	p := c.pend
	n := p.fillState()
	c.sendBatch(p.mm[:n], n)
}

// sendWithState sends the waiting messages and then the datagram c.msg
// describes in one sendmmsg; it reports the datagram's error.
func (c *txCtx) sendWithState() error {
	p := c.pend
	n := p.fillState()
	p.mm[n].hdr = c.msg
	return c.sendBatch(p.mm[:n+1], n)
}

// sendBatch sends entries in order (resuming after a partial send); the
// first nstate are flow-state messages, counted in p.sent and p.first.
// It returns the error of the entry after them, if any.
func (c *txCtx) sendBatch(entries []mmsghdr, nstate int) error {
	d, p := c.d, c.pend
	var dataErr error
	for i := 0; i < len(entries); {
		p.batch = entries[i:]
		err := d.udpRC.Write(p.sendFn)
		if err == nil && p.berr != 0 {
			err = p.berr
		}
		if err != nil || p.done <= 0 {
			// entries[i] failed: count it and go on with the rest.
			if err == nil {
				err = unix.EIO
			}
			if i < nstate {
				if p.first == nil {
					p.first = fmt.Errorf("userspace: flow state: %w", err)
				}
			} else {
				dataErr = err
				d.st.drops.Add(1)
			}
			i++
			continue
		}
		for k := i; k < i+p.done; k++ {
			if k < nstate {
				p.sent++
				d.st.stateTx.Add(1)
			} else {
				d.st.tunnelTx.Add(1)
			}
		}
		i += p.done
	}
	p.batch = nil
	p.n = 0
	return dataErr
}
