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

// TestRewrites: a routed, SNATed flow comes out of the port and the
// tunnel with its headers rewritten and valid checksums, before and after
// the flow is cached; the injected frame is not modified; an output placed
// before the rewrites sends the frame as it was.
func TestRewrites(t *testing.T) {
	routerMAC := [6]byte{0xfa, 0x16, 0x3e, 0, 0, 1}
	snat := netip.MustParseAddr("192.0.2.10")
	d := New(Config{})
	pa, _ := d.AddPort("a")
	pb, _ := d.AddPort("b")
	var as flowtable.Actions
	as.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(pb)}) // before: unchanged
	as.Append(flowtable.Action{Kind: flowtable.ActSetEthSrc, MAC: routerMAC})
	as.Append(flowtable.Action{Kind: flowtable.ActSetEthDst, MAC: macB})
	as.Append(flowtable.Action{Kind: flowtable.ActDecTTL, Port: 1})
	as.Append(flowtable.Action{Kind: flowtable.ActSetIPv4Src, Remote: snat.As4()})
	as.Append(flowtable.Action{Kind: flowtable.ActSetL4Src, RemotePort: 4242}) // echo id
	as.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: uint32(pb)})
	as.Append(flowtable.Action{Kind: flowtable.ActTunnel, Key: 9, Remote: [4]byte{192, 168, 0, 2}, RemotePort: 4789})
	if err := d.Start(func(u *datapath.Upcall) {
		mask := packet.MaskOf(packet.FInPort | packet.FEthType)
		_ = d.Install(u.Match.Masked(mask), mask, as, nil)
		_ = d.Execute(u.InPort, u.Frame, u.GSO, &as)
	}); err != nil {
		t.Fatal(err)
	}
	frame := icmp(macA, routerMAC)
	orig := bytes.Clone(frame)
	for i := range 2 {
		if _, err := d.Inject(pa, frame, datapath.GSO{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame, orig) {
			t.Fatalf("Inject #%d modified the caller's frame", i)
		}
		sent := d.Sent(pb)
		tun := d.Tunnelled()
		if len(sent) != 2 || len(tun) != 1 {
			t.Fatalf("#%d: %d frames out of b and %d tunnelled, want 2 and 1", i, len(sent), len(tun))
		}
		if !bytes.Equal(sent[0].Data, orig) {
			t.Errorf("#%d: the output before the rewrites sent %x, want the frame unchanged", i, sent[0].Data)
		}
		for _, out := range [][]byte{sent[1].Data, tun[0].Data} {
			var m packet.FlowMatch
			if err := packet.Parse(out, 0, &m); err != nil {
				t.Fatal(err)
			}
			if m.EthSrc != routerMAC || m.EthDst != macB || m.IPTTL != 63 || m.Src() != snat || m.Dst() != ipB || m.ICMPID != 4242 {
				t.Errorf("#%d: rewritten frame has %+v", i, m)
			}
			if c := packet.Checksum(out[14:34], 0); c != 0 {
				t.Errorf("#%d: IPv4 header checksum does not verify", i)
			}
			if c := packet.Checksum(out[34:], 0); c != 0 {
				t.Errorf("#%d: ICMP checksum does not verify", i)
			}
		}
	}
}

func TestState(t *testing.T) {
	d := New(Config{})
	remote := datapath.Remote{Addr: netip.MustParseAddr("192.168.0.2"), Port: 4789}
	if err := d.SendState(remote, []byte("conn 1")); err != nil {
		t.Fatal(err)
	}
	if got := d.SentState(); len(got) != 1 || got[0].Remote != remote || string(got[0].Msg) != "conn 1" {
		t.Errorf("SentState() = %+v", got)
	}
	if d.InjectState([]byte("x")) {
		t.Error("InjectState with no handler reported delivery")
	}
	var got []string
	d.SetStateHandler(func(msg []byte) { got = append(got, string(msg)) })
	d.InjectState([]byte("a"))
	d.InjectTunnel(datapath.StateKey, []byte("b"))
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("state handler got %q, want [a b]", got)
	}
	if st := d.Stats(); st.StateTx != 1 || st.StateRx != 3 || st.StateUnhandled != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}
