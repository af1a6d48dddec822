package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"hivenet/internal/topology"
)

// Agent-owned L3 state: router ARP entries, gateway uplinks and SNAT
// port-block leases. All of it lives under the session lease.

// ErrSNATBlockTaken is returned by LeaseSNATBlock when another host holds
// the block.
var ErrSNATBlockTaken = errors.New("store: SNAT port block held by another host")

// seqTunnelKey is the tunnel-key counter shared with the API's
// allocation; indexTunnelKey(k) guards a live key.
const seqTunnelKey = PrefixSeq + "tunnelkey"

func indexTunnelKey(k uint32) string {
	return PrefixIndex + "tunnelkey/" + strconv.FormatUint(uint64(k), 10)
}

// maxTunnelKey is the last allocatable key; 0xFFFFFF is the flow-state key.
const maxTunnelKey = 1<<24 - 2

// PutARP publishes a router's neighbour resolution.
func (se *Session) PutARP(ctx context.Context, e topology.ARPEntry) error {
	if e.BridgeID == "" || !e.IP.IsValid() {
		return errors.New("store: ARP entry without bridge or address")
	}
	return se.put(ctx, TopoKey(topology.KindARP, e.ID()), e)
}

// snatBlockKey is the lease key of one SNAT port block of address a.
func snatBlockKey(a netip.Addr, start uint16) string {
	return PrefixState + "snatblock/" + a.String() + "/" + strconv.Itoa(int(start))
}

// LeaseSNATBlock takes the SNAT port block starting at start for address
// a, under the session lease, or fails with ErrSNATBlockTaken.
func (se *Session) LeaseSNATBlock(ctx context.Context, a netip.Addr, start uint16) error {
	key := snatBlockKey(a, start)
	resp, err := se.s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, se.host, clientv3.WithLease(se.lease))).
		Commit()
	if err != nil {
		return fmt.Errorf("store: leasing %s: %w", key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s port %d", ErrSNATBlockTaken, a, start)
	}
	return nil
}

// ReleaseSNATBlock gives a block back.
func (se *Session) ReleaseSNATBlock(ctx context.Context, a netip.Addr, start uint16) error {
	return se.del(ctx, snatBlockKey(a, start))
}

// PublishUplink allocates a tunnel key for this host's uplink on physnet
// (from the same counter as ports and bridges, its guard under the
// session lease) and publishes the Uplink.
func (se *Session) PublishUplink(ctx context.Context, physnet, iface string) (topology.Uplink, error) {
	u := topology.Uplink{Host: se.host, PhysNet: physnet, Interface: iface}
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		resp, err := se.s.c.Get(ctx, seqTunnelKey)
		if err != nil {
			return u, fmt.Errorf("store: reading %s: %w", seqTunnelKey, err)
		}
		var last uint64
		var seqRev int64
		if len(resp.Kvs) > 0 {
			seqRev = resp.Kvs[0].ModRevision
			if last, err = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 32); err != nil {
				return u, fmt.Errorf("store: corrupt %s: %w", seqTunnelKey, err)
			}
		}
		// The first key after last whose guard is absent.
		k := uint32(last)
		for i := 0; ; i++ {
			if i == maxTunnelKey {
				return u, errors.New("store: all tunnel keys in use")
			}
			if k++; k > maxTunnelKey {
				k = 1
			}
			g, err := se.s.c.Get(ctx, indexTunnelKey(k), clientv3.WithCountOnly())
			if err != nil {
				return u, fmt.Errorf("store: reading tunnel key guard: %w", err)
			}
			if g.Count == 0 {
				break
			}
		}
		u.TunnelKey = k
		val, err := jsonString(u)
		if err != nil {
			return u, err
		}
		txn, err := se.s.c.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(seqTunnelKey), "=", seqRev),
				clientv3.Compare(clientv3.CreateRevision(indexTunnelKey(k)), "=", 0)).
			Then(clientv3.OpPut(seqTunnelKey, strconv.FormatUint(uint64(k), 10)),
				clientv3.OpPut(indexTunnelKey(k), "uplink "+u.ID(), clientv3.WithLease(se.lease)),
				clientv3.OpPut(TopoKey(topology.KindUplink, u.ID()), val, clientv3.WithLease(se.lease))).
			Commit()
		if err != nil {
			return u, fmt.Errorf("store: publishing uplink %s: %w", u.ID(), err)
		}
		if txn.Succeeded {
			return u, nil
		}
	}
	return u, ErrTooManyConflicts
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("store: encoding: %w", err)
	}
	return string(b), nil
}

// WithdrawUplink deletes an uplink published by PublishUplink and frees
// its tunnel key.
func (se *Session) WithdrawUplink(ctx context.Context, u topology.Uplink) error {
	_, err := se.s.c.Txn(ctx).Then(
		clientv3.OpDelete(TopoKey(topology.KindUplink, u.ID())),
		clientv3.OpDelete(indexTunnelKey(u.TunnelKey))).Commit()
	if err != nil {
		return fmt.Errorf("store: withdrawing uplink %s: %w", u.ID(), err)
	}
	return nil
}
