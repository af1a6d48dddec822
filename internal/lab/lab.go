package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrRunning is returned by Up when a lab with the same RunDir is running.
var ErrRunning = errors.New("lab: already running")

// ErrNotFound is returned for an unknown host or VM, and by Load when no
// lab is described in the run directory.
var ErrNotFound = errors.New("lab: not found")

// Host is one host namespace.
type Host struct {
	Name      string     `json:"name"`      // host1..N: agent --host, binding:host_id
	Netns     string     `json:"netns"`     // <prefix><name>
	TunnelIP  netip.Addr `json:"tunnel_ip"` // its underlay address
	AgentName string     `json:"agent"`     // process name (log, pid file)
}

// VM is one VM namespace attached to a host.
type VM struct {
	Name   string `json:"name"`
	Host   string `json:"host"`
	Netns  string `json:"netns"`
	IfName string `json:"ifname"` // the veth peer in the host namespace
	MAC    string `json:"mac"`    // eth0's address ("" = kernel's choice)
}

// state is what lab.json holds.
type state struct {
	Prefix       string       `json:"prefix"`
	UnderlayCIDR netip.Prefix `json:"underlay_cidr"`
	APILink      netip.Prefix `json:"api_link"`
	APIURL       string       `json:"api_url"`
	EtcdURL      string       `json:"etcd_url"`
	AdminToken   string       `json:"admin_token"`
	Binary       string       `json:"binary"`
	Datapath     string       `json:"datapath,omitempty"`
	Tokens       []Token      `json:"tokens,omitempty"`
	Hosts        []Host       `json:"hosts"`
	Gateways     []string     `json:"gateways,omitempty"`
	PhysNet      string       `json:"physnet,omitempty"`
	ExternalCIDR netip.Prefix `json:"external_cidr,omitzero"`
	Internet     netip.Addr   `json:"internet,omitzero"`
	VMs          []VM         `json:"vms"`
	Started      time.Time    `json:"started"`
	// OwnerPID is the process that tears the lab down when it ends (the
	// demo); 0 when the lab outlives its builder (`lab up`, `demo --keep`).
	OwnerPID int `json:"owner_pid,omitempty"`
}

// Lab is a running (or being built) lab. Its methods are safe for
// concurrent use.
type Lab struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex       // guards st and procs
	st    state            // mirrored to RunDir/lab.json
	procs map[string]*proc // processes started by this value
}

// New returns a Lab for cfg (defaults filled in, validated). It creates
// nothing; call Up.
func New(cfg Config) (*Lab, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Lab{cfg: cfg, log: cfg.Logger.With("lab", cfg.Prefix), procs: map[string]*proc{}}
	l.st = state{
		Prefix:       cfg.Prefix,
		UnderlayCIDR: cfg.UnderlayCIDR,
		APILink:      cfg.APILink,
		AdminToken:   cfg.AdminToken,
		Binary:       cfg.Binary,
		Datapath:     cfg.Datapath,
		Tokens:       cfg.Tokens,
		EtcdURL:      fmt.Sprintf("http://%s:%d", ctlAddr(cfg.UnderlayCIDR), EtcdPort),
		Gateways:     cfg.Gateways,
		PhysNet:      cfg.PhysNet,
		ExternalCIDR: cfg.ExternalCIDR,
		Internet:     cfg.Internet,
	}
	for i := 1; i <= cfg.Hosts; i++ {
		n := HostName(i)
		l.st.Hosts = append(l.st.Hosts, Host{
			Name: n, Netns: cfg.Prefix + n, TunnelIP: hostAddr(cfg.UnderlayCIDR, i), AgentName: "agent-" + n,
		})
	}
	return l, nil
}

// Load returns the lab described in runDir/lab.json (written by Up in this
// or an earlier process). logger may be nil.
func Load(runDir string, logger *slog.Logger) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(runDir, "lab.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no lab in %s", ErrNotFound, runDir)
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab: reading %s/lab.json: %w", runDir, err)
	}
	l, err := New(Config{
		Prefix: st.Prefix, Hosts: len(st.Hosts), UnderlayCIDR: st.UnderlayCIDR, APILink: st.APILink,
		RunDir: runDir, Binary: st.Binary, Datapath: st.Datapath, AdminToken: st.AdminToken, Tokens: st.Tokens, Logger: logger,
		Gateways: st.Gateways, PhysNet: st.PhysNet, ExternalCIDR: st.ExternalCIDR, Internet: st.Internet,
	})
	if err != nil {
		return nil, err
	}
	l.st = st
	return l, nil
}

// setOwner records in lab.json the process that will tear the lab down
// (0: none, the lab is meant to outlive its builder).
func (l *Lab) setOwner(pid int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.OwnerPID = pid
	return l.saveStateLocked()
}

// live reports whether the lab's server is running and the lab is not the
// leftover of a crashed owner (a demo killed before its teardown).
func (l *Lab) live() (bool, string) {
	pid, err := readPIDFile(l.pidPath("server"))
	if err != nil || !alive(pid) || !l.owned(pid) {
		return false, ""
	}
	if o := l.st.OwnerPID; o != 0 && !alive(o) {
		return false, ""
	}
	return true, fmt.Sprintf("server pid %d, run dir %s", pid, l.cfg.RunDir)
}

// Config returns the lab's configuration, defaults filled in.
func (l *Lab) Config() Config { return l.cfg }

// Prefix returns the lab's name prefix.
func (l *Lab) Prefix() string { return l.cfg.Prefix }

// RunDir returns the lab's run directory.
func (l *Lab) RunDir() string { return l.cfg.RunDir }

// APIURL is the API's base URL as seen from the root namespace
// (http://10.251.K.2:9696); empty before Up.
func (l *Lab) APIURL() string { l.mu.Lock(); defer l.mu.Unlock(); return l.st.APIURL }

// EtcdURL is the embedded etcd's client URL on the underlay.
func (l *Lab) EtcdURL() string { return l.st.EtcdURL }

// AdminToken is the server's admin token.
func (l *Lab) AdminToken() string { return l.cfg.AdminToken }

// Hosts returns the lab's hosts.
func (l *Lab) Hosts() []Host { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.st.Hosts) }

// VMs returns the lab's VMs.
func (l *Lab) VMs() []VM { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.st.VMs) }

// Host returns the host named name.
func (l *Lab) Host(name string) (Host, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.st.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return Host{}, fmt.Errorf("%w: host %q", ErrNotFound, name)
}

// VM returns the VM named name.
func (l *Lab) VM(name string) (VM, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.st.VMs {
		if v.Name == name {
			return v, nil
		}
	}
	return VM{}, fmt.Errorf("%w: VM %q", ErrNotFound, name)
}

func (l *Lab) ulNS() string  { return l.cfg.Prefix + "ul" }
func (l *Lab) ctlNS() string { return l.cfg.Prefix + "ctl" }
func (l *Lab) apiLink() string {
	return l.cfg.Prefix + "api"
}

// CtlNetns is the control namespace, where the server runs.
func (l *Lab) CtlNetns() string { return l.ctlNS() }

// saveState writes lab.json atomically. Caller holds l.mu.
func (l *Lab) saveStateLocked() error {
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.cfg.RunDir, "lab.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.cfg.RunDir, "lab.json"))
}

// Up cleans what a crashed run with the same prefix left behind, builds the
// namespaces and the underlay, starts the server and one agent per host and
// waits until the API lists every agent alive. On error the partial lab is
// left for the caller's Down (which also dumps nothing): call Down.
func (l *Lab) Up(ctx context.Context) error {
	start := time.Now()
	if err := l.UpNetwork(ctx); err != nil {
		return err
	}
	if err := l.StartServer(ctx); err != nil {
		return err
	}
	for _, h := range l.Hosts() {
		if err := l.StartAgent(ctx, h.Name); err != nil {
			return err
		}
	}
	if err := l.WaitAgents(ctx, l.cfg.StartTimeout); err != nil {
		return err
	}
	l.log.Info("lab up", "hosts", l.cfg.Hosts, "api", l.APIURL(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// UpNetwork builds the namespaces, the underlay and the API link, and no
// processes. It refuses with ErrRunning when a lab in RunDir has a live
// server, and otherwise first runs Cleanup.
func (l *Lab) UpNetwork(ctx context.Context) error {
	if err := needRoot(); err != nil {
		return err
	}
	if pid, err := readPIDFile(l.pidPath("server")); err == nil && alive(pid) && l.owned(pid) {
		return fmt.Errorf("%w: server pid %d (run dir %s); use Down or `hivenet lab down` first", ErrRunning, pid, l.cfg.RunDir)
	}
	if err := l.Cleanup(ctx); err != nil {
		return err
	}
	// A fresh lab: no etcd data, leases or logs of an earlier one.
	if err := l.removeRunFiles(); err != nil {
		return err
	}
	for _, d := range []string{l.cfg.RunDir, filepath.Join(l.cfg.RunDir, "logs"), filepath.Join(l.cfg.RunDir, "pids")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating run dir: %w", err)
		}
	}
	l.mu.Lock()
	l.st.Started = time.Now()
	err := l.saveStateLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}

	ul, ctl := l.ulNS(), l.ctlNS()
	for _, ns := range append([]string{ul, ctl}, l.hostNetns()...) {
		if err := addNetns(ctx, ns); err != nil {
			return err
		}
	}
	bits := strconv.Itoa(l.cfg.UnderlayCIDR.Bits())
	cmds := []string{
		"-n " + ul + " link add br0 type bridge",
		"-n " + ul + " link set br0 up",
		// ctl's underlay leg
		"link add ul0 netns " + ctl + " type veth peer ctl netns " + ul,
		"-n " + ul + " link set ctl master br0 up",
		"-n " + ctl + " addr add " + ctlAddr(l.cfg.UnderlayCIDR).String() + "/" + bits + " dev ul0",
		"-n " + ctl + " link set ul0 up",
	}
	for _, h := range l.Hosts() {
		cmds = append(cmds,
			"link add ul0 netns "+h.Netns+" type veth peer "+h.Name+" netns "+ul,
			"-n "+ul+" link set "+h.Name+" master br0 up",
			"-n "+h.Netns+" addr add "+h.TunnelIP.String()+"/"+bits+" dev ul0",
			"-n "+h.Netns+" link set ul0 up",
		)
	}
	if err := ipBatch(ctx, cmds); err != nil {
		return fmt.Errorf("building underlay: %w", err)
	}
	if err := l.addAPILink(ctx); err != nil {
		return err
	}
	if err := l.addOutside(ctx); err != nil {
		return err
	}
	l.log.Info("lab network up", "hosts", l.cfg.Hosts, "underlay", l.cfg.UnderlayCIDR, "api_link", l.st.APILink)
	return nil
}

func (l *Lab) hostNetns() []string {
	var ns []string
	for _, h := range l.Hosts() {
		ns = append(ns, h.Netns)
	}
	return ns
}

// addNetns creates ns with lo up and IPv6 off (no ND/MLD chatter).
func addNetns(ctx context.Context, ns string) error {
	if err := ip(ctx, "netns", "add", ns); err != nil {
		return err
	}
	if err := ip(ctx, "-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	_, err := nsExec(ctx, ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return err
}

// addAPILink creates the root<->ctl veth with a /30 picked (under a lock
// shared by all labs on the machine) from APILinkPool unless configured.
func (l *Lab) addAPILink(ctx context.Context) error {
	unlock, err := lockFile(filepath.Join(DefaultRunDirBase, ".apilink.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	link := l.cfg.APILink
	if !link.IsValid() {
		used, err := rootPrefixes(ctx)
		if err != nil {
			return err
		}
		if link, err = pickAPILink(APILinkPool, used); err != nil {
			return err
		}
	}
	rootIP, ctlIP := addN(link.Addr(), 1), addN(link.Addr(), 2)
	err = ipBatch(ctx, []string{
		"link add " + l.apiLink() + " type veth peer api0 netns " + l.ctlNS(),
		"addr add " + rootIP.String() + "/30 dev " + l.apiLink(),
		"link set " + l.apiLink() + " up",
		"-n " + l.ctlNS() + " addr add " + ctlIP.String() + "/30 dev api0",
		"-n " + l.ctlNS() + " link set api0 up",
	})
	if err != nil {
		return fmt.Errorf("creating API link: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.APILink = link
	l.st.APIURL = fmt.Sprintf("http://%s:%d", ctlIP, APIPort)
	return l.saveStateLocked()
}

// lockFile takes an exclusive flock on path (created if needed).
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// StartServer starts `hivenet server` in the control namespace, with its
// embedded etcd in RunDir/server, and waits until the API answers.
func (l *Lab) StartServer(ctx context.Context) error {
	argv := []string{l.cfg.Binary, "server",
		"--listen", fmt.Sprintf("0.0.0.0:%d", APIPort),
		"--data-dir", filepath.Join(l.cfg.RunDir, "server"),
		"--etcd-listen", l.st.EtcdURL,
		"--admin-token", l.cfg.AdminToken,
	}
	if len(l.cfg.Tokens) > 0 {
		b, err := json.Marshal(l.cfg.Tokens)
		if err != nil {
			return err
		}
		f := filepath.Join(l.cfg.RunDir, "tokens.json")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return fmt.Errorf("writing tokens file: %w", err)
		}
		argv = append(argv, "--token-file", f)
	}
	argv = append(argv, l.cfg.ServerArgs...)
	p, err := l.startProc("server", l.ctlNS(), argv...)
	if err != nil {
		return err
	}
	if err := l.api().waitReady(ctx, p, l.cfg.StartTimeout); err != nil {
		return fmt.Errorf("%w\nserver log (tail):\n%s", err, l.LogTail("server", 20))
	}
	return nil
}

// StartAgent starts the agent of host in its namespace.
func (l *Lab) StartAgent(ctx context.Context, host string) error {
	h, err := l.Host(host)
	if err != nil {
		return err
	}
	argv := []string{l.cfg.Binary, "agent",
		"--host", h.Name,
		"--tunnel-ip", h.TunnelIP.String(),
		"--etcd-endpoints", l.st.EtcdURL,
		"--state-dir", filepath.Join(l.cfg.RunDir, "state", h.Name),
		"--control-socket", ControlSocket(l.cfg.RunDir, h.Name),
		"--bpf-pin-root", PinRoot(l.cfg.RunDir),
	}
	if err := l.mountPinRoot(); err != nil {
		return err
	}
	if l.cfg.Datapath != "" {
		argv = append(argv, "--datapath", l.cfg.Datapath)
	}
	if l.IsGateway(h.Name) {
		argv = append(argv, "--bridge-mappings", l.cfg.PhysNet+":"+UplinkIf)
	}
	_, err = l.startProc(h.AgentName, h.Netns, append(argv, l.cfg.AgentArgs...)...)
	return err
}

// StopAgent stops the agent of host (SIGTERM, then SIGKILL).
func (l *Lab) StopAgent(host string) error {
	h, err := l.Host(host)
	if err != nil {
		return err
	}
	return l.stopNamed(h.AgentName)
}

// KillAgent kills the agent of host with SIGKILL, as a crash would.
func (l *Lab) KillAgent(host string) error {
	h, p, err := l.takeAgent(host)
	if err != nil {
		return err
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	<-p.done
	os.Remove(l.pidPath(h.AgentName))
	return nil
}

// WaitAgents waits until the API lists every host's agent alive.
func (l *Lab) WaitAgents(ctx context.Context, timeout time.Duration) error {
	var want []string
	for _, h := range l.Hosts() {
		want = append(want, h.Name)
	}
	err := l.api().waitAgents(ctx, want, timeout, l.deadAgent)
	if err != nil {
		var b strings.Builder
		for _, h := range l.Hosts() {
			fmt.Fprintf(&b, "\n%s log (tail):\n%s", h.AgentName, l.LogTail(h.AgentName, 10))
		}
		return fmt.Errorf("%w%s", err, b.String())
	}
	return nil
}

// deadAgent returns an error naming an agent started by this value that
// has exited.
func (l *Lab) deadAgent() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.st.Hosts {
		if p := l.procs[h.AgentName]; p != nil {
			select {
			case <-p.done:
				return fmt.Errorf("lab: agent of %s exited: %v", h.Name, p.err)
			default:
			}
		}
	}
	return nil
}

// runFiles are what the lab writes in RunDir; only these are removed, so a
// RunDir pointing at a directory with other content loses nothing else.
var runFiles = []string{"server", "state", "logs", "pids", "dhcp", "bpf", "lab.json", "lab.json.tmp", "tokens.json"}

// removeRunFiles removes the lab's files from RunDir, and RunDir itself
// when that leaves it empty.
func (l *Lab) removeRunFiles() error {
	var errs []error
	for _, f := range runFiles {
		if err := os.RemoveAll(filepath.Join(l.cfg.RunDir, f)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(l.cfg.RunDir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Down stops every process of the lab, deletes its namespaces and root link
// and removes the lab's files from RunDir (and RunDir when that empties it).
// It carries on past errors and returns them joined.
func (l *Lab) Down(ctx context.Context) error {
	err := l.Cleanup(ctx)
	if rerr := l.removeRunFiles(); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err == nil {
		l.log.Info("lab down")
	}
	return err
}

// Cleanup stops the lab's processes (this value's, those named in RunDir's
// pid files after checking /proc, and any process inside the lab's
// namespaces), deletes every namespace and root link whose name starts with
// the prefix, and keeps RunDir (logs) in place but for its pid files.
func (l *Lab) Cleanup(ctx context.Context) error {
	var errs []error
	// 1. Processes we know by name, dhclients first, the server last.
	names := l.pidNames()
	slices.SortFunc(names, func(a, b string) int { return procOrder(a) - procOrder(b) })
	for _, n := range names {
		if err := l.stopNamed(n); err != nil {
			errs = append(errs, err)
		}
	}
	// 2. Anything else inside our namespaces (iperf3, ping, stale agents).
	all, err := listNetns(ctx)
	if err != nil {
		return err
	}
	var ours []string
	for _, ns := range all {
		if strings.HasPrefix(ns, l.cfg.Prefix) {
			ours = append(ours, ns)
		}
	}
	var pids []int
	for _, ns := range ours {
		out, err := run(ctx, "ip", "netns", "pids", ns)
		if err != nil {
			continue
		}
		for f := range strings.FieldsSeq(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	for _, pid := range pids {
		if err := stopPID(pid, nil); err != nil {
			errs = append(errs, err)
		}
	}
	// The agents are gone: their pins go too (SIGTERM leaves them).
	if err := l.destroyPins(); err != nil {
		errs = append(errs, err)
	}
	// 3. Namespaces (their links go with them), VMs and hosts first.
	slices.SortFunc(ours, func(a, b string) int { return nsOrder(l.cfg.Prefix, a) - nsOrder(l.cfg.Prefix, b) })
	for _, ns := range ours {
		// Already gone (a concurrent cleanup) is fine.
		if err := ip(ctx, "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	// 4. Root links left over (a veth whose peer namespace vanished).
	links, err := rootLinks(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ln := range links {
		if strings.HasPrefix(ln, l.cfg.Prefix) {
			// A veth goes away with its peer's namespace, asynchronously.
			if err := ip(ctx, "link", "del", ln); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	if len(ours) > 0 || len(pids) > 0 {
		l.log.Info("lab cleaned", "netns", len(ours), "stray_processes", len(pids))
	}
	return errors.Join(errs...)
}

// pidNames lists the process names with a pid file or started by us.
func (l *Lab) pidNames() []string {
	seen := map[string]bool{}
	l.mu.Lock()
	for n := range l.procs {
		seen[n] = true
	}
	l.mu.Unlock()
	files, _ := filepath.Glob(filepath.Join(l.cfg.RunDir, "pids", "*.pid"))
	for _, f := range files {
		seen[strings.TrimSuffix(filepath.Base(f), ".pid")] = true
	}
	return slices.Sorted(func(yield func(string) bool) {
		for n := range seen {
			if !yield(n) {
				return
			}
		}
	})
}

// procOrder: dhclients, then agents, then anything else, the server last.
func procOrder(name string) int {
	switch {
	case strings.HasPrefix(name, "dhclient-"):
		return 0
	case strings.HasPrefix(name, "agent-"):
		return 1
	case name == "server":
		return 3
	}
	return 2
}

// nsOrder: VMs, hosts, ctl, underlay last.
func nsOrder(prefix, ns string) int {
	switch strings.TrimPrefix(ns, prefix) {
	case "ul":
		return 3
	case "ctl":
		return 2
	case "out":
		return 1
	}
	if strings.HasPrefix(strings.TrimPrefix(ns, prefix), "host") {
		return 1
	}
	return 0
}

func needRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("lab: needs root (network namespaces)")
	}
	return nil
}
