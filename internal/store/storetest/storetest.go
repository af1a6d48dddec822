// Package storetest starts a throwaway embedded etcd for tests.
package storetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"hivenet/internal/store"
)

// New starts a single-node etcd on 127.0.0.1 with free ports in a
// temporary directory, without fsync, and returns a Store connected to it.
// Both are closed with t.Cleanup. Logs go to t.Output().
func New(t testing.TB) *store.Store {
	t.Helper()
	st, _ := NewWithEndpoints(t)
	return st
}

// NewWithEndpoints is New that also returns the client URLs, for tests
// that start more clients (agents) against the same etcd.
func NewWithEndpoints(t testing.TB) (*store.Store, []string) {
	t.Helper()
	st, e := NewEmbedded(t)
	return st, e.Endpoints()
}

// NewEmbedded is New that also returns the server, for tests that stop
// etcd under a running client (Close is safe to call again at cleanup).
func NewEmbedded(t testing.TB) (*store.Store, *store.Embedded) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{
		Dir:           t.TempDir(),
		ClientURL:     "http://127.0.0.1:0",
		PeerURL:       "http://127.0.0.1:0",
		UnsafeNoFsync: true,
		Logger:        log,
	})
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(e.Close)
	st, err := store.Open(ctx, store.Config{Endpoints: e.Endpoints(), Logger: log})
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st, e
}
