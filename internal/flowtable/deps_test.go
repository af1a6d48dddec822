package flowtable

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps enforces that the flow table stays pure: neither it nor any
// hivenet package it depends on imports a package that does I/O, reads a
// clock or global randomness. (Standard packages such as fmt reach os
// internally; what matters is what our code can call.)
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}",
		"hivenet/internal/flowtable").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := map[string]bool{
		"net": true, "os": true, "os/exec": true, "syscall": true, "log": true, "log/slog": true,
		"time": true, "math/rand": true, "math/rand/v2": true, "crypto/rand": true, "io/ioutil": true,
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "hivenet/") {
			continue
		}
		for _, imp := range f[1:] {
			if forbidden[imp] || strings.HasPrefix(imp, "net/") && imp != "net/netip" ||
				strings.HasPrefix(imp, "golang.org/x/sys") {
				t.Errorf("%s imports %q, which does I/O or reads a clock", f[0], imp)
			}
		}
	}
}
