package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"hivenet/internal/datapath"
	"hivenet/internal/datapath/fake"
	"hivenet/internal/packet"
	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
)

// Two agents in one process, each with a fake datapath, on one embedded
// etcd. The topology is written straight into the store, as the API's
// translation would write it.
//
//	   h1 (10.250.0.1)                 h2 (10.250.0.2)
//	   p1 tapp1 10.0.0.11  ── VXLAN ──  p2 tapp2 10.0.0.12
//	   bridge b1 (flood key 100), subnet 10.0.0.0/24

type ifaces struct {
	mu    sync.Mutex
	names map[string]int
}

func (f *ifaces) lookup(name string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.names[name]
	return i, ok
}

func (f *ifaces) set(name string, idx int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx == 0 {
		delete(f.names, name)
	} else {
		f.names[name] = idx
	}
}

type testHost struct {
	a   *Agent
	dp  *fake.Datapath
	if_ *ifaces
}

var (
	mac1 = topology.MAC{0xfa, 0x16, 0x3e, 0, 0, 1}
	mac2 = topology.MAC{0xfa, 0x16, 0x3e, 0, 0, 2}
	ip1  = netip.MustParseAddr("10.0.0.11")
	ip2  = netip.MustParseAddr("10.0.0.12")
)

func put(t *testing.T, st *store.Store, k topology.Kind, id string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().Put(context.Background(), store.TopoKey(k, id), string(b)); err != nil {
		t.Fatal(err)
	}
}

func startHost(t *testing.T, ctx context.Context, st *store.Store, name, tip string, ifs map[string]int) *testHost {
	t.Helper()
	h := &testHost{dp: fake.New(fake.Config{}), if_: &ifaces{names: ifs}}
	a, err := New(Config{
		Host: name, TunnelIP: netip.MustParseAddr(tip), Store: st, Datapath: h.dp,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), nil)).With("host", name),
		InterfaceIndex: h.if_.lookup, Resync: 50 * time.Millisecond, HostTTL: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("agent %s: %v", name, err)
		}
	})
	return h
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func icmp(src, dst topology.MAC, ipSrc, ipDst netip.Addr) []byte {
	return packet.AppendICMP4Echo(nil, src, dst, ipSrc, ipDst, 64, 8, 1, 1, []byte("ping"))
}

func TestAgentsForwardAcrossHosts(t *testing.T) {
	st := storetest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	put(t, st, topology.KindBridge, "b1", topology.Bridge{ID: "b1", Name: "net", AdminUp: true, FloodKey: 100, MTU: 1450})
	put(t, st, topology.KindSubnet, "s1", topology.Subnet{ID: "s1", BridgeID: "b1", CIDR: netip.MustParsePrefix("10.0.0.0/24"),
		Gateway: netip.MustParseAddr("10.0.0.1"), DHCP: true, DHCPServer: netip.MustParseAddr("10.0.0.2"), LeaseSeconds: 600})
	put(t, st, topology.KindPort, "p1", topology.Port{ID: "p1", BridgeID: "b1", MAC: mac1, AdminUp: true, PortSecurity: true,
		FixedIPs: []topology.FixedIP{{SubnetID: "s1", Addr: ip1}}, HostID: "h1", InterfaceName: "tapp1", TunnelKey: 101})
	put(t, st, topology.KindPort, "p2", topology.Port{ID: "p2", BridgeID: "b1", MAC: mac2, AdminUp: true, PortSecurity: true,
		FixedIPs: []topology.FixedIP{{SubnetID: "s1", Addr: ip2}}, HostID: "h2", InterfaceName: "tapp2", TunnelKey: 102})

	h1 := startHost(t, ctx, st, "h1", "10.250.0.1", map[string]int{"tapp1": 7})
	h2 := startHost(t, ctx, st, "h2", "10.250.0.2", map[string]int{})

	// p2's interface does not exist yet: p2 stays unbound until it appears.
	waitFor(t, "p1 bound and seen by h2", func() bool { return h2.a.Snapshot().Binding("p1") != nil })
	time.Sleep(100 * time.Millisecond)
	if h1.a.Snapshot().Binding("p2") != nil {
		t.Fatal("p2 bound before its interface exists")
	}
	h2.if_.set("tapp2", 9)
	waitFor(t, "p2 bound and seen by h1", func() bool { return h1.a.Snapshot().Binding("p2") != nil })

	no1, _ := h1.dp.PortNo("tapp1")
	no2, _ := h2.dp.PortNo("tapp2")

	// VM1 pings VM2: the first packet is simulated and tunnelled to h2
	// with p2's key; the second hits the installed flow.
	frame := icmp(mac1, mac2, ip1, ip2)
	for i, wantHit := range []bool{false, true} {
		hit, err := h1.dp.Inject(no1, frame, datapath.GSO{})
		if err != nil || hit != wantHit {
			t.Fatalf("inject %d: hit=%v err=%v, want hit=%v", i, hit, err, wantHit)
		}
		tun := h1.dp.Tunnelled()
		if len(tun) != 1 || tun[0].Key != 102 || tun[0].Remote.Addr != netip.MustParseAddr("10.250.0.2") {
			t.Fatalf("inject %d: tunnelled %+v, want one frame to 10.250.0.2 key 102", i, tun)
		}
	}
	// The egress host maps the key straight to p2.
	h2.dp.InjectTunnel(102, frame)
	if got := h2.dp.Sent(no2); len(got) != 1 {
		t.Fatalf("h2 delivered %d frames to p2, want 1", len(got))
	}

	// A spoofed source IP is dropped at the ingress.
	if _, err := h1.dp.Inject(no1, icmp(mac1, mac2, netip.MustParseAddr("10.0.0.99"), ip2), datapath.GSO{}); err != nil {
		t.Fatal(err)
	}
	if tun := h1.dp.Tunnelled(); len(tun) != 0 {
		t.Fatalf("spoofed packet tunnelled: %+v", tun)
	}

	// DHCP: a DISCOVER from p1 is answered on p1 with its address.
	disc, err := dhcpv4.NewDiscovery(mac1[:])
	if err != nil {
		t.Fatal(err)
	}
	req := packet.AppendUDP4(nil, mac1, topology.BroadcastMAC, netip.AddrPortFrom(netip.IPv4Unspecified(), 68),
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 67), 64, disc.ToBytes())
	if _, err := h1.dp.Inject(no1, req, datapath.GSO{}); err != nil {
		t.Fatal(err)
	}
	sent := h1.dp.Sent(no1)
	if len(sent) != 1 {
		t.Fatalf("DHCP: %d frames sent to p1, want 1 offer", len(sent))
	}
	var l packet.Layers
	var m packet.FlowMatch
	if err := packet.ParseLayers(sent[0].Data, &m, &l); err != nil {
		t.Fatal(err)
	}
	offer, err := dhcpv4.FromBytes(sent[0].Data[l.Payload:])
	if err != nil {
		t.Fatal(err)
	}
	if offer.MessageType() != dhcpv4.MessageTypeOffer || !offer.YourIPAddr.Equal(ip1.AsSlice()) {
		t.Fatalf("DHCP offer = %v yiaddr %v, want offer of %v", offer.MessageType(), offer.YourIPAddr, ip1)
	}

	// Deleting p2 invalidates the flow at once: the next packet misses and
	// is no longer tunnelled with p2's key.
	if _, err := st.Client().Delete(context.Background(), store.TopoKey(topology.KindPort, "p2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "p2 gone on h1", func() bool { return h1.a.Snapshot().Port("p2") == nil })
	hit, _ := h1.dp.Inject(no1, frame, datapath.GSO{})
	if hit {
		t.Fatal("flow to deleted port still installed")
	}
	for _, tf := range h1.dp.Tunnelled() {
		if tf.Key == 102 {
			t.Fatal("frame tunnelled to deleted port's key")
		}
	}
	waitFor(t, "p2 unbound on h2", func() bool { _, ok := h2.dp.PortNo("tapp2"); return !ok })

	// An interface that disappears is unbound and its binding withdrawn.
	h1.if_.set("tapp1", 0)
	waitFor(t, "p1 binding withdrawn", func() bool { return h2.a.Snapshot().Binding("p1") == nil })
	cancel()
}
