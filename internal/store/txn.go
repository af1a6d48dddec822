package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrTooManyConflicts is returned by Update when every attempt lost to a
// concurrent writer. Callers may retry later.
var ErrTooManyConflicts = errors.New("store: too many conflicting writers")

// MaxAttempts bounds how many times Update runs a read-modify-write.
const MaxAttempts = 100

// KV is a key, its value and the revision that last modified it.
type KV struct {
	Key         string
	Value       []byte
	ModRevision int64
}

// Tx is one attempt of a read-modify-write transaction. Reads see one
// consistent revision (the revision of the first read). Writes are
// buffered and committed by Update in a single etcd transaction that only
// succeeds if nothing the attempt read has changed since:
//
//   - every key read with Get is compared on its ModRevision (0 when it was
//     absent, so a key created meanwhile is a conflict too);
//   - every prefix read with List must have no key modified or created
//     after the read revision (deletions under it are not detected);
//   - every key written with Create must still not exist.
//
// A Tx is used by one goroutine and only inside the Update callback.
type Tx struct {
	ctx    context.Context
	kv     clientv3.KV
	rev    int64
	keys   map[string]int64
	prefix map[string]bool
	create map[string]bool
	ops    map[string]clientv3.Op
	order  []string
	// cache holds the values of keys already read (nil: absent); reads
	// are at one revision, so a second Get needs no round trip.
	cache map[string][]byte
}

func (tx *Tx) get(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if tx.rev != 0 {
		opts = append(opts, clientv3.WithRev(tx.rev))
	}
	resp, err := tx.kv.Get(tx.ctx, key, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", key, err)
	}
	if tx.rev == 0 {
		tx.rev = resp.Header.Revision
	}
	return resp, nil
}

// Rev returns the revision reads see (0 before the first read).
func (tx *Tx) Rev() int64 { return tx.rev }

// Get returns the value of key, or nil if it does not exist, and guards
// the commit on it being unchanged. The caller must not modify the value.
func (tx *Tx) Get(key string) ([]byte, error) {
	if v, ok := tx.cache[key]; ok {
		return v, nil
	}
	resp, err := tx.get(key)
	if err != nil {
		return nil, err
	}
	tx.record(key, resp.Kvs)
	return tx.cache[key], nil
}

func (tx *Tx) record(key string, kvs []*mvccpb.KeyValue) {
	if len(kvs) == 0 {
		tx.keys[key] = 0
		tx.cache[key] = nil
		return
	}
	tx.keys[key] = kvs[0].ModRevision
	tx.cache[key] = kvs[0].Value
}

// Prefetch reads keys in one round trip (guarded like Get); later Gets of
// them are answered from memory.
func (tx *Tx) Prefetch(keys ...string) error {
	var ops []clientv3.Op
	var want []string
	for _, k := range keys {
		if _, ok := tx.cache[k]; ok || slices.Contains(want, k) {
			continue
		}
		var opts []clientv3.OpOption
		if tx.rev != 0 {
			opts = append(opts, clientv3.WithRev(tx.rev))
		}
		ops = append(ops, clientv3.OpGet(k, opts...))
		want = append(want, k)
	}
	if len(ops) == 0 {
		return nil
	}
	resp, err := tx.kv.Txn(tx.ctx).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("store: reading %d keys: %w", len(ops), err)
	}
	if tx.rev == 0 {
		tx.rev = resp.Header.Revision
	}
	for i, r := range resp.Responses {
		tx.record(want[i], r.GetResponseRange().Kvs)
	}
	return nil
}

// GetJSON reads key into v (guarded like Get). found is false if absent.
func (tx *Tx) GetJSON(key string, v any) (found bool, err error) {
	b, err := tx.Get(key)
	if err != nil || b == nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("store: decoding %s: %w", key, err)
	}
	return true, nil
}

// List returns the keys under prefix, sorted by key, and guards the commit
// on no key under prefix being created or modified meanwhile.
func (tx *Tx) List(prefix string) ([]KV, error) {
	kvs, err := tx.Peek(prefix)
	if err != nil {
		return nil, err
	}
	tx.prefix[prefix] = true
	return kvs, nil
}

// Peek returns the keys under prefix like List, without any guard: use it
// for a scan whose result is re-checked by guarded Gets or Creates.
func (tx *Tx) Peek(prefix string) ([]KV, error) {
	resp, err := tx.get(prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = KV{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision}
	}
	return out, nil
}

func (tx *Tx) op(key string, o clientv3.Op) {
	if _, ok := tx.ops[key]; !ok {
		tx.order = append(tx.order, key)
	}
	tx.ops[key] = o
}

// Put buffers a write of key.
func (tx *Tx) Put(key string, value []byte) { tx.op(key, clientv3.OpPut(key, string(value))) }

// PutJSON buffers a write of v, encoded as JSON, to key.
func (tx *Tx) PutJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encoding %s: %w", key, err)
	}
	tx.Put(key, b)
	return nil
}

// Create buffers a write of key that must not exist at commit time (an
// index or uniqueness key). If it exists the attempt conflicts and is
// retried; check with Get first to report "already taken" to the user.
func (tx *Tx) Create(key string, value []byte) {
	tx.create[key] = true
	tx.Put(key, value)
}

// Delete buffers a deletion of key.
func (tx *Tx) Delete(key string) { tx.op(key, clientv3.OpDelete(key)) }

func (tx *Tx) cmps() []clientv3.Cmp {
	var c []clientv3.Cmp
	for k, rev := range tx.keys {
		c = append(c, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
	}
	for p := range tx.prefix {
		c = append(c, clientv3.Compare(clientv3.ModRevision(p), "<", tx.rev+1).WithPrefix())
	}
	for k := range tx.create {
		if _, read := tx.keys[k]; read && tx.keys[k] == 0 {
			continue // already guarded as absent
		}
		c = append(c, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
	}
	return c
}

// ErrReadOnly is returned by View when its callback buffered a write.
var ErrReadOnly = errors.New("store: write in a read-only transaction")

// View runs fn once on a consistent snapshot (every read at one revision)
// and returns that revision. fn must not write.
func (s *Store) View(ctx context.Context, fn func(tx *Tx) error) (int64, error) {
	tx := newTx(ctx, s)
	if err := fn(tx); err != nil {
		return 0, err
	}
	if len(tx.order) > 0 {
		return 0, ErrReadOnly
	}
	return tx.rev, nil
}

func newTx(ctx context.Context, s *Store) *Tx {
	return &Tx{
		ctx: ctx, kv: s.c.KV,
		keys: map[string]int64{}, prefix: map[string]bool{}, create: map[string]bool{},
		ops: map[string]clientv3.Op{}, cache: map[string][]byte{},
	}
}

// Update runs fn in a read-modify-write loop: fn reads through tx and
// buffers writes; Update commits them in one etcd transaction guarded by
// everything fn read. On a conflict the attempt is discarded and fn runs
// again on fresh data, up to MaxAttempts times. An error from fn aborts
// without writing and is returned as is. Update returns the revision of
// the commit (or of the reads, if fn buffered no write).
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) (int64, error) {
	backoff := time.Millisecond
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		tx := newTx(ctx, s)
		if err := fn(tx); err != nil {
			return 0, err
		}
		if len(tx.order) == 0 {
			return tx.rev, nil
		}
		ops := make([]clientv3.Op, 0, len(tx.order))
		for _, k := range tx.order {
			ops = append(ops, tx.ops[k])
		}
		resp, err := s.c.Txn(ctx).If(tx.cmps()...).Then(ops...).Commit()
		if err != nil {
			return 0, fmt.Errorf("store: committing: %w", err)
		}
		if resp.Succeeded {
			s.commits.Add(1)
			return resp.Header.Revision, nil
		}
		s.conflicts.Add(1)
		// Lost to a concurrent writer: back off with jitter and redo.
		d := backoff/2 + rand.N(backoff)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if backoff < 32*time.Millisecond {
			backoff *= 2
		}
	}
	return 0, ErrTooManyConflicts
}
