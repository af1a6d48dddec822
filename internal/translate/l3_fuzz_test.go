package translate

import (
	"reflect"
	"testing"
)

// FuzzPrepareRule checks the rule validator on arbitrary input. Seeds
// (run by plain go test) cover each branch. Invariants: no panic; an
// accepted rule is a fixed point (preparing it again changes nothing and
// succeeds) and translates; a rejected rule's error is a *FieldError.
func FuzzPrepareRule(f *testing.F) {
	for _, s := range []struct {
		dir, eth, proto string
		min, max        int
		hasMin, hasMax  bool
		prefix, group   string
	}{
		{dir: "ingress"},             // any
		{dir: "egress", eth: "IPv6"}, // any IPv6
		{dir: "ingress", proto: "tcp", min: 22, max: 22, hasMin: true, hasMax: true},
		{dir: "ingress", proto: "udp", min: 1000, hasMin: true}, // max defaults to min
		{dir: "ingress", proto: "icmp", min: 8, max: 0, hasMin: true, hasMax: true},
		{dir: "ingress", proto: "icmp", max: 0, hasMax: true}, // code without type
		{dir: "ingress", proto: "132", min: 5, max: 4, hasMin: true, hasMax: true},
		{dir: "ingress", prefix: "10.1.2.3/8"},              // masked
		{dir: "ingress", eth: "ipv6", prefix: "10.0.0.0/8"}, // family mismatch
		{dir: "ingress", prefix: "10.0.0.0/8", group: "g"},  // both remotes
		{dir: "sideways"},
		{dir: "egress", proto: "icmpv6"},                    // IPv6 protocol on IPv4
		{dir: "egress", proto: "ANY", min: 1, hasMin: true}, // ports without protocol
	} {
		f.Add(s.dir, s.eth, s.proto, s.min, s.max, s.hasMin, s.hasMax, s.prefix, s.group)
	}
	f.Fuzz(func(t *testing.T, dir, eth, proto string, min, max int, hasMin, hasMax bool, prefix, group string) {
		r := SecurityGroupRule{ID: "r", Direction: dir, EtherType: eth}
		if proto != "" {
			r.Protocol = &proto
		}
		if hasMin {
			r.PortRangeMin = &min
		}
		if hasMax {
			r.PortRangeMax = &max
		}
		if prefix != "" {
			r.RemoteIPPrefix = &prefix
		}
		if group != "" {
			r.RemoteGroupID = &group
		}
		if err := PrepareRule(&r); err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("PrepareRule error %v is not a *FieldError", err)
			}
			return
		}
		again := r
		if err := PrepareRule(&again); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("PrepareRule not a fixed point: %+v -> %+v, %v", r, again, err)
		}
		if _, err := TopoRule(&SecurityGroup{ID: "g", Name: "g"}, &r); err != nil {
			t.Fatalf("TopoRule(%+v) = %v", r, err)
		}
	})
}
