package e2e

import (
	"bufio"
	"errors"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"hivenet/internal/lab"
)

// TestPrivilegedDHCPAddresses: every VM gets its port's address, prefix,
// gateway and the network's MTU from the agent on its host.
//
//	      net "n1" 10.20.0.0/24 (gateway 10.20.0.1)
//	[host1] vm1 .11    [host2] vm2 .12    [host3] vm3 (allocated)
//	   └──── VXLAN over underlay 10.250.0.0/24 ────┘
func TestPrivilegedDHCPAddresses(t *testing.T) {
	e := newEnv(t, 3)
	n, s := e.network(t, "n1", "alpha", "10.20.0.0/24")
	tests := []struct {
		name, host string
		ip         netip.Addr
	}{
		{name: "vm1", host: "host1", ip: netip.MustParseAddr("10.20.0.11")},
		{name: "vm2", host: "host2", ip: netip.MustParseAddr("10.20.0.12")},
		{name: "vm3", host: "host3"}, // allocated by the server
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, lease := e.vm(t, tt.name, tt.host, n, s, tt.ip)
			if tt.ip.IsValid() && addr(lease) != tt.ip {
				t.Errorf("lease %s, want %s", lease.Addr, tt.ip)
			}
			if lease.Addr.Bits() != 24 {
				t.Errorf("lease prefix /%d, want /24", lease.Addr.Bits())
			}
			if want := netip.MustParseAddr("10.20.0.1"); lease.Router != want {
				t.Errorf("lease router %s, want %s", lease.Router, want)
			}
			if lease.MTU == 0 || (n.MTU != 0 && lease.MTU != n.MTU) {
				t.Errorf("lease MTU %d, want the network's %d", lease.MTU, n.MTU)
			}
			t.Logf("%s on %s: %s via %s mtu %d in %v", tt.name, tt.host, lease.Addr, lease.Router, lease.MTU, lease.Took.Round(time.Millisecond))
		})
	}
}

// TestPrivilegedReachability: all VMs of one network reach each other, on
// the same host and across hosts.
//
//	                 net "n1" 10.20.0.0/24
//	[host1] a .11, b .12        [host2] c .13        [host3] d .14
func TestPrivilegedReachability(t *testing.T) {
	e := newEnv(t, 3)
	n, s := e.network(t, "n1", "alpha", "10.20.0.0/24")
	vms := []struct {
		name, host string
		ip         netip.Addr
	}{
		{"a", "host1", netip.MustParseAddr("10.20.0.11")},
		{"b", "host1", netip.MustParseAddr("10.20.0.12")},
		{"c", "host2", netip.MustParseAddr("10.20.0.13")},
		{"d", "host3", netip.MustParseAddr("10.20.0.14")},
	}
	for _, v := range vms {
		e.vm(t, v.name, v.host, n, s, v.ip)
	}
	for _, from := range vms {
		for _, to := range vms {
			if from == to {
				continue
			}
			t.Run(from.name+"->"+to.name, func(t *testing.T) {
				took := e.waitReach(t, from.name, to.ip, 10*time.Second)
				ok, rtt, err := e.lab.Ping(e.ctx, from.name, to.ip, 3, 3*time.Second)
				if err != nil || !ok {
					t.Errorf("steady ping %s -> %s: ok=%v err=%v", from.name, to.ip, ok, err)
				}
				t.Logf("%s(%s) -> %s(%s): first reply after %v, median RTT %v", from.name, from.host, to.name, to.host, took.Round(time.Millisecond), rtt)
			})
		}
	}
}

// TestPrivilegedIsolationOverlappingCIDRs: two projects' networks use the
// same CIDR, even the same address, on the same hosts, and stay apart. Each
// tenant creates its network, subnet and ports with its own member token
// and sees only its own; the admin binds the ports.
//
//	project alpha, net "red"  10.30.0.0/24: r1 .11 @host1   r2 .12 @host2
//	project beta,  net "blue" 10.30.0.0/24: b1 .11 @host1   b2 .13 @host3
//	host1 carries both networks, r1 and b1 share the address 10.30.0.11.
func TestPrivilegedIsolationOverlappingCIDRs(t *testing.T) {
	e := newEnv(t, 3, "alpha", "beta")
	red, redSub := e.network(t, "red", "alpha", "10.30.0.0/24")
	blue, blueSub := e.network(t, "blue", "beta", "10.30.0.0/24")
	r1, _ := e.vm(t, "r1", "host1", red, redSub, netip.MustParseAddr("10.30.0.11"))
	r2, _ := e.vm(t, "r2", "host2", red, redSub, netip.MustParseAddr("10.30.0.12"))
	b1, _ := e.vm(t, "b1", "host1", blue, blueSub, netip.MustParseAddr("10.30.0.11"))
	e.vm(t, "b2", "host3", blue, blueSub, netip.MustParseAddr("10.30.0.13"))
	_ = r2
	t.Run("each project sees only its own network", func(t *testing.T) {
		for _, c := range []struct {
			project, want, other string
		}{{"alpha", red.ID, blue.ID}, {"beta", blue.ID, red.ID}} {
			nets, err := e.as(c.project).Networks(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(nets) != 1 || nets[0].ID != c.want {
				t.Errorf("project %s lists %+v, want only its network %s", c.project, nets, c.want)
			}
			var ae *lab.APIError
			err = e.as(c.project).Do(e.ctx, "GET", "/v2.0/networks/"+c.other, nil, nil)
			if !errors.As(err, &ae) || ae.Status != 404 {
				t.Errorf("project %s GET other project's network: %v, want 404", c.project, err)
			}
		}
	})

	e.waitReach(t, "r2", netip.MustParseAddr("10.30.0.11"), 10*time.Second)
	e.waitReach(t, "b2", netip.MustParseAddr("10.30.0.11"), 10*time.Second)
	tests := []struct {
		name    string
		from    string
		to      netip.Addr
		wantMAC string // reached, and this MAC answered ARP; "" = no reply
	}{
		{name: "r2 reaches r1, not b1, at the shared address", from: "r2", to: netip.MustParseAddr("10.30.0.11"), wantMAC: r1.MACAddress},
		{name: "b2 reaches b1, not r1, at the shared address", from: "b2", to: netip.MustParseAddr("10.30.0.11"), wantMAC: b1.MACAddress},
		{name: "red cannot reach blue's .13", from: "r1", to: netip.MustParseAddr("10.30.0.13")},
		{name: "red on host2 cannot reach blue's .13", from: "r2", to: netip.MustParseAddr("10.30.0.13")},
		{name: "blue cannot reach red's .12", from: "b1", to: netip.MustParseAddr("10.30.0.12")},
		{name: "blue on host3 cannot reach red's .12", from: "b2", to: netip.MustParseAddr("10.30.0.12")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantMAC == "" {
				e.noReply(t, tt.from, tt.to, 3)
				return
			}
			ok, _, err := e.lab.Ping(e.ctx, tt.from, tt.to, 3, 3*time.Second)
			if err != nil || !ok {
				t.Fatalf("ping %s -> %s: ok=%v err=%v", tt.from, tt.to, ok, err)
			}
			mac, err := e.lab.Neighbor(e.ctx, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.EqualFold(mac, tt.wantMAC) {
				t.Errorf("%s's ARP entry for %s = %q, want %q", tt.from, tt.to, mac, tt.wantMAC)
			}
		})
	}
	// Broadcast stays inside a network too: b1 and r1 share host1 and an
	// address; an ARP probe from b2 for red's .12 must get no answer.
	t.Run("no ARP answer across networks", func(t *testing.T) {
		out, err := e.lab.Exec(e.ctx, "b2", "ip", "-4", "neigh", "show", "10.30.0.12")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "lladdr") {
			t.Errorf("b2 resolved red's 10.30.0.12: %q", out)
		}
	})
}

// TestPrivilegedDeletedPortStops: once the API deletes a port, traffic to
// its VM stops within a second.
//
//	net "n1" 10.20.0.0/24:  [host1] a .11  ── ping -i 0.05 ──▶  [host2] b .12 (port deleted)
func TestPrivilegedDeletedPortStops(t *testing.T) {
	e := newEnv(t, 2)
	n, s := e.network(t, "n1", "alpha", "10.20.0.0/24")
	e.vm(t, "a", "host1", n, s, netip.MustParseAddr("10.20.0.11"))
	pb, _ := e.vm(t, "b", "host2", n, s, netip.MustParseAddr("10.20.0.12"))
	e.waitReach(t, "a", netip.MustParseAddr("10.20.0.12"), 10*time.Second)

	// Ping every 50 ms for 4 s with timestamps, delete b's port after 1 s.
	vmA, _ := e.lab.VM("a")
	cmd := exec.CommandContext(e.ctx, "ip", "netns", "exec", vmA.Netns, "ping", "-n", "-D", "-i", "0.05", "-w", "4", "10.20.0.12")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := e.api.DeletePort(e.ctx, pb.ID); err != nil {
		t.Fatalf("delete port: %v", err)
	}
	deleted := time.Now()
	var replies []time.Time
	var raw strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		raw.WriteString(sc.Text() + "\n")
		if ts, ok := pingTimestamp(sc.Text()); ok {
			replies = append(replies, ts)
		}
	}
	cmd.Wait()
	if len(replies) == 0 {
		t.Fatalf("no replies at all, even before the delete; ping said:\n%s", raw.String())
	}
	last := replies[len(replies)-1]
	after := last.Sub(deleted)
	t.Logf("%d replies; last one %v after DELETE returned", len(replies), after.Round(time.Millisecond))
	if after > time.Second {
		t.Errorf("traffic still flowed %v after the port was deleted, want < 1s", after.Round(time.Millisecond))
	}
	// The measurement only means something if traffic flowed up to the delete.
	if gap := deleted.Sub(last); gap > 300*time.Millisecond {
		t.Errorf("replies stopped %v before the delete; ping said:\n%s", gap.Round(time.Millisecond), raw.String())
	}
	e.noReply(t, "a", netip.MustParseAddr("10.20.0.12"), 3)
}

// pingTimestamp parses a `ping -D` reply line "[1732406400.123456] 64 bytes
// from ...".
func pingTimestamp(line string) (time.Time, bool) {
	if !strings.Contains(line, "bytes from") || !strings.HasPrefix(line, "[") {
		return time.Time{}, false
	}
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(line[1:end], 64)
	if err != nil {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// TestPrivilegedSpoofingDropped: a VM sending from an address or a MAC that
// is not its port's gets nothing through; back to its own, it works again;
// with an allowed address pair, or port security off, the same spoofed
// source passes.
//
//	net "n1" 10.20.0.0/24:  [host1] a .11 (spoofs .99 / 02:de:ad:be:ef:01)  ──▶  [host2] b .12
//	                        b's ICMP InEchos counter tells what arrived; b's group admits ICMP from the subnet.
func TestPrivilegedSpoofingDropped(t *testing.T) {
	e := newEnv(t, 2, "alpha")
	n, s := e.network(t, "n1", "alpha", "10.20.0.0/24")
	pa, _ := e.vm(t, "a", "host1", n, s, netip.MustParseAddr("10.20.0.11"))
	// b's security group admits ICMP from the whole subnet, so what drops a
	// spoofed source below is a's port security, not b's group (a source
	// outside every group is not a member of the default group).
	icmp := e.group(t, "alpha", "icmp-subnet", lab.SecurityGroupRule{Protocol: "icmp", RemoteIPPrefix: "10.20.0.0/24"})
	e.vmWith(t, vmSpec{name: "b", host: "host2", net: n, sub: s, ip: netip.MustParseAddr("10.20.0.12"), sgs: []string{icmp.ID}})
	bIP := netip.MustParseAddr("10.20.0.12")
	e.waitReach(t, "a", bIP, 10*time.Second)

	before := e.icmpInEchos(t, "b")
	if ok, _, _ := e.lab.Ping(e.ctx, "a", bIP, 2, 2*time.Second); !ok {
		t.Fatal("control ping failed")
	}
	if got := e.icmpInEchos(t, "b"); got < before+2 {
		t.Fatalf("control: b's InEchos %d -> %d, want +2 (counter not usable)", before, got)
	}

	t.Run("spoofed source IP", func(t *testing.T) {
		if _, err := e.lab.Exec(e.ctx, "a", "ip", "addr", "add", "10.20.0.99/32", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		before := e.icmpInEchos(t, "b")
		if _, err := e.lab.Exec(e.ctx, "a", "ping", "-n", "-c", "5", "-i", "0.1", "-W", "1", "-I", "10.20.0.99", bIP.String()); err == nil {
			t.Errorf("ping from the spoofed 10.20.0.99 got a reply")
		}
		if got := e.icmpInEchos(t, "b"); got != before {
			t.Errorf("b received %d echo requests from the spoofed source, want 0", got-before)
		}
		e.lab.Exec(e.ctx, "a", "ip", "addr", "del", "10.20.0.99/32", "dev", "eth0")
	})
	t.Run("spoofed source MAC", func(t *testing.T) {
		if _, err := e.lab.Exec(e.ctx, "a", "ip", "link", "set", "eth0", "address", "02:de:ad:be:ef:01"); err != nil {
			t.Fatal(err)
		}
		before := e.icmpInEchos(t, "b")
		e.noReply(t, "a", bIP, 5)
		if got := e.icmpInEchos(t, "b"); got != before {
			t.Errorf("b received %d echo requests from the spoofed MAC, want 0", got-before)
		}
		if _, err := e.lab.Exec(e.ctx, "a", "ip", "link", "set", "eth0", "address", pa.MACAddress); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("own addresses work again", func(t *testing.T) {
		e.waitReach(t, "a", bIP, 5*time.Second)
	})

	// The drops above come from port security: an allowed address pair, or
	// port security off, lets the same traffic through.
	spoofPasses := func(t *testing.T) {
		t.Helper()
		if _, err := e.lab.Exec(e.ctx, "a", "ip", "addr", "replace", "10.20.0.99/32", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		defer e.lab.Exec(e.ctx, "a", "ip", "addr", "del", "10.20.0.99/32", "dev", "eth0")
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := e.lab.Exec(e.ctx, "a", "ping", "-n", "-c", "1", "-W", "1", "-I", "10.20.0.99", bIP.String())
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ping from 10.20.0.99 still dropped 5s after the port update")
			}
		}
	}
	t.Run("allowed address pair lets the extra address through", func(t *testing.T) {
		if _, err := e.api.UpdatePort(e.ctx, pa.ID, map[string]any{
			"allowed_address_pairs": []map[string]string{{"ip_address": "10.20.0.99"}},
		}); err != nil {
			t.Fatal(err)
		}
		spoofPasses(t)
	})
	t.Run("port security off lets any source through", func(t *testing.T) {
		if _, err := e.api.UpdatePort(e.ctx, pa.ID, map[string]any{
			"allowed_address_pairs": []any{}, "port_security_enabled": false, "security_groups": []any{},
		}); err != nil {
			t.Fatal(err)
		}
		spoofPasses(t)
	})
}

// TestPrivilegedAgentRestart: an agent killed (SIGKILL, as a crash) and
// started again brings its VM's connectivity back.
//
//	net "n1" 10.20.0.0/24:  [host1] a .11  ──▶  [host2] b .12   (host2's agent: kill -9, start)
func TestPrivilegedAgentRestart(t *testing.T) {
	e := newEnv(t, 2)
	n, s := e.network(t, "n1", "alpha", "10.20.0.0/24")
	e.vm(t, "a", "host1", n, s, netip.MustParseAddr("10.20.0.11"))
	e.vm(t, "b", "host2", n, s, netip.MustParseAddr("10.20.0.12"))
	bIP := netip.MustParseAddr("10.20.0.12")
	e.waitReach(t, "a", bIP, 10*time.Second)

	if err := e.lab.KillAgent("host2"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := e.lab.StartAgent(e.ctx, "host2"); err != nil {
		t.Fatal(err)
	}
	back := e.waitReach(t, "a", bIP, 20*time.Second)
	t.Logf("connectivity back %v after kill -9 + restart", time.Since(killed).Round(time.Millisecond))
	_ = back
	if err := e.lab.WaitAgents(e.ctx, 20*time.Second); err != nil {
		t.Errorf("agents alive after restart: %v", err)
	}
	// And the other direction, including a fresh DHCP exchange on host2.
	e.waitReach(t, "b", netip.MustParseAddr("10.20.0.11"), 10*time.Second)
	if _, err := e.lab.DHCP(e.ctx, "b"); err != nil {
		t.Errorf("DHCP after agent restart: %v", err)
	}
}

// TestPrivilegedFloodScope: known unicast goes only to the destination's
// host; broadcast reaches every host with a port on the network and no
// other. VXLAN arrives over UDP, so each host's UDP InDatagrams counter
// says what reached it.
//
//	net "n1" 10.20.0.0/24:  [host1] vm1 ──▶ [host2] vm2, [host3] vm4
//	net "n2" 10.21.0.0/24:                                   [host4] vm3
func TestPrivilegedFloodScope(t *testing.T) {
	e := newEnv(t, 4)
	n1, s1 := e.network(t, "n1", "alpha", "10.20.0.0/24")
	n2, s2 := e.network(t, "n2", "alpha", "10.21.0.0/24")
	e.vm(t, "vm1", "host1", n1, s1, netip.MustParseAddr("10.20.0.11"))
	e.vm(t, "vm2", "host2", n1, s1, netip.MustParseAddr("10.20.0.12"))
	e.vm(t, "vm3", "host4", n2, s2, netip.MustParseAddr("10.21.0.13"))
	e.waitReach(t, "vm1", netip.MustParseAddr("10.20.0.12"), 10*time.Second)

	udpIn := func(host string) int {
		t.Helper()
		out, err := e.lab.Exec(e.ctx, host, "cat", "/proc/net/snmp")
		if err != nil {
			t.Fatal(err)
		}
		n, err := snmpField(out, "Udp", "InDatagrams")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Known unicast goes straight to the destination's host: vm1 -> vm2
	// must not reach host3, which has a port on n1 too (vm4).
	e.vm(t, "vm4", "host3", n1, s1, netip.MustParseAddr("10.20.0.14"))
	e.waitReach(t, "vm4", netip.MustParseAddr("10.20.0.11"), 10*time.Second)
	e.waitReach(t, "vm1", netip.MustParseAddr("10.20.0.12"), 10*time.Second)
	t.Run("unicast reaches only the destination's host", func(t *testing.T) {
		h2, h3 := udpIn("host2"), udpIn("host3")
		r, err := e.lab.PingDetail(e.ctx, "vm1", netip.MustParseAddr("10.20.0.12"), 20, 50*time.Millisecond, 3*time.Second)
		if err != nil || r.Received < 18 {
			t.Fatalf("vm1 -> vm2: %+v, %v", r, err)
		}
		d2, d3 := udpIn("host2")-h2, udpIn("host3")-h3
		t.Logf("UDP datagrams received during 20 unicast echoes: host2 %d, host3 %d", d2, d3)
		if d2 < 20 || d3 != 0 {
			t.Errorf("unicast vm1 -> vm2: host2 got %d datagrams (want >= 20), host3 got %d (want 0)", d2, d3)
		}
	})

	h2, h3 := udpIn("host2"), udpIn("host3")
	const count = 20
	// No replies (receivers ignore broadcast echoes): the exit status is 1.
	e.lab.Exec(e.ctx, "vm1", "ping", "-n", "-b", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "1", "10.20.0.255")
	d2, d3 := udpIn("host2")-h2, udpIn("host3")-h3
	t.Logf("UDP datagrams received during %d broadcasts: host2 %d, host3 %d", count, d2, d3)
	if d2 < count || d3 < count {
		t.Errorf("hosts with a port on n1 received %d (host2) and %d (host3) UDP datagrams, want >= %d each: broadcasts not flooded to them", d2, d3, count)
	}
	h4 := udpIn("host4")
	e.lab.Exec(e.ctx, "vm1", "ping", "-n", "-b", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "1", "10.20.0.255")
	if d4 := udpIn("host4") - h4; d4 != 0 {
		t.Errorf("host4 (no port on n1) received %d UDP datagrams during broadcasts, want 0", d4)
	}
}
