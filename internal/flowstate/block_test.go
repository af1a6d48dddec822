package flowstate

import "testing"

func TestBlockMath(t *testing.T) {
	if got, want := NumBlocks(), 252; got != want {
		t.Fatalf("NumBlocks() = %d, want %d", got, want)
	}
	tests := []struct {
		name  string
		port  uint16
		block uint16
	}{
		{name: "below range", port: 80, block: 0},
		{name: "just below", port: SNATPortMin - 1, block: 0},
		{name: "first port", port: SNATPortMin, block: SNATPortMin},
		{name: "inside first", port: SNATPortMin + 255, block: SNATPortMin},
		{name: "second block", port: SNATPortMin + 256, block: SNATPortMin + 256},
		{name: "last port", port: 65535, block: 65280},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BlockOf(tt.port); got != tt.block {
				t.Errorf("BlockOf(%d) = %d, want %d", tt.port, got, tt.block)
			}
		})
	}
	for i := range NumBlocks() {
		s := BlockStart(i)
		if BlockIndex(s) != i || BlockOf(s) != s || BlockOf(s+SNATBlockSize-1) != s {
			t.Fatalf("block %d: start %d, index %d", i, s, BlockIndex(s))
		}
	}
	for _, bad := range []uint16{0, 1023, 1025, 65535} {
		if i := BlockIndex(bad); i != -1 {
			t.Errorf("BlockIndex(%d) = %d, want -1", bad, i)
		}
	}
}

func TestNextBlock(t *testing.T) {
	all := make([]uint16, NumBlocks())
	for i := range all {
		all[i] = BlockStart(i)
	}
	tests := []struct {
		name string
		held []uint16
		seed uint32
		want uint16
	}{
		{name: "none held seed 0", held: nil, seed: 0, want: SNATPortMin},
		{name: "seed picks index", held: nil, seed: 3, want: BlockStart(3)},
		{name: "seed wraps", held: nil, seed: uint32(NumBlocks()) + 1, want: BlockStart(1)},
		{name: "skips held", held: []uint16{BlockStart(3), BlockStart(4)}, seed: 3, want: BlockStart(5)},
		{name: "cycles past the end", held: []uint16{BlockStart(251)}, seed: 251, want: BlockStart(0)},
		{name: "all held", held: all, seed: 7, want: 0},
		{name: "all but one", held: all[1:], seed: 100, want: BlockStart(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextBlock(tt.held, tt.seed); got != tt.want {
				t.Errorf("NextBlock(%d held, %d) = %d, want %d", len(tt.held), tt.seed, got, tt.want)
			}
		})
	}
	// Leasing repeatedly with NextBlock visits every block exactly once.
	var held []uint16
	for range NumBlocks() {
		b := NextBlock(held, 42)
		if b == 0 || BlockIndex(b) < 0 {
			t.Fatalf("NextBlock with %d held = %d", len(held), b)
		}
		held = append(held, b)
	}
	if b := NextBlock(held, 42); b != 0 {
		t.Errorf("NextBlock(all held) = %d, want 0", b)
	}
}
