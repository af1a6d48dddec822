package flowstate

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the package pure: no I/O, clock, global randomness,
// logging, and no synchronization either (the simulation imports this
// package and its own TestDeps forbids sync in its pure dependencies; the
// concurrent tables live in package conntrack).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := map[string]bool{
		"net": true, "os": true, "os/exec": true, "syscall": true, "io/ioutil": true,
		"log": true, "log/slog": true, "time": true, "math/rand": true, "math/rand/v2": true,
		"crypto/rand": true, "unsafe": true, "sync": true, "sync/atomic": true, "runtime": true,
		"reflect": true, "golang.org/x/sys/unix": true,
	}
	imports := strings.Fields(string(out))
	if len(imports) == 0 {
		t.Fatal("go list printed no imports")
	}
	for _, dep := range imports {
		if forbidden[dep] {
			t.Errorf("flowstate imports %s; the package must stay pure", dep)
		}
	}
}
