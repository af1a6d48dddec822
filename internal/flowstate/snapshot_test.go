package flowstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"

	"hivenet/internal/packet"
)

func sampleDump(now int64) Dump {
	m := manyMessage(3, 2, false)
	v6 := manyMessage(1, 1, true)
	var d Dump
	for i, k := range append(m.Conns, v6.Conns...) {
		d.Conns = append(d.Conns, ConnEntry{Key: k, Last: now - int64(i)*1e9})
	}
	for i, n := range append(m.NATs, v6.NATs...) {
		d.NATs = append(d.NATs, NATEntry{NAT: n, Last: now - int64(i)*3e9})
	}
	return d
}

func dumpsEqual(a, b *Dump) bool {
	return slices.Equal(a.Conns, b.Conns) && slices.Equal(a.NATs, b.NATs)
}

func TestSnapshotRoundTrip(t *testing.T) {
	const now = int64(1_700_000_000e9)
	tests := []struct {
		name       string
		d          Dump
		writeAt    int64
		readAt     int64
		wantShift  int64 // Last moves by readAt - writeAt
		futureLast bool
	}{
		{name: "empty", d: Dump{}, writeAt: now, readAt: now},
		{name: "same clock", d: sampleDump(now), writeAt: now, readAt: now},
		{name: "read later: downtime counts as idle", d: sampleDump(now), writeAt: now, readAt: now + 30e9},
		{name: "clock went backwards", d: sampleDump(now), writeAt: now, readAt: now - 5e9, wantShift: -5e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendSnapshot(nil, &tt.d, tt.writeAt)
			var got Dump
			if err := ParseSnapshot(b, tt.readAt, &got); err != nil {
				t.Fatalf("ParseSnapshot = %v", err)
			}
			want := Dump{Conns: slices.Clone(tt.d.Conns), NATs: slices.Clone(tt.d.NATs)}
			for i := range want.Conns {
				want.Conns[i].Last += tt.wantShift
			}
			for i := range want.NATs {
				want.NATs[i].Last += tt.wantShift
			}
			if !dumpsEqual(&got, &want) {
				t.Errorf("ParseSnapshot(AppendSnapshot(d)) = %+v, want %+v", got, want)
			}
			if got.At != tt.writeAt {
				t.Errorf("ParseSnapshot: At = %d, want %d", got.At, tt.writeAt)
			}
		})
	}
	t.Run("future times read as now", func(t *testing.T) {
		d := Dump{Conns: []ConnEntry{{Key: key(1, packet.ProtoTCP, "10.0.0.1:1", "10.0.0.2:2"), Last: now + 5}}}
		var got Dump
		if err := ParseSnapshot(AppendSnapshot(nil, &d, now), now, &got); err != nil || got.Conns[0].Last != now {
			t.Errorf("ParseSnapshot = %+v, %v; want Last %d", got, err, now)
		}
	})
}

func TestParseSnapshotErrors(t *testing.T) {
	d := sampleDump(100e9)
	good := AppendSnapshot(nil, &d, 100e9)
	// resum recomputes the CRC so a test reaches the check it is about.
	resum := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
		return b
	}
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "empty", b: nil},
		{name: "short", b: good[:19]},
		{name: "bad magic", b: with(func(b []byte) []byte { b[0] = 'x'; return resum(b) })},
		{name: "bad version", b: with(func(b []byte) []byte { b[4] = 9; return resum(b) })},
		{name: "reserved set", b: with(func(b []byte) []byte { b[6] = 1; return resum(b) })},
		{name: "torn write", b: good[:len(good)-10]},
		{name: "count too big", b: with(func(b []byte) []byte { binary.BigEndian.PutUint32(b[16:], 1<<31); return resum(b) })},
		{name: "negative write time", b: with(func(b []byte) []byte { b[8] = 0x80; return resum(b) })},
		{name: "bit flip", b: with(func(b []byte) []byte { b[30] ^= 1; return b })},
		{name: "bad checksum", b: with(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })},
		{name: "absurd age", b: with(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[24+41:], 1<<63)
			return resum(b)
		})},
		{name: "absurd nat age", b: with(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[len(b)-12:], 1<<63)
			return resum(b)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sampleDump(0)
			err := ParseSnapshot(tt.b, 100e9, &got)
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("ParseSnapshot(%d bytes) = %v, want ErrBadMessage", len(tt.b), err)
			}
			if len(got.Conns)+len(got.NATs) != 0 {
				t.Errorf("ParseSnapshot left %d conns, %d nats after an error", len(got.Conns), len(got.NATs))
			}
		})
	}
}

// FuzzParseSnapshot: never panics; an error leaves the dump empty; what
// parses (written no later than it is read) re-encodes to the same bytes.
func FuzzParseSnapshot(f *testing.F) {
	d := sampleDump(50e9)
	f.Add(AppendSnapshot(nil, &d, 50e9))                                                                  // a v4 and v6 mix
	f.Add(AppendSnapshot(nil, &Dump{}, 0))                                                                // empty
	f.Add(AppendSnapshot(nil, &d, 1<<50))                                                                 // written after the fuzz reader's now
	f.Add([]byte("hvfs\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00")) // count, no record, no CRC
	f.Fuzz(func(t *testing.T, b []byte) {
		const now = 1 << 40
		var d Dump
		if err := ParseSnapshot(b, now, &d); err != nil {
			if len(d.Conns)+len(d.NATs) != 0 {
				t.Fatalf("error %v with entries", err)
			}
			return
		}
		if d.At > now {
			var back Dump
			if err := ParseSnapshot(AppendSnapshot(nil, &d, now), now, &back); err != nil || !dumpsEqual(&back, &d) {
				t.Fatalf("re-encoded snapshot parses to %+v, %v", back, err)
			}
			return
		}
		if back := AppendSnapshot(nil, &d, d.At); !bytes.Equal(back, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", back, b)
		}
	})
}

func TestKeyString(t *testing.T) {
	tests := []struct {
		name string
		k    Key
		want string
	}{
		{name: "tcp v4", k: key(7, packet.ProtoTCP, "10.0.0.5:40000", "192.0.2.1:80"), want: "zone 7 tcp 10.0.0.5:40000 > 192.0.2.1:80"},
		{name: "udp v6", k: key(1, packet.ProtoUDP, "[2001:db8::1]:53", "[2001:db8::2]:5353"), want: "zone 1 udp [2001:db8::1]:53 > [2001:db8::2]:5353"},
		{name: "icmp", k: key(2, packet.ProtoICMP, "10.0.0.1:9", "10.0.0.2:0"), want: "zone 2 icmp 10.0.0.1:9 > 10.0.0.2:0"},
		{name: "other proto", k: key(3, 47, "10.0.0.1:0", "10.0.0.2:0"), want: "zone 3 proto 47 10.0.0.1:0 > 10.0.0.2:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.k.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
