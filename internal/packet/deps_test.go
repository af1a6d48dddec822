package packet

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps enforces that packet stays in the pure set: no package that
// does I/O, reads the clock or uses global randomness may be among its
// (non-test) dependencies.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "hivenet/internal/packet").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := map[string]bool{
		"net": true, "os": true, "os/exec": true, "syscall": true, "log": true, "log/slog": true,
		"time": true, "math/rand": true, "math/rand/v2": true, "crypto/rand": true, "io/fs": true,
		"golang.org/x/sys/unix": true, "hivenet/internal/datapath": true, "hivenet/internal/store": true,
	}
	deps := strings.Fields(string(out))
	if len(deps) < 5 {
		t.Fatalf("go list -deps printed %q: too few packages to be real", out)
	}
	for _, d := range deps {
		if forbidden[d] {
			t.Errorf("hivenet/internal/packet depends on %s (not allowed in the pure set)", d)
		}
		if strings.HasPrefix(d, "hivenet/") && d != "hivenet/internal/packet" {
			t.Errorf("hivenet/internal/packet depends on %s (packet must not import other hivenet packages)", d)
		}
	}
}
