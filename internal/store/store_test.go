package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
)

func TestEmbeddedConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     store.EmbeddedConfig
		wantErr bool
	}{
		{name: "defaults", cfg: store.EmbeddedConfig{Dir: "/tmp/x"}},
		{name: "no dir", cfg: store.EmbeddedConfig{}, wantErr: true},
		{name: "bad scheme", cfg: store.EmbeddedConfig{Dir: "/tmp/x", ClientURL: "ftp://1.2.3.4:5"}, wantErr: true},
		{name: "no port", cfg: store.EmbeddedConfig{Dir: "/tmp/x", ClientURL: "http://1.2.3.4"}, wantErr: true},
		{name: "bad peer", cfg: store.EmbeddedConfig{Dir: "/tmp/x", PeerURL: "http://:x"}, wantErr: true},
		{name: "explicit", cfg: store.EmbeddedConfig{Dir: "/tmp/x", ClientURL: "http://10.250.0.254:2379", PeerURL: "http://127.0.0.1:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate(%+v) = %v, wantErr %v", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     store.Config
		wantErr bool
	}{
		{name: "ok", cfg: store.Config{Endpoints: []string{"http://127.0.0.1:2379"}}},
		{name: "none", cfg: store.Config{}, wantErr: true},
		{name: "garbage", cfg: store.Config{Endpoints: []string{"127.0.0.1"}}, wantErr: true},
		{name: "negative timeout", cfg: store.Config{Endpoints: []string{"http://a:1"}, DialTimeout: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate(%+v) = %v, wantErr %v", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx := context.Background()
	_, err := store.Open(ctx, store.Config{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("Open(unreachable) = nil error")
	}
}

func putTopo(t *testing.T, st *store.Store, kind topology.Kind, id string, v any) {
	t.Helper()
	_, err := st.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutJSON(store.TopoKey(kind, id), v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoadAndWatchTopology(t *testing.T) {
	st := storetest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	putTopo(t, st, topology.KindBridge, "b1", topology.Bridge{ID: "b1", FloodKey: 7, AdminUp: true})
	putTopo(t, st, topology.KindPort, "p1", topology.Port{ID: "p1", BridgeID: "b1", TunnelKey: 8})
	// API and index keys are not topology and must be ignored.
	if _, err := st.Client().Put(ctx, store.APIKey("networks", "b1"), "{}"); err != nil {
		t.Fatal(err)
	}
	// A corrupt value is skipped, not fatal.
	if _, err := st.Client().Put(ctx, store.TopoKey(topology.KindPort, "bad"), "{not json"); err != nil {
		t.Fatal(err)
	}

	snap, rev, err := st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Bridge("b1") == nil || snap.Port("p1") == nil || snap.PortByTunnelKey(8) == nil {
		t.Fatalf("LoadTopology: missing objects (bridge %v, port %v)", snap.Bridge("b1"), snap.Port("p1"))
	}
	if snap.Port("bad") != nil {
		t.Errorf("LoadTopology: corrupt port decoded")
	}
	if snap.Rev != rev || rev == 0 {
		t.Errorf("LoadTopology rev = %d, snapshot rev %d", rev, snap.Rev)
	}

	ch := st.WatchTopology(ctx, rev)
	putTopo(t, st, topology.KindPort, "p2", topology.Port{ID: "p2", BridgeID: "b1", TunnelKey: 9})
	if _, err := st.Client().Put(ctx, store.APIKey("ports", "p2"), "{}"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().Delete(ctx, store.TopoKey(topology.KindPort, "p1")); err != nil {
		t.Fatal(err)
	}

	var got []topology.Change
	var lastRev int64
	for len(got) < 2 {
		select {
		case b := <-ch:
			if b.Err != nil {
				t.Fatalf("watch: %v", b.Err)
			}
			if b.Rev <= lastRev {
				t.Errorf("batch rev %d not increasing (prev %d)", b.Rev, lastRev)
			}
			lastRev = b.Rev
			got = append(got, b.Changes...)
		case <-time.After(10 * time.Second):
			t.Fatalf("watch: timeout, got %d changes", len(got))
		}
	}
	if got[0].Kind != topology.KindPort || got[0].ID != "p2" || got[0].Port == nil || got[0].Port.TunnelKey != 9 {
		t.Errorf("first change = %+v, want put port p2", got[0])
	}
	if got[1].Kind != topology.KindPort || got[1].ID != "p1" || got[1].Port != nil {
		t.Errorf("second change = %+v, want delete port p1", got[1])
	}
	snap, _ = snap.Apply(got)
	if snap.Port("p1") != nil || snap.Port("p2") == nil {
		t.Errorf("snapshot after watch: p1 %v p2 %v", snap.Port("p1"), snap.Port("p2"))
	}
}

func TestWatchCompacted(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	putTopo(t, st, topology.KindBridge, "b1", topology.Bridge{ID: "b1"})
	putTopo(t, st, topology.KindBridge, "b2", topology.Bridge{ID: "b2"})
	_, rev, err := st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	select {
	case b, ok := <-st.WatchTopology(ctx, 1):
		if !ok || !errors.Is(b.Err, store.ErrCompacted) {
			t.Fatalf("watch from compacted rev: batch %+v (ok %v), want ErrCompacted", b, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no batch for compacted watch")
	}
}

func TestRegisterHost(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	h := topology.Host{Name: "h1", TunnelIP: netip.MustParseAddr("10.0.0.1"), TunnelPort: 4789}

	if _, err := st.RegisterHost(ctx, topology.Host{Name: "x"}, time.Second); err == nil {
		t.Error("RegisterHost without tunnel IP: nil error")
	}

	sess, err := st.RegisterHost(ctx, h, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RegisterHost(ctx, h, 2*time.Second); !errors.Is(err, store.ErrHostRegistered) {
		t.Fatalf("second RegisterHost(h1) = %v, want ErrHostRegistered", err)
	}
	if err := sess.PutBinding(ctx, topology.PortBinding{PortID: "p1", Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	mac := topology.MACEntry{BridgeID: "b1", MAC: topology.MAC{0xfa, 0x16, 0x3e, 1, 2, 3}, PortID: "p1"}
	if err := sess.PutMAC(ctx, mac); err != nil {
		t.Fatal(err)
	}
	if err := sess.PutMAC(ctx, topology.MACEntry{MAC: mac.MAC}); err == nil {
		t.Error("PutMAC without bridge: nil error")
	}

	// Outlive the TTL: keep-alive must hold everything.
	time.Sleep(3 * time.Second)
	snap, _, err := st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Host("h1") == nil || snap.Binding("p1") == nil || snap.LearnedMAC("b1", mac.MAC) == nil {
		t.Fatalf("after TTL: host %v binding %v mac %v", snap.Host("h1"), snap.Binding("p1"), snap.LearnedMAC("b1", mac.MAC))
	}
	hosts, err := st.ListHosts(ctx)
	if err != nil || len(hosts) != 1 || hosts[0] != h {
		t.Errorf("ListHosts = %v, %v; want [%v]", hosts, err, h)
	}
	if err := sess.DeleteMAC(ctx, mac.ID()); err != nil {
		t.Fatal(err)
	}
	snap, _, _ = st.LoadTopology(ctx)
	if snap.LearnedMAC("b1", mac.MAC) != nil {
		t.Error("DeleteMAC: entry still there")
	}
	if err := sess.PutMAC(ctx, mac); err != nil {
		t.Fatal(err)
	}

	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if sess.Err() == nil || errors.Is(sess.Err(), store.ErrSessionLost) {
		t.Errorf("Err() after Close = %v, want closed (not lost)", sess.Err())
	}
	select {
	case <-sess.Done():
		t.Error("Done() closed by Close: only a lost lease closes it")
	default:
	}
	snap, _, _ = st.LoadTopology(ctx)
	if snap.Host("h1") != nil || snap.Binding("p1") != nil || snap.LearnedMAC("b1", mac.MAC) != nil {
		t.Errorf("after Close: host %v binding %v mac %v still there", snap.Host("h1"), snap.Binding("p1"), snap.LearnedMAC("b1", mac.MAC))
	}
	// The name is free again.
	sess2, err := st.RegisterHost(ctx, h, time.Second)
	if err != nil {
		t.Fatalf("RegisterHost after Close: %v", err)
	}
	sess2.Close()
}

func TestSessionLostOnRevoke(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	sess, err := st.RegisterHost(ctx, topology.Host{Name: "h1", TunnelIP: netip.MustParseAddr("10.0.0.1")}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := st.Client().Revoke(ctx, sess.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sess.Done():
		if !errors.Is(sess.Err(), store.ErrSessionLost) {
			t.Errorf("Err() = %v, want ErrSessionLost", sess.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("session not done after its lease was revoked")
	}
	if err := sess.Close(); err != nil {
		t.Errorf("Close of a lost session = %v, want nil", err)
	}
}

// Concurrent read-modify-writes of one key never lose an update.
func TestUpdateCounterNoLostUpdate(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	const n = 20
	key := store.PrefixSeq + "test"
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Update(ctx, func(tx *store.Tx) error {
				b, err := tx.Get(key)
				if err != nil {
					return err
				}
				v := 0
				if b != nil {
					v, _ = strconv.Atoi(string(b))
				}
				tx.Put(key, []byte(strconv.Itoa(v+1)))
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := st.Client().Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Kvs[0].Value); got != strconv.Itoa(n) {
		t.Errorf("counter = %s after %d concurrent increments", got, n)
	}
	if s := st.Stats(); s.Commits != n {
		t.Errorf("Stats() = %+v, want %d commits", s, n)
	}
}

var errTaken = errors.New("taken")

// Concurrent Creates of one key: exactly one wins, the others see it taken.
func TestUpdateCreateUnique(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	const n = 10
	key := store.PrefixIndex + "test/unique"
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Update(ctx, func(tx *store.Tx) error {
				// Peek (unguarded) + Create: the Create guard alone decides.
				kvs, err := tx.Peek(key)
				if err != nil {
					return err
				}
				if len(kvs) > 0 {
					return errTaken
				}
				tx.Create(key, []byte(strconv.Itoa(i)))
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errTaken):
			t.Errorf("Update = %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers created %s, want exactly 1", won, key)
	}
}

// A List guard makes a writer that saw an empty prefix conflict with a
// concurrent creation under it.
func TestUpdateListGuard(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	prefix := store.PrefixIndex + "children/"
	attempts := 0
	_, err := st.Update(ctx, func(tx *store.Tx) error {
		attempts++
		kvs, err := tx.List(prefix)
		if err != nil {
			return err
		}
		if attempts == 1 {
			// A concurrent writer adds a child after our read.
			if _, err := st.Client().Put(ctx, prefix+"c1", "x"); err != nil {
				return err
			}
		}
		tx.Put(store.PrefixIndex+"count", []byte(strconv.Itoa(len(kvs))))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := st.Client().Get(ctx, store.PrefixIndex+"count")
	if attempts != 2 || string(resp.Kvs[0].Value) != "1" {
		t.Errorf("attempts = %d, count = %s; want 2 attempts and count 1", attempts, resp.Kvs[0].Value)
	}
}

// An error from the callback writes nothing.
func TestUpdateAbortWritesNothing(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	boom := errors.New("boom")
	_, err := st.Update(ctx, func(tx *store.Tx) error {
		tx.Put(store.PrefixAPI+"networks/x", []byte("{}"))
		return fmt.Errorf("validating: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	resp, err := st.Client().Get(ctx, store.Root, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Errorf("%d keys stored after an aborted update", resp.Count)
	}
}

func TestView(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	if _, err := st.Client().Put(ctx, store.PrefixAPI+"a", "1"); err != nil {
		t.Fatal(err)
	}
	var got []byte
	rev, err := st.View(ctx, func(tx *store.Tx) (err error) {
		got, err = tx.Get(store.PrefixAPI + "a")
		return err
	})
	if err != nil || string(got) != "1" || rev == 0 {
		t.Errorf("View = %q, rev %d, %v", got, rev, err)
	}
	_, err = st.View(ctx, func(tx *store.Tx) error {
		tx.Put(store.PrefixAPI+"b", []byte("2"))
		return nil
	})
	if !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("View with a write = %v, want ErrReadOnly", err)
	}
	if resp, _ := st.Client().Get(ctx, store.PrefixAPI+"b"); len(resp.Kvs) != 0 {
		t.Error("View wrote")
	}
}

// The Store outlives the context given to Open.
func TestOpenContextOnlyBoundsOpen(t *testing.T) {
	_, endpoints := storetest.NewWithEndpoints(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cancel()
	sess, err := st.RegisterHost(context.Background(), topology.Host{Name: "h", TunnelIP: netip.MustParseAddr("10.0.0.1")}, time.Second)
	if err != nil {
		t.Fatalf("RegisterHost after Open's ctx ended: %v", err)
	}
	defer sess.Close()
	time.Sleep(2500 * time.Millisecond) // past the TTL: keep-alive must still run
	if hosts, err := st.ListHosts(context.Background()); err != nil || len(hosts) != 1 {
		t.Errorf("ListHosts = %v, %v; want the host kept alive", hosts, err)
	}
}

// Prefetched keys are guarded like Gets: a concurrent change to one of
// them makes the attempt retry, and the retry sees the new value.
func TestPrefetchGuards(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	a, b := store.PrefixAPI+"a", store.PrefixAPI+"b"
	if _, err := st.Client().Put(ctx, a, "1"); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	var seen []string
	_, err := st.Update(ctx, func(tx *store.Tx) error {
		attempts++
		if err := tx.Prefetch(a, b, a); err != nil {
			return err
		}
		if attempts == 1 {
			if _, err := st.Client().Put(ctx, a, "2"); err != nil {
				return err
			}
		}
		va, _ := tx.Get(a)
		vb, _ := tx.Get(b)
		seen = append(seen, fmt.Sprintf("%s/%v", va, vb == nil))
		tx.Put(store.PrefixAPI+"c", va)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1/true", "2/true"}; attempts != 2 || !slices.Equal(seen, want) {
		t.Errorf("attempts %d saw %v, want 2 attempts seeing %v", attempts, seen, want)
	}
	resp, _ := st.Client().Get(ctx, store.PrefixAPI+"c")
	if string(resp.Kvs[0].Value) != "2" {
		t.Errorf("committed %s, want 2", resp.Kvs[0].Value)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A watch survives an etcd restart: it resumes from the last revision it
// delivered, with no gap and no error for the caller.
func TestWatchSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := store.EmbeddedConfig{
		Dir:       dir,
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	}
	e, err := store.StartEmbedded(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	st, err := store.Open(ctx, store.Config{Endpoints: e.Endpoints(), Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, rev, err := st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch := st.WatchTopology(ctx, rev)
	next := func() topology.Change {
		t.Helper()
		select {
		case b := <-ch:
			if b.Err != nil || len(b.Changes) != 1 {
				t.Fatalf("batch %+v", b)
			}
			return b.Changes[0]
		case <-time.After(30 * time.Second):
			t.Fatal("no batch")
		}
		return topology.Change{}
	}
	putTopo(t, st, topology.KindBridge, "b1", topology.Bridge{ID: "b1"})
	if c := next(); c.ID != "b1" {
		t.Fatalf("first change %+v", c)
	}

	e.Close()
	if e, err = store.StartEmbedded(ctx, cfg); err != nil {
		t.Fatalf("restart: %v", err)
	}
	putTopo(t, st, topology.KindBridge, "b2", topology.Bridge{ID: "b2"})
	if c := next(); c.ID != "b2" {
		t.Fatalf("change after restart %+v, want b2", c)
	}
}
