package store_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
)

// A released lease is taken over with what lives under it; it then
// outlives its TTL (kept alive), and its SNAT blocks are listed.
func TestResumeHost(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	h := topology.Host{Name: "h1", TunnelIP: netip.MustParseAddr("10.0.0.1"), TunnelPort: 4789}
	old, err := st.RegisterHost(ctx, h, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.PutBinding(ctx, topology.PortBinding{PortID: "p1", Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("203.0.113.5")
	if err := old.LeaseSNATBlock(ctx, addr, 1024); err != nil {
		t.Fatal(err)
	}
	old.Release() // as a kill -9 would leave it
	id := int64(old.Lease())

	h.Started = "again"
	sess, err := st.ResumeHost(ctx, h, id)
	if err != nil {
		t.Fatalf("ResumeHost(live lease) = %v", err)
	}
	defer sess.Close()
	if int64(sess.Lease()) != id {
		t.Errorf("resumed lease %x, want %x", sess.Lease(), id)
	}
	time.Sleep(3 * time.Second) // beyond the TTL: kept alive
	snap, _, err := st.LoadTopology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Host("h1"); got == nil || got.Started != "again" || snap.Binding("p1") == nil {
		t.Fatalf("after resume and TTL: host %v binding %v; want the new host entry and the old binding", got, snap.Binding("p1"))
	}
	blocks, err := sess.SNATBlocks(ctx)
	if err != nil || !slices.Equal(blocks[addr], []uint16{1024}) || len(blocks) != 1 {
		t.Errorf("SNATBlocks() = %v, %v; want %s: [1024]", blocks, err, addr)
	}
	if _, err := st.RegisterHost(ctx, h, time.Second); !errors.Is(err, store.ErrHostRegistered) {
		t.Errorf("RegisterHost over a resumed session = %v, want ErrHostRegistered", err)
	}
}

func TestResumeHostRefused(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	h1 := topology.Host{Name: "h1", TunnelIP: netip.MustParseAddr("10.0.0.1")}
	h2 := topology.Host{Name: "h2", TunnelIP: netip.MustParseAddr("10.0.0.2")}
	closed, err := st.RegisterHost(ctx, h1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	closedID := int64(closed.Lease())
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	other, err := st.RegisterHost(ctx, h2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	expired, err := st.RegisterHost(ctx, topology.Host{Name: "h3", TunnelIP: netip.MustParseAddr("10.0.0.3")}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	expired.Release()
	stray, err := st.Client().Grant(ctx, 30) // alive, holding nothing
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)

	tests := []struct {
		name    string
		host    topology.Host
		lease   int64
		wantErr error
	}{
		{name: "no lease", host: h1, lease: 0, wantErr: store.ErrLeaseGone},
		{name: "revoked lease", host: h1, lease: closedID, wantErr: store.ErrLeaseGone},
		{name: "unknown lease", host: h1, lease: 0x7fffffff, wantErr: store.ErrLeaseGone},
		{name: "expired lease", host: topology.Host{Name: "h3", TunnelIP: h1.TunnelIP}, lease: int64(expired.Lease()), wantErr: store.ErrLeaseGone},
		{name: "another host's lease", host: h1, lease: int64(other.Lease()), wantErr: store.ErrLeaseGone},
		{name: "name held by another lease", host: h2, lease: int64(stray.ID), wantErr: store.ErrHostRegistered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess, err := st.ResumeHost(ctx, tt.host, tt.lease)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ResumeHost(%s, %x) = %v, want %v", tt.host.Name, tt.lease, err, tt.wantErr)
			}
			if sess != nil {
				sess.Close()
			}
		})
	}
	// The refusals changed nothing: h2 is still the other session's.
	snap, _, _ := st.LoadTopology(ctx)
	if snap.Host("h2") == nil || snap.Host("h1") != nil {
		t.Errorf("after refusals: h1 %v h2 %v; want only h2", snap.Host("h1"), snap.Host("h2"))
	}
}
