package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hivenet/internal/lab"
)

// TestPrivilegedDemo runs `hivenet lab demo` as a library call: 3 hosts,
// red and blue on the same CIDR in two projects, green routed to red by
// alpha's router with SNAT through host3, a security group and a floating
// IP reached from the outside namespace. It must PASS and tear down.
//
//	alpha: red 10.10.0.0/24 (red1@host1, red2@host2) ─ router ─ green 10.20.0.0/24 (green1@host2, green2@host3)
//	beta:  blue 10.10.0.0/24 (blue1@host3, blue2@host1)     router gateway ─ public 203.0.113.0/24 ─ [out]
func TestPrivilegedDemo(t *testing.T) {
	requireLab(t)
	var out strings.Builder
	res, err := lab.RunDemo(t.Context(), lab.DemoConfig{
		Lab: lab.Config{Prefix: prefix, RunDir: filepath.Join(t.TempDir(), "lab"), Binary: binary, Datapath: *datapath},
		Out: &out,
	})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	if !strings.Contains(out.String(), "RESULT: PASS") {
		t.Errorf("demo output has no PASS line")
	}
	if len(res.L3) < 5 {
		t.Errorf("demo ran %d L3 checks, want at least 5 (SNAT, group, floating IP TCP, ping, blocked port)", len(res.L3))
	}
	if left := leftoverNetns(t); len(left) > 0 {
		t.Errorf("the demo left namespaces behind: %v", left)
	}
}

// leftoverNetns lists namespaces with the tests' prefix.
func leftoverNetns(t *testing.T) []string {
	t.Helper()
	outb, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for line := range strings.Lines(string(outb)) {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			left = append(left, f[0])
		}
	}
	return left
}
