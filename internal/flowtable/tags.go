package flowtable

import (
	"slices"

	"hivenet/internal/topology"
)

// Tagged is the part of an entry a TagIndex keeps: its invalidation
// tags and, for each, the entry's position in that tag's list. Embed it
// in the entry and return it from the entry's Tagging method.
type Tagged struct {
	tags []topology.Tag
	pos  []int32
}

// Tags returns the entry's tags (deduplicated and sorted; do not
// modify).
func (g *Tagged) Tags() []topology.Tag { return g.tags }

// Tagger is an entry of a TagIndex: a pointer to a struct embedding
// Tagged.
type Tagger interface {
	comparable
	Tagging() *Tagged
}

// TagIndex lists, per invalidation tag, the entries carrying it. An
// entry knows its position in each of its tags' lists, so Add and
// Remove cost O(tags) appends and swaps: no entry is hashed, and a
// tag's list grows by doubling a slice rather than by splitting a hash
// table (per-tag maps cost a third of a flow install under connection
// storms). The zero value is ready to use; not safe for concurrent use.
type TagIndex[E Tagger] struct {
	lists map[topology.Tag][]E
}

// Add indexes e under tags (deduplicated; e must not be indexed).
func (x *TagIndex[E]) Add(e E, tags []topology.Tag) {
	if x.lists == nil {
		x.lists = make(map[topology.Tag][]E)
	}
	g := e.Tagging()
	g.tags = dedup(tags)
	g.pos = slices.Grow(g.pos[:0], len(g.tags))[:len(g.tags)]
	for i, t := range g.tags {
		l := x.lists[t]
		g.pos[i] = int32(len(l))
		x.lists[t] = append(l, e)
	}
}

// Remove takes e out of every list it is in (nothing if it is in none).
func (x *TagIndex[E]) Remove(e E) {
	g := e.Tagging()
	for i, t := range g.tags {
		l := x.lists[t]
		p := g.pos[i]
		if int(p) >= len(l) || l[p] != e {
			continue // not indexed (removed before)
		}
		last := len(l) - 1
		if int(p) != last {
			moved := l[last]
			l[p] = moved
			mg := moved.Tagging()
			mg.pos[slices.Index(mg.tags, t)] = p
		}
		var zero E
		l[last] = zero
		if last == 0 {
			delete(x.lists, t)
		} else {
			x.lists[t] = l[:last]
		}
	}
	g.tags, g.pos = nil, g.pos[:0]
}

// Carrying returns the entries carrying any of tags, each once.
func (x *TagIndex[E]) Carrying(tags []topology.Tag) []E {
	var out []E
	for i, t := range tags {
		for _, e := range x.lists[t] {
			if i == 0 || !carriesAny(e.Tagging().tags, tags[:i]) {
				out = append(out, e)
			}
		}
	}
	return out
}

// carriesAny reports whether sorted has any of tags.
func carriesAny(sorted []topology.Tag, tags []topology.Tag) bool {
	for _, t := range tags {
		if _, ok := slices.BinarySearch(sorted, t); ok {
			return true
		}
	}
	return false
}

// Len is the number of tags with entries.
func (x *TagIndex[E]) Len() int { return len(x.lists) }
