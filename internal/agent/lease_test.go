package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"hivenet/internal/datapath/fake"
	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
)

// leaseTTL is long next to how fast a restart must register again: a
// restart that waits for the old lease to expire fails the test.
const leaseTTL = 10 * time.Second

var snatAddr = netip.MustParseAddr("203.0.113.7")

// runAgent runs an agent of host h1 (port p1 on tapp1) until the returned
// stop is called; stop returns Run's error.
func runAgent(t *testing.T, st *store.Store, stateDir string, keep bool) (a *Agent, stop func() error) {
	t.Helper()
	ifs := &ifaces{names: map[string]int{"tapp1": 7}}
	a, err := New(Config{
		Host: "h1", TunnelIP: netip.MustParseAddr("10.250.0.1"), Store: st, Datapath: fake.New(fake.Config{}),
		Logger:         slog.New(slog.NewTextHandler(t.Output(), nil)),
		InterfaceIndex: ifs.lookup, Resync: 50 * time.Millisecond, HostTTL: leaseTTL,
		StateDir: stateDir, KeepForwarding: keep,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	return a, stop
}

// holder returns the lease of key (0: absent).
func holder(t *testing.T, st *store.Store, key string) int64 {
	t.Helper()
	r, err := st.Client().Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) == 0 {
		return 0
	}
	return r.Kvs[0].Lease
}

// A restarted agent takes over its previous lease when it is alive, so it
// is registered at once and the host's state never vanishes; otherwise it
// registers under a new lease (promptly: nothing holds the name).
func TestRestartTakesOverLease(t *testing.T) {
	hostKey := store.TopoKey(topology.KindHost, "h1")
	bindKey := store.TopoKey(topology.KindPortBinding, "p1")
	tests := []struct {
		name string
		// before leaves the first run's traces in dir and returns its
		// lease (0: none left alive).
		before     func(t *testing.T, st *store.Store, dir string) int64
		wantResume bool
		// wantSNATBlocks is how many SNAT blocks of snatAddr the restarted
		// agent holds (those under a lease it took over).
		wantSNATBlocks int
	}{
		{
			name: "killed: lease alive",
			before: func(t *testing.T, st *store.Store, dir string) int64 {
				// What kill -9 leaves: the lease alive (no keep-alive any
				// more), the state under it, the lease file.
				sess, err := st.RegisterHost(context.Background(), topology.Host{Name: "h1", TunnelIP: netip.MustParseAddr("10.250.0.1")}, leaseTTL)
				if err != nil {
					t.Fatal(err)
				}
				if err := sess.PutBinding(context.Background(), topology.PortBinding{PortID: "p1", Host: "h1"}); err != nil {
					t.Fatal(err)
				}
				if err := sess.LeaseSNATBlock(context.Background(), snatAddr, 2048); err != nil {
					t.Fatal(err)
				}
				sess.Release()
				mustWriteLease(t, dir, "h1", int64(sess.Lease()))
				return int64(sess.Lease())
			},
			wantResume: true, wantSNATBlocks: 1,
		},
		{
			name: "stopped with KeepForwarding",
			before: func(t *testing.T, st *store.Store, dir string) int64 {
				_, stop := runAgent(t, st, dir, true)
				waitFor(t, "p1 bound", func() bool { return holder(t, st, bindKey) != 0 })
				id := holder(t, st, hostKey)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				if holder(t, st, bindKey) != id || holder(t, st, hostKey) != id {
					t.Fatal("a stop with KeepForwarding withdrew the binding or the host")
				}
				return id
			},
			wantResume: true,
		},
		{
			name: "stopped without KeepForwarding",
			before: func(t *testing.T, st *store.Store, dir string) int64 {
				_, stop := runAgent(t, st, dir, false)
				waitFor(t, "p1 bound", func() bool { return holder(t, st, bindKey) != 0 })
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				if holder(t, st, hostKey) != 0 {
					t.Fatal("a clean stop left the host registered")
				}
				if _, err := os.Stat(filepath.Join(dir, "lease")); !os.IsNotExist(err) {
					t.Fatalf("a clean stop left the lease file: %v", err)
				}
				return 0
			},
		},
		{
			name: "lease file names a revoked lease",
			before: func(t *testing.T, st *store.Store, dir string) int64 {
				g, err := st.Client().Grant(context.Background(), 30)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.Client().Revoke(context.Background(), g.ID); err != nil {
					t.Fatal(err)
				}
				mustWriteLease(t, dir, "h1", int64(g.ID))
				return 0
			},
		},
		{
			name: "lease file corrupt",
			before: func(t *testing.T, st *store.Store, dir string) int64 {
				if err := os.WriteFile(filepath.Join(dir, "lease"), []byte("{not json"), 0o600); err != nil {
					t.Fatal(err)
				}
				return 0
			},
		},
		{
			name: "lease file of another host",
			before: func(t *testing.T, st *store.Store, dir string) int64 {
				sess, err := st.RegisterHost(context.Background(), topology.Host{Name: "h9", TunnelIP: netip.MustParseAddr("10.250.0.9")}, leaseTTL)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sess.Close() })
				mustWriteLease(t, dir, "h9", int64(sess.Lease()))
				return 0
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := storetest.New(t)
			put(t, st, topology.KindBridge, "b1", topology.Bridge{ID: "b1", Name: "net", AdminUp: true, FloodKey: 100, MTU: 1450})
			put(t, st, topology.KindPort, "p1", topology.Port{ID: "p1", BridgeID: "b1", MAC: mac1, AdminUp: true, HostID: "h1", InterfaceName: "tapp1", TunnelKey: 101})
			dir := t.TempDir()
			old := tt.before(t, st, dir)

			// Watch the binding from here on: a resume must never delete it.
			wctx, wcancel := context.WithCancel(context.Background())
			defer wcancel()
			rev := currentRev(t, st)
			w := st.Client().Watch(wctx, bindKey, clientv3.WithRev(rev+1))

			start := time.Now()
			a, stop := runAgent(t, st, dir, false)
			waitFor(t, "h1 registered and p1 bound", func() bool {
				return holder(t, st, hostKey) != 0 && holder(t, st, hostKey) == holder(t, st, bindKey)
			})
			took := time.Since(start)
			if took > leaseTTL/2 {
				t.Errorf("registered %v after start; want well under the lease TTL %v", took, leaseTTL)
			}
			id := holder(t, st, hostKey)
			if resumed := id == old; resumed != tt.wantResume {
				t.Errorf("lease %x, previous %x: resumed=%v, want %v", id, old, resumed, tt.wantResume)
			}
			if got, err := readLease(filepath.Join(dir, "lease"), "h1"); err != nil || got != id {
				t.Errorf("lease file = %x, %v; want %x", got, err, id)
			}
			if tt.wantResume {
				time.Sleep(200 * time.Millisecond)
				wcancel()
				for r := range w {
					for _, ev := range r.Events {
						if ev.Type == clientv3.EventTypeDelete {
							t.Errorf("binding of p1 deleted across the restart (rev %d)", ev.Kv.ModRevision)
						}
					}
				}
			}
			t.Logf("registered %v after start (resumed=%v)", took.Round(time.Millisecond), id == old)
			if err := stop(); err != nil {
				t.Error(err)
			}
			// Blocks held under a resumed lease are the agent's again.
			if got, want := len(a.fs.SNATBlocks(snatAddr)), tt.wantSNATBlocks; got != want {
				t.Errorf("SNAT blocks of %s adopted: %d, want %d", snatAddr, got, want)
			}
		})
	}
}

func mustWriteLease(t *testing.T, dir, host string, id int64) {
	t.Helper()
	if err := writeLease(filepath.Join(dir, "lease"), host, id); err != nil {
		t.Fatal(err)
	}
}

func currentRev(t *testing.T, st *store.Store) int64 {
	t.Helper()
	r, err := st.Client().Get(context.Background(), "\x00")
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}
