package flowtable

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

func out(port uint32) Actions {
	var a Actions
	a.Append(Action{Kind: ActOutput, Port: port})
	return a
}

func pkt(in uint32, src, dst byte, dport uint16) packet.FlowMatch {
	m := packet.FlowMatch{InPort: in, EthType: packet.EthTypeIPv4, IPProto: packet.ProtoTCP, DstPort: dport}
	m.EthSrc = [6]byte{2, 0, 0, 0, 0, src}
	m.EthDst = [6]byte{2, 0, 0, 0, 0, dst}
	m.SetSrc(netip.AddrFrom4([4]byte{10, 0, 0, src}))
	m.SetDst(netip.AddrFrom4([4]byte{10, 0, 0, dst}))
	return m
}

var (
	maskL2   = packet.MaskOf(packet.FInPort | packet.FEthSrc | packet.FEthDst)
	maskDst  = packet.MaskOf(packet.FEthDst)
	maskL4   = packet.MaskOf(packet.FInPort | packet.FEthType | packet.FIPSrc | packet.FIPDst | packet.FIPProto | packet.FDstPort)
	maskPort = packet.MaskOf(packet.FInPort)
)

func TestMaskedKeyMatchesMasked(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		var m, k packet.FlowMatch
		randBytes(r, &m)
		randBytes(r, &k)
		k = k.Masked(packet.MaskOf(packet.Field(0xffff))) // clear padding
		if got, want := maskedKey(&m, &k), m.Masked(k); got != keyOf(&want) {
			t.Fatalf("case %d: maskedKey(%+v, %+v) = %+v, want %+v", i, m, k, got, want)
		}
	}
}

func randBytes(r *rand.Rand, m *packet.FlowMatch) {
	m.InPort = r.Uint32()
	for i := range m.EthSrc {
		m.EthSrc[i], m.EthDst[i], m.ARPSha[i] = byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())
	}
	for i := range m.IPSrc {
		m.IPSrc[i], m.IPDst[i] = byte(r.Uint32()), byte(r.Uint32())
	}
	m.EthType, m.VLAN = uint16(r.Uint32()), uint16(r.Uint32())
	m.IPProto, m.IPTTL, m.IPFrag = byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())
	m.SrcPort, m.DstPort = uint16(r.Uint32()), uint16(r.Uint32())
}

type flowSpec struct {
	from    packet.FlowMatch // masked with mask before Insert
	mask    packet.FlowMatch
	actions Actions
	tags    []topology.Tag
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name     string
		flows    []flowSpec
		packet   packet.FlowMatch
		wantHit  bool
		wantPort uint32
	}{
		{
			name:    "empty table misses",
			packet:  pkt(1, 1, 2, 80),
			wantHit: false,
		},
		{
			name:     "exact L2 flow hits",
			flows:    []flowSpec{{from: pkt(1, 1, 2, 0), mask: maskL2, actions: out(7)}},
			packet:   pkt(1, 1, 2, 80),
			wantHit:  true,
			wantPort: 7,
		},
		{
			name:    "L2 flow from another port misses",
			flows:   []flowSpec{{from: pkt(1, 1, 2, 0), mask: maskL2, actions: out(7)}},
			packet:  pkt(2, 1, 2, 80),
			wantHit: false,
		},
		{
			name:     "wildcarded fields are ignored",
			flows:    []flowSpec{{from: pkt(9, 9, 2, 9), mask: maskDst, actions: out(3)}},
			packet:   pkt(1, 1, 2, 443),
			wantHit:  true,
			wantPort: 3,
		},
		{
			name: "second mask is searched",
			flows: []flowSpec{
				{from: pkt(1, 1, 5, 0), mask: maskL2, actions: out(7)},
				{from: pkt(1, 1, 2, 22), mask: maskL4, actions: out(4)},
			},
			packet:   pkt(1, 1, 2, 22),
			wantHit:  true,
			wantPort: 4,
		},
		{
			name: "L4 flow misses on another port number",
			flows: []flowSpec{
				{from: pkt(1, 1, 2, 22), mask: maskL4, actions: out(4)},
			},
			packet:  pkt(1, 1, 2, 23),
			wantHit: false,
		},
		{
			name:     "drop flow hits with no actions",
			flows:    []flowSpec{{from: pkt(5, 0, 0, 0), mask: maskPort}},
			packet:   pkt(5, 1, 2, 80),
			wantHit:  true,
			wantPort: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(Config{MaxFlows: 16})
			for _, f := range tt.flows {
				if err := tb.Insert(f.from.Masked(f.mask), f.mask, f.actions, f.tags, 1); err != nil {
					t.Fatalf("Insert: %v", err)
				}
			}
			a, ok := tb.Lookup(&tt.packet, 2, 100)
			if ok != tt.wantHit {
				t.Fatalf("Lookup(%+v) hit = %v, want %v", tt.packet, ok, tt.wantHit)
			}
			var port uint32
			if a.N > 0 {
				port = a.A[0].Port
			}
			if port != tt.wantPort {
				t.Errorf("Lookup(%+v) port = %d, want %d", tt.packet, port, tt.wantPort)
			}
			st := tb.Stats()
			if hits := st.Hits; (hits == 1) != tt.wantHit || st.Hits+st.Misses != 1 {
				t.Errorf("Stats() = %+v after one lookup (hit %v)", st, tt.wantHit)
			}
		})
	}
}

func TestInsertErrors(t *testing.T) {
	tests := []struct {
		name    string
		match   packet.FlowMatch
		mask    packet.FlowMatch
		tags    []topology.Tag
		wantErr error
	}{
		{name: "unmasked match", match: pkt(1, 1, 2, 80), mask: maskL2, wantErr: ErrNotMasked},
		{name: "too many tags", match: pkt(1, 1, 2, 80).Masked(maskL2), mask: maskL2, tags: make([]topology.Tag, MaxTags+1), wantErr: ErrTooManyTags},
		{name: "ok", match: pkt(1, 1, 2, 80).Masked(maskL2), mask: maskL2, tags: []topology.Tag{1, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(Config{})
			err := tb.Insert(tt.match, tt.mask, out(1), tt.tags, 0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Insert() = %v, want %v", err, tt.wantErr)
			}
			wantLen := 0
			if tt.wantErr == nil {
				wantLen = 1
			}
			if tb.Len() != wantLen {
				t.Errorf("Len() = %d after Insert() = %v, want %d (nothing half-stored)", tb.Len(), err, wantLen)
			}
		})
	}
}

func TestReplaceResetsCounters(t *testing.T) {
	tb := New(Config{})
	m := pkt(1, 1, 2, 0).Masked(maskL2)
	mustInsert(t, tb, m, maskL2, out(1), nil, 0)
	p := pkt(1, 1, 2, 80)
	tb.Lookup(&p, 1, 100)
	mustInsert(t, tb, m, maskL2, out(2), nil, 2)
	if tb.Len() != 1 {
		t.Fatalf("Len() = %d after replacing, want 1", tb.Len())
	}
	a, _ := tb.Lookup(&p, 3, 100)
	if a.A[0].Port != 2 {
		t.Errorf("Lookup after replace = port %d, want 2", a.A[0].Port)
	}
	d := tb.Dump()
	if d[0].Packets != 1 || d[0].Bytes != 100 || d[0].LastUsed != 3 || d[0].Created != 2 {
		t.Errorf("Dump() = %+v, want 1 packet, 100 bytes, last used 3, created 2", d[0])
	}
}

func mustInsert(t testing.TB, tb *Table, m, mask packet.FlowMatch, a Actions, tags []topology.Tag, now int64) {
	t.Helper()
	if err := tb.Insert(m, mask, a, tags, now); err != nil {
		t.Fatalf("Insert(%+v): %v", m, err)
	}
}

func TestInvalidate(t *testing.T) {
	tests := []struct {
		name       string
		invalidate []topology.Tag
		wantGone   int
		wantLeft   []uint32 // output ports of the flows left
	}{
		{name: "no tags", invalidate: nil, wantGone: 0, wantLeft: []uint32{1, 2, 3}},
		{name: "unknown tag", invalidate: []topology.Tag{99}, wantGone: 0, wantLeft: []uint32{1, 2, 3}},
		{name: "tag on one flow", invalidate: []topology.Tag{10}, wantGone: 1, wantLeft: []uint32{2, 3}},
		{name: "shared tag", invalidate: []topology.Tag{20}, wantGone: 2, wantLeft: []uint32{3}},
		{name: "overlapping tags count each flow once", invalidate: []topology.Tag{10, 20, 30}, wantGone: 3, wantLeft: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(Config{})
			mustInsert(t, tb, pkt(1, 1, 2, 0).Masked(maskL2), maskL2, out(1), []topology.Tag{10, 20}, 0)
			mustInsert(t, tb, pkt(1, 1, 3, 0).Masked(maskL2), maskL2, out(2), []topology.Tag{20}, 0)
			mustInsert(t, tb, pkt(1, 1, 4, 22).Masked(maskL4), maskL4, out(3), []topology.Tag{30}, 0)
			if got := tb.Invalidate(tt.invalidate); got != tt.wantGone {
				t.Errorf("Invalidate(%v) = %d, want %d", tt.invalidate, got, tt.wantGone)
			}
			var left []uint32
			for _, e := range tb.Dump() {
				left = append(left, e.Actions.A[0].Port)
			}
			if !sameSet(left, tt.wantLeft) {
				t.Errorf("flows left after Invalidate(%v) = %v, want %v", tt.invalidate, left, tt.wantLeft)
			}
			if st := tb.Stats(); st.Invalidated != uint64(tt.wantGone) || st.Flows != len(tt.wantLeft) {
				t.Errorf("Stats() = %+v", st)
			}
			// Invalidating again removes nothing more.
			if got := tb.Invalidate(tt.invalidate); got != 0 {
				t.Errorf("second Invalidate(%v) = %d, want 0", tt.invalidate, got)
			}
		})
	}
}

func sameSet(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[uint32]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestRemoveIf(t *testing.T) {
	tb := New(Config{})
	for i := range uint32(10) {
		mustInsert(t, tb, pkt(i, 1, 2, 0).Masked(maskL2), maskL2, out(i%3), nil, 0)
	}
	n := tb.RemoveIf(func(match, mask *packet.FlowMatch, a *Actions) bool {
		return a.A[0].Port == 0 || match.InPort == 5
	})
	// ports 0,3,6,9 output to 0 (4 flows) plus InPort 5.
	if n != 5 || tb.Len() != 5 {
		t.Errorf("RemoveIf removed %d, left %d; want 5 and 5", n, tb.Len())
	}
	for _, e := range tb.Dump() {
		if e.Actions.A[0].Port == 0 || e.Match.InPort == 5 {
			t.Errorf("flow %+v survived RemoveIf", e.Match)
		}
	}
}

func TestExpire(t *testing.T) {
	tests := []struct {
		name     string
		idle     int64
		hard     int64
		now      int64
		wantGone int
	}{
		{name: "nothing idle yet", idle: 100, now: 100, wantGone: 0},
		{name: "unused flow idles out", idle: 100, now: 101 + 100, wantGone: 1},
		{name: "both idle out", idle: 100, now: 1000, wantGone: 2},
		{name: "disabled", idle: 0, now: 1 << 40, wantGone: 0},
		{name: "hard timeout removes used flows too", hard: 120, now: 150, wantGone: 2},
		{name: "hard timeout not reached", hard: 200, now: 150, wantGone: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(Config{IdleTimeout: tt.idle, HardTimeout: tt.hard})
			mustInsert(t, tb, pkt(1, 1, 2, 0).Masked(maskL2), maskL2, out(1), nil, 0)
			mustInsert(t, tb, pkt(1, 1, 3, 0).Masked(maskL2), maskL2, out(2), nil, 0)
			p := pkt(1, 1, 3, 0)
			tb.Lookup(&p, 150, 1) // flow 2 used at 150; flow 1 last used at 0
			if got := tb.Expire(tt.now); got != tt.wantGone {
				t.Errorf("Expire(%d) = %d, want %d", tt.now, got, tt.wantGone)
			}
			if tb.Len() != 2-tt.wantGone || tb.Stats().Expired != uint64(tt.wantGone) {
				t.Errorf("after Expire: Len() = %d, Stats() = %+v", tb.Len(), tb.Stats())
			}
		})
	}
}

func TestEvictionLRU(t *testing.T) {
	tests := []struct {
		name     string
		use      []byte // dst of flows used (in this order, at times 10, 11, ...) before the insert
		wantGone byte   // dst of the evicted flow
	}{
		{name: "no use evicts the oldest", use: nil, wantGone: 1},
		{name: "used oldest survives", use: []byte{1}, wantGone: 2},
		{name: "two used", use: []byte{2, 1}, wantGone: 3},
		{name: "all used evicts the least recent", use: []byte{3, 1, 2}, wantGone: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(Config{MaxFlows: 3})
			for d := byte(1); d <= 3; d++ {
				mustInsert(t, tb, pkt(1, 9, d, 0).Masked(maskL2), maskL2, out(uint32(d)), nil, int64(d))
			}
			for i, d := range tt.use {
				p := pkt(1, 9, d, 0)
				if _, ok := tb.Lookup(&p, int64(10+i), 1); !ok {
					t.Fatalf("Lookup(dst %d) missed", d)
				}
			}
			mustInsert(t, tb, pkt(1, 9, 4, 0).Masked(maskL2), maskL2, out(4), nil, 20)
			if tb.Len() != 3 || tb.Stats().Evictions != 1 {
				t.Fatalf("Len() = %d, Stats() = %+v; want 3 flows, 1 eviction", tb.Len(), tb.Stats())
			}
			for d := byte(1); d <= 4; d++ {
				p := pkt(1, 9, d, 0)
				_, ok := tb.Lookup(&p, 30, 1)
				if ok == (d == tt.wantGone) {
					t.Errorf("after eviction, Lookup(dst %d) hit = %v; want flow %d evicted", d, ok, tt.wantGone)
				}
			}
		})
	}
}

// model is the slow, obvious flow table: a list of flows, scanned in full.
type model struct {
	flows []modelFlow
}

type modelFlow struct {
	match, mask packet.FlowMatch
	actions     Actions
	tags        []topology.Tag
	packets     uint64
}

func (m *model) insert(match, mask packet.FlowMatch, a Actions, tags []topology.Tag) {
	for i := range m.flows {
		if m.flows[i].match == match && m.flows[i].mask == mask {
			m.flows[i] = modelFlow{match: match, mask: mask, actions: a, tags: tags}
			return
		}
	}
	m.flows = append(m.flows, modelFlow{match: match, mask: mask, actions: a, tags: tags})
}

// matching returns the indexes of every flow that matches p.
func (m *model) matching(p packet.FlowMatch) []int {
	var r []int
	for i, f := range m.flows {
		if p.Masked(f.mask) == f.match {
			r = append(r, i)
		}
	}
	return r
}

func (m *model) invalidate(tags []topology.Tag) int {
	n := 0
	kept := m.flows[:0]
	for _, f := range m.flows {
		hit := false
		for _, t := range f.tags {
			for _, u := range tags {
				hit = hit || t == u
			}
		}
		if hit {
			n++
		} else {
			kept = append(kept, f)
		}
	}
	m.flows = kept
	return n
}

// TestAgainstModel drives the tuple-space table and the model with the
// same random inserts, lookups and invalidations and checks they agree:
// hit or miss, the actions returned belong to a matching flow, the flow
// count, and per-flow packet counts.
func TestAgainstModel(t *testing.T) {
	masks := []packet.FlowMatch{maskL2, maskDst, maskL4, maskPort,
		packet.MaskOf(packet.FEthDst | packet.FEthType | packet.FIPDst)}
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			// Small value ranges so that flows collide and overlap.
			randPkt := func() packet.FlowMatch {
				return pkt(r.Uint32N(3), byte(r.Uint32N(4)), byte(r.Uint32N(6)), uint16(r.Uint32N(3)))
			}
			tb := New(Config{MaxFlows: 1 << 20})
			var md model
			for step := range 3000 {
				switch op := r.Uint32N(10); {
				case op < 4:
					mask := masks[r.Uint32N(uint32(len(masks)))]
					match := randPkt().Masked(mask)
					var a Actions
					a.Append(Action{Kind: ActOutput, Port: uint32(step)})
					tags := []topology.Tag{topology.Tag(r.Uint32N(8)), topology.Tag(r.Uint32N(8))}
					mustInsert(t, tb, match, mask, a, tags, int64(step))
					md.insert(match, mask, a, tags)
				case op < 9:
					p := randPkt()
					a, ok := tb.Lookup(&p, int64(step), 1)
					idx := md.matching(p)
					if ok != (len(idx) > 0) {
						t.Fatalf("step %d: Lookup(%+v) hit = %v, model has %d matching flows", step, p, ok, len(idx))
					}
					if !ok {
						continue
					}
					found := false
					for _, i := range idx {
						if md.flows[i].actions == a {
							md.flows[i].packets++
							found = true
							break
						}
					}
					if !found {
						t.Fatalf("step %d: Lookup(%+v) = %+v, not the actions of any matching flow", step, p, a.A[0])
					}
				default:
					tags := []topology.Tag{topology.Tag(r.Uint32N(8))}
					if got, want := tb.Invalidate(tags), md.invalidate(tags); got != want {
						t.Fatalf("step %d: Invalidate(%v) = %d, model removed %d", step, tags, got, want)
					}
				}
				if tb.Len() != len(md.flows) {
					t.Fatalf("step %d: Len() = %d, model has %d", step, tb.Len(), len(md.flows))
				}
			}
			// Per-flow packet counts agree (actions identify flows: each
			// insert used a distinct output port).
			want := map[uint32]uint64{}
			for _, f := range md.flows {
				want[f.actions.A[0].Port] = f.packets
			}
			for _, e := range tb.Dump() {
				if w, ok := want[e.Actions.A[0].Port]; !ok || w != e.Packets {
					t.Errorf("flow %d: Packets = %d, model %d (present %v)", e.Actions.A[0].Port, e.Packets, w, ok)
				}
			}
		})
	}
}

func TestLookupAllocs(t *testing.T) {
	tb, pkts := filledTable(t, 1000)
	miss := pkt(77, 77, 77, 77)
	tests := []struct {
		name string
		p    *packet.FlowMatch
	}{
		{name: "hit", p: &pkts[500]},
		{name: "miss", p: &miss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, func() { tb.Lookup(tt.p, 1, 64) }); n != 0 {
				t.Errorf("Lookup allocates %v times per call, want 0", n)
			}
		})
	}
}

// TestConcurrent runs lookups against inserts, invalidations, expiry and
// dumps; run with -race.
func TestConcurrent(t *testing.T) {
	tb, pkts := filledTable(t, 2000)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tb.Lookup(&pkts[(i*7+g)%len(pkts)], int64(i), 64)
			}
		})
	}
	for i := range 3000 {
		p := pkts[i%len(pkts)]
		mask := maskL2
		mustInsert(t, tb, p.Masked(mask), mask, out(uint32(i)), []topology.Tag{topology.Tag(i % 16)}, int64(i))
		if i%100 == 0 {
			tb.Invalidate([]topology.Tag{topology.Tag(i % 16)})
			tb.Expire(int64(i))
			tb.Dump()
		}
	}
	close(stop)
	wg.Wait()
	if tb.Len() > 2000 {
		t.Errorf("Len() = %d over MaxFlows 2000", tb.Len())
	}
}

// filledTable returns a table of n flows spread over 4 masks, and a packet
// hitting each flow.
func filledTable(t testing.TB, n int) (*Table, []packet.FlowMatch) {
	masks := []packet.FlowMatch{maskL2, maskDst, maskL4, maskPort}
	tb := New(Config{MaxFlows: n})
	pkts := make([]packet.FlowMatch, 0, n)
	for i := range n {
		mask := masks[i%4]
		p := pkt(uint32(i), byte(i), byte(i>>8), uint16(i))
		p.InPort = uint32(1000 + i) // distinct per flow for every mask
		p.EthDst = [6]byte{4, 0, 0, 0, byte(i >> 8), byte(i)}
		mustInsert(t, tb, p.Masked(mask), mask, out(uint32(i)), []topology.Tag{topology.Tag(i)}, 0)
		pkts = append(pkts, p)
	}
	if tb.Len() != n {
		t.Fatalf("filled table has %d flows, want %d", tb.Len(), n)
	}
	return tb, pkts
}

func BenchmarkLookupHit(b *testing.B) {
	tb, pkts := filledTable(b, 10000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := tb.Lookup(&pkts[i], 1, 64); !ok {
			b.Fatal("miss")
		}
		i++
		if i == len(pkts) {
			i = 0
		}
	}
}

func BenchmarkLookupHitParallel(b *testing.B) {
	tb, pkts := filledTable(b, 10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tb.Lookup(&pkts[i], 1, 64)
			i++
			if i == len(pkts) {
				i = 0
			}
		}
	})
}

func BenchmarkLookupMiss(b *testing.B) {
	tb, _ := filledTable(b, 10000)
	miss := pkt(1<<20, 200, 200, 9)
	miss.EthDst = [6]byte{6, 6, 6, 6, 6, 6}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := tb.Lookup(&miss, 1, 64); ok {
			b.Fatal("hit")
		}
	}
}

func BenchmarkInsert(b *testing.B) {
	tb, pkts := filledTable(b, 10000) // full: every insert evicts
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := pkts[i%len(pkts)]
		p.SrcPort = uint16(i)
		p.DstPort = uint16(i >> 16)
		_ = tb.Insert(p.Masked(maskL4), maskL4, out(1), []topology.Tag{topology.Tag(i)}, int64(i))
		i++
	}
}

func BenchmarkMasked(b *testing.B) {
	p := pkt(1, 2, 3, 4)
	b.Run("maskedKey", func(b *testing.B) {
		for b.Loop() {
			_ = maskedKey(&p, &maskL4)
		}
	})
	b.Run("FlowMatch.Masked", func(b *testing.B) {
		for b.Loop() {
			_ = p.Masked(maskL4)
		}
	})
}

// BenchmarkMapKey compares the map key types a mask table could use: the
// FlowMatch struct (field-by-field hash, because of its blank fields) and
// the word array key (one memory hash).
func BenchmarkMapKey(b *testing.B) {
	_, pkts := filledTable(b, 10000)
	ones := packet.MaskOf(^packet.Field(0))
	byStruct := make(map[packet.FlowMatch]int, len(pkts))
	byWords := make(map[key]int, len(pkts))
	for i, p := range pkts {
		byStruct[p] = i
		byWords[keyOf(&p)] = i
	}
	b.Run("struct", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_ = byStruct[pkts[i%len(pkts)].Masked(ones)]
			i++
		}
	})
	b.Run("words", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_ = byWords[maskedKey(&pkts[i%len(pkts)], &ones)]
			i++
		}
	})
}
