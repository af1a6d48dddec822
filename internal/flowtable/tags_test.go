package flowtable

import (
	"math/rand/v2"
	"slices"
	"testing"

	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

type tagEntry struct {
	id int
	Tagged
}

func (e *tagEntry) Tagging() *Tagged { return &e.Tagged }

func ids(es []*tagEntry) []int {
	out := make([]int, 0, len(es))
	for _, e := range es {
		out = append(out, e.id)
	}
	slices.Sort(out)
	return out
}

func TestTagIndex(t *testing.T) {
	a, b, c := &tagEntry{id: 1}, &tagEntry{id: 2}, &tagEntry{id: 3}
	var x TagIndex[*tagEntry]
	x.Add(a, []topology.Tag{10, 20, 10})
	x.Add(b, []topology.Tag{20, 30})
	x.Add(c, []topology.Tag{30})
	tests := []struct {
		name string
		tags []topology.Tag
		want []int
	}{
		{name: "one tag", tags: []topology.Tag{10}, want: []int{1}},
		{name: "shared tag", tags: []topology.Tag{20}, want: []int{1, 2}},
		{name: "entries carrying two of the tags come once", tags: []topology.Tag{20, 30, 10}, want: []int{1, 2, 3}},
		{name: "unknown tag", tags: []topology.Tag{99}, want: []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(x.Carrying(tt.tags)); !slices.Equal(got, tt.want) {
				t.Errorf("Carrying(%v) = %v, want %v", tt.tags, got, tt.want)
			}
		})
	}
	if got := a.Tags(); !slices.Equal(got, []topology.Tag{10, 20}) {
		t.Errorf("a.Tags() = %v, want deduplicated [10 20]", got)
	}
	x.Remove(a)
	x.Remove(a) // twice: nothing
	if got := ids(x.Carrying([]topology.Tag{10, 20})); !slices.Equal(got, []int{2}) {
		t.Errorf("after Remove(a): %v, want [2]", got)
	}
	if x.Len() != 2 {
		t.Errorf("Len() = %d, want 2 (tag 10 has no entries left)", x.Len())
	}
	x.Remove(b)
	x.Remove(c)
	if x.Len() != 0 {
		t.Errorf("Len() = %d after removing everything", x.Len())
	}
}

// TestTagIndexModel runs random adds and removes against a plain model.
func TestTagIndexModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var x TagIndex[*tagEntry]
	live := map[*tagEntry][]topology.Tag{}
	var all []*tagEntry
	for i := range 5000 {
		if len(all) > 0 && r.IntN(3) == 0 {
			j := r.IntN(len(all))
			e := all[j]
			all = slices.Delete(all, j, j+1)
			x.Remove(e)
			delete(live, e)
		} else {
			e := &tagEntry{id: i}
			tags := make([]topology.Tag, r.IntN(5))
			for k := range tags {
				tags[k] = topology.Tag(r.IntN(8))
			}
			x.Add(e, tags)
			live[e] = tags
			all = append(all, e)
		}
		if i%97 != 0 {
			continue
		}
		for tg := range topology.Tag(8) {
			var want []int
			for e, tags := range live {
				if slices.Contains(tags, tg) {
					want = append(want, e.id)
				}
			}
			slices.Sort(want)
			if got := ids(x.Carrying([]topology.Tag{tg})); !slices.Equal(got, want) {
				t.Fatalf("step %d tag %d: index has %v, model %v", i, tg, got, want)
			}
		}
	}
}

func BenchmarkTagIndexAddRemove(b *testing.B) {
	const live = 50000
	es := make([]*tagEntry, live)
	tags := []topology.Tag{1, 2, 3, 4, 5, 6, 7, 8}
	var x TagIndex[*tagEntry]
	for i := range es {
		es[i] = &tagEntry{id: i}
		x.Add(es[i], tags)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e := es[i%live]
		x.Remove(e)
		x.Add(e, tags)
	}
}

func TestIdleUnderPressure(t *testing.T) {
	tests := []struct {
		name     string
		idle     int64
		flows    int
		want     int64
		maxFlows int
	}{
		{name: "below half: the configured timeout", idle: 30e9, flows: 49, maxFlows: 100, want: 30e9},
		{name: "half full: at most a second", idle: 30e9, flows: 50, maxFlows: 100, want: PressureIdle},
		{name: "three quarters: at most 100 ms", idle: 30e9, flows: 75, maxFlows: 100, want: HighPressureIdle},
		{name: "a shorter configured timeout stays", idle: 5e7, flows: 99, maxFlows: 100, want: 5e7},
		{name: "no idle expiry stays none", idle: 0, flows: 99, maxFlows: 100, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IdleUnderPressure(tt.idle, tt.flows, tt.maxFlows); got != tt.want {
				t.Errorf("IdleUnderPressure(%d, %d, %d) = %d, want %d", tt.idle, tt.flows, tt.maxFlows, got, tt.want)
			}
		})
	}
}

// TestExpireUnderPressure: a table three quarters full of flows idle for
// 200 ms loses them although its idle timeout is a minute; a roomy one
// keeps them.
func TestExpireUnderPressure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flows    int
		wantLeft int
	}{
		{name: "roomy table keeps idle flows", flows: 10, wantLeft: 10},
		{name: "three quarters full: idle flows go", flows: 80, wantLeft: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Config{MaxFlows: 100, IdleTimeout: 60e9})
			mask := packet.MaskOf(packet.FInPort | packet.FSrcPort)
			for i := range tc.flows {
				if err := tb.Insert(packet.FlowMatch{InPort: 1, SrcPort: uint16(i)}, mask, Actions{}, nil, 0); err != nil {
					t.Fatal(err)
				}
			}
			tb.Expire(2e8) // 200 ms later
			if got := len(tb.Dump()); got != tc.wantLeft {
				t.Errorf("%d flows left of %d, want %d", got, tc.flows, tc.wantLeft)
			}
		})
	}
}
