package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"hivenet/internal/topology"
)

// ErrHostRegistered is returned by RegisterHost when another live agent
// (another lease) holds the host name. After an agent crash its lease
// lives on for its TTL; retry after that.
var ErrHostRegistered = errors.New("store: host name registered by another live agent")

// ErrSessionLost is returned by Session.Err when the lease expired or could
// not be kept alive: everything under it is gone and the agent must
// register again.
var ErrSessionLost = errors.New("store: session lease lost")

// Session is an agent's registration: a lease kept alive in the
// background, under which the host entry and the agent's runtime state
// (port bindings, learned MACs) live. When the lease ends, by Close or by
// expiry, all of it disappears from etcd at once.
type Session struct {
	s     *Store
	host  string
	lease clientv3.LeaseID

	cancel context.CancelFunc
	lost   chan struct{} // closed when the lease is lost (not on Close)
	exited chan struct{} // closed when the keep-alive goroutine returns

	mu  sync.Mutex
	err error // guarded by mu; set when the session ends
}

// RegisterHost grants a lease of ttl (at least 1s, rounded up to whole
// seconds), stores h under TopoKey(KindHost, h.Name) on it, and keeps the
// lease alive until ctx is done or Close is called. It fails with
// ErrHostRegistered if another lease holds that host.
func (s *Store) RegisterHost(ctx context.Context, h topology.Host, ttl time.Duration) (*Session, error) {
	if h.Name == "" {
		return nil, errors.New("store: registering host: empty name")
	}
	if !h.TunnelIP.IsValid() {
		return nil, fmt.Errorf("store: registering host %s: invalid tunnel IP", h.Name)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	val, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	g, err := s.c.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("store: granting lease for host %s: %w", h.Name, err)
	}
	key := TopoKey(topology.KindHost, h.Name)
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(g.ID))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err == nil && !resp.Succeeded {
		var holder int64
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			holder = kvs[0].Lease
		}
		err = fmt.Errorf("%w: %s (lease %x)", ErrHostRegistered, h.Name, holder)
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		s.c.Revoke(rctx, g.ID)
		cancel()
		if errors.Is(err, ErrHostRegistered) {
			return nil, err
		}
		return nil, fmt.Errorf("store: registering host %s: %w", h.Name, err)
	}
	kctx, cancel := context.WithCancel(ctx)
	ka, err := s.c.KeepAlive(kctx, g.ID)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("store: keeping lease of host %s alive: %w", h.Name, err)
	}
	sess := &Session{s: s, host: h.Name, lease: g.ID, cancel: cancel, lost: make(chan struct{}), exited: make(chan struct{})}
	go sess.keepAlive(kctx, ka)
	return sess, nil
}

func (se *Session) keepAlive(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(se.exited)
	for range ka {
	}
	// The channel closes when ctx is done or the lease could not be renewed.
	se.mu.Lock()
	defer se.mu.Unlock()
	if ctx.Err() != nil {
		se.err = fmt.Errorf("store: session closed: %w", ctx.Err())
		return
	}
	se.err = ErrSessionLost
	close(se.lost)
}

// Lease returns the session's lease ID.
func (se *Session) Lease() clientv3.LeaseID { return se.lease }

// Host returns the registered host name.
func (se *Session) Host() string { return se.host }

// Done is closed when the lease is lost (expired, revoked by someone
// else, or not renewable): everything under it is gone and the agent must
// register again. It is not closed by Close or by the end of the
// RegisterHost ctx, which the caller knows about already; so a loop
// selecting on both ctx.Done() and Done() never mistakes its own shutdown
// for a lost session.
func (se *Session) Done() <-chan struct{} { return se.lost }

// Err returns why the session ended (ErrSessionLost if the lease was lost),
// or nil while it is alive.
func (se *Session) Err() error {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.err
}

// Close stops the keep-alive and revokes the lease: the host entry and
// all state under it are deleted at once.
func (se *Session) Close() error {
	se.cancel()
	<-se.exited
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := se.s.c.Revoke(ctx, se.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("store: revoking lease of host %s: %w", se.host, err)
	}
	return nil // revoked, or already expired
}

func (se *Session) put(ctx context.Context, key string, v any) error {
	val, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := se.s.c.Put(ctx, key, string(val), clientv3.WithLease(se.lease)); err != nil {
		return fmt.Errorf("store: writing %s: %w", key, err)
	}
	return nil
}

func (se *Session) del(ctx context.Context, key string) error {
	if _, err := se.s.c.Delete(ctx, key); err != nil {
		return fmt.Errorf("store: deleting %s: %w", key, err)
	}
	return nil
}

// PutBinding publishes that port b.PortID is bound (active) on this host.
func (se *Session) PutBinding(ctx context.Context, b topology.PortBinding) error {
	if b.PortID == "" {
		return errors.New("store: binding with empty port ID")
	}
	return se.put(ctx, TopoKey(topology.KindPortBinding, b.PortID), b)
}

// DeleteBinding withdraws the binding of portID.
func (se *Session) DeleteBinding(ctx context.Context, portID string) error {
	return se.del(ctx, TopoKey(topology.KindPortBinding, portID))
}

// PutMAC publishes a learned MAC entry.
func (se *Session) PutMAC(ctx context.Context, e topology.MACEntry) error {
	if e.BridgeID == "" || e.PortID == "" {
		return errors.New("store: MAC entry without bridge or port")
	}
	return se.put(ctx, TopoKey(topology.KindMAC, e.ID()), e)
}

// DeleteMAC withdraws the learned MAC entry with id (MACEntry.ID()).
func (se *Session) DeleteMAC(ctx context.Context, id string) error {
	return se.del(ctx, TopoKey(topology.KindMAC, id))
}
