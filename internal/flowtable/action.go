package flowtable

// ActionKind says what an Action does.
type ActionKind uint8

const (
	// ActOutput sends the frame out of local datapath port Port.
	ActOutput ActionKind = iota + 1
	// ActTunnel encapsulates the frame in VXLAN with VNI Key and sends it
	// to the underlay address Remote (IPv4 in the first 4 bytes when
	// Remote4 is set; RemotePort is the UDP port).
	ActTunnel
	// ActFlood delivers the frame to every local port in the datapath's
	// flood set for Key except the ingress port, and tunnels it with VNI
	// Key to every remote host of that flood set (see Datapath.SetFloodSet).
	ActFlood

	// Rewrites, applied in list order before the outputs that follow
	// them. IPv4 and L4 checksums are fixed up incrementally (RFC 1624),
	// also for frames with a partial checksum or GSO metadata.

	// ActSetEthSrc / ActSetEthDst set the Ethernet source / destination
	// to MAC.
	ActSetEthSrc
	ActSetEthDst
	// ActDecTTL subtracts Port from the IPv4 TTL (the flow's simulation
	// already checked it stays above zero).
	ActDecTTL
	// ActSetIPv4Src / ActSetIPv4Dst set the IPv4 source / destination to
	// Remote (NAT).
	ActSetIPv4Src
	ActSetIPv4Dst
	// ActSetL4Src / ActSetL4Dst set the TCP/UDP source / destination port
	// to RemotePort; for ICMP echo requests (ActSetL4Src) and replies
	// (ActSetL4Dst) they set the echo identifier.
	ActSetL4Src
	ActSetL4Dst

	// ActCTCommit records the packet's connection in the datapath's
	// connection tracker (datapaths that track connections themselves,
	// see datapath.ConnTracker): its 5-tuple as it entered, before any
	// rewrite, in zone Key (the ingress port's) and, when Port is not
	// zero, in zone Port as well (a local egress port's). Later packets
	// of the connection then carry CTState established, replies
	// established|reply. It comes before the outputs.
	ActCTCommit
)

// Action flags.
const (
	// FlagCommit on an ActTunnel asks the receiving host to commit the
	// packet's connection in the zone of the port the tunnel key delivers
	// to, as ActCTCommit does, before delivering it: the reply will enter
	// there, and the reply host needs no message nor upcall to know it.
	FlagCommit uint8 = 1 << iota
)

// MaxActions bounds the actions of one flow.
const MaxActions = 12

// Action is one step of a flow's action list. Fixed-size and pointer-free
// so it can mirror a BPF map value.
type Action struct {
	Kind       ActionKind
	Flags      uint8
	RemotePort uint16
	Port       uint32
	Key        uint32
	Remote     [4]byte
	MAC        [6]byte
	_          [2]byte
}

// Actions is a flow's action list: N entries of A are used. N == 0 means drop.
type Actions struct {
	N uint8
	A [MaxActions]Action
}

// Append adds a to the list; it reports false when the list is full.
func (as *Actions) Append(a Action) bool {
	if int(as.N) >= MaxActions {
		return false
	}
	as.A[as.N] = a
	as.N++
	return true
}

// List returns the used actions.
func (as *Actions) List() []Action { return as.A[:as.N] }

// IsDrop reports whether the list is empty.
func (as *Actions) IsDrop() bool { return as.N == 0 }
