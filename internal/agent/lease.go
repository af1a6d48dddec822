package agent

// Restarts and the registration lease.
//
// Everything the agent publishes (host entry, bindings, learned MACs, ARP
// entries, SNAT blocks, uplinks) lives under one etcd lease of HostTTL.
// The lease ID is kept in StateDir/lease. An agent that starts again
// (after kill -9, or after a stop with KeepForwarding) finds the file and,
// if the lease is still alive and holds the host, takes it over
// (store.ResumeHost) instead of waiting up to HostTTL for it to expire:
// other hosts see no change at all, and the SNAT blocks held under the
// lease are adopted again. A lease that is gone means a fresh
// registration, as before.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"hivenet/internal/store"
	"hivenet/internal/topology"
)

// leaseRecord is the content of StateDir/lease.
type leaseRecord struct {
	Host  string `json:"host"`
	Lease int64  `json:"lease"`
}

// leaseFile is StateDir/lease ("" without a state dir).
func (a *Agent) leaseFile() string {
	if a.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(a.cfg.StateDir, "lease")
}

// readLease returns the lease recorded for host in path; 0 when there is
// none (or it names another host).
func readLease(path, host string) (int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var r leaseRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("lease file %s: %w", path, err)
	}
	if r.Host != host {
		return 0, nil
	}
	return r.Lease, nil
}

// writeLease records lease for host in path, atomically.
func writeLease(path, host string, lease int64) error {
	b, err := json.Marshal(leaseRecord{Host: host, Lease: lease})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// resume takes over the lease recorded in the state dir, if it is alive;
// it returns nil when there is nothing to take over (a fresh registration
// follows).
func (a *Agent) resume(ctx context.Context, h topology.Host) *store.Session {
	path := a.leaseFile()
	if path == "" {
		return nil
	}
	id, err := readLease(path, h.Name)
	if err != nil {
		a.log.Warn("ignoring unreadable lease file", "path", path, "err", err)
	}
	if id == 0 {
		return nil
	}
	sess, err := a.cfg.Store.ResumeHost(ctx, h, id)
	if err != nil {
		if errors.Is(err, store.ErrLeaseGone) {
			a.log.Info("previous registration gone; registering anew", "lease", fmt.Sprintf("%x", id))
		} else {
			a.log.Warn("taking over the previous registration failed; registering anew", "lease", fmt.Sprintf("%x", id), "err", err)
		}
		_ = os.Remove(path)
		return nil
	}
	a.log.Info("previous registration taken over", "host", h.Name, "lease", fmt.Sprintf("%x", id))
	a.adoptSNATBlocks(ctx, sess)
	return sess
}

// adoptSNATBlocks (loop) makes the blocks held under a resumed lease ours
// again, so restored NAT bindings keep their ports and no block leaks.
func (a *Agent) adoptSNATBlocks(ctx context.Context, sess *store.Session) {
	blocks, err := sess.SNATBlocks(ctx)
	if err != nil {
		a.log.Warn("listing inherited SNAT blocks failed; they are held until the lease ends", "err", err)
		return
	}
	for addr, starts := range blocks {
		for _, s := range starts {
			if err := a.fs.AddSNATBlock(addr, s); err != nil {
				a.log.Warn("inherited SNAT block unusable", "addr", addr, "first_port", s, "err", err)
				continue
			}
			a.snatBlocks = append(a.snatBlocks, snatBlock{addr, s})
		}
	}
	if len(a.snatBlocks) > 0 {
		a.log.Info("SNAT port blocks adopted", "blocks", len(a.snatBlocks))
	}
}

// recordLease writes the session's lease to the state dir, for the next
// run to take over.
func (a *Agent) recordLease() {
	path := a.leaseFile()
	if path == "" {
		return
	}
	if err := writeLease(path, a.cfg.Host, int64(a.sess.Lease())); err != nil {
		a.log.Warn("recording the registration lease failed; a restart waits for it to expire", "err", err)
	}
}

// endSession ends the registration when Run returns: with KeepForwarding
// the lease is left to live out its TTL, for a restarted agent to take
// over; otherwise it is revoked (everything published vanishes at once)
// and forgotten.
func (a *Agent) endSession() {
	if a.cfg.KeepForwarding {
		a.sess.Release()
		a.log.Info("registration left for a restart to take over", "lease", fmt.Sprintf("%x", a.sess.Lease()), "ttl", a.cfg.HostTTL)
		return
	}
	if err := a.sess.Close(); err != nil {
		a.log.Warn("withdrawing the registration failed", "err", err)
	}
	if path := a.leaseFile(); path != "" {
		_ = os.Remove(path)
	}
}

// inheritedUplink (loop) returns this host's uplink on physnet published
// under a resumed lease, when it names ifname: it is ours already, and
// keeping it keeps its tunnel key (flows on other hosts stay valid).
func (a *Agent) inheritedUplink(physnet, ifname string) (topology.Uplink, bool) {
	if !a.resumed {
		return topology.Uplink{}, false
	}
	u := a.snap.Load().Uplink(topology.Uplink{Host: a.cfg.Host, PhysNet: physnet}.ID())
	if u == nil || u.Interface != ifname {
		return topology.Uplink{}, false
	}
	return *u, true
}
