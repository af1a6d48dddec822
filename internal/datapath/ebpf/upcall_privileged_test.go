package ebpf

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// TestPrivilegedSuperframeUpcalls: flows are invalidated every 100 ms
// during a TCP transfer, so TSO superframes (with partial checksums) miss
// and go up through the TAP with their virtio_net_hdr, and Execute sends
// them on through the VXLAN device. The transfer must go on without
// checksum errors.
func TestPrivilegedSuperframeUpcalls(t *testing.T) {
	requireRoot(t)
	var gsoUp, partialUp atomic.Int64
	agent := func(l *lab, i int, u *datapath.Upcall) (packet.FlowMatch, flowtable.Actions) {
		if u.GSO.GSOType != 0 {
			gsoUp.Add(1)
		}
		if u.GSO.Flags&gsoNeedsCsum != 0 {
			partialUp.Add(1)
		}
		return bridgeAgent(l, i, u)
	}
	l := buildLab(t, "hbp-g-", agent, false)
	vm1, vm2 := nsName(l.prefix, "vm1"), nsName(l.prefix, "vm2")
	ping(t, vm1, l.vmIP[2], 2, 2)

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				for i := 1; i <= 2; i++ {
					l.dp[i].Invalidate([]topology.Tag{l.tag[i]})
				}
			}
		}
	}()
	gbps := iperf(t, l.prefix, l.vmIP[2], 3)
	close(stop)
	<-done
	t.Logf("with invalidation every 100 ms: %.2f Gbit/s; upcalls: %d host 1, %d host 2, %d superframes, %d with partial checksums",
		gbps, l.upcall[1].Load(), l.upcall[2].Load(), gsoUp.Load(), partialUp.Load())
	if gsoUp.Load() == 0 {
		t.Error("no superframe came up: the GSO upcall path was not exercised")
	}
	if n := csumErrors(t, vm1) + csumErrors(t, vm2); n != 0 {
		t.Errorf("%d checksum errors in the VMs", n)
	}
	if st := l.dp[1].Stats(); st.Malformed != 0 {
		t.Errorf("host 1: %d malformed upcalls", st.Malformed)
	}
}

// TestPrivilegedVLANUpcall: an 802.1Q-tagged frame (the tag offloaded
// into the skb) goes up with its tag back in the frame, and packet.Parse
// gives its VLAN ID.
func TestPrivilegedVLANUpcall(t *testing.T) {
	requireRoot(t)
	var vlans atomic.Int64
	var lastVLAN atomic.Uint32
	agent := func(l *lab, i int, u *datapath.Upcall) (packet.FlowMatch, flowtable.Actions) {
		if u.Match.VLAN != 0 {
			vlans.Add(1)
			lastVLAN.Store(uint32(u.Match.VLAN))
			var drop flowtable.Actions
			return packet.MaskOf(packet.FInPort | packet.FVLAN | packet.FEthType), drop
		}
		return bridgeAgent(l, i, u)
	}
	l := buildLab(t, "hbp-v-", agent, false)
	// No 8021q module here: send a tagged ARP request from vm1 with an
	// AF_PACKET socket; the receiving veth moves the tag into the skb.
	arp := packet.AppendARPRequest(nil, l.vmMAC[1], netip.MustParseAddr("10.253.0.1"), netip.MustParseAddr("10.253.0.2"))
	tagged := append(append(append([]byte{}, arp[:12]...), 0x81, 0x00, 0x00, 0x05), arp[12:]...)
	inNS(t, nsName(l.prefix, "vm1"), func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return unix.Sendto(fd, tagged, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: 0x0081})
	})
	waitFor(t, "a VLAN 5 upcall", func() bool { return vlans.Load() > 0 })
	if v := lastVLAN.Load(); v != 5 {
		t.Errorf("upcall VLAN %d, want 5", v)
	}
}
