package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"

	"hivenet/internal/topology"
)

// ErrCompacted is carried by a WatchBatch when the requested revision has
// been compacted away: the caller must reload with LoadTopology.
var ErrCompacted = errors.New("store: revision compacted")

// Config says how to reach etcd.
type Config struct {
	// Endpoints are client URLs, e.g. "http://10.0.0.1:2379". Required.
	Endpoints []string
	// DialTimeout bounds Open's first connection. Default 5s.
	DialTimeout time.Duration
	// Logger receives the client's warnings. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("store: no etcd endpoints")
	}
	for _, e := range c.Endpoints {
		if _, err := parseURL(e); err != nil {
			return fmt.Errorf("store: endpoint: %w", err)
		}
	}
	if c.DialTimeout < 0 {
		return errors.New("store: DialTimeout is negative")
	}
	return nil
}

// Store is a connection to etcd with hivenet's schema on top. Safe for
// concurrent use.
type Store struct {
	c   *clientv3.Client
	log *slog.Logger

	commits, conflicts atomic.Uint64
}

// TxStats counts Update outcomes since Open.
type TxStats struct {
	Commits   uint64 // transactions committed
	Conflicts uint64 // attempts rolled back by a concurrent writer and retried
}

// Stats returns the transaction counters.
func (s *Store) Stats() TxStats {
	return TxStats{Commits: s.commits.Load(), Conflicts: s.conflicts.Load()}
}

// Open connects to etcd and checks that it answers within DialTimeout (or
// before ctx ends). The connection outlives ctx: call Close.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		// No Context: ctx only bounds Open; the client lives until Close.
		Logger: newZapLogger(cfg.Logger.With("component", "etcd-client"), zapcore.ErrorLevel, new(atomic.Bool)),
	})
	if err != nil {
		return nil, fmt.Errorf("store: connecting to %v: %w", cfg.Endpoints, err)
	}
	// clientv3.New does not wait for a connection; make one request so a
	// wrong endpoint fails here and not on first use.
	cctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := c.Get(cctx, Root+"probe", clientv3.WithCountOnly()); err != nil {
		c.Close()
		return nil, fmt.Errorf("store: etcd at %v not answering: %w", cfg.Endpoints, err)
	}
	return &Store{c: c, log: cfg.Logger}, nil
}

// Client returns the underlying etcd client.
func (s *Store) Client() *clientv3.Client { return s.c }

// Close closes the connection. Sessions still open lose their lease when
// it expires.
func (s *Store) Close() error { return s.c.Close() }

// LoadTopology reads every topology and state object in one transaction
// (one revision) and applies them to topology.Empty(). It returns the
// snapshot and the revision to pass to WatchTopology.
func (s *Store) LoadTopology(ctx context.Context) (*topology.Snapshot, int64, error) {
	resp, err := s.c.Txn(ctx).Then(
		clientv3.OpGet(PrefixTopo, clientv3.WithPrefix()),
		clientv3.OpGet(PrefixState, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("store: loading topology: %w", err)
	}
	var changes []topology.Change
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			c, ok, err := DecodeChange(string(kv.Key), kv.Value)
			if err != nil {
				s.log.Warn("skipping undecodable topology object", "key", string(kv.Key), "err", err)
				continue
			}
			if ok {
				changes = append(changes, c)
			}
		}
	}
	snap, _ := topology.Empty().Apply(changes)
	snap.Rev = resp.Header.Revision
	return snap, resp.Header.Revision, nil
}

// WatchBatch is the topology changes of one etcd revision range, in
// commit order. When Err is set the watch has ended and the channel is
// closed after this batch; errors.Is(Err, ErrCompacted) means the caller
// must reload with LoadTopology.
type WatchBatch struct {
	Rev     int64
	Changes []topology.Change
	Err     error
}

// WatchTopology streams topology and state changes after fromRev. Each
// etcd watch response that touches topology or state keys becomes one
// batch; Rev is the revision of its last event (resume from there).
// Transient failures (a lost leader, a broken connection) are retried
// internally from the last revision delivered, so the stream has no gap.
// The channel is closed when ctx is done, or after a batch with Err: the
// requested history was compacted (errors.Is(Err, ErrCompacted): reload
// with LoadTopology) or the Store was closed. Undecodable values are
// logged and skipped.
func (s *Store) WatchTopology(ctx context.Context, fromRev int64) <-chan WatchBatch {
	out := make(chan WatchBatch, 16)
	go func() {
		defer close(out)
		send := func(b WatchBatch) bool {
			select {
			case out <- b:
				return true
			case <-ctx.Done():
				return false
			}
		}
		last := fromRev // last revision delivered
		backoff := 50 * time.Millisecond
		for ctx.Err() == nil {
			err := s.watchOnce(ctx, &last, send)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, ErrCompacted):
				send(WatchBatch{Rev: last, Err: err})
				return
			case s.c.Ctx().Err() != nil:
				send(WatchBatch{Rev: last, Err: fmt.Errorf("store: watch: client closed: %w", err)})
				return
			}
			s.log.Warn("topology watch interrupted, resuming", "from_rev", last+1, "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			if backoff < 2*time.Second {
				backoff *= 2
			}
		}
	}()
	return out
}

// watchOnce runs one etcd watch from *last+1 until it fails, advancing
// *last as batches are delivered. It returns why it stopped.
func (s *Store) watchOnce(ctx context.Context, last *int64, send func(WatchBatch) bool) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	from := *last + 1
	for resp := range s.c.Watch(wctx, Root, clientv3.WithPrefix(), clientv3.WithRev(from)) {
		if err := resp.Err(); err != nil {
			if resp.CompactRevision != 0 || errors.Is(err, rpctypes.ErrCompacted) {
				return fmt.Errorf("%w (watch from %d, compacted at %d): %w", ErrCompacted, from, resp.CompactRevision, err)
			}
			return err
		}
		var b WatchBatch
		for _, ev := range resp.Events {
			var val []byte
			if ev.Type == clientv3.EventTypePut {
				val = ev.Kv.Value
			}
			c, ok, err := DecodeChange(string(ev.Kv.Key), val)
			if err != nil {
				s.log.Warn("skipping undecodable topology object", "key", string(ev.Kv.Key), "err", err)
				continue
			}
			if ok {
				b.Changes = append(b.Changes, c)
			}
			b.Rev = ev.Kv.ModRevision
		}
		if len(b.Changes) == 0 {
			if b.Rev > *last {
				*last = b.Rev // nothing for the agent, but no need to replay it
			}
			continue
		}
		if !send(b) {
			return ctx.Err()
		}
		*last = b.Rev
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch channel closed")
}

// ListHosts returns the live hosts, sorted by name.
func (s *Store) ListHosts(ctx context.Context) ([]topology.Host, error) {
	resp, err := s.c.Get(ctx, PrefixState+topology.KindHost.String()+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: listing hosts: %w", err)
	}
	hosts := make([]topology.Host, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var h topology.Host
		if err := json.Unmarshal(kv.Value, &h); err != nil {
			s.log.Warn("skipping undecodable host", "key", string(kv.Key), "err", err)
			continue
		}
		hosts = append(hosts, h)
	}
	slices.SortFunc(hosts, func(a, b topology.Host) int { return strings.Compare(a.Name, b.Name) })
	return hosts, nil
}
