package ebpf

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"hivenet/internal/flowstate"
	"hivenet/internal/packet"
)

// CTStats are the connection tracker's counters.
type CTStats struct {
	// Entries: connection directions in hn_ct, as counted by the last
	// idle sweep.
	Entries int
	// Commits: connections committed by ct(commit) actions of the
	// programs; CommitsRx: for a tunnelled packet's commit bit. Commits
	// made by Execute (the slow path) are not counted.
	Commits, CommitsRx uint64
}

// CTStats returns the connection tracker's counters (summed over CPUs).
func (d *Datapath) CTStats() CTStats {
	sum := func(i uint32) uint64 {
		var per []uint64
		var n uint64
		if d.objs.HnStats.Lookup(i, &per) == nil {
			for _, x := range per {
				n += x
			}
		}
		return n
	}
	return CTStats{Entries: int(d.ctEntries.Load()), Commits: sum(stCTCommit), CommitsRx: sum(stCTCommitRx)}
}

// ConnState implements datapath.ConnTracker: the state hn_ct holds for
// k (packet.CTEstablished, CTEstablished|CTReply), packet.CTNew when k
// is not tracked.
func (d *Datapath) ConnState(k flowstate.Key) uint8 {
	var v ctVal
	if !mapLookup(d.objs.HnCt.FD(), unsafe.Pointer(&k), unsafe.Pointer(&v[0])) {
		return packet.CTNew
	}
	return v.state()
}

// CommitConn implements datapath.ConnTracker.
func (d *Datapath) CommitConn(k flowstate.Key) error {
	if k.Zone == 0 {
		return errors.New("ebpf: CommitConn: zone 0 is never tracked")
	}
	return d.commit(k)
}

// commit records the connection of k as ct_commit in the programs does:
// k established, its reverse established|reply.
func (d *Datapath) commit(k flowstate.Key) error {
	now := monoNow()
	r := k.Reverse()
	fwd, rev := makeCTVal(packet.CTEstablished, now), makeCTVal(packet.CTEstablished|packet.CTReply, now)
	fd := d.objs.HnCt.FD()
	if err := mapUpdate(fd, unsafe.Pointer(&k), unsafe.Pointer(&fwd[0])); err != nil {
		return fmt.Errorf("ebpf: committing %v: %w", k, err)
	}
	if err := mapUpdate(fd, unsafe.Pointer(&r), unsafe.Pointer(&rev[0])); err != nil {
		return fmt.Errorf("ebpf: committing %v: %w", r, err)
	}
	return nil
}

// commitFrame commits the connection of frame, as it entered by inPort,
// in zone and, when zone2 is not zero, in zone2 as well; frames other
// than IP ones are ignored, as the programs ignore them.
func (d *Datapath) commitFrame(frame []byte, inPort uint32, zone, zone2 uint32) error {
	var m packet.FlowMatch
	if err := packet.Parse(frame, inPort, &m); err != nil {
		return fmt.Errorf("ebpf: ct(commit): %w", err)
	}
	if m.EthType != packet.EthTypeIPv4 && m.EthType != packet.EthTypeIPv6 {
		return nil
	}
	err := d.commit(flowstate.KeyOf(zone, &m))
	if zone2 != 0 {
		err = errors.Join(err, d.commit(flowstate.KeyOf(zone2, &m)))
	}
	return err
}

// ctSweepEvery is the interval of the conntrack idle sweep: a fifth of
// ConnIdle, between 1 s (the expiry tick) and 10 s.
func (d *Datapath) ctSweepEvery() time.Duration {
	return min(max(d.cfg.ConnIdle/5, time.Second), 10*time.Second)
}

// ctBatch is the number of hn_ct entries read per batch lookup.
const ctBatch = 512

// sweepConns removes the connections of hn_ct idle for longer than
// ConnIdle in both directions (a direction is refreshed only where its
// packets enter by a tracked port, so one side of a live connection may
// look idle), counts the entries (CTStats.Entries) and returns the
// number removed. The LRU map itself makes room when full.
func (d *Datapath) sweepConns() (int, error) {
	now := monoNow()
	idle := int64(d.cfg.ConnIdle)
	var victims []flowstate.Key
	total := 0
	// Keys as bytes: struct ct_key.
	err := eachBatch(d.objs.HnCt, ctBatch, func(keys [][ctKeySize]byte, vals []ctVal) {
		total += len(keys)
		for i := range keys {
			if now-vals[i].lastSeen() > idle {
				var k flowstate.Key
				copy(ctKeyBytes(&k), keys[i][:])
				victims = append(victims, k)
			}
		}
	})
	if err != nil {
		return 0, fmt.Errorf("ebpf: reading conntrack: %w", err)
	}
	removed := 0
	fd := d.objs.HnCt.FD()
	for _, k := range victims {
		r := k.Reverse()
		var rv ctVal
		if mapLookup(fd, unsafe.Pointer(&r), unsafe.Pointer(&rv[0])) && now-rv.lastSeen() <= idle {
			continue // the other direction is in use
		}
		if err := mapDelete(fd, unsafe.Pointer(&k)); err != nil {
			return removed, fmt.Errorf("ebpf: removing %v: %w", k, err)
		}
		removed++
	}
	d.ctEntries.Store(int64(total - removed))
	return removed, nil
}
