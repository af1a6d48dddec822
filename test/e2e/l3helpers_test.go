package e2e

import (
	"errors"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hivenet/internal/lab"
)

// vmSpec describes a VM for vmWith: its port is created with project's
// token (the network's project when empty), bound to host by the admin.
type vmSpec struct {
	name, host, project string
	net                 lab.Network
	sub                 lab.Subnet
	ip                  netip.Addr
	sgs                 []string // security group ids (nil: the project's default)
	portSecurity        *bool    // nil: the API's default (on)
}

// vmWith is vm with security groups, port security and a port owner.
func (e *env) vmWith(t *testing.T, s vmSpec) (lab.Port, lab.Lease) {
	t.Helper()
	project := s.project
	if project == "" {
		project = s.net.ProjectID
	}
	p := lab.Port{Name: s.name, NetworkID: s.net.ID, DeviceOwner: "compute:e2e", DeviceID: s.name,
		SecurityGroups: s.sgs, PortSecurity: s.portSecurity}
	if s.ip.IsValid() {
		p.FixedIPs = []lab.FixedIP{{SubnetID: s.sub.ID, IPAddress: s.ip.String()}}
	}
	api := e.as(project)
	var err error
	if s.portSecurity != nil && !*s.portSecurity {
		// Neutron refuses port security off with security groups: send [].
		body := map[string]any{"port": map[string]any{"name": s.name, "network_id": s.net.ID, "device_owner": "compute:e2e",
			"device_id": s.name, "fixed_ips": p.FixedIPs, "port_security_enabled": false, "security_groups": []string{}}}
		var out struct{ Port lab.Port }
		err = api.Do(e.ctx, "POST", "/v2.0/ports", body, &out)
		p = out.Port
	} else {
		p, err = api.CreatePort(e.ctx, p)
	}
	if err != nil {
		t.Fatalf("create port %s as %s: %v", s.name, project, err)
	}
	if p, err = e.api.UpdatePort(e.ctx, p.ID, map[string]any{"binding:host_id": s.host}); err != nil {
		t.Fatalf("bind port %s to %s: %v", s.name, s.host, err)
	}
	if err := e.lab.AddVM(e.ctx, s.name, s.host, p.InterfaceName(), p.MACAddress); err != nil {
		t.Fatal(err)
	}
	lease, err := e.lab.DHCP(e.ctx, s.name)
	if err != nil {
		t.Fatalf("DHCP in %s: %v", s.name, err)
	}
	if len(p.FixedIPs) == 0 || lease.Addr.Addr().String() != p.FixedIPs[0].IPAddress {
		t.Fatalf("%s leased %s, want the port's fixed IP %+v", s.name, lease.Addr, p.FixedIPs)
	}
	return p, lease
}

// router creates a router as project with an interface on each subnet.
func (e *env) router(t *testing.T, project, name string, subs ...lab.Subnet) lab.Router {
	t.Helper()
	api := e.as(project)
	r, err := api.CreateRouter(e.ctx, lab.Router{Name: name})
	if err != nil {
		t.Fatalf("create router %s: %v", name, err)
	}
	for _, s := range subs {
		if _, err := api.AddRouterInterface(e.ctx, r.ID, s.ID, ""); err != nil {
			t.Fatalf("router %s: add interface on %s: %v", name, s.CIDR, err)
		}
	}
	return r
}

// group creates security group name as project with the given ingress
// rules (the group's default egress rules come with it).
func (e *env) group(t *testing.T, project, name string, ingress ...lab.SecurityGroupRule) lab.SecurityGroup {
	t.Helper()
	api := e.as(project)
	g, err := api.CreateSecurityGroup(e.ctx, lab.SecurityGroup{Name: name})
	if err != nil {
		t.Fatalf("create security group %s: %v", name, err)
	}
	for _, r := range ingress {
		r.SecurityGroupID, r.Direction = g.ID, "ingress"
		if r.Ethertype == "" {
			r.Ethertype = "IPv4"
		}
		if _, err := api.CreateSecurityGroupRule(e.ctx, r); err != nil {
			t.Fatalf("security group %s: rule %+v: %v", name, r, err)
		}
	}
	return g
}

// tcpRule allows TCP port from cidr.
func tcpRule(port int, cidr string) lab.SecurityGroupRule {
	return lab.SecurityGroupRule{Protocol: "tcp", PortRangeMin: lab.Ptr(port), PortRangeMax: lab.Ptr(port), RemoteIPPrefix: cidr}
}

// serve starts a banner/echo TCP server in a lab namespace, closed at cleanup.
func (e *env) serve(t *testing.T, ns string, at netip.AddrPort, name string) *lab.TCPServer {
	t.Helper()
	s, err := e.lab.ServeTCP(ns, at, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tcpWait dials dst from ns until a connection completes or within ends;
// it returns the reply and how long it took (fails the test on timeout).
func (e *env) tcpWait(t *testing.T, ns string, dst netip.AddrPort, within time.Duration) (lab.TCPReply, time.Duration) {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < within {
		rep, err := e.lab.DialTCP(e.ctx, ns, dst, 300*time.Millisecond)
		if err == nil {
			return rep, time.Since(start)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("TCP %s -> %s: no connection within %v: %v", ns, dst, within, last)
	return lab.TCPReply{}, 0
}

// tcpBlocked checks that n attempts from ns to dst all fail.
func (e *env) tcpBlocked(t *testing.T, ns string, dst netip.AddrPort, n int) {
	t.Helper()
	for range n {
		if rep, err := e.lab.DialTCP(e.ctx, ns, dst, 500*time.Millisecond); err == nil {
			t.Errorf("TCP %s -> %s connected (server %s saw %s), want blocked", ns, dst, rep.Server, rep.Peer)
			return
		}
	}
}

// tcpGone waits until new connections from ns to dst fail (three in a
// row), for at most within; it returns when the first of those three
// attempts started.
func (e *env) tcpGone(t *testing.T, ns string, dst netip.AddrPort, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	fails := 0
	var firstFail time.Duration
	for time.Since(start) < within {
		at := time.Since(start)
		if _, err := e.lab.DialTCP(e.ctx, ns, dst, 300*time.Millisecond); err != nil {
			if fails == 0 {
				firstFail = at
			}
			if fails++; fails == 3 {
				return firstFail
			}
			continue
		}
		fails = 0
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("TCP %s -> %s still connects after %v", ns, dst, within)
	return 0
}

// pingFromNS pings dst from any lab namespace (the outside, a host) and
// reports the replies received of count.
func (e *env) pingFromNS(t *testing.T, ns string, dst netip.Addr, count int) int {
	t.Helper()
	out, err := e.lab.Exec(e.ctx, ns, "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", dst.String())
	var ee interface{ ExitCode() int }
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) && !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("ping from %s: %v", ns, err)
	}
	m := pingRecv.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var (
	pingRecv = regexp.MustCompile(`(\d+) received`)
	pingTTL  = regexp.MustCompile(`ttl=(\d+)`)
	traceHop = regexp.MustCompile(`^\s*(\d+)\s+(\S+)`)
)

// traceHops parses `traceroute -n` output into the address of each hop
// ("*" when none answered).
func traceHops(out string) []string {
	var hops []string
	for line := range strings.Lines(out) {
		if m := traceHop.FindStringSubmatch(line); m != nil {
			hops = append(hops, m[2])
		}
	}
	return hops
}

// ap is netip.AddrPortFrom.
func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// asAPIError is errors.As for *lab.APIError.
func asAPIError(err error, target **lab.APIError) bool { return errors.As(err, target) }
