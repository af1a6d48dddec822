package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stopGrace is how long a process gets between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// proc is a process started by this Lab value (so it can be reaped).
type proc struct {
	name string
	pid  int
	done chan struct{} // closed once Wait returned
	err  error         // Wait's error, valid after done
}

// startProc starts argv inside netns ns in its own session (a Ctrl-C on the
// terminal of `hivenet lab up` does not reach it), output appended to
// RunDir/logs/NAME.log, PID written to RunDir/pids/NAME.pid.
func (l *Lab) startProc(name, ns string, argv ...string) (*proc, error) {
	logf, err := os.OpenFile(l.logPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", name, err)
	}
	defer logf.Close()
	// `ip netns exec` execs argv, so the PID is the process itself.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := os.WriteFile(l.pidPath(name), []byte(strconv.Itoa(p.pid)+"\n"), 0o600); err != nil {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
		return nil, fmt.Errorf("writing pid file of %s: %w", name, err)
	}
	l.mu.Lock()
	l.procs[name] = p
	l.mu.Unlock()
	l.log.Info("process started", "name", name, "netns", ns, "pid", p.pid)
	return p, nil
}

// stopNamed stops the process recorded under name (pid file), whether this
// Lab value started it or an earlier process did, and removes its pid file.
func (l *Lab) stopNamed(name string) error {
	l.mu.Lock()
	p := l.procs[name]
	delete(l.procs, name)
	l.mu.Unlock()
	if p != nil {
		err := stopPID(p.pid, p.done)
		os.Remove(l.pidPath(name))
		return err
	}
	pid, err := readPIDFile(l.pidPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.owned(pid) {
		if err := stopPID(pid, nil); err != nil {
			return err
		}
	}
	os.Remove(l.pidPath(name))
	return nil
}

// stopPID sends SIGTERM, waits up to stopGrace, then SIGKILL. done, when not
// nil, is closed when the process has been reaped by us.
func stopPID(pid int, done <-chan struct{}) error {
	exited := func() bool {
		if done != nil {
			select {
			case <-done:
				return true
			default:
				return false
			}
		}
		return !alive(pid)
	}
	if exited() {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, 0} {
		deadline := time.Now().Add(stopGrace)
		for time.Now().Before(deadline) {
			if exited() {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		if sig != 0 {
			_ = syscall.Kill(pid, sig)
		}
	}
	return fmt.Errorf("lab: process %d did not exit after SIGKILL", pid)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the ")" closing comm.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("lab: pid file %s: bad pid %q", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// owned reports whether pid is a process of this lab: its program is
// hivenet (or the configured binary) or dhclient, and its command line
// mentions RunDir or it lives in one of the lab's namespaces.
func (l *Lab) owned(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	nsIno := netnsInode(fmt.Sprintf("/proc/%d/ns/net", pid))
	return ownedBy(cmdline, nsIno, l.cfg.RunDir, l.cfg.Binary, l.nsInodes())
}

// ownedBy is the decision of owned, on data read from /proc.
func ownedBy(cmdline []byte, nsIno uint64, runDir, binary string, labNS map[uint64]bool) bool {
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(argv) == 0 || argv[0] == "" {
		return false
	}
	prog := filepath.Base(argv[0])
	if prog != "hivenet" && prog != "dhclient" && prog != filepath.Base(binary) {
		return false
	}
	if nsIno != 0 && labNS[nsIno] {
		return true
	}
	for _, a := range argv[1:] {
		if a == runDir || strings.HasPrefix(a, runDir+"/") {
			return true
		}
	}
	return false
}

// nsInodes returns the inodes of the lab's named namespaces that exist.
func (l *Lab) nsInodes() map[uint64]bool {
	m := map[uint64]bool{}
	names, _ := listNetns(context.Background())
	for _, n := range names {
		if strings.HasPrefix(n, l.cfg.Prefix) {
			if ino := netnsInode("/run/netns/" + n); ino != 0 {
				m[ino] = true
			}
		}
	}
	return m
}

func netnsInode(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// logPath and pidPath name a process's files.
func (l *Lab) logPath(name string) string { return filepath.Join(l.cfg.RunDir, "logs", name+".log") }
func (l *Lab) pidPath(name string) string { return filepath.Join(l.cfg.RunDir, "pids", name+".pid") }

// LogTail returns the last n lines of process name's log ("server",
// "agent-host1", "dhclient-red1", ...).
func (l *Lab) LogTail(name string, n int) string {
	b, err := os.ReadFile(l.logPath(name))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Logs returns the paths of all process logs of the lab.
func (l *Lab) Logs() []string {
	m, _ := filepath.Glob(filepath.Join(l.cfg.RunDir, "logs", "*.log"))
	return m
}

// PinRoot is the bpffs directory where the agents of the lab in runDir pin
// their eBPF maps and links (--bpf-pin-root; one subdirectory per host).
// The lab mounts it from the root mount namespace before starting agents:
// inside `ip netns exec` /sys is a mount private to the process, so pins
// under /sys/fs/bpf would vanish with it, and a restarted agent could not
// take over forwarding. Cleanup removes the pins and unmounts it.
func PinRoot(runDir string) string { return filepath.Join(runDir, "bpf") }

// mountPinRoot mounts bpffs on PinRoot unless it is one already.
func (l *Lab) mountPinRoot() error {
	dir := PinRoot(l.cfg.RunDir)
	if isBPFFS(dir) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("lab: pin root: %w", err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("lab: mounting bpffs on %s: %w", dir, err)
	}
	return nil
}

func isBPFFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

// destroyPins removes every pin under PinRoot (a TCX link whose pin goes
// and that no process holds is detached; maps are freed) and unmounts it:
// Destroy for all of the lab's datapaths at once. Run it once the agents
// have exited.
func (l *Lab) destroyPins() error {
	dir := PinRoot(l.cfg.RunDir)
	if !isBPFFS(dir) {
		return nil
	}
	ents, _ := os.ReadDir(dir)
	var errs []error
	hosts := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue // the kernel's own files (maps.debug, progs.debug)
		}
		hosts++
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		errs = append(errs, fmt.Errorf("lab: unmounting %s: %w", dir, err))
	}
	if hosts > 0 {
		l.log.Info("agent pins removed", "dir", dir, "hosts", hosts)
	}
	return errors.Join(errs...)
}

// RestartAgent stops the agent of host with sig and starts it again with
// the same arguments once it has exited. SIGKILL is a crash; SIGTERM a
// clean stop, which (ebpf datapath) leaves the pins and the registration
// for the new agent to take over. Only agents this Lab value started can
// be restarted.
func (l *Lab) RestartAgent(ctx context.Context, host string, sig syscall.Signal) error {
	h, p, err := l.takeAgent(host)
	if err != nil {
		return err
	}
	if err := syscall.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("lab: signalling agent of %s: %w", host, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("lab: agent of %s did not exit within %v of %v", host, stopGrace, sig)
	}
	os.Remove(l.pidPath(h.AgentName))
	l.log.Info("agent stopped for a restart", "host", host, "signal", sig.String(), "exit", fmt.Sprint(p.err))
	return l.StartAgent(ctx, host)
}

// takeAgent removes the agent process of host from those this value
// tracks, for the caller to end it.
func (l *Lab) takeAgent(host string) (Host, *proc, error) {
	h, err := l.Host(host)
	if err != nil {
		return h, nil, err
	}
	l.mu.Lock()
	p := l.procs[h.AgentName]
	delete(l.procs, h.AgentName)
	l.mu.Unlock()
	if p == nil {
		return h, nil, fmt.Errorf("%w: no agent of %s started by this process", ErrNotFound, host)
	}
	return h, p, nil
}
