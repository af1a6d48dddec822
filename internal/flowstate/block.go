package flowstate

// SNAT port blocks. The source ports SNATPortMin..65535 of each SNAT
// address are cut into NumBlocks() blocks of SNATBlockSize ports; block i
// starts at SNATPortMin + i*SNATBlockSize. A host leases whole blocks from
// the store and the simulation picks ports only inside the blocks its host
// holds (View.SNATBlocks), so ports are unique across hosts.

// NumBlocks returns the number of SNAT port blocks per address.
func NumBlocks() int { return (65536 - SNATPortMin) / SNATBlockSize }

// BlockOf returns the first port of the block holding port, or 0 when
// port is below SNATPortMin (in no block; 0 is never a block start).
func BlockOf(port uint16) uint16 {
	if port < SNATPortMin {
		return 0
	}
	return port - (port-SNATPortMin)%SNATBlockSize
}

// BlockIndex returns the index (0..NumBlocks()-1) of the block starting at
// start, or -1 when start is not a block start.
func BlockIndex(start uint16) int {
	if start < SNATPortMin || (start-SNATPortMin)%SNATBlockSize != 0 {
		return -1
	}
	return int(start-SNATPortMin) / SNATBlockSize
}

// BlockStart returns the first port of block i, which must be in
// 0..NumBlocks()-1.
func BlockStart(i int) uint16 { return uint16(SNATPortMin + i*SNATBlockSize) }

// NextBlock returns the first port of the next block to try leasing: the
// first block, cycling from index seed mod NumBlocks() upwards through all
// blocks, that is not in held (block starts). It returns 0 when every
// block is held. Hosts pass different seeds (a hash of the host name) so
// they rarely race for the same block; when a lease fails because another
// host holds block b, probe on with seed = uint32(BlockIndex(b)) + 1.
func NextBlock(held []uint16, seed uint32) uint16 {
	n := NumBlocks()
	start := int(seed % uint32(n))
	for i := range n {
		b := BlockStart((start + i) % n)
		free := true
		for _, h := range held {
			if h == b {
				free = false
				break
			}
		}
		if free {
			return b
		}
	}
	return 0
}
