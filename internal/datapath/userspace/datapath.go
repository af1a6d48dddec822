// Package userspace is the userspace datapath: packet I/O on bound
// interfaces through AF_PACKET sockets carrying the virtio_net_hdr, a Go
// flow table, and VXLAN over one UDP socket. It implements
// datapath.Datapath.
//
// # Hot path
//
// Goroutines: one reader per bound port, one reader for the tunnel
// socket, one ticker that expires idle flows. Nothing else touches
// packets. Packets of one port are handled in order by its reader; there
// is no queue between stages, so a reader is busy for the whole life of a
// packet (read, parse, lookup, execute or upcall).
//
// Port reader (readPort):
//
//  1. recvfrom(MSG_TRUNC) into the reader's own buffer at offset
//     headroom-vnetHdrLen: the kernel writes the 10-byte virtio_net_hdr
//     followed by the frame, which may be a 64 KB TSO superframe or carry a
//     partial checksum (see offload.go). Frames we transmit on the same
//     interface are not seen again (PACKET_IGNORE_OUTGOING).
//  2. packet.Parse into the reader's FlowMatch. Unparseable: Malformed++,
//     dropped.
//  3. flowtable.Lookup. Hit: execute the actions on the reader's buffer.
//     Miss: call the Handler in this goroutine with an Upcall whose Frame
//     aliases the buffer (valid only during the call); the handler
//     normally simulates, Installs and calls Execute, which copies the
//     frame into a pooled buffer of the same shape.
//
// Executing actions on a buffer (execute): the frame sits at
// buf[headroom:], so headers are prepended in place.
//
//   - ActOutput: the virtio_net_hdr is rewritten just before the frame and
//     hdr+frame is written to the port's socket unchanged (superframes pass
//     unsplit between local ports; the kernel's dev_queue_xmit segments and
//     checksums them in software if the port's device cannot take them).
//   - ActTunnel: a plain frame gets its partial checksum completed, the
//     8-byte VXLAN header (VNI = Key) is written just before it, and it goes
//     out as one UDP datagram. A GSO superframe is segmented into the
//     context's segment buffer and sent as UDP GSO trains (offload.go).
//   - ActFlood: ActOutput to every local port of the flood set except the
//     ingress port, ActTunnel to each remote of the set, VNI = Key.
//   - Rewrites (ActSetEthSrc/Dst, ActDecTTL, ActSetIPv4Src/Dst,
//     ActSetL4Src/Dst): applied to the frame in place, in list order, by
//     the context's datapath.Rewriter (see datapath/rewrite.go: RFC 1624
//     checksum updates, partial checksums and superframes included); the
//     outputs after them send the rewritten frame. The frame is parsed
//     for them once, at the first L3/L4 rewrite. A rewrite that does not
//     fit the frame (TTL expired, not IPv4) drops it before any later
//     output.
//
// Tunnel reader (readTunnel): recvmsg with UDP_GRO into its own buffer,
// so one call returns a train of VXLAN datagrams and the segment size.
// Each datagram's VNI is looked up in the tunnel-key table (key → port)
// or the flood sets (key → local ports); no simulation happens here.
// VNI datapath.StateKey is a flow-state message: the reader flushes the
// coalescer and calls the state handler synchronously, so the state is
// applied after every frame received before it and before any frame
// received after it. SendState sends such messages from the same UDP
// socket as the data, so a message sent before a packet to the same host
// arrives before it (UDP_GRO keeps the order of a train).
// Unicast frames go through the coalescer, which merges in-order TCP
// segments back into superframes before writing them to the port.
//
// Buffer ownership: every reader owns its receive buffer and its segment
// buffer for its whole life; Execute borrows a context from a sync.Pool
// for the duration of the call. No buffer is shared between goroutines,
// and no buffer outlives the call that wrote it out (write and sendmsg
// copy into the kernel).
//
// Control state (ports, tunnel keys, flood sets) is an immutable value
// swapped whole under mu with an atomic.Pointer; readers load it once per
// packet and take no lock. A port's socket is an os.File in the runtime
// poller: closing it wakes its reader, and a writer racing with the close
// gets an error instead of writing to a reused descriptor.
//
// # Measurements
//
// 2026-11-24, on the project machine (2 vCPU Firecracker VM) while other
// jobs loaded both CPUs (load average 4-15), TestPrivilegedBenchCompare
// (HDP_BENCH=1; two host namespaces, VM MTU 1450, runs alternating with a
// Linux bridge + kernel VXLAN between the same kind of namespaces, medians
// of 3): TCP throughput 0.48-0.70x the kernel's (2.8-4.5 vs 5.3-7.7
// Gbit/s), ping RTT 2.3-2.8x (270-330 vs 118-138 µs), UDP 64-byte packets
// received 0.36-0.54x. A TSO superframe of ~45 segments costs one read,
// two UDP GSO sends, one GRO receive per send and one write. Every RTT
// crosses four goroutine wakeups (port reader, remote tunnel reader,
// remote port reader, tunnel reader) where the kernel path wakes nobody.
// System calls dominate the profile (~80% of the datapath's CPU, about
// 10 µs each in this VM including the packet work the kernel does inside
// them), so small packets are bound by the four calls per packet;
// batching (recvmmsg/sendmmsg, TPACKET rings) is the next step for them.
// Tried and dropped: blocking reads on the readers' own threads (worse:
// 0.9 Gbit/s and 457 µs, as readers blocked in syscalls hold the Ps),
// and draining a port just written to before parking, to save the wakeup
// of its reader for the guest's immediate answer (no change in RTT).
package userspace

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

var _ datapath.Datapath = (*Datapath)(nil)
var _ datapath.StateExecuter = (*Datapath)(nil)

// Sentinel errors.
var (
	// ErrNoInterface: AddPort was given a name that no interface in the
	// datapath's network namespace has (yet).
	ErrNoInterface = errors.New("userspace: no such interface")
	// ErrNoPort: the port number is not bound.
	ErrNoPort = errors.New("userspace: no such port")
	// ErrClosed: the datapath was closed.
	ErrClosed = errors.New("userspace: datapath closed")

	errBadAction = errors.New("userspace: unknown action kind")
)

// Tuning constants.
const (
	// headroom is reserved before every frame so that the VXLAN header
	// (and the virtio_net_hdr) can be written in front of it in place.
	headroom = 64
	// maxFrame is the largest frame read from or written to a port: a
	// 64 KB GSO superframe plus its Ethernet and VLAN headers.
	maxFrame = 65536 + 18
	// maxUDPPayload is the largest IPv4 UDP payload: one UDP GSO send.
	maxUDPPayload = 65507
	// maxGSOSegs bounds the segments of one UDP GSO send (the kernel's
	// UDP_MAX_SEGMENTS is 128 on this kernel, 64 on older ones).
	maxGSOSegs = 64
	// sockBuf is the socket buffer size asked for on every socket.
	sockBuf = 4 << 20
	// expireEvery is how often idle flows are expired.
	expireEvery = time.Second
)

// Config configures a Datapath.
type Config struct {
	// TunnelIP is the local underlay IPv4 address the VXLAN socket binds
	// to. Required.
	TunnelIP netip.Addr
	// TunnelPort is the VXLAN UDP port (default 4789).
	TunnelPort uint16
	// MaxFlows caps the flow table (default flowtable.DefaultMaxFlows).
	MaxFlows int
	// IdleTimeout expires flows unused for that long (default 10 s).
	IdleTimeout time.Duration
	// HardTimeout expires flows that old, used or not, so that they are
	// simulated again now and then (default 10 min; negative disables).
	HardTimeout time.Duration
	// UpcallRate limits the misses handed to the Handler per port, per
	// second (default 10000), with bursts of UpcallBurst (default 1000),
	// so that one VM opening connections cannot starve the others. Misses
	// over the limit are dropped and counted (UpcallsDroppedRateLimit).
	UpcallRate  int
	UpcallBurst int
	// Logger receives state changes (ports bound, sockets failing); never
	// per-packet events. The caller names the component. Default:
	// slog.Default().
	Logger *slog.Logger
}

// Validate checks cfg and fills in defaults.
func (c *Config) Validate() error {
	if !c.TunnelIP.Is4() && !c.TunnelIP.Is4In6() {
		return fmt.Errorf("userspace: TunnelIP %v: an IPv4 address is required", c.TunnelIP)
	}
	c.TunnelIP = c.TunnelIP.Unmap()
	if c.TunnelPort == 0 {
		c.TunnelPort = 4789
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Second
	}
	if c.HardTimeout == 0 {
		c.HardTimeout = 10 * time.Minute
	}
	if c.UpcallRate == 0 {
		c.UpcallRate = 10000
	}
	if c.UpcallBurst == 0 {
		c.UpcallBurst = 1000
	}
	if c.IdleTimeout < 0 || c.MaxFlows < 0 || c.UpcallRate < 0 || c.UpcallBurst < 0 {
		return errors.New("userspace: MaxFlows, IdleTimeout, UpcallRate and UpcallBurst must not be negative")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Datapath is the userspace datapath. All methods are safe for concurrent
// use.
type Datapath struct {
	cfg   Config
	log   *slog.Logger
	table *flowtable.Table
	ns    netns.NsHandle // the network namespace New ran in
	epoch time.Time

	handler      atomic.Pointer[datapath.Handler]
	stateHandler atomic.Pointer[func(msg []byte)]
	state        atomic.Pointer[state]

	mu       sync.Mutex // serializes control changes; guards nextPort, started
	nextPort datapath.PortNo
	started  bool

	udp   *os.File
	udpRC syscall.RawConn

	ctxPool sync.Pool // *txCtx for Execute

	closed atomic.Bool
	done   chan struct{}
	wg     sync.WaitGroup

	st counters
}

// state is the control state readers see, swapped whole.
type state struct {
	ports  map[datapath.PortNo]*port
	byName map[string]datapath.PortNo
	keys   map[uint32]datapath.PortNo
	floods map[uint32]*floodSet
}

func (s *state) clone() *state {
	return &state{
		ports:  cloneMap(s.ports),
		byName: cloneMap(s.byName),
		keys:   cloneMap(s.keys),
		floods: cloneMap(s.floods),
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	n := make(map[K]V, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

type floodSet struct {
	local  []datapath.PortNo
	remote []unix.RawSockaddrInet4
}

type port struct {
	no      datapath.PortNo
	name    string
	ifindex int
	f       *os.File
	rc      syscall.RawConn
	done    chan struct{} // closed when the reader has exited
}

type counters struct {
	rx, tx, hits, misses, drops, malformed atomic.Uint64
	tunnelRx, tunnelTx, unknownKey         atomic.Uint64
	upcallsLimited                         atomic.Uint64
	stateTx, stateRx, stateUnhandled       atomic.Uint64
}

// New opens the VXLAN socket in the calling thread's network namespace
// (lock the OS thread and switch namespaces before calling it to run a
// datapath for another namespace) and returns a datapath with no ports.
// The tunnel reader starts at once; ports are read from AddPort on; misses
// are dropped until Start gives a handler.
func New(cfg Config) (*Datapath, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Datapath{
		cfg: cfg,
		log: cfg.Logger,
		table: flowtable.New(flowtable.Config{MaxFlows: cfg.MaxFlows, IdleTimeout: int64(cfg.IdleTimeout),
			HardTimeout: max(0, int64(cfg.HardTimeout))}),
		ns:    netns.None(),
		epoch: time.Now(),
		done:  make(chan struct{}),
	}
	if h, err := netns.Get(); err == nil {
		d.ns = h
	}
	d.state.Store(&state{
		ports:  map[datapath.PortNo]*port{},
		byName: map[string]datapath.PortNo{},
		keys:   map[uint32]datapath.PortNo{},
		floods: map[uint32]*floodSet{},
	})
	d.ctxPool.New = func() any { return d.newTxCtx() }
	if err := d.openTunnel(); err != nil {
		d.ns.Close()
		return nil, err
	}
	d.wg.Add(1)
	go d.readTunnel()
	d.log.Info("datapath started", "tunnel_ip", cfg.TunnelIP, "tunnel_port", cfg.TunnelPort)
	return d, nil
}

// now is the datapath's monotonic clock for flow stats, in nanoseconds.
func (d *Datapath) now() int64 { return int64(time.Since(d.epoch)) }

// Start sets the miss handler and starts idle-flow expiry.
func (d *Datapath) Start(h datapath.Handler) error {
	if h == nil {
		return errors.New("userspace: nil handler")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return ErrClosed
	}
	d.handler.Store(&h)
	if !d.started {
		d.started = true
		d.wg.Add(1)
		go d.expireLoop()
	}
	return nil
}

func (d *Datapath) expireLoop() {
	defer d.wg.Done()
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-t.C:
			if n := d.table.Expire(d.now()); n > 0 {
				d.log.Debug("flows expired", "count", n)
			}
		}
	}
}

// inNetns runs fn on a fresh OS thread switched into the datapath's
// network namespace, so that interface names resolve there whatever
// namespace the caller is in. The thread is discarded afterwards.
func (d *Datapath) inNetns(fn func() error) error {
	if !d.ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := netns.Set(d.ns); err != nil {
			errc <- fmt.Errorf("entering the datapath's network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// AddPort binds interface ifname (in the datapath's network namespace)
// and starts its reader. It fails with ErrNoInterface if the interface
// does not exist; the caller retries when it appears.
func (d *Datapath) AddPort(ifname string) (datapath.PortNo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return 0, ErrClosed
	}
	if _, dup := d.state.Load().byName[ifname]; dup {
		return 0, fmt.Errorf("userspace: interface %s is already bound", ifname)
	}
	var fd, ifindex int
	err := d.inNetns(func() error {
		var err error
		fd, ifindex, err = openPacketSocket(ifname)
		return err
	})
	if err != nil {
		return 0, err
	}
	f := os.NewFile(uintptr(fd), "packet:"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return 0, fmt.Errorf("userspace: interface %s: %w", ifname, err)
	}
	d.nextPort++ // never reused, so a stale flow cannot reach a new port
	p := &port{no: d.nextPort, name: ifname, ifindex: ifindex, f: f, rc: rc, done: make(chan struct{})}
	s := d.state.Load().clone()
	s.ports[p.no] = p
	s.byName[ifname] = p.no
	d.state.Store(s)
	d.wg.Add(1)
	go d.readPort(p)
	d.log.Info("port bound", "port", p.no, "interface", ifname, "ifindex", ifindex)
	return p.no, nil
}

// openPacketSocket opens an AF_PACKET socket bound to ifname with the
// virtio_net_hdr, in the calling thread's network namespace.
func openPacketSocket(ifname string) (fd, ifindex int, err error) {
	// Protocol 0: receive nothing until bound to the interface.
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("userspace: AF_PACKET socket: %w", err)
	}
	fail := func(what string, e error) (int, int, error) {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("userspace: interface %s: %s: %w", ifname, what, e)
	}
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return fail("name", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("%w: %s", ErrNoInterface, ifname)
		}
		return fail("index", err)
	}
	ifindex = int(ifr.Uint32())
	for _, o := range []struct {
		level, opt, val int
		name            string
	}{
		{unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"},
		{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"},
		// No PACKET_QDISC_BYPASS: its packet_direct_xmit drops a GSO
		// superframe (ENOBUFS) whenever the device cannot take it as
		// is (TSO or TX checksumming off: a guest that disabled them, a
		// NIC without the GSO type), where dev_queue_xmit segments and
		// checksums it in software. TestPrivilegedRoutedSNAT ("same
		// host") covers it. Measured 2026-11-24 (TestPrivilegedTwoHosts
		// iperf3, alternating, load average 9): 1.6 and 2.9 Gbit/s with
		// the bypass, 0.7 and 3.0 without: no difference the noise lets
		// us see (veths have no qdisc to bypass).
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return fail(o.name, err)
		}
	}
	setBufs(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous membership", err)
	}
	return fd, ifindex, nil
}

// setBufs asks for large socket buffers: forced when we may (root),
// else up to the sysctl limits.
func setBufs(fd int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sockBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sockBuf)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sockBuf)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// RemovePort unbinds p: its reader stops, its socket closes, and every
// flow that enters by it or outputs to it is removed.
func (d *Datapath) RemovePort(p datapath.PortNo) error {
	d.mu.Lock()
	s := d.state.Load()
	pt, ok := s.ports[p]
	if !ok {
		d.mu.Unlock()
		return fmt.Errorf("%w: %d", ErrNoPort, p)
	}
	s = s.clone()
	delete(s.ports, p)
	delete(s.byName, pt.name)
	d.state.Store(s)
	d.mu.Unlock()

	d.table.RemoveIf(func(match, _ *packet.FlowMatch, a *flowtable.Actions) bool {
		return match.InPort == uint32(p) || outputsTo(a, p)
	})
	pt.f.Close() // wakes the reader
	<-pt.done
	d.log.Info("port unbound", "port", p, "interface", pt.name)
	return nil
}

func outputsTo(a *flowtable.Actions, p datapath.PortNo) bool {
	for _, x := range a.List() {
		if x.Kind == flowtable.ActOutput && x.Port == uint32(p) {
			return true
		}
	}
	return false
}

// SetTunnelKey maps tunnel key to local port p (p == 0 removes it).
func (d *Datapath) SetTunnelKey(key uint32, p datapath.PortNo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state.Load().clone()
	if p == 0 {
		delete(s.keys, key)
	} else {
		s.keys[key] = p
	}
	d.state.Store(s)
}

// SetFloodSet defines flood key. Remote addresses that are not IPv4 are
// ignored (the tunnel is IPv4).
func (d *Datapath) SetFloodSet(key uint32, local []datapath.PortNo, remote []datapath.Remote) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state.Load().clone()
	if len(local) == 0 && len(remote) == 0 {
		delete(s.floods, key)
	} else {
		fs := &floodSet{local: slices.Clone(local)}
		for _, r := range remote {
			if r.Addr.Unmap().Is4() {
				fs.remote = append(fs.remote, sockaddr4(r.Addr.Unmap().As4(), r.Port, d.cfg.TunnelPort))
			}
		}
		s.floods[key] = fs
	}
	d.state.Store(s)
}

// sockaddr4 builds a raw IPv4 socket address (port 0 means def).
func sockaddr4(a [4]byte, port, def uint16) unix.RawSockaddrInet4 {
	if port == 0 {
		port = def
	}
	return unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(port), Addr: a}
}

// Install adds a flow; match must already be masked by mask.
func (d *Datapath) Install(match, mask packet.FlowMatch, actions flowtable.Actions, tags []topology.Tag) error {
	return d.table.Insert(match, mask, actions, tags, d.now())
}

// Invalidate removes every flow carrying any of tags.
func (d *Datapath) Invalidate(tags []topology.Tag) {
	d.table.Invalidate(tags)
}

// Execute sends frame, entering at inPort with its GSO metadata, through
// actions. It copies frame and does not retain it.
func (d *Datapath) Execute(inPort datapath.PortNo, frame []byte, gso datapath.GSO, actions *flowtable.Actions) error {
	if len(frame) > maxFrame {
		return fmt.Errorf("userspace: frame of %d bytes exceeds %d", len(frame), maxFrame)
	}
	if d.closed.Load() {
		return ErrClosed
	}
	c := d.ctxPool.Get().(*txCtx)
	defer d.ctxPool.Put(c)
	n := copy(c.buf[headroom:], frame)
	return d.execute(c, inPort, c.buf[headroom:headroom+n], gso, actions)
}

// SendState sends the flow-state message msg to remote as one VXLAN
// datagram with VNI datapath.StateKey, from the tunnel socket: the same
// socket and path as the data that follows it, so a message sent before
// a packet to the same host is received before that packet. It copies
// msg and does not retain it.
func (d *Datapath) SendState(remote datapath.Remote, msg []byte) error {
	a := remote.Addr.Unmap()
	if !a.Is4() {
		return fmt.Errorf("userspace: flow state to %v: the tunnel is IPv4", remote.Addr)
	}
	if len(msg) > maxUDPPayload-packet.VXLANHeaderLen {
		return fmt.Errorf("userspace: flow-state message of %d bytes exceeds %d", len(msg), maxUDPPayload-packet.VXLANHeaderLen)
	}
	if d.closed.Load() {
		return ErrClosed
	}
	c := d.ctxPool.Get().(*txCtx)
	defer d.ctxPool.Put(c)
	b := c.buf[headroom-packet.VXLANHeaderLen : headroom+len(msg)]
	copy(b[packet.VXLANHeaderLen:], msg)
	packet.PutVXLAN(b, datapath.StateKey)
	c.sa = sockaddr4(a.As4(), remote.Port, d.cfg.TunnelPort)
	if err := c.send(b, len(b)); err != nil {
		return fmt.Errorf("userspace: flow state to %v: %w", a, err)
	}
	d.st.stateTx.Add(1)
	return nil
}

// SetStateHandler sets the function the tunnel reader calls with every
// flow-state message, before it reads the next datagram; nil removes it
// (messages are then counted in StateUnhandled and dropped). msg is valid
// only during the call.
func (d *Datapath) SetStateHandler(h func(msg []byte)) {
	if h == nil {
		d.stateHandler.Store(nil)
		return
	}
	d.stateHandler.Store(&h)
}

// Flows lists the installed flows.
func (d *Datapath) Flows() []datapath.FlowInfo {
	now := d.now()
	es := d.table.Dump()
	out := make([]datapath.FlowInfo, 0, len(es))
	for _, e := range es {
		out = append(out, datapath.FlowInfo{Match: e.Match, Mask: e.Mask, Actions: e.Actions,
			Packets: e.Packets, Bytes: e.Bytes, IdleNano: now - e.LastUsed, AgeNano: now - e.Created, Tags: len(e.Tags)})
	}
	return out
}

// Stats returns the datapath counters.
func (d *Datapath) Stats() datapath.Stats {
	return datapath.Stats{
		RxPackets:               d.st.rx.Load(),
		TxPackets:               d.st.tx.Load(),
		Hits:                    d.st.hits.Load(),
		Misses:                  d.st.misses.Load(),
		Drops:                   d.st.drops.Load(),
		Malformed:               d.st.malformed.Load(),
		TunnelRx:                d.st.tunnelRx.Load(),
		TunnelTx:                d.st.tunnelTx.Load(),
		TunnelUnknownKey:        d.st.unknownKey.Load(),
		UpcallsDroppedRateLimit: d.st.upcallsLimited.Load(),
		StateTx:                 d.st.stateTx.Load(),
		StateRx:                 d.st.stateRx.Load(),
		StateUnhandled:          d.st.stateUnhandled.Load(),
		Flows:                   d.table.Len(),
	}
}

// Close stops every reader, unbinds all ports and closes the tunnel
// socket. It is idempotent.
func (d *Datapath) Close() error {
	d.mu.Lock()
	if d.closed.Swap(true) {
		d.mu.Unlock()
		return nil
	}
	close(d.done)
	s := d.state.Load()
	d.state.Store(&state{ports: map[datapath.PortNo]*port{}, byName: map[string]datapath.PortNo{},
		keys: map[uint32]datapath.PortNo{}, floods: map[uint32]*floodSet{}})
	d.mu.Unlock()
	for _, p := range s.ports {
		p.f.Close()
	}
	err := d.udp.Close()
	d.wg.Wait()
	d.ns.Close()
	d.log.Info("datapath stopped")
	return err
}
