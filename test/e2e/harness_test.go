// Package e2e runs hivenet end to end: the real binary (server, agents) in a
// namespace lab (internal/lab) with VMs running the real dhclient and ping.
//
// Every test is named TestPrivileged*, builds its own lab with the prefix
// "hle-" (-e2e.prefix; tests run one after the other), and tears it down in
// t.Cleanup, dumping the server's and agents' logs when it failed. They need root, ip,
// dhclient and ping; without root they skip. $HIVENET_E2E_BIN runs a
// prebuilt hivenet instead of building ./cmd/hivenet.
package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hivenet/internal/lab"
)

// prefix is the namespace/link prefix of every lab these tests build;
// runs that overlap in time (e.g. one per datapath) need distinct ones.
var prefix = "hle-"

var (
	binary   string // the hivenet binary built by TestMain
	buildErr error
	datapath = flag.String("datapath", "", "passed to the agents as --datapath: userspace or ebpf (empty: the agents' default, ebpf; scripts/test.sh names each)")
	_        = flagPrefix()
	keepLogs = flag.Bool("e2e.logs", false, "print the server's and agents' logs even when a test passes")
	raceBin  = flag.Bool("e2e.race", os.Getenv("HIVENET_E2E_RACE") != "", "build hivenet with -race; a data race in any process fails the test (also $HIVENET_E2E_RACE)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // tests skip themselves
		}
		dir, err := os.MkdirTemp("", "hivenet-e2e-")
		if err != nil {
			buildErr = err
			return m.Run()
		}
		defer os.RemoveAll(dir)
		if b := os.Getenv("HIVENET_E2E_BIN"); b != "" {
			binary = b // a prebuilt binary (e.g. of a clean checkout)
			return m.Run()
		}
		binary = filepath.Join(dir, "hivenet")
		buildErr = buildHivenet(binary)
		return m.Run()
	}()
	os.Exit(code)
}

// buildHivenet builds ./cmd/hivenet of this module into out.
func buildHivenet(out string) error {
	modRoot, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	args := []string{"build", "-o", out}
	if *raceBin {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/hivenet")...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(modRoot)))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/hivenet: %w\n%s", err, b)
	}
	return nil
}

func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "dhclient", "ping", "traceroute", "iperf3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s on PATH (install iproute2, isc-dhcp-client, iputils-ping, traceroute, iperf3): %v", tool, err)
		}
	}
	if buildErr != nil {
		t.Fatalf("building hivenet: %v", buildErr)
	}
}

// env is one test's lab plus helpers bound to t.
type env struct {
	ctx context.Context
	lab *lab.Lab
	api *lab.API
}

// newEnv builds and starts a lab of n hosts whose server also accepts a
// member token "<project>-token" for each of projects; the lab is torn down
// at cleanup, after its logs are dumped if the test failed.
func newEnv(t *testing.T, hosts int, projects ...string) *env {
	t.Helper()
	return newEnvWith(t, envOpts{hosts: hosts, projects: projects})
}

// envOpts configures newEnvWith.
type envOpts struct {
	hosts    int
	projects []string // a member token "<project>-token" each
	gateways []string // hosts wired to the outside namespace (lab.Config.Gateways)
}

// newEnvWith is newEnv with gateways: with o.gateways the lab has the
// outside namespace and those hosts' agents bind ext0 to physnet1.
func newEnvWith(t *testing.T, o envOpts) *env {
	t.Helper()
	requireLab(t)
	hosts, projects := o.hosts, o.projects
	var tokens []lab.Token
	for _, p := range projects {
		tokens = append(tokens, lab.Token{Token: p + "-token", ProjectID: p, Role: "member"})
	}
	l, err := lab.New(lab.Config{
		Prefix: prefix, Hosts: hosts, RunDir: filepath.Join(t.TempDir(), "lab"),
		Binary: binary, Datapath: *datapath, Tokens: tokens, Gateways: o.gateways,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range l.Logs() {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
				t.Errorf("data race reported in %s", f)
			}
		}
		if t.Failed() || *keepLogs {
			dumpLogs(t, l)
		}
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	start := time.Now()
	if err := l.Up(t.Context()); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up with %d hosts in %v", hosts, time.Since(start).Round(time.Millisecond))
	return &env{ctx: t.Context(), lab: l, api: l.API()}
}

func dumpLogs(t *testing.T, l *lab.Lab) {
	for _, f := range l.Logs() {
		name := strings.TrimSuffix(filepath.Base(f), ".log")
		t.Logf("==== %s (last 60 lines of %s) ====\n%s", name, f, l.LogTail(name, 60))
	}
}

// as returns the API client of project's member token when the lab has
// one, else the admin's.
func (e *env) as(project string) *lab.API {
	if api, err := e.lab.ProjectAPI(project); err == nil {
		return api
	}
	return e.api
}

// network creates a network with one IPv4 subnet in project: as the
// project's member when the lab has its token, else as admin on its behalf.
func (e *env) network(t *testing.T, name, project, cidr string) (lab.Network, lab.Subnet) {
	t.Helper()
	api := e.as(project)
	req := lab.Network{Name: name}
	if api == e.api {
		req.ProjectID = project
	}
	n, err := api.CreateNetwork(e.ctx, req)
	if err != nil {
		t.Fatalf("create network %s: %v", name, err)
	}
	if n.ProjectID != project {
		t.Fatalf("network %s belongs to project %q, want %q", name, n.ProjectID, project)
	}
	s, err := api.CreateSubnet(e.ctx, lab.Subnet{Name: name + "-v4", NetworkID: n.ID, CIDR: cidr})
	if err != nil {
		t.Fatalf("create subnet %s: %v", cidr, err)
	}
	return n, s
}

// vm creates a port on (n, s) (as n's project when the lab has its token)
// with fixed address ip when valid, binds it to host as admin (as Nova
// does), attaches VM name to it and runs dhclient; it returns the port and
// the lease, checking the lease is the port's address.
func (e *env) vm(t *testing.T, name, host string, n lab.Network, s lab.Subnet, ip netip.Addr) (lab.Port, lab.Lease) {
	t.Helper()
	p := lab.Port{Name: name, NetworkID: n.ID, DeviceOwner: "compute:e2e", DeviceID: name}
	if ip.IsValid() {
		p.FixedIPs = []lab.FixedIP{{SubnetID: s.ID, IPAddress: ip.String()}}
	}
	p, err := e.as(n.ProjectID).CreatePort(e.ctx, p)
	if err != nil {
		t.Fatalf("create port %s: %v", name, err)
	}
	if p, err = e.api.UpdatePort(e.ctx, p.ID, map[string]any{"binding:host_id": host}); err != nil {
		t.Fatalf("bind port %s to %s: %v", name, host, err)
	}
	if err := e.lab.AddVM(e.ctx, name, host, p.InterfaceName(), p.MACAddress); err != nil {
		t.Fatal(err)
	}
	lease, err := e.lab.DHCP(e.ctx, name)
	if err != nil {
		t.Fatalf("DHCP in %s: %v", name, err)
	}
	if len(p.FixedIPs) == 0 || lease.Addr.Addr().String() != p.FixedIPs[0].IPAddress {
		t.Fatalf("%s leased %s, want the port's fixed IP %+v", name, lease.Addr, p.FixedIPs)
	}
	return p, lease
}

// addr returns the leased address of a VM.
func addr(l lab.Lease) netip.Addr { return l.Addr.Addr() }

// waitReach pings to from VM from until a reply comes, failing after within.
func (e *env) waitReach(t *testing.T, from string, to netip.Addr, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		ok, _, err := e.lab.Ping(e.ctx, from, to, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return time.Since(start)
		}
	}
	t.Fatalf("%s cannot reach %s within %v", from, to, within)
	return 0
}

// noReply checks that count pings from VM from to addr all go unanswered.
func (e *env) noReply(t *testing.T, from string, to netip.Addr, count int) {
	t.Helper()
	r, err := e.lab.PingDetail(e.ctx, from, to, count, 200*time.Millisecond, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received > 0 {
		t.Errorf("%s -> %s: %d of %d echoes answered, want none", from, to, r.Received, r.Sent)
	}
}

// icmpInEchos reads the ICMP InEchos counter of a VM's namespace: how many
// echo requests its stack received.
func (e *env) icmpInEchos(t *testing.T, vm string) int {
	t.Helper()
	out, err := e.lab.Exec(e.ctx, vm, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	n, err := snmpField(out, "Icmp", "InEchos")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// snmpField returns field of protocol proto in /proc/net/snmp text (a
// header line and a value line per protocol).
func snmpField(snmp, proto, field string) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(snmp))
	var header []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != proto+":" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, h := range header {
			if h == field && i < len(f) {
				return strconv.Atoi(f[i])
			}
		}
	}
	return 0, fmt.Errorf("no %s %s in /proc/net/snmp", proto, field)
}

// flagPrefix registers -e2e.prefix (default "hle-") over prefix.
func flagPrefix() bool {
	flag.StringVar(&prefix, "e2e.prefix", prefix, "namespace/link prefix of the labs (distinct per concurrent run)")
	return true
}
