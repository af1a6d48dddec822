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
	Conns []ConnEntry
	NATs  []NATEntry
}

// The snapshot format (big-endian):
//
//	magic "hvfs" (4) | version (1) | reserved, 0 (3) | nConns (4) | nNATs (4)
//	nConns × (key (41) | age (8))
//	nNATs  × (orig key (41) | xlat key (41) | age (8))
//	CRC-32 (IEEE) of all the bytes before it (4)
//
// Key records are those of replication messages, always with 16-byte
// addresses. Ages (now − Last, at least 0) make the file independent of
// the clock origin: ParseSnapshot sets Last = its now − age.

// SnapshotVersion is the version byte of the snapshots AppendSnapshot writes.
const SnapshotVersion = 1

const (
	snapMagic      = "hvfs"
	snapHeaderSize = 4 + 1 + 3 + 4 + 4
	snapConnSize   = keySize16 + 8
	snapNATSize    = 2*keySize16 + 8
	maxSnapAge     = 1 << 62 // ~146 years: anything older is corruption
)

// AppendSnapshot appends the encoding of d, taken at time now, to b.
func AppendSnapshot(b []byte, d *Dump, now int64) []byte {
	start := len(b)
	b = append(b, snapMagic...)
	b = append(b, SnapshotVersion, 0, 0, 0)
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

// ParseSnapshot decodes a snapshot into d (reusing its slices), setting
// each Last to now minus the stored age. On error d is left empty and the
// error wraps ErrBadMessage; the whole buffer is checked (length, CRC)
// before anything is decoded, so a torn or corrupted file gives an error,
// never partial state.
func ParseSnapshot(b []byte, now int64, d *Dump) error {
	d.Conns, d.NATs = d.Conns[:0], d.NATs[:0]
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
	nc, nn := uint64(binary.BigEndian.Uint32(b[8:])), uint64(binary.BigEndian.Uint32(b[12:]))
	if want := snapHeaderSize + nc*snapConnSize + nn*snapNATSize + 4; uint64(len(b)) != want {
		return fmt.Errorf("%w: snapshot of %d conns and %d bindings needs %d bytes, have %d", ErrBadMessage, nc, nn, want, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return fmt.Errorf("%w: snapshot checksum mismatch", ErrBadMessage)
	}
	body = body[snapHeaderSize:]
	conns, nats := d.Conns, d.NATs
	for range nc {
		var e ConnEntry
		e.Key, body = parseKey(body, false)
		age := binary.BigEndian.Uint64(body)
		body = body[8:]
		if age > maxSnapAge {
			return fmt.Errorf("%w: snapshot entry age %d", ErrBadMessage, age)
		}
		e.Last = now - int64(age)
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
		e.Last = now - int64(age)
		nats = append(nats, e)
	}
	d.Conns, d.NATs = conns, nats
	return nil
}
