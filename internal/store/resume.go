package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"hivenet/internal/topology"
)

// ErrLeaseGone is returned by ResumeHost when the lease to take over has
// expired, was revoked, or no longer holds the host's entry: register
// anew with RegisterHost.
var ErrLeaseGone = errors.New("store: lease to resume is gone")

// ResumeHost takes over the registration that lease id holds for h.Name:
// the lease of an earlier run of the same agent that was killed, or that
// stopped with Release. If the lease is alive and holds the host entry,
// h is written again under it and the lease is kept alive until ctx is
// done or Close is called; everything else under the lease (bindings,
// learned MACs, ARP entries, SNAT blocks, uplinks) stays as it was, so
// other hosts see no change. The lease keeps the TTL it was granted with.
// Otherwise it fails with ErrLeaseGone (ErrHostRegistered if another
// lease holds the name).
func (s *Store) ResumeHost(ctx context.Context, h topology.Host, id int64) (*Session, error) {
	if h.Name == "" || !h.TunnelIP.IsValid() {
		return nil, fmt.Errorf("store: resuming host %q: empty name or invalid tunnel IP", h.Name)
	}
	if id == 0 {
		return nil, fmt.Errorf("%w: no lease", ErrLeaseGone)
	}
	lease := clientv3.LeaseID(id)
	ttl, err := s.c.TimeToLive(ctx, lease)
	if err != nil {
		return nil, fmt.Errorf("store: lease %x of host %s: %w", id, h.Name, err)
	}
	if ttl.TTL <= 0 {
		return nil, fmt.Errorf("%w: lease %x of host %s expired", ErrLeaseGone, id, h.Name)
	}
	val, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	key := TopoKey(topology.KindHost, h.Name)
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).
		Commit()
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return nil, fmt.Errorf("%w: lease %x of host %s expired", ErrLeaseGone, id, h.Name)
	case err != nil:
		return nil, fmt.Errorf("store: resuming host %s: %w", h.Name, err)
	case !resp.Succeeded:
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) > 0 && kvs[0].Lease != 0 {
			return nil, fmt.Errorf("%w: %s (lease %x, not %x)", ErrHostRegistered, h.Name, kvs[0].Lease, id)
		}
		return nil, fmt.Errorf("%w: lease %x no longer holds host %s", ErrLeaseGone, id, h.Name)
	}
	kctx, cancel := context.WithCancel(ctx)
	ka, err := s.c.KeepAlive(kctx, lease)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("store: keeping lease of host %s alive: %w", h.Name, err)
	}
	sess := &Session{s: s, host: h.Name, lease: lease, cancel: cancel, lost: make(chan struct{}), exited: make(chan struct{})}
	go sess.keepAlive(kctx, ka)
	return sess, nil
}

// Release stops keeping the lease alive without revoking it: the host
// entry and everything under the lease live on for the lease's TTL, for
// a restarted agent to take over with ResumeHost (or to expire). Close
// still revokes after Release.
func (se *Session) Release() {
	se.cancel()
	<-se.exited
}

// SNATBlocks lists the SNAT port blocks held under the session's lease
// (those a resumed session inherited), by address.
func (se *Session) SNATBlocks(ctx context.Context) (map[netip.Addr][]uint16, error) {
	resp, err := se.s.c.TimeToLive(ctx, se.lease, clientv3.WithAttachedKeys())
	if err != nil {
		return nil, fmt.Errorf("store: keys of lease %x: %w", se.lease, err)
	}
	out := map[netip.Addr][]uint16{}
	prefix := PrefixState + "snatblock/"
	for _, k := range resp.Keys {
		rest, ok := strings.CutPrefix(string(k), prefix)
		if !ok {
			continue
		}
		as, ss, ok := strings.Cut(rest, "/")
		a, aerr := netip.ParseAddr(as)
		start, serr := strconv.ParseUint(ss, 10, 16)
		if !ok || aerr != nil || serr != nil {
			continue // not ours to judge; it dies with the lease
		}
		out[a] = append(out[a], uint16(start))
	}
	return out, nil
}
