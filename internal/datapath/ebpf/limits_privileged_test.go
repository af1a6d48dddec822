package ebpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"hivenet/internal/datapath"
	"hivenet/internal/datapath/datapathtest"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// TestPrivilegedInstallLimits: bad flows are refused with clear errors
// and change nothing; the 17th distinct mask and the flow beyond
// MaxFlows are refused; invalidating frees the mask slot for reuse.
func acts(as ...flowtable.Action) flowtable.Actions {
	var a flowtable.Actions
	for _, x := range as {
		a.Append(x)
	}
	return a
}

func TestPrivilegedInstallLimits(t *testing.T) {
	requireRoot(t)
	d := loopbackDatapath(t, "hbp-m-", "10.251.30.1", Config{MaxFlows: 20})

	var out flowtable.Actions
	out.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: 1})
	// Mask i: InPort and the i-th bit of the source port.
	maskN := func(i int) packet.FlowMatch {
		m := packet.MaskOf(packet.FInPort)
		m.SrcPort = 1 << i
		return m
	}
	match := func(port uint32) packet.FlowMatch { return packet.FlowMatch{InPort: port} }

	t.Run("bad input", func(t *testing.T) {
		var bad flowtable.Actions
		bad.Append(flowtable.Action{Kind: 99})
		tests := []struct {
			name    string
			match   packet.FlowMatch
			mask    packet.FlowMatch
			actions flowtable.Actions
		}{
			{name: "match not masked", match: packet.FlowMatch{InPort: 1, EthType: 0x800}, mask: packet.MaskOf(packet.FInPort), actions: out},
			{name: "unknown action", match: match(1), mask: packet.MaskOf(packet.FInPort), actions: bad},
			{name: "too many actions", match: match(1), mask: packet.MaskOf(packet.FInPort), actions: flowtable.Actions{N: flowtable.MaxActions + 1}},
			{name: "ct commit in zone 0", match: match(1), mask: packet.MaskOf(packet.FInPort), actions: acts(flowtable.Action{Kind: flowtable.ActCTCommit})},
			{name: "unknown tunnel flag", match: match(1), mask: packet.MaskOf(packet.FInPort),
				actions: acts(flowtable.Action{Kind: flowtable.ActTunnel, Key: 1, Remote: [4]byte{10, 0, 0, 2}, Flags: 2})},
			{name: "commit flag on an output", match: match(1), mask: packet.MaskOf(packet.FInPort),
				actions: acts(flowtable.Action{Kind: flowtable.ActOutput, Port: 1, Flags: flowtable.FlagCommit})},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := d.Install(tc.match, tc.mask, tc.actions, nil); err == nil {
					t.Fatal("Install accepted it")
				}
				frame := packet.AppendUDP4(nil, [6]byte{2}, [6]byte{2, 1}, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), 64, nil)
				if tc.match == match(1) && d.Execute(1, frame, datapath.GSO{}, &tc.actions) == nil {
					t.Error("Execute accepted the actions")
				}
				if n := len(d.Flows()); n != 0 {
					t.Errorf("%d flows after a refused Install", n)
				}
			})
		}
	})

	t.Run("masks", func(t *testing.T) {
		for i := range maxMasks {
			if err := d.Install(match(uint32(i+1)), maskN(i), out, []topology.Tag{topology.Tag(i + 1)}); err != nil {
				t.Fatalf("mask %d: %v", i, err)
			}
		}
		err := d.Install(match(1), packet.MaskOf(packet.FInPort|packet.FEthType), out, nil)
		if !errors.Is(err, ErrTooManyMasks) {
			t.Fatalf("17th mask: %v, want ErrTooManyMasks", err)
		}
		// A flow with an existing mask still fits.
		if err := d.Install(match(100), maskN(3), out, []topology.Tag{4}); err != nil {
			t.Fatalf("existing mask: %v", err)
		}
		d.Invalidate([]topology.Tag{5}) // the only flow of mask 4
		if err := d.Install(match(1), packet.MaskOf(packet.FInPort|packet.FEthType), out, nil); err != nil {
			t.Fatalf("after freeing a slot: %v", err)
		}
	})

	t.Run("max flows", func(t *testing.T) {
		have := len(d.Flows())
		for i := have; i < 20; i++ {
			if err := d.Install(match(uint32(1000+i)), maskN(0), out, nil); err != nil {
				t.Fatalf("flow %d: %v", i, err)
			}
		}
		if err := d.Install(match(5000), maskN(0), out, nil); !errors.Is(err, ErrTableFull) {
			t.Fatalf("flow 21: %v, want ErrTableFull", err)
		}
		// Replacing an installed flow is fine when full.
		if err := d.Install(match(1000+19), maskN(0), out, nil); err != nil {
			t.Fatalf("replacing a flow when full: %v", err)
		}
		if n := len(d.Flows()); n != 20 {
			t.Errorf("%d flows, want 20", n)
		}
	})
}

// TestPrivilegedExpiryUnderPressure: unused flows filling nine tenths of
// the table go within about a second although the idle timeout is a
// minute (a storm of short connections must not fill the table), while
// a handful of unused flows in a roomy table stay.
func TestPrivilegedExpiryUnderPressure(t *testing.T) {
	requireRoot(t)
	d := loopbackDatapath(t, "hbp-p-", "10.251.31.1", Config{MaxFlows: 100, IdleTimeout: time.Minute})
	if err := d.Start(func(*datapath.Upcall) {}); err != nil {
		t.Fatal(err)
	}
	var out flowtable.Actions
	out.Append(flowtable.Action{Kind: flowtable.ActOutput, Port: 1})
	mask := packet.MaskOf(packet.FInPort | packet.FSrcPort)
	install := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := d.Install(packet.FlowMatch{InPort: 1, SrcPort: uint16(i)}, mask, out, []topology.Tag{7}); err != nil {
				t.Fatalf("Install %d: %v", i, err)
			}
		}
	}
	install(0, 10)
	time.Sleep(2500 * time.Millisecond) // two expiry ticks
	if n := len(d.Flows()); n != 10 {
		t.Fatalf("%d flows left of 10 in a roomy table, want all (idle timeout a minute)", n)
	}
	install(10, 95)
	start := time.Now()
	waitFor(t, "the unused flows to go under pressure", func() bool { return len(d.Flows()) < 50 })
	t.Logf("95 unused flows of at most 100: below half in %v", time.Since(start).Round(time.Millisecond))
}

// TestPrivilegedNewFailureCleansUp: a New that fails halfway (here: the
// tunnel IP is not the host's, found after the devices were made) leaves
// no device, program or pin behind, so the userspace datapath can take
// the VXLAN port.
func TestPrivilegedNewFailureCleansUp(t *testing.T) {
	requireRoot(t)
	const prefix = "hbp-e-"
	delNamespaces(prefix)
	t.Cleanup(func() { delNamespaces(prefix) })
	ns := prefix + "h"
	run(t, "ip", "netns", "add", ns)
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	const name = "hbp-e-h"
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/sys/fs/bpf/hivenet", name)) })
	inNS(t, ns, func() error {
		d, err := New(Config{Name: name, Persist: true, TunnelIP: netip.MustParseAddr("10.251.31.9"), Logger: testLogger(t)})
		if err == nil {
			d.Destroy()
			return errors.New("New succeeded with a tunnel IP the host does not have")
		}
		t.Logf("New: %v", err)
		if _, err := net.InterfaceByName("hnvx0"); err == nil {
			return errors.New("the VXLAN device is left behind")
		}
		c, err := net.ListenPacket("udp4", ":4789")
		if err != nil {
			return fmt.Errorf("the VXLAN port is still taken: %w", err)
		}
		return c.Close()
	})
	if _, err := os.Stat(filepath.Join("/sys/fs/bpf/hivenet", name)); err == nil {
		t.Error("the pin directory is left behind")
	}
}

// loopbackDatapath creates a datapath in the namespace prefix+"h" whose
// tunnel IP, ip, sits on loopback; cfg's TunnelIP and Logger are set.
func loopbackDatapath(t *testing.T, prefix, ip string, cfg Config) *Datapath {
	t.Helper()
	ns := datapathtest.HostNS(t, prefix, ip+"/32")
	cfg.TunnelIP, cfg.Logger = netip.MustParseAddr(ip), testLogger(t)
	var d *Datapath
	inNS(t, ns, func() error {
		var err error
		d, err = New(cfg)
		return err
	})
	t.Cleanup(func() { d.Destroy() })
	return d
}
