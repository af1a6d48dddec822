// Package store is hivenet's etcd schema and access layer: typed keys
// (keys.go), an optimistic read-modify-write transaction helper for the API
// server (Update), the topology read and watch used by agents
// (LoadTopology, WatchTopology), host registration under a lease with the
// runtime state attached to it (RegisterHost, Session), and an embedded
// single-node etcd (StartEmbedded) for one-machine deployments and tests.
//
// Values are JSON. Everything an API write implies is committed in one
// etcd transaction guarded by the revisions of every key it read, so
// concurrent writers never lose an update: a conflicting attempt is rolled
// back and the whole read-modify-write is retried.
//
// Usage (agent side):
//
//	st, err := store.Open(ctx, store.Config{Endpoints: []string{"http://10.0.0.1:2379"}})
//	sess, err := st.RegisterHost(ctx, host, 10*time.Second)
//	snap, rev, err := st.LoadTopology(ctx)
//	for b := range st.WatchTopology(ctx, rev) {
//		if errors.Is(b.Err, store.ErrCompacted) { /* reload */ }
//		snap, tags = snap.Apply(b.Changes)
//	}
//
// Tests start an embedded etcd with storetest.New(t).
package store
