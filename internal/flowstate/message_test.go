package flowstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"hivenet/internal/packet"
)

// key builds a key from "addr:port" strings.
func key(zone uint32, proto uint8, src, dst string) Key {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	return Key{Zone: zone, Proto: proto, Src: s.Addr().As16(), Dst: d.Addr().As16(), SrcPort: s.Port(), DstPort: d.Port()}
}

// manyMessage returns a message of nc conntrack keys and nn bindings,
// IPv6 when v6.
func manyMessage(nc, nn int, v6 bool) Message {
	var m Message
	src, dst := "10.0.0.1", "192.0.2.9"
	if v6 {
		src, dst = "[2001:db8::1]", "[2001:db8::9]"
	}
	for i := range nc {
		k := key(uint32(i), packet.ProtoTCP, src+":1000", dst+":80")
		k.SrcPort = uint16(1000 + i)
		m.Conns = append(m.Conns, k)
	}
	for i := range nn {
		o := key(0x80000001, packet.ProtoUDP, src+":5000", dst+":53")
		o.SrcPort = uint16(i)
		x := o
		x.Src = netip.MustParseAddr("203.0.113.1").As16()
		x.SrcPort = uint16(2000 + i)
		m.NATs = append(m.NATs, NAT{Orig: o, Xlat: x})
	}
	return m
}

func messagesEqual(a, b *Message) bool {
	return slices.Equal(a.Conns, b.Conns) && slices.Equal(a.NATs, b.NATs)
}

func TestMessageRoundTrip(t *testing.T) {
	mixed := manyMessage(2, 1, false)
	mixed.NATs = append(mixed.NATs, manyMessage(0, 1, true).NATs...)
	tests := []struct {
		name string
		m    Message
		size int
	}{
		{name: "empty", m: Message{}, size: 6},
		{name: "one v4 conn", m: manyMessage(1, 0, false), size: 6 + 17},
		{name: "one v6 conn", m: manyMessage(1, 0, true), size: 6 + 41},
		{name: "v4 conns and nats", m: manyMessage(3, 2, false), size: 6 + 7*17},
		{name: "mixed families use 16 bytes", m: mixed, size: 6 + 6*41},
		{name: "full v4", m: manyMessage(82, 0, false), size: 6 + 82*17},
		{name: "full v6", m: manyMessage(0, 16, true), size: 6 + 32*41},
		{name: "icmp, no ports", m: Message{Conns: []Key{key(7, packet.ProtoICMP, "10.0.0.1:0", "10.0.0.2:0")}}, size: 6 + 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Size(); got != tt.size {
				t.Errorf("Size() = %d, want %d", got, tt.size)
			}
			b := AppendMessage([]byte{0xAA}, &tt.m)
			if len(b) != 1+tt.size || b[0] != 0xAA {
				t.Fatalf("AppendMessage wrote %d bytes after the prefix, want %d", len(b)-1, tt.size)
			}
			var got Message
			if err := ParseMessage(b[1:], &got); err != nil {
				t.Fatalf("ParseMessage(%x) = %v", b[1:], err)
			}
			if !messagesEqual(&got, &tt.m) {
				t.Errorf("ParseMessage(AppendMessage(m)) = %+v, want %+v", got, tt.m)
			}
		})
	}
}

func TestParseMessageErrors(t *testing.T) {
	good := AppendMessage(nil, &Message{Conns: manyMessage(2, 0, false).Conns, NATs: manyMessage(0, 1, false).NATs})
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "nil", b: nil},
		{name: "short header", b: good[:5]},
		{name: "bad version", b: with(func(b []byte) []byte { b[0] = 2; return b })},
		{name: "version zero", b: with(func(b []byte) []byte { b[0] = 0; return b })},
		{name: "unknown flag", b: with(func(b []byte) []byte { b[1] |= 0x80; return b })},
		{name: "truncated record", b: good[:len(good)-1]},
		{name: "trailing byte", b: append(bytes.Clone(good), 0)},
		{name: "conn count beyond buffer", b: with(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 3); return b })},
		{name: "nat count beyond buffer", b: with(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 0xffff); return b })},
		{name: "flag clear, sizes of v4", b: with(func(b []byte) []byte { b[1] = 0; return b })},
		{name: "over max size", b: make([]byte, MaxMessageSize+1)},
		{name: "resync: records counted", b: func() []byte { b := AppendResync(nil, "host1"); b[3] = 1; return b }()},
		{name: "resync: empty name", b: func() []byte { b := AppendResync(nil, "host1"); b[6] = 0; return b }()},
		{name: "resync: name beyond buffer", b: func() []byte { b := AppendResync(nil, "host1"); b[6] = 40; return b }()},
		{name: "resync: padding not zero", b: func() []byte { b := AppendResync(nil, "host1"); b[len(b)-1] = 1; return b }()},
		{name: "resync: not padded", b: AppendResync(nil, "host1")[:12]},
		{name: "resync with the IPv4 flag", b: func() []byte { b := AppendResync(nil, "host1"); b[1] |= msgFlagIPv4; return b }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := manyMessage(1, 1, false) // must come back empty
			err := ParseMessage(tt.b, &m)
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("ParseMessage(%x) = %v, want ErrBadMessage", tt.b, err)
			}
			if len(m.Conns)+len(m.NATs) != 0 {
				t.Errorf("ParseMessage(%x) left %d conns, %d nats after an error", tt.b, len(m.Conns), len(m.NATs))
			}
		})
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name  string
		m     Message
		parts int
	}{
		{name: "empty", m: Message{}, parts: 0},
		{name: "fits", m: manyMessage(10, 10, false), parts: 1},
		{name: "v4 conns just fit", m: manyMessage(82, 0, false), parts: 1},
		{name: "v4 conns one over", m: manyMessage(83, 0, false), parts: 2},
		{name: "v6 many", m: manyMessage(100, 100, true), parts: 9}, // 300 keys / 34 per part
		{name: "mixed", m: Message{Conns: manyMessage(40, 0, false).Conns, NATs: manyMessage(0, 40, true).NATs}, parts: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := Split(&tt.m)
			if len(parts) != tt.parts {
				t.Errorf("Split gave %d parts, want %d", len(parts), tt.parts)
			}
			var joined Message
			for i := range parts {
				if s := parts[i].Size(); s > MaxMessageSize {
					t.Errorf("part %d is %d bytes, more than %d", i, s, MaxMessageSize)
				}
				if len(parts[i].Conns)+len(parts[i].NATs) == 0 {
					t.Errorf("part %d is empty", i)
				}
				var back Message
				if err := ParseMessage(AppendMessage(nil, &parts[i]), &back); err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				joined.Conns = append(joined.Conns, back.Conns...)
				joined.NATs = append(joined.NATs, back.NATs...)
			}
			if !messagesEqual(&joined, &tt.m) {
				t.Errorf("parts joined differ from the message")
			}
		})
	}
}

func TestAppendMessageTooBigPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AppendMessage of an oversized message did not panic")
		}
	}()
	m := manyMessage(83, 0, false)
	AppendMessage(nil, &m)
}

func TestMessageAllocs(t *testing.T) {
	m := manyMessage(10, 10, false)
	buf := make([]byte, 0, MaxMessageSize)
	var out Message
	out.Conns, out.NATs = make([]Key, 0, 16), make([]NAT, 0, 16)
	b := AppendMessage(buf, &m)
	if n := testing.AllocsPerRun(100, func() {
		b = AppendMessage(buf[:0], &m)
		if err := ParseMessage(b, &out); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendMessage+ParseMessage with reused buffers allocate %v times, want 0", n)
	}
}

// FuzzParseMessage: ParseMessage never panics; an error leaves the
// message empty; what parses re-encodes to a message that parses back
// equal (the byte form may differ: a v6-form message of v4 addresses is
// re-encoded in the v4 form).
func FuzzParseMessage(f *testing.F) {
	seed := func(m Message) { f.Add(AppendMessage(nil, &m)) }
	seed(Message{})                    // header only
	seed(manyMessage(1, 0, false))     // one v4 key
	seed(manyMessage(2, 3, true))      // v6 keys and bindings
	seed(manyMessage(82, 0, false))    // the largest v4 message
	f.Add([]byte{1, 0, 0, 1, 0, 0})    // count without a record
	f.Add([]byte{2, 0, 0, 0, 0, 0})    // unknown version
	f.Add([]byte{1, 0xfe, 0, 0, 0, 0}) // unknown flags
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := ParseMessage(b, &m); err != nil {
			if len(m.Conns)+len(m.NATs) != 0 {
				t.Fatalf("error %v with %d conns, %d nats", err, len(m.Conns), len(m.NATs))
			}
			return
		}
		if m.Size() > len(b) {
			t.Fatalf("parsed message re-encodes to %d bytes, input was %d", m.Size(), len(b))
		}
		var back Message
		if err := ParseMessage(AppendMessage(nil, &m), &back); err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if !messagesEqual(&back, &m) {
			t.Fatalf("round trip changed the message")
		}
	})
}

func BenchmarkAppendMessage(b *testing.B) {
	m := manyMessage(4, 4, false)
	buf := make([]byte, 0, MaxMessageSize)
	b.ReportAllocs()
	b.SetBytes(int64(m.Size()))
	for b.Loop() {
		buf = AppendMessage(buf[:0], &m)
	}
}

func BenchmarkParseMessage(b *testing.B) {
	m := manyMessage(4, 4, false)
	buf := AppendMessage(nil, &m)
	var out Message
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := ParseMessage(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func TestResyncRoundTrip(t *testing.T) {
	tests := []struct {
		name, host string
		size       int
	}{
		{name: "short name padded", host: "h1", size: ResyncMinSize},
		{name: "long name", host: "compute-node-0042.rack7.example", size: 7 + 31},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendResync([]byte("prefix"), tt.host)[len("prefix"):]
			if len(b) != tt.size {
				t.Errorf("%d bytes, want %d", len(b), tt.size)
			}
			m := manyMessage(1, 1, false)
			if err := ParseMessage(b, &m); err != nil {
				t.Fatal(err)
			}
			if m.Resync != tt.host || len(m.Conns)+len(m.NATs) != 0 {
				t.Errorf("parsed %+v, want a resync request from %s and no records", m, tt.host)
			}
			var plain Message
			if err := ParseMessage(AppendMessage(nil, &Message{Conns: manyMessage(1, 0, true).Conns}), &plain); err != nil || plain.Resync != "" {
				t.Errorf("a plain message parsed as %+v, %v", plain, err)
			}
		})
	}
}
