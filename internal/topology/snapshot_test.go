package topology

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func mustMAC(t *testing.T, s string) MAC {
	t.Helper()
	m, err := ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseMAC(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{name: "lower", in: "fa:16:3e:00:00:01", ok: true},
		{name: "upper", in: "FA:16:3E:AB:CD:EF", ok: true},
		{name: "short", in: "fa:16:3e:00:00", ok: false},
		{name: "dashes", in: "fa-16-3e-00-00-01", ok: false},
		{name: "non-hex", in: "fa:16:3e:00:00:zz", ok: false},
		{name: "empty", in: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMAC(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseMAC(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && m.String() != strings.ToLower(tt.in) {
				t.Errorf("ParseMAC(%q).String() = %q", tt.in, m.String())
			}
		})
	}
}

func TestApply(t *testing.T) {
	mac1 := mustMAC(t, "fa:16:3e:00:00:01")
	mac2 := mustMAC(t, "fa:16:3e:00:00:02")
	br := &Bridge{ID: "b1", Name: "net", AdminUp: true, FloodKey: 100}
	p1 := &Port{ID: "p1", BridgeID: "b1", MAC: mac1, TunnelKey: 101, HostID: "h1",
		FixedIPs: []FixedIP{{SubnetID: "s1", Addr: netip.MustParseAddr("10.0.0.5")}}}
	p2 := &Port{ID: "p2", BridgeID: "b1", MAC: mac2, TunnelKey: 102, HostID: "h2"}

	s0 := Empty()
	s1, tags := s0.Apply([]Change{
		{Kind: KindBridge, ID: "b1", Bridge: br},
		{Kind: KindPort, ID: "p1", Port: p1},
		{Kind: KindPort, ID: "p2", Port: p2},
		{Kind: KindHost, ID: "h2", Host: &Host{Name: "h2", TunnelIP: netip.MustParseAddr("10.250.0.2"), TunnelPort: 4789}},
		{Kind: KindPortBinding, ID: "p2", Binding: &PortBinding{PortID: "p2", Host: "h2"}},
	})
	for _, want := range []Tag{TagBridge("b1"), TagFlood("b1"), TagPort("p1"), TagPort("p2"), TagMAC("b1", mac1), TagHost("h2")} {
		if !slices.Contains(tags, want) {
			t.Errorf("Apply tags missing %x", want)
		}
	}
	if s0.Port("p1") != nil || s0.Bridge("b1") != nil {
		t.Fatal("Apply modified the original snapshot")
	}
	if got := s1.PortByTunnelKey(101); got != p1 {
		t.Errorf("PortByTunnelKey(101) = %v, want p1", got)
	}
	if got := s1.BridgeByFloodKey(100); got != br {
		t.Errorf("BridgeByFloodKey(100) = %v", got)
	}
	if got := s1.PortByMAC("b1", mac2); got != p2 {
		t.Errorf("PortByMAC = %v, want p2", got)
	}
	if got := s1.PortByIP("b1", netip.MustParseAddr("10.0.0.5")); got != p1 {
		t.Errorf("PortByIP = %v, want p1", got)
	}
	if got := s1.PortHost("p2"); got == nil || got.Name != "h2" {
		t.Errorf("PortHost(p2) = %v", got)
	}
	if got := s1.PortHost("p1"); got != nil {
		t.Errorf("PortHost(p1) = %v, want nil (unbound)", got)
	}
	if got := s1.FloodHosts("b1", "h1"); !slices.Equal(got, []string{"h2"}) {
		t.Errorf("FloodHosts = %v", got)
	}
	if got := s1.FloodHosts("b1", "h2"); len(got) != 0 {
		t.Errorf("FloodHosts from h2 = %v, want none", got)
	}

	// Learned MAC: put then delete.
	learned := mustMAC(t, "02:00:00:00:00:09")
	e := &MACEntry{BridgeID: "b1", MAC: learned, PortID: "p1"}
	s2, tags := s1.Apply([]Change{{Kind: KindMAC, ID: e.ID(), MAC: e}})
	if !slices.Contains(tags, TagMAC("b1", learned)) {
		t.Error("learning a MAC did not yield its tag")
	}
	if got := s2.LearnedMAC("b1", learned); got == nil || got.PortID != "p1" {
		t.Errorf("LearnedMAC = %v", got)
	}
	s3, tags := s2.Apply([]Change{{Kind: KindMAC, ID: e.ID()}})
	if s3.LearnedMAC("b1", learned) != nil || !slices.Contains(tags, TagMAC("b1", learned)) {
		t.Error("deleting a learned MAC failed or yielded no tag")
	}

	// Host gone: the binding stays but PortHost is nil; flood set shrinks.
	s4, tags := s3.Apply([]Change{{Kind: KindHost, ID: "h2"}})
	if s4.PortHost("p2") != nil || len(s4.FloodHosts("b1", "h1")) != 0 {
		t.Error("host deletion not reflected")
	}
	if !slices.Contains(tags, TagHost("h2")) {
		t.Error("host deletion yielded no tag")
	}

	// Port moves to another MAC: both old and new MAC tags.
	p1b := *p1
	p1b.MAC = mustMAC(t, "fa:16:3e:00:00:03")
	s5, tags := s4.Apply([]Change{{Kind: KindPort, ID: "p1", Port: &p1b}})
	if !slices.Contains(tags, TagMAC("b1", mac1)) || !slices.Contains(tags, TagMAC("b1", p1b.MAC)) {
		t.Error("MAC change must invalidate both MACs")
	}
	if s5.PortByMAC("b1", mac1) != nil {
		t.Error("old MAC still indexed")
	}
	s6, _ := s5.Apply([]Change{{Kind: KindPort, ID: "p1"}, {Kind: KindPort, ID: "p2"}})
	if len(s6.PortsOfBridge("b1")) != 0 || s6.PortByTunnelKey(101) != nil {
		t.Error("deleted ports still indexed")
	}
}

// TestDeps keeps the package pure: no I/O, clock or global randomness.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "net", "os", "syscall", "log", "log/slog", "math/rand", "math/rand/v2", "time":
			t.Errorf("topology imports %s; the package must stay pure", dep)
		}
	}
}

func TestTagsDistinctAndAllocationFree(t *testing.T) {
	m := MAC{0xfa, 0x16, 0x3e, 0, 0, 1}
	tags := []Tag{TagPort("a"), TagBridge("a"), TagFlood("a"), TagHost("a"), TagSubnet("a"), TagMAC("a", m), TagMAC("b", m), TagPort("b")}
	seen := map[Tag]bool{}
	for i, tg := range tags {
		if seen[tg] {
			t.Errorf("tag %d collides", i)
		}
		seen[tg] = true
	}
	if n := testing.AllocsPerRun(100, func() { _ = TagMAC("bridge-id", m); _ = TagPort("port-id") }); n != 0 {
		t.Errorf("tag helpers allocate %v times, want 0", n)
	}
}
