package conntrack

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"hivenet/internal/flowstate"
	"hivenet/internal/topology"
)

// Defaults of Config.
const (
	DefaultConnIdle int64 = 5 * 60 * 1e9 // refreshed from flow stats while the flow lives
	DefaultNATIdle  int64 = 5 * 60 * 1e9
	// DefaultMaxEntries bounds each table. Measured 2026-11-24: 2^18
	// conntrack entries plus 2^18 NAT bindings take 142 MB of heap
	// (~270 B an entry: map, slab and heap node, with growth slack), so
	// the default, 2^17 each, is ~70 MB when both are full.
	DefaultMaxEntries = 1 << 17
)

// connShards is the number of conntrack shards.
const (
	connShardBits = 4
	connShards    = 1 << connShardBits
)

// Config sizes the tables. Zero fields take the defaults.
type Config struct {
	// ConnIdle is how long (nanoseconds) a conntrack entry lives without
	// being added or refreshed.
	ConnIdle int64
	// NATIdle is the same for NAT bindings.
	NATIdle int64
	// MaxEntries bounds each table (conntrack entries; NAT bindings). A
	// full table evicts its least recently used entry (per conntrack
	// shard: each shard holds MaxEntries/connShards rounded up).
	MaxEntries int
}

// MaxIdle bounds ConnIdle and NATIdle (a year), which keeps time
// arithmetic far from overflow.
const MaxIdle int64 = 365 * 24 * 3600 * 1e9

// Validate reports a negative field or an idle time above MaxIdle.
func (c Config) Validate() error {
	switch {
	case c.ConnIdle < 0 || c.ConnIdle > MaxIdle:
		return fmt.Errorf("conntrack: ConnIdle %d ns is not in [0, %d]", c.ConnIdle, MaxIdle)
	case c.NATIdle < 0 || c.NATIdle > MaxIdle:
		return fmt.Errorf("conntrack: NATIdle %d ns is not in [0, %d]", c.NATIdle, MaxIdle)
	case c.MaxEntries < 0:
		return fmt.Errorf("conntrack: MaxEntries %d is negative", c.MaxEntries)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ConnIdle == 0 {
		c.ConnIdle = DefaultConnIdle
	}
	if c.NATIdle == 0 {
		c.NATIdle = DefaultNATIdle
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	return c
}

// Stats are the tables' counters.
type Stats struct {
	Conns, NATs   int    // entries now
	ConnAdds      uint64 // new conntrack entries
	NATAdds       uint64 // new NAT bindings
	ConnExpired   uint64 // removed by Expire
	NATExpired    uint64
	ConnEvictions uint64 // removed to make room in a full table
	NATEvictions  uint64
	// NATReplaced counts bindings removed because a newer binding has
	// the same translated key (their reply key is now the newer one's).
	NATReplaced uint64
	SNATBlocks  int // blocks held, all addresses
}

// Tables are a host's conntrack entries, NAT bindings and SNAT blocks.
// Safe for concurrent use; see the package doc.
type Tables struct {
	cfg      Config
	perShard int

	conns [connShards]connShard
	nat   natTable

	blocksMu sync.Mutex                              // serializes writers of blocks
	blocks   atomic.Pointer[map[netip.Addr][]uint16] // immutable once stored

	connAdds, natAdds, connExpired, natExpired atomic.Uint64
	connEvictions, natEvictions, natReplaced   atomic.Uint64
}

type connShard struct {
	mu  sync.RWMutex
	idx map[flowstate.Key]uint32 // guarded by mu
	s   slab[flowstate.Key]      // guarded by mu (slot.last: atomic)
	_   [64]byte                 // keep shards' locks on separate cache lines
}

type natTable struct {
	mu      sync.RWMutex
	byOrig  map[flowstate.Key]uint32 // Orig → slot; guarded by mu
	byReply map[flowstate.Key]uint32 // Xlat.Reverse() → slot; guarded by mu
	s       slab[flowstate.NAT]      // guarded by mu (slot.last: atomic)
}

var _ flowstate.View = (*Tables)(nil)

// New returns empty tables.
func New(cfg Config) (*Tables, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newTables(cfg.withDefaults()), nil
}

func newTables(cfg Config) *Tables {
	t := &Tables{cfg: cfg, perShard: (cfg.MaxEntries + connShards - 1) / connShards}
	for i := range t.conns {
		t.conns[i].idx = make(map[flowstate.Key]uint32)
	}
	t.nat.byOrig = make(map[flowstate.Key]uint32)
	t.nat.byReply = make(map[flowstate.Key]uint32)
	return t
}

// Config returns the configuration in effect (defaults filled in).
func (t *Tables) Config() Config { return t.cfg }

// shardOf picks a key's shard. It is symmetric (a key and its reverse
// share a shard, so ConnState takes one read lock for both probes) and
// cheap: multiplicative hashes of each end's low 32 address bits and port,
// added, with the zone and protocol, then mixed once more; the top bits
// pick the shard. (A full 64-bit mix of all 37 bytes showed up as 12% of a
// lookup's profile, and two shard locks per ConnState cost more than the
// hash.)
func shardOf(k *flowstate.Key) int {
	const m1, m2 = 0x9e3779b97f4a7c15, 0xff51afd7ed558ccd
	src := (uint64(binary.LittleEndian.Uint32(k.Src[12:]))<<16 | uint64(k.SrcPort)) * m1
	dst := (uint64(binary.LittleEndian.Uint32(k.Dst[12:]))<<16 | uint64(k.DstPort)) * m1
	h := (src + dst) ^ (uint64(k.Zone)<<8 | uint64(k.Proto))
	return int((h * m2) >> (64 - connShardBits))
}

func (t *Tables) shard(k *flowstate.Key) *connShard {
	return &t.conns[shardOf(k)]
}

// AddConn tracks the connection whose forward key is k, used at now. It
// reports whether the entry is new (else it was refreshed).
func (t *Tables) AddConn(k flowstate.Key, now int64) bool {
	sh := t.shard(&k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if i, ok := sh.idx[k]; ok {
		sh.s.refresh(i, now)
		return false
	}
	for sh.s.live >= t.perShard {
		i, ok := sh.s.next(math.MaxInt64)
		if !ok {
			break // unreachable: a live entry always has a queue node
		}
		delete(sh.idx, sh.s.slots[i].val)
		sh.s.release(i)
		t.connEvictions.Add(1)
	}
	sh.idx[k] = sh.s.alloc(k, now)
	t.connAdds.Add(1)
	return true
}

// ConnState implements flowstate.View. Entries idle longer than ConnIdle
// count until the next Expire removes them.
func (t *Tables) ConnState(k flowstate.Key) topology.CTState {
	r := k.Reverse()
	sh := t.shard(&k) // == t.shard(&r)
	sh.mu.RLock()
	_, fwd := sh.idx[k]
	_, rev := sh.idx[r]
	sh.mu.RUnlock()
	switch {
	case fwd:
		return topology.CTEstablished
	case rev:
		return topology.CTEstablished | topology.CTReply
	}
	return topology.CTNew
}

// RefreshConn marks the connection of k (tracked under k or k.Reverse())
// used at now, under a read lock. It reports whether it was tracked.
func (t *Tables) RefreshConn(k flowstate.Key, now int64) bool {
	r := k.Reverse()
	sh := t.shard(&k)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	i, ok := sh.idx[k]
	if !ok {
		i, ok = sh.idx[r]
	}
	if ok {
		sh.s.refresh(i, now)
	}
	return ok
}

// AddNAT stores binding n, used at now, and reports whether its
// connection (n.Orig) had no binding. A
// binding with the same Orig is replaced (or refreshed when equal); a
// binding of another connection with the same Xlat is removed, since
// replies to Xlat now belong to n.
func (t *Tables) AddNAT(n flowstate.NAT, now int64) bool {
	nt := &t.nat
	nt.mu.Lock()
	defer nt.mu.Unlock()
	reply := n.Xlat.Reverse()
	i, exists := nt.byOrig[n.Orig]
	if exists && nt.s.slots[i].val.Xlat == n.Xlat {
		nt.s.refresh(i, now)
		return false
	}
	if j, ok := nt.byReply[reply]; ok && (!exists || j != i) {
		nt.remove(j)
		t.natReplaced.Add(1)
	}
	if exists { // same connection, new translation
		old := nt.s.slots[i].val.Xlat.Reverse()
		if j, ok := nt.byReply[old]; ok && j == i {
			delete(nt.byReply, old)
		}
		nt.s.slots[i].val = n
		nt.byReply[reply] = i
		nt.s.refresh(i, now)
		return false
	}
	for nt.s.live >= t.cfg.MaxEntries {
		j, ok := nt.s.next(math.MaxInt64)
		if !ok {
			break
		}
		nt.remove(j)
		t.natEvictions.Add(1)
	}
	i = nt.s.alloc(n, now)
	nt.byOrig[n.Orig] = i
	nt.byReply[reply] = i
	t.natAdds.Add(1)
	return true
}

// remove deletes binding i and its index entries. nt.mu must be held.
func (nt *natTable) remove(i uint32) {
	n := &nt.s.slots[i].val
	if j, ok := nt.byOrig[n.Orig]; ok && j == i {
		delete(nt.byOrig, n.Orig)
	}
	r := n.Xlat.Reverse()
	if j, ok := nt.byReply[r]; ok && j == i {
		delete(nt.byReply, r)
	}
	nt.s.release(i)
}

// NATByOrig implements flowstate.View.
func (t *Tables) NATByOrig(k flowstate.Key) (flowstate.NAT, bool) {
	return t.natLookup(&t.nat.byOrig, k)
}

// NATByReply implements flowstate.View.
func (t *Tables) NATByReply(k flowstate.Key) (flowstate.NAT, bool) {
	return t.natLookup(&t.nat.byReply, k)
}

func (t *Tables) natLookup(index *map[flowstate.Key]uint32, k flowstate.Key) (flowstate.NAT, bool) {
	nt := &t.nat
	nt.mu.RLock()
	defer nt.mu.RUnlock()
	if i, ok := (*index)[k]; ok {
		return nt.s.slots[i].val, true
	}
	return flowstate.NAT{}, false
}

// SNATInUse implements flowstate.View.
func (t *Tables) SNATInUse(k flowstate.Key) bool {
	nt := &t.nat
	r := k.Reverse()
	nt.mu.RLock()
	_, ok := nt.byReply[r]
	nt.mu.RUnlock()
	return ok
}

// RefreshNAT marks the binding whose Orig or reply key (Xlat.Reverse())
// is k used at now, under a read lock. It reports whether there is one.
func (t *Tables) RefreshNAT(k flowstate.Key, now int64) bool {
	nt := &t.nat
	nt.mu.RLock()
	defer nt.mu.RUnlock()
	i, ok := nt.byOrig[k]
	if !ok {
		i, ok = nt.byReply[k]
	}
	if ok {
		nt.s.refresh(i, now)
	}
	return ok
}

// ApplyMessage adds the state of a replication message received at now.
func (t *Tables) ApplyMessage(m *flowstate.Message, now int64) {
	for _, k := range m.Conns {
		t.AddConn(k, now)
	}
	for _, n := range m.NATs {
		t.AddNAT(n, now)
	}
}

// expireBatch bounds how many entries Expire removes under one hold of a
// lock, so that lookups get in between batches during a mass expiry
// (BenchmarkExpire: ~1 µs an entry on the loaded 2-vCPU machine).
const expireBatch = 1024

// Expire removes the entries idle for their table's idle time at now
// (last use + idle <= now) and returns how many it removed. It takes
// each lock for at most expireBatch removals at a time.
func (t *Tables) Expire(now int64) int {
	removed := 0
	for c := range t.conns {
		sh := &t.conns[c]
		for n := expireBatch; n == expireBatch; {
			sh.mu.Lock()
			for n = 0; n < expireBatch; n++ {
				i, ok := sh.s.next(now - t.cfg.ConnIdle)
				if !ok {
					break
				}
				delete(sh.idx, sh.s.slots[i].val)
				sh.s.release(i)
			}
			sh.mu.Unlock()
			removed += n
			t.connExpired.Add(uint64(n))
		}
	}
	nt := &t.nat
	for n := expireBatch; n == expireBatch; {
		nt.mu.Lock()
		for n = 0; n < expireBatch; n++ {
			i, ok := nt.s.next(now - t.cfg.NATIdle)
			if !ok {
				break
			}
			nt.remove(i)
		}
		nt.mu.Unlock()
		removed += n
		t.natExpired.Add(uint64(n))
	}
	return removed
}

// Len returns the number of conntrack entries and NAT bindings.
func (t *Tables) Len() (conns, nats int) {
	for c := range t.conns {
		sh := &t.conns[c]
		sh.mu.RLock()
		conns += sh.s.live
		sh.mu.RUnlock()
	}
	t.nat.mu.RLock()
	nats = t.nat.s.live
	t.nat.mu.RUnlock()
	return conns, nats
}

// Stats returns the counters.
func (t *Tables) Stats() Stats {
	s := Stats{
		ConnAdds: t.connAdds.Load(), NATAdds: t.natAdds.Load(),
		ConnExpired: t.connExpired.Load(), NATExpired: t.natExpired.Load(),
		ConnEvictions: t.connEvictions.Load(), NATEvictions: t.natEvictions.Load(),
		NATReplaced: t.natReplaced.Load(),
	}
	s.Conns, s.NATs = t.Len()
	if m := t.blocks.Load(); m != nil {
		for _, b := range *m {
			s.SNATBlocks += len(b)
		}
	}
	return s
}

// Dump returns a copy of every entry, sorted by key (conntrack) and by
// Orig (NAT), for the CLI and tests. At is left 0.
func (t *Tables) Dump() flowstate.Dump {
	d := t.dump()
	slices.SortFunc(d.Conns, func(a, b flowstate.ConnEntry) int { return compareKeys(&a.Key, &b.Key) })
	slices.SortFunc(d.NATs, func(a, b flowstate.NATEntry) int { return compareKeys(&a.NAT.Orig, &b.NAT.Orig) })
	return d
}

// dump copies every entry, unsorted, taking one read lock at a time.
func (t *Tables) dump() flowstate.Dump {
	conns, nats := t.Len()
	d := flowstate.Dump{
		Conns: make([]flowstate.ConnEntry, 0, conns+conns/8),
		NATs:  make([]flowstate.NATEntry, 0, nats+nats/8),
	}
	for c := range t.conns {
		sh := &t.conns[c]
		sh.mu.RLock()
		for i := range sh.s.slots {
			if sl := &sh.s.slots[i]; sl.live {
				d.Conns = append(d.Conns, flowstate.ConnEntry{Key: sl.val, Last: atomic.LoadInt64(&sl.last)})
			}
		}
		sh.mu.RUnlock()
	}
	nt := &t.nat
	nt.mu.RLock()
	for i := range nt.s.slots {
		if sl := &nt.s.slots[i]; sl.live {
			d.NATs = append(d.NATs, flowstate.NATEntry{NAT: sl.val, Last: atomic.LoadInt64(&sl.last)})
		}
	}
	nt.mu.RUnlock()
	return d
}

func compareKeys(a, b *flowstate.Key) int {
	return cmp.Or(
		cmp.Compare(a.Zone, b.Zone),
		cmp.Compare(a.Proto, b.Proto),
		slices.Compare(a.Src[:], b.Src[:]),
		slices.Compare(a.Dst[:], b.Dst[:]),
		cmp.Compare(a.SrcPort, b.SrcPort),
		cmp.Compare(a.DstPort, b.DstPort),
	)
}

// AppendSnapshot appends a snapshot of the tables at now to b (see
// flowstate.AppendSnapshot): the agent writes it to local disk.
func (t *Tables) AppendSnapshot(b []byte, now int64) []byte {
	d := t.dump()
	return flowstate.AppendSnapshot(b, &d, now)
}

// Restore adds the entries of snapshot b, read at now, oldest first,
// skipping those idle for their table's idle time at now (the time since
// the snapshot was written counts as idle: see flowstate.ParseSnapshot).
// It checks the whole snapshot first: on error nothing is added. It
// returns the number of entries added or refreshed.
func (t *Tables) Restore(b []byte, now int64) (int, error) {
	var d flowstate.Dump
	if err := flowstate.ParseSnapshot(b, now, &d); err != nil {
		return 0, err
	}
	slices.SortStableFunc(d.Conns, func(a, b flowstate.ConnEntry) int { return cmp.Compare(a.Last, b.Last) })
	slices.SortStableFunc(d.NATs, func(a, b flowstate.NATEntry) int { return cmp.Compare(a.Last, b.Last) })
	n := 0
	for _, e := range d.Conns {
		if e.Last+t.cfg.ConnIdle > now {
			t.AddConn(e.Key, e.Last)
			n++
		}
	}
	for _, e := range d.NATs {
		if e.Last+t.cfg.NATIdle > now {
			t.AddNAT(e.NAT, e.Last)
			n++
		}
	}
	return n, nil
}

// ErrBadBlock is returned for a SNAT block start that is not one.
var ErrBadBlock = errors.New("conntrack: not a SNAT block start")

// AddSNATBlock records that this host holds the SNAT port block starting
// at start for address a (after leasing it). Adding a held block does
// nothing.
func (t *Tables) AddSNATBlock(a netip.Addr, start uint16) error {
	if !a.IsValid() {
		return fmt.Errorf("conntrack: SNAT block %d of an invalid address", start)
	}
	if flowstate.BlockIndex(start) < 0 {
		return fmt.Errorf("%w: %d", ErrBadBlock, start)
	}
	a = a.Unmap()
	t.blocksMu.Lock()
	defer t.blocksMu.Unlock()
	old := t.blockMap()
	if slices.Contains(old[a], start) {
		return nil
	}
	next := make(map[netip.Addr][]uint16, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[a] = append(slices.Clip(old[a]), start) // a new array: readers keep theirs
	t.blocks.Store(&next)
	return nil
}

// RemoveSNATBlock forgets block start of address a (its lease is lost or
// released) and reports whether it was held.
func (t *Tables) RemoveSNATBlock(a netip.Addr, start uint16) bool {
	a = a.Unmap()
	t.blocksMu.Lock()
	defer t.blocksMu.Unlock()
	old := t.blockMap()
	i := slices.Index(old[a], start)
	if i < 0 {
		return false
	}
	next := make(map[netip.Addr][]uint16, len(old))
	for k, v := range old {
		next[k] = v
	}
	if rest := slices.Delete(slices.Clone(old[a]), i, i+1); len(rest) > 0 {
		next[a] = rest
	} else {
		delete(next, a)
	}
	t.blocks.Store(&next)
	return true
}

func (t *Tables) blockMap() map[netip.Addr][]uint16 {
	if m := t.blocks.Load(); m != nil {
		return *m
	}
	return nil
}

// SNATBlocks implements flowstate.View: the block starts held for a, in
// the order they were added. The slice is shared: do not modify it.
func (t *Tables) SNATBlocks(a netip.Addr) []uint16 {
	return t.blockMap()[a.Unmap()]
}
