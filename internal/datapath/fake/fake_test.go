package fake

import (
	"bytes"
	"net/netip"
	"testing"

	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

var (
	macA = [6]byte{2, 0, 0, 0, 0, 0xa}
	macB = [6]byte{2, 0, 0, 0, 0, 0xb}
	ipA  = netip.MustParseAddr("10.0.0.1")
	ipB  = netip.MustParseAddr("10.0.0.2")
)

func icmp(src, dst [6]byte) []byte {
	return packet.AppendICMP4Echo(nil, src, dst, ipA, ipB, 64, 8, 1, 1, []byte("hello"))
}

func TestForwarding(t *testing.T) {
	remote := datapath.Remote{Addr: netip.MustParseAddr("192.168.0.2"), Port: 4789}
	tests := []struct {
		name       string
		actions    func(out datapath.PortNo) flowtable.Actions
		wantLocal  int // frames out of port "b"
		wantTunnel []uint32
	}{
		{
			name: "output",
			actions: func(out datapath.PortNo) (a flowtable.Actions) {
				a.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(out)})
				return a
			},
			wantLocal: 1,
		},
		{
			name: "tunnel",
			actions: func(datapath.PortNo) (a flowtable.Actions) {
				a.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: 42, Remote: remote.Addr.As4(), RemotePort: 4789})
				return a
			},
			wantTunnel: []uint32{42},
		},
		{
			name: "flood skips the ingress port",
			actions: func(datapath.PortNo) (a flowtable.Actions) {
				a.Append(flowtable.Action{Kind: flowtable.ActFlood, Key: 7})
				return a
			},
			wantLocal:  1,
			wantTunnel: []uint32{7},
		},
		{
			name:    "drop",
			actions: func(datapath.PortNo) (a flowtable.Actions) { return a },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(Config{})
			pa, _ := d.AddPort("a")
			pb, _ := d.AddPort("b")
			d.SetFloodSet(7, []datapath.PortNo{pa, pb}, []datapath.Remote{remote})
			var upcalls int
			if err := d.Start(func(u *datapath.Upcall) {
				upcalls++
				mask := packet.MaskOf(packet.FInPort | packet.FEthDst)
				if err := d.Install(u.Match.Masked(mask), mask, tt.actions(pb), []topology.Tag{1}); err != nil {
					t.Errorf("Install: %v", err)
				}
				a := tt.actions(pb)
				if err := d.Execute(u.InPort, u.Frame, u.GSO, &a); err != nil {
					t.Errorf("Execute: %v", err)
				}
			}); err != nil {
				t.Fatal(err)
			}
			frame := icmp(macA, macB)
			for i := range 2 {
				hit, err := d.Inject(pa, frame, datapath.GSO{})
				if err != nil || hit != (i == 1) {
					t.Fatalf("Inject #%d = %v, %v; want hit %v", i, hit, err, i == 1)
				}
			}
			if upcalls != 1 {
				t.Errorf("upcalls = %d, want 1", upcalls)
			}
			if got := d.Sent(pb); len(got) != 2*tt.wantLocal || (len(got) > 0 && !bytes.Equal(got[0].Data, frame)) {
				t.Errorf("port b got %d frames, want %d copies of the frame", len(got), 2*tt.wantLocal)
			}
			if got := d.Sent(pa); len(got) != 0 {
				t.Errorf("ingress port a got %d frames, want 0", len(got))
			}
			tun := d.Tunnelled()
			if len(tun) != 2*len(tt.wantTunnel) {
				t.Fatalf("tunnelled %d frames, want %d", len(tun), 2*len(tt.wantTunnel))
			}
			for _, f := range tun {
				if f.Key != tt.wantTunnel[0] || f.Remote != remote {
					t.Errorf("tunnelled to %v key %d, want %v key %d", f.Remote, f.Key, remote, tt.wantTunnel[0])
				}
			}
			d.Invalidate([]topology.Tag{1})
			if hit, _ := d.Inject(pa, frame, datapath.GSO{}); hit || upcalls != 2 {
				t.Errorf("after Invalidate: hit %v, upcalls %d; want a miss and a second upcall", hit, upcalls)
			}
		})
	}
}

func TestMalformedAndTunnelIngress(t *testing.T) {
	d := New(Config{})
	pa, _ := d.AddPort("a")
	pb, _ := d.AddPort("b")
	if hit, err := d.Inject(pa, []byte{1, 2, 3}, datapath.GSO{}); hit || err != nil {
		t.Errorf("Inject(short frame) = %v, %v", hit, err)
	}
	d.SetTunnelKey(100, pb)
	d.SetFloodSet(200, []datapath.PortNo{pa, pb}, nil)
	d.InjectTunnel(100, icmp(macA, macB))
	d.InjectTunnel(200, icmp(macA, macB))
	d.InjectTunnel(300, icmp(macA, macB))
	if n := len(d.Sent(pb)); n != 2 {
		t.Errorf("port b got %d frames from the tunnel, want 2", n)
	}
	if n := len(d.Sent(pa)); n != 1 {
		t.Errorf("port a got %d frames from the tunnel, want 1", n)
	}
	st := d.Stats()
	if st.Malformed != 1 || st.TunnelUnknownKey != 1 || st.TunnelRx != 3 {
		t.Errorf("Stats() = %+v, want 1 malformed, 1 unknown key, 3 tunnel rx", st)
	}
	if err := d.RemovePort(pb); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inject(pb, icmp(macA, macB), datapath.GSO{}); err == nil {
		t.Error("Inject on a removed port succeeded")
	}
	d.SetMissing("c", true)
	if _, err := d.AddPort("c"); err == nil {
		t.Error("AddPort of a missing interface succeeded")
	}
}
