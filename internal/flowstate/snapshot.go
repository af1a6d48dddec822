package flowstate

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// ConnEntry is a tracked connection (its forward key) and when it was last
// added or refreshed (unix nanoseconds).
type ConnEntry struct {
	Key  Key
	Last int64
}

// NATEntry is a NAT binding and when it was last added or refreshed.
type NATEntry struct {
	NAT  NAT
	Last int64
}

// Dump is the whole content of a host's flow-state tables: what the CLI
// shows and what the agent keeps on local disk (AppendSnapshot) so that a
// restart loses no connection.
type Dump struct {
	// At is when the entries were read (unix nanoseconds): set by
	// ParseSnapshot to the time the snapshot was written.
	At    int64
	Conns []ConnEntry
	NATs  []NATEntry
}

// The snapshot format (big-endian):
//
//	magic "hvfs" (4) | version (1) | reserved, 0 (3) | written at (8) | nConns (4) | nNATs (4)
//	nConns × (key (41) | age (8))
//	nNATs  × (orig key (41) | xlat key (41) | age (8))
//	CRC-32 (IEEE) of all the bytes before it (4)
//
// Key records are those of replication messages, always with 16-byte
// addresses. "Written at" is the writer's now (unix nanoseconds, not
// negative) and ages are now − Last (at least 0). ParseSnapshot sets
// Last = written at − age, so the time the agent was down counts as idle
// time; if the clock went backwards (written at is after the reader's
// now) it uses the reader's now instead, so no entry is dated in the
// future.

// SnapshotVersion is the version byte of the snapshots AppendSnapshot writes.
const SnapshotVersion = 1

const (
	snapMagic      = "hvfs"
	snapHeaderSize = 4 + 1 + 3 + 8 + 4 + 4
	snapConnSize   = keySize16 + 8
	snapNATSize    = 2*keySize16 + 8
	maxSnapAge     = 1 << 62 // ~146 years: anything older is corruption
)

// AppendSnapshot appends the encoding of d, written at time now (unix
// nanoseconds; a negative now is taken as 0), to b. d.At is not used.
func AppendSnapshot(b []byte, d *Dump, now int64) []byte {
	now = max(now, 0)
	start := len(b)
	b = append(b, snapMagic...)
	b = append(b, SnapshotVersion, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(now))
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.Conns)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.NATs)))
	age := func(last int64) uint64 {
		if last >= now {
			return 0
		}
		return uint64(now - last)
	}
	for i := range d.Conns {
		b = appendKey(b, &d.Conns[i].Key, false)
		b = binary.BigEndian.AppendUint64(b, age(d.Conns[i].Last))
	}
	for i := range d.NATs {
		b = appendKey(b, &d.NATs[i].NAT.Orig, false)
		b = appendKey(b, &d.NATs[i].NAT.Xlat, false)
		b = binary.BigEndian.AppendUint64(b, age(d.NATs[i].Last))
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// ParseSnapshot decodes a snapshot into d (reusing its slices), read at
// now: d.At is the time it was written and each Last is d.At, or now if
// earlier, minus the entry's age. On error d is left empty and the
// error wraps ErrBadMessage; the whole buffer is checked (length, CRC)
// before anything is decoded, so a torn or corrupted file gives an error,
// never partial state.
func ParseSnapshot(b []byte, now int64, d *Dump) error {
	d.At, d.Conns, d.NATs = 0, d.Conns[:0], d.NATs[:0]
	if len(b) < snapHeaderSize+4 {
		return fmt.Errorf("%w: snapshot truncated (%d bytes)", ErrBadMessage, len(b))
	}
	if string(b[:4]) != snapMagic {
		return fmt.Errorf("%w: not a flow-state snapshot", ErrBadMessage)
	}
	if b[4] != SnapshotVersion {
		return fmt.Errorf("%w: snapshot version %d, want %d", ErrBadMessage, b[4], SnapshotVersion)
	}
	if b[5]|b[6]|b[7] != 0 {
		return fmt.Errorf("%w: snapshot reserved bytes set", ErrBadMessage)
	}
	written := binary.BigEndian.Uint64(b[8:])
	if written > 1<<63-1 {
		return fmt.Errorf("%w: snapshot written at a negative time", ErrBadMessage)
	}
	nc, nn := uint64(binary.BigEndian.Uint32(b[16:])), uint64(binary.BigEndian.Uint32(b[20:]))
	if want := snapHeaderSize + nc*snapConnSize + nn*snapNATSize + 4; uint64(len(b)) != want {
		return fmt.Errorf("%w: snapshot of %d conns and %d bindings needs %d bytes, have %d", ErrBadMessage, nc, nn, want, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return fmt.Errorf("%w: snapshot checksum mismatch", ErrBadMessage)
	}
	body = body[snapHeaderSize:]
	at := min(int64(written), now)
	conns, nats := d.Conns, d.NATs
	for range nc {
		var e ConnEntry
		e.Key, body = parseKey(body, false)
		age := binary.BigEndian.Uint64(body)
		body = body[8:]
		if age > maxSnapAge {
			return fmt.Errorf("%w: snapshot entry age %d", ErrBadMessage, age)
		}
		e.Last = at - int64(age)
		conns = append(conns, e)
	}
	for range nn {
		var e NATEntry
		e.NAT.Orig, body = parseKey(body, false)
		e.NAT.Xlat, body = parseKey(body, false)
		age := binary.BigEndian.Uint64(body)
		body = body[8:]
		if age > maxSnapAge {
			return fmt.Errorf("%w: snapshot entry age %d", ErrBadMessage, age)
		}
		e.Last = at - int64(age)
		nats = append(nats, e)
	}
	d.At, d.Conns, d.NATs = int64(written), conns, nats
	return nil
}
