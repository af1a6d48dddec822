package ebpf

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// TestPrivilegedUplink binds a NIC-like interface the host itself also
// uses (an address, its own traffic), as a gateway's uplink is:
//
//	hbp-u-gw: Datapath                        hbp-u-ext (upstream)
//	hbp-eth1 10.254.19.1/24 ═══════ veth ═══════ eth0 10.254.19.2/24
//
// The host keeps talking over it (frames to the interface's MAC and
// broadcasts reach its stack); frames the datapath sends out of it reach
// the far side; frames to other MACs (floating IPs) go up as misses.
func TestPrivilegedUplink(t *testing.T) {
	requireRoot(t)
	const prefix = "hbp-u-"
	delNamespaces(prefix)
	t.Cleanup(func() { delNamespaces(prefix) })
	gw, ext := prefix+"gw", prefix+"ext"
	for _, ns := range []string{gw, ext} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "hbp-eth1", "netns", gw, "type", "veth", "peer", "eth0", "netns", ext)
	run(t, "ip", "-n", gw, "addr", "add", "10.254.19.1/24", "dev", "hbp-eth1")
	run(t, "ip", "-n", ext, "addr", "add", "10.254.19.2/24", "dev", "eth0")
	run(t, "ip", "-n", gw, "link", "set", "hbp-eth1", "up")
	run(t, "ip", "-n", ext, "link", "set", "eth0", "up")

	var d *Datapath
	inNS(t, gw, func() error {
		var err error
		d, err = New(Config{TunnelIP: netip.MustParseAddr("10.254.19.1"), TunnelPort: 4792, Logger: testLogger(t)})
		return err
	})
	t.Cleanup(func() { d.Destroy() })
	up, err := d.AddPort("hbp-eth1")
	if err != nil {
		t.Fatal(err)
	}
	floatMAC := [6]byte{0xfa, 0x16, 0x3e, 0, 9, 0x50}
	var mu sync.Mutex
	var seen []packet.FlowMatch
	if err := d.Start(func(u *datapath.Upcall) {
		mu.Lock()
		seen = append(seen, u.Match)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}

	// The host's own traffic over the bound interface still works (ARP
	// broadcasts copied to the stack, unicast to its MAC left to it).
	run(t, "ip", "-n", gw, "neigh", "flush", "dev", "hbp-eth1")
	run(t, "ip", "-n", ext, "neigh", "flush", "dev", "eth0")
	ping(t, gw, "10.254.19.2", 3, 3)
	ping(t, ext, "10.254.19.1", 3, 3)

	// Frames the datapath sends out reach the far side.
	noPorts := func() int {
		out := run(t, "ip", "netns", "exec", ext, "nstat", "-asz", "UdpNoPorts")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "UdpNoPorts" {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
		return 0
	}
	var extMAC [6]byte
	inNS(t, ext, func() error {
		i, err := net.InterfaceByName("eth0")
		if err == nil {
			copy(extMAC[:], i.HardwareAddr)
		}
		return err
	})
	before := noPorts()
	var out flowtable.Actions
	out.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(up)})
	const n = 20
	for range n {
		f := packet.AppendUDP4(nil, floatMAC, extMAC, netip.MustParseAddrPort("10.254.19.50:1"),
			netip.MustParseAddrPort("10.254.19.2:7777"), 64, []byte("uplink"))
		if err := d.Execute(0, f, datapath.GSO{}, &out); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the far side to receive the frames sent out of the uplink", func() bool { return noPorts()-before == n })

	// A frame to a MAC that is not the interface's goes up as a miss.
	toFloat := packet.AppendUDP4(nil, extMAC, floatMAC, netip.MustParseAddrPort("10.254.19.2:1"),
		netip.MustParseAddrPort("10.254.19.50:8888"), 64, []byte("in"))
	inNS(t, ext, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		i, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return unix.Sendto(fd, toFloat, 0, &unix.SockaddrLinklayer{Ifindex: i.Index, Protocol: 0x0008})
	})
	waitFor(t, "the frame to the floating MAC upcalled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range seen {
			if m.EthDst == floatMAC && m.DstPort == 8888 {
				return true
			}
		}
		return false
	})
	mu.Lock()
	for _, m := range seen {
		if m.DstPort == 7777 || (m.EthType == packet.EthTypeIPv4 && m.IPProto == packet.ProtoICMP) {
			t.Errorf("the datapath took a frame that was not for it: %+v", m)
		}
	}
	mu.Unlock()
	if err := d.RemovePort(up); err != nil {
		t.Fatal(err)
	}
	ping(t, gw, "10.254.19.2", 1, 1)
}
