package conntrack

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"hivenet/internal/flowstate"
	"hivenet/internal/topology"
)

// model is the slow, obvious version of Tables: slices scanned linearly.
type model struct {
	cfg      Config
	perShard int
	conns    []flowstate.ConnEntry
	nats     []flowstate.NATEntry
}

func (m *model) findConn(k flowstate.Key) int {
	return slices.IndexFunc(m.conns, func(e flowstate.ConnEntry) bool { return e.Key == k })
}

func (m *model) addConn(k flowstate.Key, now int64) bool {
	if i := m.findConn(k); i >= 0 {
		m.conns[i].Last = max(m.conns[i].Last, now)
		return false
	}
	sh := shardOf(&k)
	n, oldest := 0, -1
	for i := range m.conns {
		if shardOf(&m.conns[i].Key) == sh {
			n++
			if oldest < 0 || m.conns[i].Last < m.conns[oldest].Last {
				oldest = i
			}
		}
	}
	if n >= m.perShard {
		m.conns = slices.Delete(m.conns, oldest, oldest+1)
	}
	m.conns = append(m.conns, flowstate.ConnEntry{Key: k, Last: now})
	return true
}

func (m *model) connState(k flowstate.Key) topology.CTState {
	switch {
	case m.findConn(k) >= 0:
		return topology.CTEstablished
	case m.findConn(k.Reverse()) >= 0:
		return topology.CTEstablished | topology.CTReply
	}
	return topology.CTNew
}

func (m *model) refreshConn(k flowstate.Key, now int64) bool {
	i := m.findConn(k)
	if i < 0 {
		i = m.findConn(k.Reverse())
	}
	if i < 0 {
		return false
	}
	m.conns[i].Last = max(m.conns[i].Last, now)
	return true
}

func (m *model) findNAT(f func(n flowstate.NAT) bool) int {
	return slices.IndexFunc(m.nats, func(e flowstate.NATEntry) bool { return f(e.NAT) })
}

func (m *model) addNAT(n flowstate.NAT, now int64) bool {
	i := m.findNAT(func(o flowstate.NAT) bool { return o.Orig == n.Orig })
	if i >= 0 && m.nats[i].NAT.Xlat == n.Xlat {
		m.nats[i].Last = max(m.nats[i].Last, now)
		return false
	}
	if j := m.findNAT(func(o flowstate.NAT) bool { return o.Xlat == n.Xlat }); j >= 0 && j != i {
		m.nats = slices.Delete(m.nats, j, j+1)
		if j < i {
			i--
		}
	}
	if i >= 0 {
		m.nats[i].NAT = n
		m.nats[i].Last = max(m.nats[i].Last, now)
		return false
	}
	if len(m.nats) >= m.cfg.MaxEntries {
		oldest := 0
		for j := range m.nats {
			if m.nats[j].Last < m.nats[oldest].Last {
				oldest = j
			}
		}
		m.nats = slices.Delete(m.nats, oldest, oldest+1)
	}
	m.nats = append(m.nats, flowstate.NATEntry{NAT: n, Last: now})
	return true
}

func (m *model) natByOrig(k flowstate.Key) (flowstate.NAT, bool) {
	if i := m.findNAT(func(o flowstate.NAT) bool { return o.Orig == k }); i >= 0 {
		return m.nats[i].NAT, true
	}
	return flowstate.NAT{}, false
}

func (m *model) natByReply(k flowstate.Key) (flowstate.NAT, bool) {
	if i := m.findNAT(func(o flowstate.NAT) bool { return o.Xlat.Reverse() == k }); i >= 0 {
		return m.nats[i].NAT, true
	}
	return flowstate.NAT{}, false
}

func (m *model) snatInUse(k flowstate.Key) bool {
	return m.findNAT(func(o flowstate.NAT) bool { return o.Xlat == k }) >= 0
}

func (m *model) refreshNAT(k flowstate.Key, now int64) bool {
	i := m.findNAT(func(o flowstate.NAT) bool { return o.Orig == k })
	if i < 0 {
		i = m.findNAT(func(o flowstate.NAT) bool { return o.Xlat.Reverse() == k })
	}
	if i < 0 {
		return false
	}
	m.nats[i].Last = max(m.nats[i].Last, now)
	return true
}

func (m *model) expire(now int64) int {
	n := len(m.conns) + len(m.nats)
	m.conns = slices.DeleteFunc(m.conns, func(e flowstate.ConnEntry) bool { return e.Last+m.cfg.ConnIdle <= now })
	m.nats = slices.DeleteFunc(m.nats, func(e flowstate.NATEntry) bool { return e.Last+m.cfg.NATIdle <= now })
	return n - len(m.conns) - len(m.nats)
}

func (m *model) dump() flowstate.Dump {
	d := flowstate.Dump{Conns: slices.Clone(m.conns), NATs: slices.Clone(m.nats)}
	slices.SortFunc(d.Conns, func(a, b flowstate.ConnEntry) int { return compareKeys(&a.Key, &b.Key) })
	slices.SortFunc(d.NATs, func(a, b flowstate.NATEntry) int { return compareKeys(&a.NAT.Orig, &b.NAT.Orig) })
	return d
}

// smallKey draws from a small universe (324 keys) so that operations hit
// existing entries, replies and conflicts often.
func smallKey(r *rand.Rand) flowstate.Key {
	addrs := [3][16]byte{}
	for i := range addrs {
		addrs[i] = [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: byte(i + 1)}
	}
	return flowstate.Key{
		Zone:    uint32(1 + r.IntN(2)),
		Proto:   []uint8{6, 17}[r.IntN(2)],
		Src:     addrs[r.IntN(3)],
		Dst:     addrs[r.IntN(3)],
		SrcPort: uint16(1 + r.IntN(3)),
		DstPort: uint16(1 + r.IntN(3)),
	}
}

// TestAgainstModel runs random operations on Tables and on the model and
// compares every answer and, after each operation, the whole content.
func TestAgainstModel(t *testing.T) {
	tests := []struct {
		name       string
		seed       uint64
		maxEntries int
		timeStep   int64 // now advances by 1..timeStep per operation
		// jitter: writers pass now ± jitter (out of order, as concurrent
		// upcall goroutines do); only without eviction, whose "oldest"
		// needs distinct times.
		jitter int64
		ops    int
	}{
		{name: "roomy", seed: 1, maxEntries: 4096, timeStep: 10, ops: 3000},
		{name: "tight, evicting", seed: 2, maxEntries: 48, timeStep: 10, ops: 3000},
		{name: "one per shard", seed: 3, maxEntries: 16, timeStep: 3, ops: 3000},
		{name: "slow clock, expiring rarely", seed: 4, maxEntries: 64, timeStep: 1, ops: 3000},
		{name: "fast clock, expiring often", seed: 5, maxEntries: 200, timeStep: 60, ops: 3000},
		{name: "writers out of order", seed: 6, maxEntries: 4096, timeStep: 5, jitter: 30, ops: 3000},
		{name: "writers far out of order", seed: 7, maxEntries: 4096, timeStep: 20, jitter: 90, ops: 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{ConnIdle: 100, NATIdle: 150, MaxEntries: tt.maxEntries}
			tab, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := &model{cfg: cfg, perShard: tab.perShard}
			r := rand.New(rand.NewPCG(tt.seed, 0))
			base := int64(1000)
			for op := range tt.ops {
				base += 1 + r.Int64N(tt.timeStep) // strictly increasing: no ties for "oldest"
				now := base
				if tt.jitter > 0 {
					now += r.Int64N(2*tt.jitter+1) - tt.jitter
				}
				k := smallKey(r)
				var what string
				switch c := r.IntN(100); {
				case c < 30:
					what = fmt.Sprintf("AddConn(%v)", k)
					if got, want := tab.AddConn(k, now), m.addConn(k, now); got != want {
						t.Fatalf("op %d: %s = %v, want %v", op, what, got, want)
					}
				case c < 40:
					what = fmt.Sprintf("RefreshConn(%v)", k)
					if got, want := tab.RefreshConn(k, now), m.refreshConn(k, now); got != want {
						t.Fatalf("op %d: %s = %v, want %v", op, what, got, want)
					}
				case c < 70:
					n := flowstate.NAT{Orig: k, Xlat: smallKey(r)}
					what = fmt.Sprintf("AddNAT(%v → %v)", n.Orig, n.Xlat)
					if got, want := tab.AddNAT(n, now), m.addNAT(n, now); got != want {
						t.Fatalf("op %d: %s = %v, want %v", op, what, got, want)
					}
				case c < 80:
					what = fmt.Sprintf("RefreshNAT(%v)", k)
					if got, want := tab.RefreshNAT(k, now), m.refreshNAT(k, now); got != want {
						t.Fatalf("op %d: %s = %v, want %v", op, what, got, want)
					}
				case c < 85:
					what = "Expire"
					if got, want := tab.Expire(base), m.expire(base); got != want {
						t.Fatalf("op %d: Expire(%d) = %d, want %d", op, base, got, want)
					}
				default:
					what = "lookups"
				}
				// Lookups of a random key and of the key just used.
				for _, q := range []flowstate.Key{k, k.Reverse(), smallKey(r)} {
					if got, want := tab.ConnState(q), m.connState(q); got != want {
						t.Fatalf("op %d after %s: ConnState(%v) = %v, want %v", op, what, q, got, want)
					}
					gn, gok := tab.NATByOrig(q)
					wn, wok := m.natByOrig(q)
					if gn != wn || gok != wok {
						t.Fatalf("op %d after %s: NATByOrig(%v) = %v %v, want %v %v", op, what, q, gn, gok, wn, wok)
					}
					gn, gok = tab.NATByReply(q)
					wn, wok = m.natByReply(q)
					if gn != wn || gok != wok {
						t.Fatalf("op %d after %s: NATByReply(%v) = %v %v, want %v %v", op, what, q, gn, gok, wn, wok)
					}
					if got, want := tab.SNATInUse(q), m.snatInUse(q); got != want {
						t.Fatalf("op %d after %s: SNATInUse(%v) = %v, want %v", op, what, q, got, want)
					}
				}
				got, want := tab.Dump(), m.dump()
				if !slices.Equal(got.Conns, want.Conns) || !slices.Equal(got.NATs, want.NATs) {
					t.Fatalf("op %d after %s: Dump =\n%+v\nwant\n%+v", op, what, got, want)
				}
				if c, n := tab.Len(); c != len(m.conns) || n != len(m.nats) {
					t.Fatalf("op %d: Len() = %d, %d; want %d, %d", op, c, n, len(m.conns), len(m.nats))
				}
			}
			s := tab.Stats()
			if int(s.ConnAdds-s.ConnExpired-s.ConnEvictions) != s.Conns ||
				int(s.NATAdds-s.NATExpired-s.NATEvictions-s.NATReplaced) != s.NATs {
				t.Errorf("Stats do not add up: %+v", s)
			}
			t.Logf("stats: %+v", s)
		})
	}
}
