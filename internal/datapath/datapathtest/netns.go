// Package datapathtest holds the network-namespace helpers that the
// datapath implementations' privileged tests share. Test code only.
package datapathtest

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RequireRoot skips t, saying why, unless it runs as root with iproute2.
func RequireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip(why)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
}

// Run runs a command and fails t with its output if it fails; it returns
// the combined output.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// InNS runs fn on an OS thread switched into namespace name. The thread is
// discarded afterwards (the goroutine exits locked).
func InNS(t testing.TB, name string, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(name)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in netns %s: %v", name, err)
	}
}

// DelNamespaces removes namespaces with the given prefix (left by a
// crashed earlier run, or ours at cleanup), killing processes in them.
func DelNamespaces(prefix string) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		pids, _ := exec.Command("ip", "netns", "pids", f[0]).Output()
		for _, p := range strings.Fields(string(pids)) {
			// Never ourselves: a thread of this process that exited locked
			// in a namespace can leave the process listed there.
			if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		_ = exec.Command("ip", "netns", "del", f[0]).Run()
	}
}

// HostNS makes the namespace prefix+"h" (namespaces named with prefix
// from an earlier run are deleted first, and all of them at the end of
// the test) with loopback up and addr (a prefix, e.g. "10.251.1.1/32")
// on it, and returns its name.
func HostNS(t testing.TB, prefix, addr string) string {
	t.Helper()
	DelNamespaces(prefix)
	t.Cleanup(func() { DelNamespaces(prefix) })
	ns := prefix + "h"
	Run(t, "ip", "netns", "add", ns)
	Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	Run(t, "ip", "-n", ns, "addr", "add", addr, "dev", "lo")
	return ns
}
