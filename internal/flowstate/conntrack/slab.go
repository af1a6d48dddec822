package conntrack

import "sync/atomic"

// slab stores the entries of one table (or shard) with their last-use
// time, and the FIFO queue that drives expiry and eviction (see the
// package doc). Not synchronized: the owner's lock guards it, except
// slot.last, which refreshers raise atomically under the read lock.
type slab[T any] struct {
	slots []slot[T]
	free  []uint32 // indices of dead slots
	live  int

	q []node // min-heap on stamp: one node per live slot, plus stale ones
}

type slot[T any] struct {
	val  T
	last int64 // atomic: raised by refresh under the read lock
	gen  uint32
	live bool
}

// node is a queue entry: slot idx as of generation gen, queued when its
// last-use time was stamp.
type node struct {
	idx, gen uint32
	stamp    int64
}

// alloc stores v as a new live entry used at now and returns its index.
func (s *slab[T]) alloc(v T, now int64) uint32 {
	var i uint32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.slots = append(s.slots, slot[T]{})
		i = uint32(len(s.slots) - 1)
	}
	sl := &s.slots[i]
	sl.val, sl.last, sl.live = v, now, true
	s.live++
	s.push(i, now)
	return i
}

// release frees slot i; its queue node goes stale.
func (s *slab[T]) release(i uint32) {
	sl := &s.slots[i]
	var zero T
	sl.val, sl.live = zero, false
	sl.gen++
	s.live--
	s.free = append(s.free, i)
}

// refresh raises slot i's last-use time to now (never lowers it).
func (s *slab[T]) refresh(i uint32, now int64) {
	p := &s.slots[i].last
	for {
		old := atomic.LoadInt64(p)
		if now <= old || atomic.CompareAndSwapInt64(p, old, now) {
			return
		}
	}
}

func (s *slab[T]) push(i uint32, last int64) {
	if len(s.q) > 2*s.live+64 {
		s.dropStale() // removals outside the queue left too many stale nodes
	}
	s.q = append(s.q, node{idx: i, gen: s.slots[i].gen, stamp: last})
	s.up(len(s.q) - 1)
}

// dropStale removes the nodes of dead slots and restores the heap.
func (s *slab[T]) dropStale() {
	q := s.q[:0]
	for _, nd := range s.q {
		if sl := &s.slots[nd.idx]; sl.live && sl.gen == nd.gen {
			q = append(q, nd)
		}
	}
	clear(s.q[len(q):])
	s.q = q
	for j := len(q)/2 - 1; j >= 0; j-- {
		s.down(j)
	}
}

func (s *slab[T]) up(j int) {
	for j > 0 {
		p := (j - 1) / 2
		if s.q[p].stamp <= s.q[j].stamp {
			return
		}
		s.q[p], s.q[j] = s.q[j], s.q[p]
		j = p
	}
}

func (s *slab[T]) down(j int) {
	n := len(s.q)
	for {
		c := 2*j + 1
		if c >= n {
			return
		}
		if c+1 < n && s.q[c+1].stamp < s.q[c].stamp {
			c++
		}
		if s.q[j].stamp <= s.q[c].stamp {
			return
		}
		s.q[j], s.q[c] = s.q[c], s.q[j]
		j = c
	}
}

func (s *slab[T]) pop() node {
	nd := s.q[0]
	last := len(s.q) - 1
	s.q[0] = s.q[last]
	s.q = s.q[:last]
	if last > 0 {
		s.down(0)
	}
	return nd
}

// next pops the queue up to the first live entry not used since limit
// (last-use time <= limit) and returns its index; entries used later than
// their node's stamp are queued again with their new time. ok is false
// when no live entry was used at or before limit. The entry returned is
// the least recently used one: every live entry has a node whose stamp is
// at most its last-use time, and the front node has the smallest stamp.
func (s *slab[T]) next(limit int64) (i uint32, ok bool) {
	for len(s.q) > 0 {
		if s.q[0].stamp > limit {
			return 0, false
		}
		nd := s.pop()
		sl := &s.slots[nd.idx]
		if !sl.live || sl.gen != nd.gen {
			continue
		}
		if last := atomic.LoadInt64(&sl.last); last > nd.stamp {
			s.push(nd.idx, last)
			continue
		}
		return nd.idx, true
	}
	return 0, false
}
