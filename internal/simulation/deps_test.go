package simulation

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps enforces purity: the simulation and every hivenet package it
// depends on are in the pure set, and none of them imports a package that
// does I/O, reads the clock, uses global randomness or logs. Standard
// packages imported only indirectly (fmt imports os) are fine: what is
// checked is what our code imports.
func TestDeps(t *testing.T) {
	pure := map[string]bool{
		"hivenet/internal/packet":     true,
		"hivenet/internal/topology":   true,
		"hivenet/internal/simulation": true,
		"hivenet/internal/flowstate":  true,
		"hivenet/internal/flowtable":  true,
	}
	forbidden := map[string]bool{
		"net": true, "os": true, "os/exec": true, "os/signal": true, "syscall": true, "io/ioutil": true,
		"log": true, "log/slog": true, "time": true, "math/rand": true, "math/rand/v2": true, "crypto/rand": true,
		"unsafe": true, "sync": true, "sync/atomic": true, "runtime": true, "reflect": true,
		"golang.org/x/sys/unix": true,
	}
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Standard", "hivenet/internal/simulation").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
			Standard   bool
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Standard {
			continue
		}
		if !pure[p.ImportPath] {
			t.Errorf("simulation depends on %s, which is not in the pure set", p.ImportPath)
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if forbidden[imp] {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
	if checked < 3 {
		t.Errorf("checked %d packages, want simulation, packet and topology at least", checked)
	}
}
