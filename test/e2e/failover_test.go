package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
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
	ext, err := e.lab.CreateExternalNetwork(e.ctx, "public")
	if err != nil {
		t.Fatal(err)
	}
	n, s := e.network(t, "inner", "alpha", "10.63.0.0/24")
	r := e.router(t, "alpha", "r1", s)
	if _, err := e.as("alpha").UpdateRouter(e.ctx, r.ID, map[string]any{"external_gateway_info": map[string]any{"network_id": ext.Network.ID}}); err != nil {
		t.Fatalf("set router gateway: %v", err)
	}
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
	e.vmWith(t, vmSpec{name: "v1", host: "host1", net: n, sub: s, ip: netip.MustParseAddr("10.63.0.11")})
	inet := e.lab.Internet()
	e.serve(t, "out", ap(inet, 8080), "internet")
	e.waitReach(t, "v1", inet, 10*time.Second)

	// The flow hash spreads the connections over both gateways; the one
	// that carried more of them dies.
	const conns = 16
	var cs []*echoConn
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	for range conns {
		c, _, err := e.lab.OpenTCP(e.ctx, "v1", ap(inet, 8080), 5*time.Second)
		if err != nil {
			t.Fatalf("connection to the internet: %v", err)
		}
		cs = append(cs, newEchoConn(c))
	}
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
