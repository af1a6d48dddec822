package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"hivenet/internal/lab"
)

// TestPrivilegedGatewayFailover: a gateway host dies and the connections
// it carried go on through the other one. SNAT and NAT state is pushed to
// every uplink host when a connection starts, so the survivor translates
// the replies of connections it never saw; when the dead host's lease
// ends its uplink goes, and the VM's host re-simulates the flows that
// tunnelled to it.
//
//	v1@host1 ── router r1 (SNAT) ──┬─ uplink host2 ─┐
//	                               └─ uplink host3 ─┴─ outside (internet)
//
// The gateway dies as a host would: its agent is killed and its underlay
// and uplink interfaces go down (with the eBPF datapath the pinned
// programs would otherwise keep forwarding without an agent).
func TestPrivilegedGatewayFailover(t *testing.T) {
	e := newEnvWith(t, envOpts{hosts: 3, projects: []string{"alpha"}, gateways: []string{"host2", "host3"}})
	_, n, s, _ := e.gatewayRouter(t, "alpha", "10.63.0.0/24")
	// Both gateways' uplinks bound (published to every host with their
	// bindings) before the connections start.
	for _, g := range []string{"host2", "host3"} {
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(e.lab.LogTail("agent-"+g, 200), "uplink bound") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no uplink bound after 15 s", g)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	inet := e.internetVM(t, n, s, "10.63.0.11")

	// The flow hash spreads the connections over both gateways; the one
	// that carried more of them dies.
	const conns = 16
	cs := e.openEcho(t, "v1", ap(inet, 8080), conns)
	out := e.lab.OutsideNetns()
	rx2, rx3 := linkRxPackets(t, out, "host2"), linkRxPackets(t, out, "host3")
	for i, c := range cs {
		if err := c.echo(fmt.Sprintf("before %d", i), 5*time.Second); err != nil {
			t.Fatalf("connection %d before the failure: %v", i, err)
		}
	}
	d2, d3 := linkRxPackets(t, out, "host2")-rx2, linkRxPackets(t, out, "host3")-rx3
	t.Logf("one echo on each connection: %d frames out by host2, %d by host3", d2, d3)
	if d2 == 0 || d3 == 0 {
		t.Errorf("frames out by host2 %d, host3 %d: the connections should leave by both gateways", d2, d3)
	}
	victim := "host2"
	if d3 > d2 {
		victim = "host3"
	}

	// The victim dies.
	hv, err := e.lab.Host(victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.lab.KillAgent(victim); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"ul0", lab.UplinkIf} {
		if b, err := exec.Command("ip", "-n", hv.Netns, "link", "set", l, "down").CombinedOutput(); err != nil {
			t.Fatalf("taking %s of %s down: %v: %s", l, victim, err, b)
		}
	}
	died := time.Now()

	// Every connection carries data again within the deadline (the lease
	// TTL, re-simulation, then TCP's retransmission backoff).
	const deadline = 20 * time.Second
	var wg sync.WaitGroup
	back := make([]time.Duration, len(cs))
	errs := make([]error, len(cs))
	for i, c := range cs {
		wg.Go(func() {
			errs[i] = c.echo(fmt.Sprintf("after %d", i), deadline)
			back[i] = time.Since(died)
		})
	}
	wg.Wait()
	var worst time.Duration
	for i := range cs {
		if errs[i] != nil {
			t.Errorf("connection %d after %s died: %v", i, victim, errs[i])
		}
		worst = max(worst, back[i])
	}
	t.Logf("%d connections over 2 gateways, %s died: all carried data again within %v", conns, victim, worst.Round(time.Millisecond))

	// New connections go out through the survivor.
	if _, err := e.lab.DialTCP(e.ctx, "v1", ap(inet, 8080), 5*time.Second); err != nil {
		t.Errorf("new connection after the failover: %v", err)
	}
}

// echoConn is a connection to a lab.ServeTCP server past its banner: a
// line written comes back.
type echoConn struct {
	net.Conn
	r *bufio.Reader
}

func newEchoConn(c net.Conn) *echoConn { return &echoConn{Conn: c, r: bufio.NewReader(c)} }

// echo writes line and waits up to within for it to come back.
func (c *echoConn) echo(line string, within time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(within))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echo %q, want %q", got, line)
	}
	return nil
}

// linkRxPackets reads the received-packets counter of link in namespace
// ns.
func linkRxPackets(t *testing.T, ns, link string) uint64 {
	t.Helper()
	path := "/sys/class/net/" + link + "/statistics/rx_packets"
	b, err := exec.Command("ip", "netns", "exec", ns, "cat", path).Output()
	if err != nil {
		t.Fatalf("reading %s in %s: %v", path, ns, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s in %s: %q: %v", path, ns, b, err)
	}
	return v
}

// TestPrivilegedGatewayStateLost: the only gateway's agent dies and comes
// back without its flow-state tables (the file it saves every 10 s is
// gone too: a rebuilt host, or a kill before the first save), while SNAT
// connections through it are open. The new agent asks the other hosts
// for their state (resync), so the replies of the old connections are
// translated again once its re-simulation replaces the flows it adopted.
func TestPrivilegedGatewayStateLost(t *testing.T) {
	e := newEnvWith(t, envOpts{hosts: 2, projects: []string{"alpha"}, gateways: []string{"host2"}})
	_, n, s, _ := e.gatewayRouter(t, "alpha", "10.64.0.0/24")
	inet := e.internetVM(t, n, s, "10.64.0.11")
	const conns = 8
	cs := e.openEcho(t, "v1", ap(inet, 8080), conns)

	if err := e.lab.KillAgent("host2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(e.lab.RunDir(), "state", "host2", "flowstate")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := e.lab.StartAgent(e.ctx, "host2"); err != nil {
		t.Fatal(err)
	}
	// Past the restart grace (5 s), the adopted flows are gone and every
	// reply is simulated again at host2 with the state it has now.
	time.Sleep(7 * time.Second)
	for i, c := range cs {
		if err := c.echo(fmt.Sprintf("after %d", i), 10*time.Second); err != nil {
			t.Errorf("connection %d after host2's agent came back without its tables: %v", i, err)
		}
	}
	if _, err := e.lab.DialTCP(e.ctx, "v1", ap(inet, 8080), 5*time.Second); err != nil {
		t.Errorf("new connection after the restart: %v", err)
	}
}

// gatewayRouter creates the external network "public", the network
// "inner" with cidr in project and router r1 joining them with SNAT on
// its gateway; it returns the external network, the inner network and
// subnet, and the router as the gateway left it.
func (e *env) gatewayRouter(t *testing.T, project, cidr string) (lab.ExternalNetwork, lab.Network, lab.Subnet, lab.Router) {
	t.Helper()
	ext, err := e.lab.CreateExternalNetwork(e.ctx, "public")
	if err != nil {
		t.Fatal(err)
	}
	n, s := e.network(t, "inner", project, cidr)
	r := e.router(t, project, "r1", s)
	r, err = e.as(project).UpdateRouter(e.ctx, r.ID, map[string]any{"external_gateway_info": map[string]any{"network_id": ext.Network.ID}})
	if err != nil {
		t.Fatalf("set router gateway: %v", err)
	}
	return ext, n, s, r
}

// openEcho opens n connections from VM namespace vm to a lab.ServeTCP
// server at dst, closed when the test ends.
func (e *env) openEcho(t *testing.T, vm string, dst netip.AddrPort, n int) []*echoConn {
	t.Helper()
	var cs []*echoConn
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	for range n {
		c, _, err := e.lab.OpenTCP(e.ctx, vm, dst, 5*time.Second)
		if err != nil {
			t.Fatalf("connection to %s: %v", dst, err)
		}
		cs = append(cs, newEchoConn(c))
	}
	return cs
}

// internetVM starts VM v1 on host1 at ip on network n (subnet s), an
// echo server on the internet (port 8080 of the outside namespace's
// address behind the upstream router) and waits until v1 reaches it;
// it returns that address.
func (e *env) internetVM(t *testing.T, n lab.Network, s lab.Subnet, ip string) netip.Addr {
	t.Helper()
	e.vmWith(t, vmSpec{name: "v1", host: "host1", net: n, sub: s, ip: netip.MustParseAddr(ip)})
	inet := e.lab.Internet()
	e.serve(t, "out", ap(inet, 8080), "internet")
	e.waitReach(t, "v1", inet, 10*time.Second)
	return inet
}
