package conntrack

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hivenet/internal/flowstate"
)

func benchKeys(n int) []flowstate.Key {
	ks := make([]flowstate.Key, n)
	for i := range ks {
		k := key(uint32(i%7), 6, "10.0.0.1:1000", "10.1.0.2:80")
		k.Src[14], k.Src[15] = byte(i>>8), byte(i)
		k.SrcPort += uint16(i)
		ks[i] = k
	}
	return ks
}

func filled(b *testing.B, n int) (*Tables, []flowstate.Key) {
	tab := newT(b, Config{MaxEntries: 2 * n})
	ks := benchKeys(n)
	for i, k := range ks {
		tab.AddConn(k, int64(i))
		x := k
		x.SrcPort ^= 0x8000
		tab.AddNAT(flowstate.NAT{Orig: k, Xlat: x}, int64(i))
	}
	return tab, ks
}

// BenchmarkConnState: one reply lookup (two map probes: the key, then
// its reverse) in a table of 64k connections.
func BenchmarkConnState(b *testing.B) {
	tab, ks := filled(b, 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.ConnState(ks[i&(len(ks)-1)].Reverse())
		i++
	}
}

func BenchmarkNATByReply(b *testing.B) {
	tab, ks := filled(b, 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := ks[i&(len(ks)-1)]
		k.SrcPort ^= 0x8000
		tab.NATByReply(k.Reverse())
		i++
	}
}

// BenchmarkAddConnFull: a new connection into a full table (one eviction
// each).
func BenchmarkAddConnFull(b *testing.B) {
	tab := newT(b, Config{MaxEntries: 1 << 14})
	ks := benchKeys(1 << 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.AddConn(ks[i&(len(ks)-1)], int64(i))
		i++
	}
	b.ReportMetric(float64(tab.Stats().ConnEvictions)/float64(b.N), "evictions/op")
}

// BenchmarkParallelConnState compares the sharded conntrack table with
// the same lookups behind one RWMutex (the layout the NAT table uses), with
// a writer adding connections 1% of the time. The machine is shared, so
// rather than two sub-benchmarks run at different moments, each goroutine
// alternates chunks of 256 operations on one and on the other, timing
// each chunk, and the benchmark reports both costs (wall time per
// operation per goroutine) and their ratio. Each goroutine starts at its
// own place in the key list, or they would walk the shards in lockstep.
func BenchmarkParallelConnState(b *testing.B) {
	tab, ks := filled(b, 1<<14)
	var mu sync.RWMutex
	m := map[flowstate.Key]int64{}
	for i, k := range ks {
		m[k] = int64(i)
	}
	sharded := func(i int) {
		k := ks[i&(len(ks)-1)]
		if i%100 == 0 {
			tab.AddConn(k, int64(i))
		} else {
			tab.ConnState(k.Reverse())
		}
	}
	oneLock := func(i int) {
		k := ks[i&(len(ks)-1)]
		if i%100 == 0 {
			mu.Lock()
			m[k] = int64(i)
			mu.Unlock()
		} else {
			r := k.Reverse()
			mu.RLock()
			_, fwd := m[r]
			_, rev := m[k]
			mu.RUnlock()
			_, _ = fwd, rev
		}
	}
	var goroutines, shardedNs, oneLockNs, ops atomic.Int64
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		const chunk = 256
		i := int(goroutines.Add(1)) * 7919
		var sNs, oNs, n int64
		for pb.Next() {
			t0 := time.Now()
			for j := range chunk {
				sharded(i + j)
			}
			t1 := time.Now()
			for j := range chunk {
				oneLock(i + j)
			}
			oNs += int64(time.Since(t1))
			sNs += int64(t1.Sub(t0))
			n += chunk
			i += chunk
		}
		shardedNs.Add(sNs)
		oneLockNs.Add(oNs)
		ops.Add(n)
	})
	if n := ops.Load(); n > 0 {
		b.ReportMetric(float64(shardedNs.Load())/float64(n), "sharded-ns/lookup")
		b.ReportMetric(float64(oneLockNs.Load())/float64(n), "one-lock-ns/lookup")
		b.ReportMetric(float64(shardedNs.Load())/float64(oneLockNs.Load()), "sharded/one-lock")
	}
}

func BenchmarkAppendSnapshot(b *testing.B) {
	tab, _ := filled(b, 1<<14)
	buf := tab.AppendSnapshot(nil, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf = tab.AppendSnapshot(buf[:0], 1)
	}
}

// BenchmarkExpire: one Expire that removes 64k connections and 64k
// bindings (the longest the agent's periodic Expire holds the locks:
// per conntrack shard, then the NAT table).
func BenchmarkExpire(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		tab, _ := filled(b, 1<<16)
		b.StartTimer()
		if n := tab.Expire(1 << 50); n != 2<<16 {
			b.Fatalf("Expire removed %d, want %d", n, 2<<16)
		}
	}
}
