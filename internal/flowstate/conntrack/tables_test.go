package conntrack

import (
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"hivenet/internal/flowstate"
	"hivenet/internal/topology"
)

// TestDeps keeps the package free of I/O, clocks, global randomness and
// logging (synchronization is its job, so sync is allowed).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "net", "os", "os/exec", "syscall", "io/ioutil", "log", "log/slog", "time",
			"math/rand", "math/rand/v2", "crypto/rand", "unsafe", "golang.org/x/sys/unix":
			t.Errorf("conntrack imports %s; the package must do no I/O", dep)
		}
	}
}

func key(zone uint32, proto uint8, src, dst string) flowstate.Key {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	return flowstate.Key{Zone: zone, Proto: proto, Src: s.Addr().As16(), Dst: d.Addr().As16(), SrcPort: s.Port(), DstPort: d.Port()}
}

func newT(t testing.TB, cfg Config) *Tables {
	t.Helper()
	tab, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		want    Config
	}{
		{name: "zero takes defaults", cfg: Config{}, want: Config{ConnIdle: DefaultConnIdle, NATIdle: DefaultNATIdle, MaxEntries: DefaultMaxEntries}},
		{name: "kept", cfg: Config{ConnIdle: 1, NATIdle: 2, MaxEntries: 3}, want: Config{ConnIdle: 1, NATIdle: 2, MaxEntries: 3}},
		{name: "negative conn idle", cfg: Config{ConnIdle: -1}, wantErr: true},
		{name: "negative nat idle", cfg: Config{NATIdle: -1}, wantErr: true},
		{name: "negative max", cfg: Config{MaxEntries: -1}, wantErr: true},
		{name: "idle too long", cfg: Config{ConnIdle: MaxIdle + 1}, wantErr: true},
		{name: "nat idle too long", cfg: Config{NATIdle: 1 << 62}, wantErr: true},
		{name: "a year is fine", cfg: Config{ConnIdle: MaxIdle, NATIdle: MaxIdle, MaxEntries: 1}, want: Config{ConnIdle: MaxIdle, NATIdle: MaxIdle, MaxEntries: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%+v) = %v, want error %v", tt.cfg, err, tt.wantErr)
			}
			if err == nil && tab.Config() != tt.want {
				t.Errorf("Config() = %+v, want %+v", tab.Config(), tt.want)
			}
		})
	}
}

func TestConnState(t *testing.T) {
	fwd := key(5, 6, "10.0.0.1:40000", "10.0.0.2:80")
	tab := newT(t, Config{})
	tab.AddConn(fwd, 1)
	tests := []struct {
		name string
		k    flowstate.Key
		want topology.CTState
	}{
		{name: "forward", k: fwd, want: topology.CTEstablished},
		{name: "reply", k: fwd.Reverse(), want: topology.CTEstablished | topology.CTReply},
		{name: "other zone", k: func() flowstate.Key { k := fwd; k.Zone = 6; return k }(), want: topology.CTNew},
		{name: "other port", k: func() flowstate.Key { k := fwd; k.SrcPort++; return k }(), want: topology.CTNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tab.ConnState(tt.k); got != tt.want {
				t.Errorf("ConnState(%v) = %v, want %v", tt.k, got, tt.want)
			}
		})
	}
}

func TestNATBindings(t *testing.T) {
	z := flowstate.RouterZone("r1")
	vm1 := key(z, 6, "10.0.0.5:40000", "192.0.2.1:80")
	vm2 := key(z, 6, "10.0.0.6:40000", "192.0.2.1:80")
	gw := func(port uint16) flowstate.Key {
		k := key(z, 6, "203.0.113.1:0", "192.0.2.1:80")
		k.SrcPort = port
		return k
	}
	type lookup struct {
		k               flowstate.Key
		byOrig, byReply *flowstate.NAT
		inUse           bool
	}
	n1 := flowstate.NAT{Orig: vm1, Xlat: gw(2000)}
	n1b := flowstate.NAT{Orig: vm1, Xlat: gw(2001)}
	n2 := flowstate.NAT{Orig: vm2, Xlat: gw(2000)}
	tests := []struct {
		name    string
		adds    []flowstate.NAT
		wantNew []bool
		checks  []lookup
		nats    int
	}{
		{
			name: "snat binding", adds: []flowstate.NAT{n1}, wantNew: []bool{true}, nats: 1,
			checks: []lookup{
				{k: vm1, byOrig: &n1},
				{k: gw(2000).Reverse(), byReply: &n1},
				{k: gw(2000), inUse: true},
				{k: gw(2001)},
			},
		},
		{
			name: "same binding twice refreshes", adds: []flowstate.NAT{n1, n1}, wantNew: []bool{true, false}, nats: 1,
			checks: []lookup{{k: vm1, byOrig: &n1}},
		},
		{
			name: "new translation replaces", adds: []flowstate.NAT{n1, n1b}, wantNew: []bool{true, false}, nats: 1,
			checks: []lookup{
				{k: vm1, byOrig: &n1b},
				{k: gw(2001).Reverse(), byReply: &n1b},
				{k: gw(2001), inUse: true},
				{k: gw(2000)}, // freed
			},
		},
		{
			name: "same translated key: newer wins", adds: []flowstate.NAT{n1, n2}, wantNew: []bool{true, true}, nats: 1,
			checks: []lookup{
				{k: vm1},
				{k: vm2, byOrig: &n2},
				{k: gw(2000).Reverse(), byReply: &n2},
				{k: gw(2000), inUse: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newT(t, Config{})
			for i, n := range tt.adds {
				if got := tab.AddNAT(n, int64(i+1)); got != tt.wantNew[i] {
					t.Errorf("AddNAT #%d = %v, want %v", i, got, tt.wantNew[i])
				}
			}
			for _, c := range tt.checks {
				n, ok := tab.NATByOrig(c.k)
				if ok != (c.byOrig != nil) || (ok && n != *c.byOrig) {
					t.Errorf("NATByOrig(%v) = %v, %v; want %v", c.k, n, ok, c.byOrig)
				}
				n, ok = tab.NATByReply(c.k)
				if ok != (c.byReply != nil) || (ok && n != *c.byReply) {
					t.Errorf("NATByReply(%v) = %v, %v; want %v", c.k, n, ok, c.byReply)
				}
				if got := tab.SNATInUse(c.k); got != c.inUse {
					t.Errorf("SNATInUse(%v) = %v, want %v", c.k, got, c.inUse)
				}
			}
			if _, n := tab.Len(); n != tt.nats {
				t.Errorf("Len() nats = %d, want %d", n, tt.nats)
			}
		})
	}
}

func TestExpireAndRefresh(t *testing.T) {
	k := key(1, 17, "10.0.0.1:5000", "10.0.0.2:53")
	n := flowstate.NAT{Orig: k, Xlat: key(1, 17, "203.0.113.1:3000", "10.0.0.2:53")}
	tab := newT(t, Config{ConnIdle: 100, NATIdle: 200})
	tab.AddConn(k, 0)
	tab.AddNAT(n, 0)
	steps := []struct {
		name        string
		refreshConn *flowstate.Key // refresh with this key first
		refreshNAT  *flowstate.Key
		now         int64
		removed     int
		conns, nats int
	}{
		{name: "before idle", now: 99, removed: 0, conns: 1, nats: 1},
		{name: "refreshed by reply key", refreshConn: new(k.Reverse()), refreshNAT: new(n.Xlat.Reverse()), now: 150, removed: 0, conns: 1, nats: 1},
		{name: "refresh holds", now: 249, removed: 0, conns: 1, nats: 1},
		{name: "conn idles out at exactly idle", now: 250, removed: 1, conns: 0, nats: 1},
		{name: "nat refreshed by orig", refreshNAT: &k, now: 300, removed: 0, conns: 0, nats: 1},
		{name: "nat idles out", now: 500, removed: 1, conns: 0, nats: 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.refreshConn != nil && !tab.RefreshConn(*st.refreshConn, st.now) {
				t.Errorf("RefreshConn(%v) = false", *st.refreshConn)
			}
			if st.refreshNAT != nil && !tab.RefreshNAT(*st.refreshNAT, st.now) {
				t.Errorf("RefreshNAT(%v) = false", *st.refreshNAT)
			}
			if got := tab.Expire(st.now); got != st.removed {
				t.Errorf("Expire(%d) = %d, want %d", st.now, got, st.removed)
			}
			if c, n := tab.Len(); c != st.conns || n != st.nats {
				t.Errorf("Len() = %d, %d; want %d, %d", c, n, st.conns, st.nats)
			}
		})
	}
	if tab.RefreshConn(k, 1000) || tab.RefreshNAT(k, 1000) {
		t.Error("refresh of expired entries reported true")
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	tab := newT(t, Config{MaxEntries: 3})
	ks := []flowstate.NAT{}
	for i := range 4 {
		o := key(1, 6, "10.0.0.1:1000", "10.0.0.2:80")
		o.SrcPort += uint16(i)
		x := o
		x.Src = netip.MustParseAddr("203.0.113.1").As16()
		ks = append(ks, flowstate.NAT{Orig: o, Xlat: x})
	}
	tab.AddNAT(ks[0], 10)
	tab.AddNAT(ks[1], 20)
	tab.AddNAT(ks[2], 30)
	tab.RefreshNAT(ks[0].Orig, 40) // 1 is now the least recently used
	tab.AddNAT(ks[3], 50)
	for i, want := range []bool{true, false, true, true} {
		if _, ok := tab.NATByOrig(ks[i].Orig); ok != want {
			t.Errorf("binding %d present = %v, want %v", i, ok, want)
		}
	}
	if s := tab.Stats(); s.NATEvictions != 1 || s.NATs != 3 {
		t.Errorf("Stats = %+v, want 1 eviction, 3 bindings", s)
	}
}

func TestSNATBlocks(t *testing.T) {
	a := netip.MustParseAddr("203.0.113.1")
	tab := newT(t, Config{})
	if err := tab.AddSNATBlock(a, 1024); err != nil {
		t.Fatal(err)
	}
	first := tab.SNATBlocks(a)
	steps := []struct {
		name    string
		add     uint16
		remove  uint16
		addr    netip.Addr
		wantErr error
		removed bool
		want    []uint16
	}{
		{name: "second block", add: 2048, addr: a, want: []uint16{1024, 2048}},
		{name: "order of leasing", add: 1280, addr: a, want: []uint16{1024, 2048, 1280}},
		{name: "held again: no-op", add: 2048, addr: a, want: []uint16{1024, 2048, 1280}},
		{name: "not a block start", add: 1025, addr: a, wantErr: ErrBadBlock, want: []uint16{1024, 2048, 1280}},
		{name: "below range", add: 512, addr: a, wantErr: ErrBadBlock, want: []uint16{1024, 2048, 1280}},
		{name: "v4-mapped is the same address", add: 4096, addr: netip.AddrFrom16(a.As16()), want: []uint16{1024, 2048, 1280, 4096}},
		{name: "remove", remove: 2048, addr: a, removed: true, want: []uint16{1024, 1280, 4096}},
		{name: "remove absent", remove: 2048, addr: a, want: []uint16{1024, 1280, 4096}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.add != 0 {
				if err := tab.AddSNATBlock(st.addr, st.add); !errors.Is(err, st.wantErr) {
					t.Errorf("AddSNATBlock(%v, %d) = %v, want %v", st.addr, st.add, err, st.wantErr)
				}
			}
			if st.remove != 0 {
				if got := tab.RemoveSNATBlock(st.addr, st.remove); got != st.removed {
					t.Errorf("RemoveSNATBlock(%v, %d) = %v, want %v", st.addr, st.remove, got, st.removed)
				}
			}
			if got := tab.SNATBlocks(a); !slices.Equal(got, st.want) {
				t.Errorf("SNATBlocks = %v, want %v", got, st.want)
			}
		})
	}
	if !slices.Equal(first, []uint16{1024}) {
		t.Errorf("a slice returned earlier changed to %v", first)
	}
	if err := tab.AddSNATBlock(netip.Addr{}, 1024); err == nil {
		t.Error("AddSNATBlock(invalid address) = nil")
	}
	if got := tab.SNATBlocks(netip.MustParseAddr("198.51.100.1")); got != nil {
		t.Errorf("SNATBlocks(other) = %v, want nil", got)
	}
	if s := tab.Stats(); s.SNATBlocks != 3 {
		t.Errorf("Stats.SNATBlocks = %d, want 3", s.SNATBlocks)
	}
}

func TestSnapshotRestore(t *testing.T) {
	const t0 = int64(1_000_000e9)
	src := newT(t, Config{ConnIdle: 100e9, NATIdle: 100e9})
	for i := range 50 {
		k := key(uint32(i%3), 6, "10.0.0.1:1000", "10.0.0.2:80")
		k.SrcPort += uint16(i)
		src.AddConn(k, t0+int64(i)*1e9)
		x := k
		x.Src = netip.MustParseAddr("203.0.113.1").As16()
		src.AddNAT(flowstate.NAT{Orig: k, Xlat: x}, t0+int64(i)*2e9)
	}
	written := t0 + 100e9
	snap := src.AppendSnapshot(nil, written)
	tests := []struct {
		name        string
		at          int64 // restore time
		conns, nats int
	}{
		// conn i was last used at t0+i s, binding i at t0+2i s; idle 100 s.
		{name: "at once", at: written, conns: 49, nats: 49},
		{name: "a minute later: downtime is idle time", at: t0 + 160e9, conns: 0, nats: 19},
		{name: "much later", at: t0 + 1000e9, conns: 0, nats: 0},
		{name: "clock went back 10 s: ages kept", at: written - 10e9, conns: 49, nats: 49},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newT(t, Config{ConnIdle: 100e9, NATIdle: 100e9})
			n, err := dst.Restore(snap, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if c, nn := dst.Len(); c != tt.conns || nn != tt.nats || n != c+nn {
				t.Fatalf("Restore at %+ds = %d, Len() = %d, %d; want %d, %d", (tt.at-written)/1e9, n, c, nn, tt.conns, tt.nats)
			}
			// What restores is what the source would hold at the same
			// clock, dated the same (shifted if the clock went back).
			shift := min(tt.at-written, 0)
			want := src.Dump()
			want.Conns = slices.DeleteFunc(want.Conns, func(e flowstate.ConnEntry) bool { return e.Last+shift+100e9 <= tt.at })
			want.NATs = slices.DeleteFunc(want.NATs, func(e flowstate.NATEntry) bool { return e.Last+shift+100e9 <= tt.at })
			for i := range want.Conns {
				want.Conns[i].Last += shift
			}
			for i := range want.NATs {
				want.NATs[i].Last += shift
			}
			got := dst.Dump()
			if !slices.Equal(got.Conns, want.Conns) || !slices.Equal(got.NATs, want.NATs) {
				t.Errorf("restored dump differs from the source's:\n%+v\nwant\n%+v", got, want)
			}
		})
	}
	t.Run("bad snapshot adds nothing", func(t *testing.T) {
		dst := newT(t, Config{})
		bad := append([]byte(nil), snap...)
		bad[len(bad)/2] ^= 1
		if n, err := dst.Restore(bad, t0); !errors.Is(err, flowstate.ErrBadMessage) || n != 0 {
			t.Errorf("Restore(corrupted) = %d, %v; want 0, ErrBadMessage", n, err)
		}
		if c, nn := dst.Len(); c+nn != 0 {
			t.Errorf("Len() after a failed restore = %d, %d", c, nn)
		}
	})
}

func TestApplyMessage(t *testing.T) {
	k := key(9, 6, "10.0.0.1:1000", "10.0.0.2:80")
	n := flowstate.NAT{Orig: k, Xlat: key(9, 6, "203.0.113.1:3000", "10.0.0.2:80")}
	var m flowstate.Message
	if err := flowstate.ParseMessage(flowstate.AppendMessage(nil, &flowstate.Message{Conns: []flowstate.Key{k}, NATs: []flowstate.NAT{n}}), &m); err != nil {
		t.Fatal(err)
	}
	tab := newT(t, Config{})
	tab.ApplyMessage(&m, 5)
	if tab.ConnState(k.Reverse()) != topology.CTEstablished|topology.CTReply {
		t.Error("pushed conntrack entry does not admit the reply")
	}
	if got, ok := tab.NATByReply(n.Xlat.Reverse()); !ok || got != n {
		t.Errorf("NATByReply = %v, %v; want %v", got, ok, n)
	}
}

func TestLookupsDoNotAllocate(t *testing.T) {
	tab := newT(t, Config{})
	a := netip.MustParseAddr("203.0.113.1")
	if err := tab.AddSNATBlock(a, 1024); err != nil {
		t.Fatal(err)
	}
	k := key(1, 6, "10.0.0.1:1000", "10.0.0.2:80")
	n := flowstate.NAT{Orig: k, Xlat: key(1, 6, "203.0.113.1:3000", "10.0.0.2:80")}
	tab.AddConn(k, 1)
	tab.AddNAT(n, 1)
	var sink int
	allocs := testing.AllocsPerRun(200, func() {
		sink += int(tab.ConnState(k)) + int(tab.ConnState(k.Reverse())) + int(tab.ConnState(n.Xlat))
		if _, ok := tab.NATByOrig(k); ok {
			sink++
		}
		if _, ok := tab.NATByReply(n.Xlat.Reverse()); ok {
			sink++
		}
		if tab.SNATInUse(n.Xlat) {
			sink++
		}
		sink += len(tab.SNATBlocks(a))
		if tab.RefreshConn(k, 2) && tab.RefreshNAT(k, 2) {
			sink++
		}
	})
	if allocs != 0 {
		t.Errorf("lookups and refreshes allocate %v times per run, want 0", allocs)
	}
	if sink == 0 {
		t.Error("lookups found nothing")
	}
}

// TestConcurrent runs writers, readers, refreshers and an expirer at once
// (meant for -race), then checks the tables are consistent.
func TestConcurrent(t *testing.T) {
	tab := newT(t, Config{ConnIdle: 50, NATIdle: 50, MaxEntries: 256})
	a := netip.MustParseAddr("203.0.113.1")
	var wg sync.WaitGroup
	const workers, ops = 4, 3000
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				now := int64(i)
				k := key(uint32(w), 6, "10.0.0.1:1000", "10.0.0.2:80")
				k.SrcPort += uint16(i % 500)
				x := k
				x.Src, x.SrcPort = a.As16(), uint16(2000+i%700)
				switch i % 4 {
				case 0:
					tab.AddConn(k, now)
					tab.AddNAT(flowstate.NAT{Orig: k, Xlat: x}, now)
				case 1:
					tab.ConnState(k.Reverse())
					tab.NATByReply(x.Reverse())
					tab.SNATInUse(x)
					tab.SNATBlocks(a)
				case 2:
					tab.RefreshConn(k, now)
					tab.RefreshNAT(k, now)
				case 3:
					if w == 0 {
						tab.Expire(now)
						_ = tab.AddSNATBlock(a, flowstate.BlockStart(i%flowstate.NumBlocks()))
					} else if w == 1 {
						tab.RemoveSNATBlock(a, flowstate.BlockStart(i%flowstate.NumBlocks()))
						_ = tab.Dump()
						_ = tab.Stats()
					}
				}
			}
		})
	}
	wg.Wait()
	d := tab.Dump()
	if len(d.Conns) > 256+connShards || len(d.NATs) > 256 {
		t.Errorf("tables hold %d conns, %d nats; bound 256", len(d.Conns), len(d.NATs))
	}
	for _, e := range d.Conns {
		if tab.ConnState(e.Key) != topology.CTEstablished {
			t.Fatalf("dumped conn %v is not found", e.Key)
		}
	}
	for _, e := range d.NATs {
		if n, ok := tab.NATByReply(e.NAT.Xlat.Reverse()); !ok || n != e.NAT {
			t.Fatalf("dumped binding %v is not found by its reply key", e.NAT)
		}
	}
	s := tab.Stats()
	if int(s.ConnAdds-s.ConnExpired-s.ConnEvictions) != s.Conns ||
		int(s.NATAdds-s.NATExpired-s.NATEvictions-s.NATReplaced) != s.NATs {
		t.Errorf("Stats do not add up: %+v", s)
	}
}

func TestShardSymmetric(t *testing.T) {
	var counts [connShards]int
	for i := range 1 << 12 {
		k := key(uint32(i%5), 6, "10.0.0.1:1000", "10.1.0.2:80")
		k.Src[15], k.Dst[14] = byte(i), byte(i>>4)
		k.SrcPort += uint16(i * 7)
		r := k.Reverse()
		if shardOf(&k) != shardOf(&r) {
			t.Fatalf("shardOf(%v) = %d, shardOf(reverse) = %d", k, shardOf(&k), shardOf(&r))
		}
		counts[shardOf(&k)]++
	}
	for s, c := range counts {
		if c < (1<<12)/connShards/2 || c > (1<<12)/connShards*2 {
			t.Errorf("shard %d holds %d of %d keys: %v", s, c, 1<<12, counts)
		}
	}
}

// TestExpireInBatches: a mass expiry larger than expireBatch per lock
// removes exactly the idle entries.
func TestExpireInBatches(t *testing.T) {
	tab := newT(t, Config{ConnIdle: 100, NATIdle: 100, MaxEntries: 1 << 16})
	const conns, nats = 40000, 3000 // ~1250 expiring a conntrack shard
	for i := range conns {
		k := key(1, 6, "10.0.0.1:1", "10.0.0.2:80")
		k.Src[14], k.Src[15], k.SrcPort = byte(i>>8), byte(i), uint16(i)
		tab.AddConn(k, int64(i%2)) // odd ones stay one more tick
		if i < nats {
			x := k
			x.Src = netip.MustParseAddr("203.0.113.1").As16()
			tab.AddNAT(flowstate.NAT{Orig: k, Xlat: x}, int64(i%2))
		}
	}
	if got, want := tab.Expire(100), conns/2+nats/2; got != want {
		t.Errorf("Expire(100) = %d, want %d", got, want)
	}
	if c, n := tab.Len(); c != conns/2 || n != nats/2 {
		t.Errorf("Len() = %d, %d; want %d, %d", c, n, conns/2, nats/2)
	}
	if got, want := tab.Expire(101), conns/2+nats/2; got != want {
		t.Errorf("Expire(101) = %d, want %d", got, want)
	}
	if s := tab.Stats(); s.Conns+s.NATs != 0 || s.ConnExpired != conns || s.NATExpired != nats {
		t.Errorf("Stats = %+v", s)
	}
}
