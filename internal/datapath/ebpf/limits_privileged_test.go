package ebpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
	"hivenet/internal/topology"
)

// TestPrivilegedInstallLimits: bad flows are refused with clear errors
// and change nothing; the 17th distinct mask and the flow beyond
// MaxFlows are refused; invalidating frees the mask slot for reuse.
func TestPrivilegedInstallLimits(t *testing.T) {
	requireRoot(t)
	const prefix = "hbp-m-"
	delNamespaces(prefix)
	t.Cleanup(func() { delNamespaces(prefix) })
	ns := prefix + "h"
	run(t, "ip", "netns", "add", ns)
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	run(t, "ip", "-n", ns, "addr", "add", "10.251.30.1/32", "dev", "lo")
	var d *Datapath
	inNS(t, ns, func() error {
		var err error
		d, err = New(Config{TunnelIP: netip.MustParseAddr("10.251.30.1"), MaxFlows: 20, Logger: testLogger(t)})
		return err
	})
	t.Cleanup(func() { d.Destroy() })

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
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := d.Install(tc.match, tc.mask, tc.actions, nil); err == nil {
					t.Fatal("Install accepted it")
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
