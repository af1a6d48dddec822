package store_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
)

func TestL3State(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	reg := func(name, ip string) *store.Session {
		t.Helper()
		s, err := st.RegisterHost(ctx, topology.Host{Name: name, TunnelIP: netip.MustParseAddr(ip), TunnelPort: 4789}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1, s2 := reg("gw1", "10.0.0.1"), reg("gw2", "10.0.0.2")
	snat := netip.MustParseAddr("203.0.113.10")

	// SNAT blocks: one holder each.
	if err := s1.LeaseSNATBlock(ctx, snat, 1024); err != nil {
		t.Fatal(err)
	}
	if err := s2.LeaseSNATBlock(ctx, snat, 1024); !errors.Is(err, store.ErrSNATBlockTaken) {
		t.Fatalf("second lease of the same block = %v, want ErrSNATBlockTaken", err)
	}
	if err := s2.LeaseSNATBlock(ctx, snat, 1280); err != nil {
		t.Fatalf("lease of another block: %v", err)
	}

	// Uplinks get distinct tunnel keys and show in the topology.
	u1, err := s1.PublishUplink(ctx, "physnet1", "ext0")
	if err != nil {
		t.Fatal(err)
	}
	u2, err := s2.PublishUplink(ctx, "physnet1", "ext0")
	if err != nil {
		t.Fatal(err)
	}
	if u1.TunnelKey == 0 || u1.TunnelKey == u2.TunnelKey {
		t.Fatalf("uplink keys %d and %d, want distinct non-zero", u1.TunnelKey, u2.TunnelKey)
	}
	arp := topology.ARPEntry{BridgeID: "ext", IP: netip.MustParseAddr("203.0.113.1"), MAC: topology.MAC{2, 0, 0, 0, 0, 1}}
	if err := s1.PutARP(ctx, arp); err != nil {
		t.Fatal(err)
	}
	snap, _, err := st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Uplinks("physnet1"); len(got) != 2 || got[0].Host != "gw1" || snap.UplinkByTunnelKey(u2.TunnelKey).Host != "gw2" {
		t.Fatalf("uplinks in snapshot = %+v", got)
	}
	if e := snap.ARP("ext", arp.IP); e == nil || e.MAC != arp.MAC {
		t.Fatalf("ARP entry in snapshot = %+v", e)
	}

	// When gw1's session ends its block, uplink and ARP entry go with it.
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s2.LeaseSNATBlock(ctx, snat, 1024); err != nil {
		t.Fatalf("block of a closed session still held: %v", err)
	}
	snap, _, err = st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Uplinks("physnet1"); len(got) != 1 || got[0].Host != "gw2" {
		t.Fatalf("uplinks after gw1 left = %+v", got)
	}
	if snap.ARP("ext", arp.IP) != nil {
		t.Fatal("ARP entry outlived its session")
	}
	s2.Close()
}
