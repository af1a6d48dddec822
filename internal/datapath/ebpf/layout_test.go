package ebpf

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"hivenet/internal/flowstate"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// goFields lists the named fields of a struct type with their offsets, in
// order, skipping blank (padding) fields.
func goFields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "_" {
			continue
		}
		out = append(out, field{f.Name, int(f.Offset)})
	}
	return out
}

type field struct {
	name string
	off  int
}

func cStruct(t *testing.T, name string) *btf.Struct {
	t.Helper()
	spec, err := loadBpf()
	if err != nil {
		t.Fatal(err)
	}
	var s *btf.Struct
	if err := spec.Types.TypeByName(name, &s); err != nil {
		t.Fatalf("struct %s not in the object's BTF: %v", name, err)
	}
	return s
}

// cFields lists the members of a C struct with their byte offsets,
// skipping members named pad*.
func cFields(s *btf.Struct) []field {
	var out []field
	for _, m := range s.Members {
		if strings.HasPrefix(m.Name, "pad") {
			continue
		}
		out = append(out, field{m.Name, int(m.Offset.Bytes())})
	}
	return out
}

// TestLayoutMirrors checks that the Go types whose bytes go into the maps
// (packet.FlowMatch, flowtable.Action/Actions) lay out exactly as the C
// structs, field by field, and that the hand-written offsets of layout.go
// match the rest.
func TestLayoutMirrors(t *testing.T) {
	mirrors := []struct {
		name   string
		c      string
		goType reflect.Type
	}{
		{name: "flow key", c: "flow_key", goType: reflect.TypeFor[packet.FlowMatch]()},
		{name: "action", c: "action", goType: reflect.TypeFor[flowtable.Action]()},
		{name: "actions", c: "actions", goType: reflect.TypeFor[flowtable.Actions]()},
		{name: "conntrack key", c: "ct_key", goType: reflect.TypeFor[flowstate.Key]()},
	}
	for _, tc := range mirrors {
		t.Run(tc.name, func(t *testing.T) {
			s := cStruct(t, tc.c)
			if int(s.Size) != int(tc.goType.Size()) {
				t.Fatalf("size: C %d, Go %d", s.Size, tc.goType.Size())
			}
			cf, gf := cFields(s), goFields(tc.goType)
			if len(cf) != len(gf) {
				t.Fatalf("fields: C %v, Go %v", cf, gf)
			}
			for i := range cf {
				if cf[i].off != gf[i].off {
					t.Errorf("field %d: C %s at %d, Go %s at %d", i, cf[i].name, cf[i].off, gf[i].name, gf[i].off)
				}
			}
		})
	}
	offsets := []struct {
		c      string
		size   int
		fields map[string]int
	}{
		{c: "lookup_key", size: lookupKeySize, fields: map[string]int{"mask_id": 0, "k": 4}},
		{c: "flow_val", size: flowValSize, fields: map[string]int{"acts": 0, "last_out": offLastOut, "packets": offPackets, "bytes": offBytes, "last_used": offLastUsed}},
		{c: "mask", size: maskSize, fields: map[string]int{"used": 0, "m": 4}},
		{c: "flood", size: floodSize, fields: map[string]int{"n_local": 0, "n_remote": 4, "local": 8, "remote": 8 + 4*maxFlood}},
		{c: "config", size: configSize, fields: map[string]int{"upcall_ifindex": 0, "vxlan_ifindex": 4, "nmasks": 8}},
		{c: "port_info", size: portInfoSize, fields: map[string]int{"port": 0, "mac": 4, "zone": 12}},
		{c: "exec_tun", size: execTunSize, fields: map[string]int{"vni": 0, "remote": 4, "flags": 8}},
		{c: "ct_key", size: ctKeySize, fields: map[string]int{"zone": 0, "proto": 4, "src": 8, "dst": 24, "src_port": 40, "dst_port": 42}},
		{c: "ct_val", size: ctValSize, fields: map[string]int{"state": 0, "last_seen": offCTSeen}},
		// struct upcall_meta is only a local variable, absent from BTF;
		// the namespace tests exercise it (every upcall decodes it).
	}
	for _, tc := range offsets {
		t.Run(tc.c, func(t *testing.T) {
			s := cStruct(t, tc.c)
			if int(s.Size) != tc.size {
				t.Errorf("size: C %d, Go %d", s.Size, tc.size)
			}
			got := map[string]int{}
			for _, f := range cFields(s) {
				got[f.name] = f.off
			}
			for name, off := range tc.fields {
				if c, ok := got[name]; !ok || c != off {
					t.Errorf("%s: C offset %d (present %v), Go %d", name, c, ok, off)
				}
			}
		})
	}
}

// TestFlowValRoundTrip: actions survive encode/decode and lastOutput
// picks the action after which the skb is handed over.
func TestFlowValRoundTrip(t *testing.T) {
	out := func(p uint32) flowtable.Action { return flowtable.Action{Kind: flowtable.ActOutput, Port: p} }
	tun := flowtable.Action{Kind: flowtable.ActTunnel, Key: 7, Remote: [4]byte{10, 0, 0, 2}, RemotePort: 4789}
	flood := flowtable.Action{Kind: flowtable.ActFlood, Key: 9}
	ttl := flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1}
	tests := []struct {
		name string
		acts []flowtable.Action
		last uint32
	}{
		{name: "drop", acts: nil, last: outNone},
		{name: "one output", acts: []flowtable.Action{out(3)}, last: 0},
		{name: "rewrite then tunnel", acts: []flowtable.Action{ttl, tun}, last: 1},
		{name: "two outputs", acts: []flowtable.Action{out(1), ttl, out(2)}, last: 2},
		{name: "output then flood", acts: []flowtable.Action{out(1), flood}, last: outNone},
		{name: "flood then output", acts: []flowtable.Action{flood, out(1)}, last: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a flowtable.Actions
			for _, x := range tc.acts {
				a.Append(x)
			}
			b := encodeFlowVal(&a)
			if len(b) != flowValSize {
				t.Fatalf("len %d", len(b))
			}
			got, pk, by, lu := decodeFlowVal(b)
			if got != a || pk != 0 || by != 0 || lu != 0 {
				t.Errorf("decoded %+v %d %d %d, want %+v and zero stats", got, pk, by, lu, a)
			}
			if l := lastOutput(&a); l != tc.last {
				t.Errorf("lastOutput %d, want %d", l, tc.last)
			}
			for i := 1; i < actionsOffA; i++ {
				if b[i] != 0 {
					t.Errorf("padding byte %d is %d", i, b[i])
				}
			}
		})
	}
}

func TestLookupKeyRoundTrip(t *testing.T) {
	var m packet.FlowMatch
	m.InPort = 3
	m.EthType = packet.EthTypeIPv4
	m.SetSrc(netipMust("10.0.0.1"))
	m.SrcPort, m.ICMPID = 80, 7
	k := makeLookupKey(5, &m)
	if k.slot() != 5 || k.match() != m {
		t.Fatalf("round trip: slot %d match %+v", k.slot(), k.match())
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
