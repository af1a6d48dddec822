package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"hivenet/internal/datapath"
	"hivenet/internal/flowstate"
	"hivenet/internal/flowstate/conntrack"
	"hivenet/internal/simulation"
	"hivenet/internal/store"
	"hivenet/internal/topology"
)

// Config configures an Agent. Host, TunnelIP, Store and Datapath are
// required.
type Config struct {
	// Host is this host's name: ports whose binding:host_id equals it are
	// bound here.
	Host string
	// TunnelIP and TunnelPort are where other hosts send VXLAN to us.
	TunnelIP   netip.Addr
	TunnelPort uint16
	Store      *store.Store
	Datapath   datapath.Datapath
	// DatapathName is published with the host ("userspace", "ebpf").
	DatapathName string
	Logger       *slog.Logger
	// HostTTL is the lease TTL of everything the agent publishes: when the
	// agent dies, its host, bindings and learned MACs vanish this long
	// after. Default 5s.
	HostTTL time.Duration
	// BridgeMappings maps physical networks to local interfaces (gateway
	// hosts): each interface is bound as the uplink of the external
	// network on that physical network.
	BridgeMappings map[string]string
	// StateDir keeps the flow-state tables and the registration lease
	// across agent restarts ("" = not kept; a restarted agent then waits
	// for its old lease to expire). See lease.go.
	StateDir string
	// KeepForwarding says the datapath keeps forwarding established flows
	// after Close (ebpf with pinned maps and links). A stop then leaves
	// the ports bound and the registration alive for HostTTL, for a
	// restarted agent to take over with no change seen by other hosts;
	// without it a stop unbinds every port and withdraws the host at once.
	KeepForwarding bool
	// FlowState sizes the conntrack and NAT tables.
	FlowState conntrack.Config
	// NoDatapathConntrack keeps connection tracking in the agent even
	// when the datapath tracks connections itself (datapath.ConnTracker):
	// every new connection then costs an upcall on each of its two hosts,
	// as with the userspace datapath. For comparisons and debugging.
	NoDatapathConntrack bool
	// InterfaceIndex looks up a local interface by name; nil means the
	// kernel's (net.InterfaceByName). Tests substitute their own.
	InterfaceIndex func(name string) (int, bool)
	// Resync is the period of the safety rescan of local interfaces (the
	// agent also reacts to netlink link events at once). Default 2s.
	Resync time.Duration
	// ControlSocket is the unix socket of the local control endpoint
	// (flow listing and counters, see control.go), made 0600 when Run
	// starts and removed when it returns; "" disables it.
	ControlSocket string
}

// Validate checks the config and fills in defaults.
func (c *Config) Validate() error {
	switch {
	case c.Host == "":
		return errors.New("agent: host name is required")
	case !c.TunnelIP.IsValid():
		return errors.New("agent: tunnel IP is required")
	case c.Store == nil:
		return errors.New("agent: store is required")
	case c.Datapath == nil:
		return errors.New("agent: datapath is required")
	}
	if len(c.ControlSocket) > maxSocketPath {
		return fmt.Errorf("agent: control socket path %q: longer than %d bytes", c.ControlSocket, maxSocketPath)
	}
	if c.TunnelPort == 0 {
		c.TunnelPort = 4789
	}
	if c.HostTTL <= 0 {
		c.HostTTL = 5 * time.Second
	}
	if c.Resync <= 0 {
		c.Resync = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.InterfaceIndex == nil {
		c.InterfaceIndex = ifIndex
	}
	return nil
}

// binding is a port bound to a local interface. Owned by the loop.
type binding struct {
	portID    string
	ifname    string
	ifindex   int
	no        datapath.PortNo
	tunnelKey uint32
	learned   []string // IDs of MAC entries learned on this port
}

// portIndex maps datapath port numbers to topology port IDs and back. It
// is immutable; the loop swaps a new one in on every binding change.
type portIndex struct {
	byNo map[datapath.PortNo]string
	byID map[string]datapath.PortNo
}

// Agent is one host's agent. Create with New, run with Run.
type Agent struct {
	cfg Config
	log *slog.Logger
	dp  datapath.Datapath

	snap   atomic.Pointer[topology.Snapshot]
	snapMu sync.Mutex // serializes snapshot writers (loop and MAC learning)
	ports  atomic.Pointer[portIndex]

	// learnq carries MAC and ARP entries learned by upcall handlers to the
	// loop, which publishes them. Sends never block: a full queue drops
	// (the entry is already effective locally and is learned again later).
	learnq chan learned
	stats  counters

	// fs holds conntrack and NAT state (shared with the simulation as its
	// flowstate.View); snatq carries SNAT block requests to the loop.
	fs *conntrack.Tables
	// view is what the simulation reads: fs, or fs and the datapath's
	// connection tracker (ct, nil when the datapath does not track or
	// NoDatapathConntrack).
	view  flowstate.View
	ct    datapath.ConnTracker
	snatq chan snatRequest
	// resyncing: host name → true while a resync answer goes to it.
	resyncing sync.Map
	ctx       context.Context // Run's, for upcall goroutines

	// Owned by the loop goroutine.
	sess       *store.Session
	resumed    bool // sess took over the previous run's lease (lease.go)
	bound      map[string]*binding
	uplinks    map[string]*uplink // by physnet
	floods     map[uint32]floodSet
	snatBlocks []snatBlock
}

// learned is one entry for the loop to publish: exactly one field is set.
type learned struct {
	mac *topology.MACEntry
	arp *topology.ARPEntry
}

// uplink is a bound bridge-mapping interface. Owned by the loop.
type uplink struct {
	u       topology.Uplink
	ifindex int
	no      datapath.PortNo
}

type floodSet struct {
	local  []datapath.PortNo
	remote []datapath.Remote
}

type counters struct {
	upcalls, installed, emitted, learnDropped             atomic.Uint64
	statePushed, statePushFailed, stateReceived, stateBad atomic.Uint64
	stateMirrorFailed                                     atomic.Uint64
	resyncAnswered, resyncSent                            atomic.Uint64
	snatFailed                                            atomic.Uint64
}

// New returns an agent; it does nothing until Run.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fs, err := conntrack.New(cfg.FlowState)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		fs:      fs,
		snatq:   make(chan snatRequest),
		ctx:     context.Background(),
		cfg:     cfg,
		log:     cfg.Logger,
		dp:      cfg.Datapath,
		learnq:  make(chan learned, 1024),
		bound:   map[string]*binding{},
		uplinks: map[string]*uplink{},
		floods:  map[uint32]floodSet{},
	}
	a.view = fs
	if ct, ok := cfg.Datapath.(datapath.ConnTracker); ok && !cfg.NoDatapathConntrack {
		a.ct = ct
		a.view = &dpConnView{Tables: fs, ct: ct}
	}
	a.snap.Store(topology.Empty())
	a.ports.Store(&portIndex{byNo: map[datapath.PortNo]string{}, byID: map[string]datapath.PortNo{}})
	return a, nil
}

// Snapshot returns the current topology snapshot.
func (a *Agent) Snapshot() *topology.Snapshot { return a.snap.Load() }

// Run registers the host, binds ports and forwards packets until ctx is
// done; then it unbinds everything and withdraws the registration.
func (a *Agent) Run(ctx context.Context) error {
	a.ctx = ctx
	if a.cfg.StateDir != "" {
		if err := os.MkdirAll(a.cfg.StateDir, 0o700); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		a.restoreFlowState()
		defer a.saveFlowState()
	}
	ctl, err := a.startControl()
	if err != nil {
		return err
	}
	defer ctl.close()
	if err := a.register(ctx); err != nil {
		return err
	}
	defer func() { a.endSession() }() // the session current at exit, after any re-registration

	snap, rev, err := a.cfg.Store.LoadTopology(ctx)
	if err != nil {
		return fmt.Errorf("loading topology: %w", err)
	}
	a.replaceSnapshot(snap)
	a.log.Info("topology loaded", "rev", rev)

	a.dp.SetStateHandler(a.applyState)
	if err := a.dp.Start(a.handleUpcall); err != nil {
		return fmt.Errorf("starting datapath: %w", err)
	}

	watch := a.cfg.Store.WatchTopology(ctx, rev)
	links := subscribeLinks(ctx, a.log)
	resync := time.NewTicker(a.cfg.Resync)
	defer resync.Stop()
	lastSave := time.Now()

	a.reconcile(ctx)
	a.requestResync(a.snap.Load())
	for {
		select {
		case <-ctx.Done():
			ctl.close() // before the datapath closes
			a.shutdown()
			return nil
		case b, ok := <-watch:
			if !ok {
				if ctx.Err() != nil {
					continue
				}
				return errors.New("agent: topology watch closed")
			}
			if b.Err != nil {
				if errors.Is(b.Err, store.ErrCompacted) {
					a.log.Warn("topology watch compacted, reloading")
					if watch, err = a.reload(ctx); err != nil {
						return err
					}
					continue
				}
				return fmt.Errorf("watching topology: %w", b.Err)
			}
			a.applyChanges(b.Rev, b.Changes)
			a.reconcile(ctx)
		case <-links:
			a.reconcile(ctx)
		case <-resync.C:
			a.reconcile(ctx)
			a.fs.Expire(time.Now().UnixNano())
			if time.Since(lastSave) > 10*time.Second {
				a.saveFlowState()
				lastSave = time.Now()
			}
		case req := <-a.snatq:
			req.reply <- a.leaseSNATBlock(ctx, req.addr)
		case l := <-a.learnq:
			if l.mac != nil {
				a.publishMAC(ctx, *l.mac)
			} else if err := a.sess.PutARP(ctx, *l.arp); err != nil {
				a.log.Warn("publishing ARP entry failed", "ip", l.arp.IP, "err", err)
			}
		case <-a.sess.Done():
			a.log.Warn("store session lost, registering again")
			if err := a.register(ctx); err != nil {
				return err
			}
			for _, b := range a.bound {
				a.publishBinding(ctx, b)
			}
			for _, u := range a.uplinks {
				a.unbindUplink(ctx, u) // its key died with the session
			}
			a.dropSNATBlocks()
			a.reconcile(ctx)
		}
	}
}

// register takes over the lease of the previous run recorded in the
// state dir if it is still alive (lease.go); otherwise it publishes the
// host under a new lease, waiting for a previous registration of the same
// name (a crashed agent without state dir) to expire.
func (a *Agent) register(ctx context.Context) error {
	h := topology.Host{
		Name:       a.cfg.Host,
		TunnelIP:   a.cfg.TunnelIP,
		TunnelPort: a.cfg.TunnelPort,
		Datapath:   a.cfg.DatapathName,
		Conntrack:  a.ct != nil,
		Started:    time.Now().UTC().Format(time.RFC3339),
	}
	if sess := a.resume(ctx, h); sess != nil {
		a.sess, a.resumed = sess, true
		return nil
	}
	a.resumed = false
	warned := false
	for {
		sess, err := a.cfg.Store.RegisterHost(ctx, h, a.cfg.HostTTL)
		if err == nil {
			a.sess = sess
			a.recordLease()
			a.log.Info("host registered", "host", h.Name, "tunnel_ip", h.TunnelIP)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !warned {
			a.log.Warn("host registration failed, retrying", "host", h.Name, "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// reload re-reads the whole topology after the watch fell behind a
// compaction, and invalidates every flow.
func (a *Agent) reload(ctx context.Context) (<-chan store.WatchBatch, error) {
	snap, rev, err := a.cfg.Store.LoadTopology(ctx)
	if err != nil {
		return nil, fmt.Errorf("reloading topology: %w", err)
	}
	old := a.replaceSnapshot(snap)
	a.dp.Invalidate(allTags(old, snap))
	a.reconcile(ctx)
	return a.cfg.Store.WatchTopology(ctx, rev), nil
}

func allTags(snaps ...*topology.Snapshot) []topology.Tag {
	var t []topology.Tag
	for _, s := range snaps {
		s.Ports(func(p *topology.Port) { t = append(t, topology.TagPort(p.ID)) })
		s.Bridges(func(b *topology.Bridge) {
			t = append(t, topology.TagBridge(b.ID), topology.TagFlood(b.ID))
			if b.PhysNet != "" {
				t = append(t, topology.TagUplinks(b.PhysNet))
			}
		})
		s.Routers(func(r *topology.Router) { t = append(t, topology.TagRouter(r.ID)) })
		s.Hosts(func(h *topology.Host) { t = append(t, topology.TagHost(h.Name)) })
	}
	return t
}

// applyChanges swaps in the snapshot with changes applied (stamped with
// rev when it is not 0), then invalidates the flows they affect: in that
// order, see the package comment. The loop (watch batches) and upcall
// handlers (learned MACs and ARP entries) both write through it.
func (a *Agent) applyChanges(rev int64, changes []topology.Change) {
	a.snapMu.Lock()
	next, tags := a.snap.Load().Apply(changes)
	if rev != 0 {
		next.Rev = rev
	}
	a.snap.Store(next)
	a.snapMu.Unlock()
	if len(tags) > 0 {
		a.dp.Invalidate(tags)
	}
}

// replaceSnapshot swaps in a whole new snapshot (a fresh load) and returns
// the one it replaced; the caller invalidates.
func (a *Agent) replaceSnapshot(snap *topology.Snapshot) *topology.Snapshot {
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	old := a.snap.Load()
	a.snap.Store(snap)
	return old
}

// reconcile makes bindings, tunnel keys and flood sets match the snapshot
// and the local interfaces.
func (a *Agent) reconcile(ctx context.Context) {
	snap := a.snap.Load()
	changed := false
	// Unbind what should no longer be bound here.
	for id, b := range a.bound {
		p := snap.Port(id)
		want := p != nil && p.HostID == a.cfg.Host && p.InterfaceName == b.ifname
		if want {
			if idx, ok := a.cfg.InterfaceIndex(b.ifname); ok && idx == b.ifindex {
				if p.TunnelKey != b.tunnelKey {
					a.dp.SetTunnelKey(b.tunnelKey, 0)
					a.dp.SetTunnelKey(p.TunnelKey, b.no)
					b.tunnelKey = p.TunnelKey
				}
				continue
			}
		}
		a.unbind(ctx, b)
		changed = true
	}
	// Bind local ports whose interface exists.
	snap.Ports(func(p *topology.Port) {
		if p.HostID != a.cfg.Host || a.bound[p.ID] != nil {
			return
		}
		idx, ok := a.cfg.InterfaceIndex(p.InterfaceName)
		if !ok {
			return
		}
		no, err := a.dp.AddPort(p.InterfaceName)
		if err != nil {
			a.log.Warn("binding port failed", "port", p.ID, "interface", p.InterfaceName, "err", err)
			return
		}
		b := &binding{portID: p.ID, ifname: p.InterfaceName, ifindex: idx, no: no, tunnelKey: p.TunnelKey}
		a.bound[p.ID] = b
		a.dp.SetTunnelKey(p.TunnelKey, no)
		a.setPortZone(snap, p, no)
		a.publishBinding(ctx, b)
		a.log.Info("port bound", "port", p.ID, "interface", p.InterfaceName, "dp_port", no)
		changed = true
	})
	if a.reconcileUplinks(ctx) {
		changed = true
	}
	if changed {
		a.publishIndex()
	}
	a.syncFloodSets(snap)
}

// reconcileUplinks binds each bridge-mapping interface that exists and
// publishes its uplink; it unbinds those whose interface went away. It
// reports whether anything changed.
func (a *Agent) reconcileUplinks(ctx context.Context) bool {
	changed := false
	for physnet, ifname := range a.cfg.BridgeMappings {
		idx, ok := a.cfg.InterfaceIndex(ifname)
		if u := a.uplinks[physnet]; u != nil {
			if ok && idx == u.ifindex {
				continue
			}
			a.unbindUplink(ctx, u)
			changed = true
		}
		if !ok {
			continue
		}
		no, err := a.dp.AddPort(ifname)
		if err != nil {
			a.log.Warn("binding uplink failed", "physnet", physnet, "interface", ifname, "err", err)
			continue
		}
		u, ok := a.inheritedUplink(physnet, ifname)
		if !ok {
			u, err = a.sess.PublishUplink(ctx, physnet, ifname)
		}
		if err != nil {
			a.log.Warn("publishing uplink failed", "physnet", physnet, "err", err)
			_ = a.dp.RemovePort(no)
			continue
		}
		a.uplinks[physnet] = &uplink{u: u, ifindex: idx, no: no}
		a.dp.SetTunnelKey(u.TunnelKey, no)
		a.log.Info("uplink bound", "physnet", physnet, "interface", ifname, "tunnel_key", u.TunnelKey, "dp_port", no)
		changed = true
	}
	return changed
}

func (a *Agent) unbindUplink(ctx context.Context, u *uplink) {
	delete(a.uplinks, u.u.PhysNet)
	a.dp.SetTunnelKey(u.u.TunnelKey, 0)
	if err := a.dp.RemovePort(u.no); err != nil {
		a.log.Warn("removing uplink port failed", "physnet", u.u.PhysNet, "err", err)
	}
	if err := a.sess.WithdrawUplink(ctx, u.u); err != nil {
		a.log.Warn("withdrawing uplink failed", "physnet", u.u.PhysNet, "err", err)
	}
	a.dp.Invalidate([]topology.Tag{topology.TagUplinks(u.u.PhysNet)})
	a.log.Info("uplink unbound", "physnet", u.u.PhysNet, "interface", u.u.Interface)
}

func (a *Agent) publishBinding(ctx context.Context, b *binding) {
	if err := a.sess.PutBinding(ctx, topology.PortBinding{PortID: b.portID, Host: a.cfg.Host}); err != nil {
		a.log.Warn("publishing binding failed", "port", b.portID, "err", err)
	}
}

func (a *Agent) unbind(ctx context.Context, b *binding) {
	delete(a.bound, b.portID)
	a.dp.SetTunnelKey(b.tunnelKey, 0)
	if err := a.dp.RemovePort(b.no); err != nil {
		a.log.Warn("removing datapath port failed", "port", b.portID, "err", err)
	}
	if err := a.sess.DeleteBinding(ctx, b.portID); err != nil {
		a.log.Warn("withdrawing binding failed", "port", b.portID, "err", err)
	}
	for _, id := range b.learned {
		if err := a.sess.DeleteMAC(ctx, id); err != nil {
			a.log.Warn("withdrawing learned MAC failed", "mac", id, "err", err)
		}
	}
	a.dp.Invalidate([]topology.Tag{topology.TagPort(b.portID)})
	a.log.Info("port unbound", "port", b.portID, "interface", b.ifname)
}

// shutdown unbinds every port; the session close that follows withdraws
// the host. With KeepForwarding it only closes the datapath: ports stay
// bound and forwarding, for a restarted agent to take over.
func (a *Agent) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if !a.cfg.KeepForwarding {
		for _, b := range a.bound {
			a.unbind(ctx, b)
		}
		for _, u := range a.uplinks {
			a.unbindUplink(ctx, u)
		}
	}
	a.publishIndex()
	if err := a.dp.Close(); err != nil {
		a.log.Warn("closing datapath failed", "err", err)
	}
	a.log.Info("agent stopped", "upcalls", a.stats.upcalls.Load(), "flows_installed", a.stats.installed.Load())
}

func (a *Agent) publishIndex() {
	idx := &portIndex{byNo: make(map[datapath.PortNo]string, len(a.bound)), byID: make(map[string]datapath.PortNo, len(a.bound))}
	for id, b := range a.bound {
		idx.byNo[b.no] = id
		idx.byID[id] = b.no
	}
	for _, u := range a.uplinks {
		id := simulation.UplinkPortID(&u.u)
		idx.byNo[u.no] = id
		idx.byID[id] = u.no
	}
	a.ports.Store(idx)
}

func (a *Agent) publishMAC(ctx context.Context, m topology.MACEntry) {
	b := a.bound[m.PortID]
	if b == nil {
		return
	}
	if err := a.sess.PutMAC(ctx, m); err != nil {
		a.log.Warn("publishing learned MAC failed", "mac", m.MAC, "err", err)
		return
	}
	if !slices.Contains(b.learned, m.ID()) {
		b.learned = append(b.learned, m.ID())
	}
}

// syncFloodSets computes, for every bridge with ports bound here or
// elsewhere, the local ports and remote hosts a flood reaches, and pushes
// the sets that changed to the datapath.
func (a *Agent) syncFloodSets(snap *topology.Snapshot) {
	want := map[uint32]floodSet{}
	idx := a.ports.Load()
	snap.Bridges(func(br *topology.Bridge) {
		var fs floodSet
		for _, p := range snap.PortsOfBridge(br.ID) {
			if no, ok := idx.byID[p.ID]; ok && p.AdminUp {
				fs.local = append(fs.local, no)
			}
		}
		for _, name := range snap.FloodHosts(br.ID, a.cfg.Host) {
			if h := snap.Host(name); h != nil {
				fs.remote = append(fs.remote, datapath.Remote{Addr: h.TunnelIP, Port: h.TunnelPort})
			}
		}
		if len(fs.local) == 0 {
			// Nothing here to flood from or to: no flood set.
			return
		}
		slices.Sort(fs.local)
		want[br.FloodKey] = fs
	})
	for key, fs := range want {
		if old, ok := a.floods[key]; ok && slices.Equal(old.local, fs.local) && slices.Equal(old.remote, fs.remote) {
			continue
		}
		a.dp.SetFloodSet(key, fs.local, fs.remote)
	}
	for key := range a.floods {
		if _, ok := want[key]; !ok {
			a.dp.SetFloodSet(key, nil, nil)
		}
	}
	a.floods = want
}

func ifIndex(name string) (int, bool) {
	if name == "" {
		return 0, false
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, false
	}
	return ifi.Index, true
}

// setPortZone gives a bound port its conntrack zone (its bridge's flood
// key) in a datapath that tracks connections: packets entering by it are
// then looked up there, as the simulation expects (see simulation's
// chain.go).
func (a *Agent) setPortZone(snap *topology.Snapshot, p *topology.Port, no datapath.PortNo) {
	ct, ok := a.dp.(datapath.ConnTracker)
	if !ok {
		return
	}
	var zone uint32 // 0: not tracked (NoDatapathConntrack), also after a restart with it
	if b := snap.Bridge(p.BridgeID); b != nil && a.ct != nil {
		zone = b.FloodKey
	}
	if err := ct.SetPortZone(no, zone); err != nil {
		a.log.Warn("setting the conntrack zone failed", "port", p.ID, "err", err)
	}
}

// dpConnView is the simulation's flow-state view when the datapath
// tracks connections: a connection the agent's tables do not hold may be
// one the datapath committed (an ICMP error about it reads it).
type dpConnView struct {
	*conntrack.Tables
	ct datapath.ConnTracker
}

// ConnState implements flowstate.View.
func (v *dpConnView) ConnState(k flowstate.Key) topology.CTState {
	if st := v.Tables.ConnState(k); st != topology.CTNew {
		return st
	}
	if st := v.ct.ConnState(k); st != 0 {
		return topology.CTState(st) // packet.CT* are topology.CT*
	}
	return topology.CTNew
}
