package e2e

import (
	"io"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"hivenet/internal/lab"
)

// TestPrivilegedRouter: two subnets joined by a router, VMs on 3 hosts.
// VMs ping and open TCP connections across subnets (TTL decremented once),
// the router answers ping on both its ports, traceroute shows its hop.
//
//	project alpha, all VMs in the default security group
//	  net1 10.60.1.0/24: a .11 @host1    d .14 @host3
//	  net2 10.60.2.0/24: b .12 @host2    c .13 @host3
//	           └──── router r1: 10.60.1.1 | 10.60.2.1 ────┘
//	(distributed: each ingress host simulates bridge → router → bridge and
//	 tunnels straight to the destination's host)
func TestPrivilegedRouter(t *testing.T) {
	e := newEnv(t, 3, "alpha")
	n1, s1 := e.network(t, "net1", "alpha", "10.60.1.0/24")
	n2, s2 := e.network(t, "net2", "alpha", "10.60.2.0/24")
	e.router(t, "alpha", "r1", s1, s2)
	vms := []struct {
		name, host string
		net        lab.Network
		sub        lab.Subnet
		ip         netip.Addr
	}{
		{"a", "host1", n1, s1, netip.MustParseAddr("10.60.1.11")},
		{"b", "host2", n2, s2, netip.MustParseAddr("10.60.2.12")},
		{"c", "host3", n2, s2, netip.MustParseAddr("10.60.2.13")},
		{"d", "host3", n1, s1, netip.MustParseAddr("10.60.1.14")},
	}
	for _, v := range vms {
		_, lease := e.vm(t, v.name, v.host, v.net, v.sub, v.ip)
		if gw := netip.MustParseAddr(v.sub.GatewayIP); lease.Router != gw {
			t.Errorf("%s: lease router %s, want the subnet's gateway (router port) %s", v.name, lease.Router, gw)
		}
		e.serve(t, v.name, ap(netip.IPv4Unspecified(), 8080), v.name)
	}
	t.Run("router answers ping on its ports", func(t *testing.T) {
		for _, gw := range []string{"10.60.1.1", "10.60.2.1"} {
			e.waitReach(t, "a", netip.MustParseAddr(gw), 10*time.Second)
		}
	})
	for _, from := range vms {
		for _, to := range vms {
			if from.name == to.name || from.net.ID == to.net.ID {
				continue
			}
			t.Run(from.name+"->"+to.name, func(t *testing.T) {
				took := e.waitReach(t, from.name, to.ip, 10*time.Second)
				out, err := e.lab.Exec(e.ctx, from.name, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", to.ip.String())
				if err != nil {
					t.Fatalf("steady ping: %v", err)
				}
				// Linux answers with TTL 64; one router hop on the way back.
				if m := pingTTL.FindStringSubmatch(out); m == nil || m[1] != "63" {
					t.Errorf("reply TTL %v, want 63 (one routed hop)", m)
				}
				rep, _ := e.tcpWait(t, from.name, ap(to.ip, 8080), 5*time.Second)
				if rep.Server != to.name || rep.Peer.Addr() != from.ip {
					t.Errorf("TCP to %s: served by %q seeing %s, want %s seeing %s (no NAT inside)", to.ip, rep.Server, rep.Peer, to.name, from.ip)
				}
				t.Logf("%s(%s) -> %s(%s): first reply after %v, TCP in %v", from.name, from.host, to.name, to.host, took.Round(time.Millisecond), rep.Took.Round(time.Microsecond))
			})
		}
	}
	t.Run("traceroute shows the router hop", func(t *testing.T) {
		out, err := e.lab.Exec(e.ctx, "a", "traceroute", "-n", "-I", "-q", "1", "-w", "2", "-m", "4", "10.60.2.12")
		if err != nil {
			t.Fatalf("traceroute: %v", err)
		}
		hops := traceHops(out)
		if len(hops) != 2 || hops[0] != "10.60.1.1" || hops[1] != "10.60.2.12" {
			t.Errorf("traceroute hops %v, want [10.60.1.1 10.60.2.12]\n%s", hops, out)
		}
	})
}

// TestPrivilegedSecurityGroups: default groups, a rule opening tcp/22 from a
// CIDR within a second and its deletion closing it for new connections,
// return traffic of outbound connections, two projects on a shared network,
// port security off.
//
//	shared network "lan" 10.61.0.0/24 (admin, shared)
//	  project alpha: srv .11 @host1 (group "web": ingress tcp/22 from
//	                  client/32, later), cli .12 @host2 (default group),
//	                  spoof-on .14 @host3, spoof-off .15 @host3 (port
//	                  security off), target .16 @host1 (group "icmp-lan")
//	  project beta:  bx .13 @host3 (beta's default group)
func TestPrivilegedSecurityGroups(t *testing.T) {
	e := newEnv(t, 3, "alpha", "beta")
	var n lab.Network
	if err := e.api.Do(e.ctx, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{
		"name": "lan", "project_id": "alpha", "shared": true}}, &struct{ Network *lab.Network }{&n}); err != nil {
		t.Fatalf("create shared network: %v", err)
	}
	s, err := e.as("alpha").CreateSubnet(e.ctx, lab.Subnet{Name: "lan-v4", NetworkID: n.ID, CIDR: "10.61.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	web := e.group(t, "alpha", "web")
	defaults, err := e.as("alpha").SecurityGroups(e.ctx, "default")
	if err != nil || len(defaults) != 1 {
		t.Fatalf("alpha's default group: %v %v", defaults, err)
	}
	alphaDefault := defaults[0]
	srvIP, cliIP, bxIP := netip.MustParseAddr("10.61.0.11"), netip.MustParseAddr("10.61.0.12"), netip.MustParseAddr("10.61.0.13")
	e.vmWith(t, vmSpec{name: "srv", host: "host1", net: n, sub: s, ip: srvIP, sgs: []string{web.ID}})
	e.vmWith(t, vmSpec{name: "cli", host: "host2", net: n, sub: s, ip: cliIP})
	e.vmWith(t, vmSpec{name: "bx", host: "host3", project: "beta", net: n, sub: s, ip: bxIP})
	e.serve(t, "srv", ap(netip.IPv4Unspecified(), 22), "srv")
	e.serve(t, "srv", ap(netip.IPv4Unspecified(), 23), "srv")
	e.serve(t, "cli", ap(netip.IPv4Unspecified(), 8080), "cli")
	e.serve(t, "bx", ap(netip.IPv4Unspecified(), 8080), "bx")

	t.Run("default: nothing in from outside the group", func(t *testing.T) {
		e.noReply(t, "cli", srvIP, 3)
		e.tcpBlocked(t, "cli", ap(srvIP, 22), 2)
		e.tcpBlocked(t, "srv", ap(cliIP, 8080), 2) // cli's default group admits only its members
	})
	var rule lab.SecurityGroupRule
	t.Run("tcp/22 from a CIDR opens exactly that within a second", func(t *testing.T) {
		start := time.Now()
		rule, err = e.as("alpha").CreateSecurityGroupRule(e.ctx, lab.SecurityGroupRule{SecurityGroupID: web.ID, Direction: "ingress",
			Ethertype: "IPv4", Protocol: "tcp", PortRangeMin: lab.Ptr(22), PortRangeMax: lab.Ptr(22), RemoteIPPrefix: cliIP.String() + "/32"})
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := e.tcpWait(t, "cli", ap(srvIP, 22), 5*time.Second)
		took := time.Since(start)
		t.Logf("API call -> first connection: %v", took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("tcp/22 opened after %v, want within a second", took)
		}
		if rep.Peer.Addr() != cliIP {
			t.Errorf("server saw %s, want %s", rep.Peer, cliIP)
		}
		e.tcpBlocked(t, "cli", ap(srvIP, 23), 2)
		e.tcpBlocked(t, "bx", ap(srvIP, 22), 2) // not in the CIDR
		e.noReply(t, "cli", srvIP, 2)
	})
	t.Run("return traffic of an outbound connection passes", func(t *testing.T) {
		// cli's group admits tcp/8080 from anywhere; srv's group admits no
		// tcp/8080 in, so srv sees the replies only through conntrack.
		if _, err := e.as("alpha").CreateSecurityGroupRule(e.ctx, lab.SecurityGroupRule{SecurityGroupID: alphaDefault.ID, Direction: "ingress",
			Ethertype: "IPv4", Protocol: "tcp", PortRangeMin: lab.Ptr(8080), PortRangeMax: lab.Ptr(8080), RemoteIPPrefix: "0.0.0.0/0"}); err != nil {
			t.Fatal(err)
		}
		rep, _ := e.tcpWait(t, "srv", ap(cliIP, 8080), 5*time.Second)
		if rep.Server != "cli" {
			t.Errorf("served by %q, want cli", rep.Server)
		}
	})
	t.Run("deleting the rule closes tcp/22 for new connections", func(t *testing.T) {
		if rule.ID == "" {
			t.Skip("no rule")
		}
		if err := e.as("alpha").DeleteSecurityGroupRule(e.ctx, rule.ID); err != nil {
			t.Fatal(err)
		}
		took := e.tcpGone(t, "cli", ap(srvIP, 22), 5*time.Second)
		t.Logf("API call -> new connections fail: %v", took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("tcp/22 closed after %v", took)
		}
	})
	t.Run("two projects are isolated unless a rule says so", func(t *testing.T) {
		e.noReply(t, "bx", cliIP, 2)
		e.noReply(t, "cli", bxIP, 2)
		e.tcpBlocked(t, "cli", ap(bxIP, 8080), 2)
		// alpha's default group admits tcp/8080 from anywhere (above):
		// bx reaches cli there, and only there.
		e.tcpWait(t, "bx", ap(cliIP, 8080), 5*time.Second)
		// beta opens its default group to alpha's cli on tcp/8080.
		bd, err := e.as("beta").SecurityGroups(e.ctx, "default")
		if err != nil || len(bd) != 1 {
			t.Fatalf("beta's default group: %v %v", bd, err)
		}
		if _, err := e.as("beta").CreateSecurityGroupRule(e.ctx, lab.SecurityGroupRule{SecurityGroupID: bd[0].ID, Direction: "ingress",
			Ethertype: "IPv4", Protocol: "tcp", PortRangeMin: lab.Ptr(8080), PortRangeMax: lab.Ptr(8080), RemoteIPPrefix: cliIP.String() + "/32"}); err != nil {
			t.Fatal(err)
		}
		rep, _ := e.tcpWait(t, "cli", ap(bxIP, 8080), 5*time.Second)
		if rep.Server != "bx" {
			t.Errorf("served by %q, want bx", rep.Server)
		}
		e.noReply(t, "cli", bxIP, 2) // only tcp/8080 was opened
	})
	t.Run("port security off lets a VM send from another address", func(t *testing.T) {
		icmp := e.group(t, "alpha", "icmp-lan", lab.SecurityGroupRule{Protocol: "icmp", RemoteIPPrefix: "10.61.0.0/24"})
		targetIP := netip.MustParseAddr("10.61.0.16")
		e.vmWith(t, vmSpec{name: "target", host: "host1", net: n, sub: s, ip: targetIP, sgs: []string{icmp.ID}})
		e.vmWith(t, vmSpec{name: "spoof-on", host: "host3", net: n, sub: s, ip: netip.MustParseAddr("10.61.0.14")})
		e.vmWith(t, vmSpec{name: "spoof-off", host: "host3", net: n, sub: s, ip: netip.MustParseAddr("10.61.0.15"), portSecurity: lab.Ptr(false)})
		e.waitReach(t, "spoof-on", targetIP, 10*time.Second)
		e.waitReach(t, "spoof-off", targetIP, 10*time.Second)
		for i, vm := range []string{"spoof-on", "spoof-off"} {
			other := "10.61.0." + strconv.Itoa(200+i)
			if _, err := e.lab.Exec(e.ctx, vm, "ip", "addr", "add", other+"/24", "dev", "eth0"); err != nil {
				t.Fatal(err)
			}
			out, _ := e.lab.Exec(e.ctx, vm, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", other, targetIP.String())
			got := 0
			if m := pingRecv.FindStringSubmatch(out); m != nil {
				got, _ = strconv.Atoi(m[1])
			}
			if want := vm == "spoof-off"; (got > 0) != want {
				t.Errorf("%s pinging from %s: %d replies, want replies=%v", vm, other, got, want)
			}
		}
	})
}

// TestPrivilegedExternal: a router with a gateway on the flat external
// network (physnet1, uplink ext0 on host3), SNAT to the outside (source
// ports unique across hosts), a floating
// IP reachable from outside, disassociated, re-associated to another VM,
// and an iperf3 transfer through NAT.
//
//	[out] 198.51.100.1 (internet: TCP server, iperf3 -s) ─ 203.0.113.1 br-ext
//	                                                          │ veth
//	[host3] ext0 = uplink of physnet1 ── external net 203.0.113.0/24
//	                                        │ router gw (SNAT 203.0.113.x)
//	                                  router r1
//	                                        │ 10.62.0.1
//	      net "inner" 10.62.0.0/24: v1 .11 @host1, v2 .12 @host2 (group "open":
//	      icmp and tcp/8080 from anywhere)
func TestPrivilegedExternal(t *testing.T) {
	e := newEnvWith(t, envOpts{hosts: 3, projects: []string{"alpha"}, gateways: []string{"host3"}})
	ext, n, s, r := e.gatewayRouter(t, "alpha", "10.62.0.0/24")
	if r.GatewayInfo == nil || len(r.GatewayInfo.ExternalIPs) == 0 {
		t.Fatalf("router gateway info %+v: no external fixed IP", r.GatewayInfo)
	}
	snatIP := netip.MustParseAddr(r.GatewayInfo.ExternalIPs[0].IPAddress)
	open := e.group(t, "alpha", "open", lab.SecurityGroupRule{Protocol: "icmp", RemoteIPPrefix: "0.0.0.0/0"}, tcpRule(8080, "0.0.0.0/0"))
	p1, _ := e.vmWith(t, vmSpec{name: "v1", host: "host1", net: n, sub: s, ip: netip.MustParseAddr("10.62.0.11"), sgs: []string{open.ID}})
	p2, _ := e.vmWith(t, vmSpec{name: "v2", host: "host2", net: n, sub: s, ip: netip.MustParseAddr("10.62.0.12"), sgs: []string{open.ID}})
	e.serve(t, "v1", ap(netip.IPv4Unspecified(), 8080), "v1")
	e.serve(t, "v2", ap(netip.IPv4Unspecified(), 8080), "v2")
	inet := e.lab.Internet()
	e.serve(t, "out", ap(inet, 8080), "internet")

	t.Run("SNAT to the gateway address", func(t *testing.T) {
		e.waitReach(t, "v2", inet, 10*time.Second)
		rep, _ := e.tcpWait(t, "v2", ap(inet, 8080), 5*time.Second)
		if rep.Peer.Addr() != snatIP {
			t.Errorf("the outside saw %s, want the router's gateway address %s", rep.Peer, snatIP)
		}
	})
	t.Run("SNAT source ports unique across hosts", func(t *testing.T) {
		// 40 connections held open from each of v1 (host1) and v2 (host2)
		// at once: the outside must see 80 distinct gateway address:ports.
		const per = 40
		type res struct {
			vm   string
			peer netip.AddrPort
			err  error
		}
		results := make(chan res, 2*per)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var conns []io.Closer
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for _, vm := range []string{"v1", "v2"} {
			for range per {
				wg.Go(func() {
					c, rep, err := e.lab.OpenTCP(e.ctx, vm, ap(inet, 8080), 5*time.Second)
					if err == nil {
						mu.Lock()
						conns = append(conns, c)
						mu.Unlock()
					}
					results <- res{vm, rep.Peer, err}
				})
			}
		}
		wg.Wait()
		close(results)
		seen := map[netip.AddrPort]string{}
		for r := range results {
			switch {
			case r.err != nil:
				t.Errorf("%s: %v", r.vm, r.err)
			case r.peer.Addr() != snatIP:
				t.Errorf("%s seen from %s, want %s", r.vm, r.peer, snatIP)
			case seen[r.peer] != "":
				t.Errorf("%s and %s share the translated source %s", seen[r.peer], r.vm, r.peer)
			default:
				seen[r.peer] = r.vm
			}
		}
		t.Logf("%d concurrent connections from 2 hosts, %d distinct translated sources", 2*per, len(seen))
	})
	var fip lab.FloatingIP
	var err error
	t.Run("floating IP reachable from outside", func(t *testing.T) {
		fip, err = e.as("alpha").CreateFloatingIP(e.ctx, lab.FloatingIP{FloatingNetworkID: ext.Network.ID, PortID: p1.ID})
		if err != nil {
			t.Fatal(err)
		}
		fa := netip.MustParseAddr(fip.FloatingIPAddress)
		if !e.lab.ExternalCIDR().Contains(fa) || fa == snatIP {
			t.Fatalf("floating IP %s: want a fresh address of %s", fa, e.lab.ExternalCIDR())
		}
		rep, took := e.tcpWait(t, "out", ap(fa, 8080), 5*time.Second)
		if rep.Server != "v1" || rep.Peer.Addr() != e.lab.ExternalGateway() {
			t.Errorf("TCP to %s served by %q seeing %s, want v1 seeing %s", fa, rep.Server, rep.Peer, e.lab.ExternalGateway())
		}
		t.Logf("API call -> first TCP connection from outside: %v", took.Round(time.Millisecond))
		if got := e.pingFromNS(t, "out", fa, 3); got == 0 {
			t.Errorf("ping %s from outside: no reply", fa)
		}
		// Outbound from v1 now leaves with the floating IP.
		rep, _ = e.tcpWait(t, "v1", ap(inet, 8080), 5*time.Second)
		if rep.Peer.Addr() != fa {
			t.Errorf("v1 -> internet seen from %s, want its floating IP %s", rep.Peer, fa)
		}
		if f, err := e.as("alpha").GetFloatingIP(e.ctx, fip.ID); err != nil || f.Status != "ACTIVE" || f.FixedIPAddress != "10.62.0.11" {
			t.Errorf("floating IP after association: %+v %v, want ACTIVE on 10.62.0.11", f, err)
		}
	})
	t.Run("disassociate: unreachable", func(t *testing.T) {
		if fip.ID == "" {
			t.Skip("no floating IP")
		}
		fa := netip.MustParseAddr(fip.FloatingIPAddress)
		if _, err := e.as("alpha").AssociateFloatingIP(e.ctx, fip.ID, ""); err != nil {
			t.Fatal(err)
		}
		took := e.tcpGone(t, "out", ap(fa, 8080), 5*time.Second)
		t.Logf("API call -> unreachable from outside: %v", took.Round(time.Millisecond))
		if got := e.pingFromNS(t, "out", fa, 3); got != 0 {
			t.Errorf("ping %s from outside after disassociation: %d replies", fa, got)
		}
		if f, err := e.as("alpha").GetFloatingIP(e.ctx, fip.ID); err != nil || f.Status != "DOWN" || f.PortID != "" {
			t.Errorf("floating IP after disassociation: %+v %v, want DOWN, no port", f, err)
		}
	})
	t.Run("re-associate to another VM", func(t *testing.T) {
		if fip.ID == "" {
			t.Skip("no floating IP")
		}
		fa := netip.MustParseAddr(fip.FloatingIPAddress)
		if _, err := e.as("alpha").AssociateFloatingIP(e.ctx, fip.ID, p2.ID); err != nil {
			t.Fatal(err)
		}
		rep, _ := e.tcpWait(t, "out", ap(fa, 8080), 5*time.Second)
		if rep.Server != "v2" {
			t.Errorf("floating IP %s now served by %q, want v2", fa, rep.Server)
		}
	})
	t.Run("iperf3 through NAT", func(t *testing.T) {
		if err := e.lab.StartIperfServer(e.ctx, "out"); err != nil {
			t.Fatal(err)
		}
		res, err := e.lab.Iperf(e.ctx, "v1", inet, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("v1 -> internet through SNAT: %.2f Gbit/s, %d retransmits", res.Gbps, res.Retransmits)
		if res.Gbps < 0.1 {
			t.Errorf("%.3f Gbit/s through SNAT, want at least 0.1", res.Gbps)
		}
	})
}

// TestPrivilegedL3BadInput: invalid L3 requests get a clear 4xx and store
// nothing (the lists are unchanged afterwards).
//
//	[host1] only; external network "public" (no gateway host needed here)
func TestPrivilegedL3BadInput(t *testing.T) {
	e := newEnv(t, 1, "alpha")
	alpha := e.as("alpha")
	var ext lab.Network
	if err := e.api.Do(e.ctx, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "public", "router:external": true,
		"shared": true, "provider:network_type": "flat", "provider:physical_network": "physnet1"}}, &struct{ Network *lab.Network }{&ext}); err != nil {
		t.Fatalf("create external network: %v", err)
	}
	if _, err := e.api.CreateSubnet(e.ctx, lab.Subnet{NetworkID: ext.ID, CIDR: "203.0.113.0/24"}); err != nil {
		t.Fatal(err)
	}
	_, s1 := e.network(t, "a", "alpha", "10.63.0.0/24")
	_, s2 := e.network(t, "b", "alpha", "10.63.0.0/25") // overlaps a
	n3, s3 := e.network(t, "c", "alpha", "10.63.8.0/24")
	r := e.router(t, "alpha", "r1", s1)
	g := e.group(t, "alpha", "g")
	port, err := alpha.CreatePort(e.ctx, lab.Port{Name: "p3", NetworkID: n3.ID, FixedIPs: []lab.FixedIP{{SubnetID: s3.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	count := func(path, key string) int {
		var out map[string][]any
		if err := e.api.Do(e.ctx, "GET", path, nil, &out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return len(out[key])
	}
	snapshot := func() [4]int {
		return [4]int{count("/v2.0/ports", "ports"), count("/v2.0/floatingips", "floatingips"),
			count("/v2.0/security-group-rules", "security_group_rules"), count("/v2.0/routers", "routers")}
	}
	rule := func(f map[string]any) func() error {
		return func() error {
			body := map[string]any{"security_group_id": g.ID, "direction": "ingress", "ethertype": "IPv4"}
			for k, v := range f {
				body[k] = v
			}
			return alpha.Do(e.ctx, "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": body}, nil)
		}
	}
	tests := []struct {
		name string
		call func() error
	}{
		{name: "overlapping router interface", call: func() error { _, err := alpha.AddRouterInterface(e.ctx, r.ID, s2.ID, ""); return err }},
		{name: "same subnet twice", call: func() error { _, err := alpha.AddRouterInterface(e.ctx, r.ID, s1.ID, ""); return err }},
		{name: "router gateway on an internal network", call: func() error {
			_, err := alpha.UpdateRouter(e.ctx, r.ID, map[string]any{"external_gateway_info": map[string]any{"network_id": n3.ID}})
			return err
		}},
		{name: "floating IP on a port without a route to the external network", call: func() error {
			_, err := alpha.CreateFloatingIP(e.ctx, lab.FloatingIP{FloatingNetworkID: ext.ID, PortID: port.ID})
			return err
		}},
		{name: "floating IP from an internal network", call: func() error {
			_, err := alpha.CreateFloatingIP(e.ctx, lab.FloatingIP{FloatingNetworkID: n3.ID})
			return err
		}},
		{name: "rule port range min > max", call: rule(map[string]any{"protocol": "tcp", "port_range_min": 100, "port_range_max": 50})},
		{name: "rule port 70000", call: rule(map[string]any{"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000})},
		{name: "rule ports without protocol", call: rule(map[string]any{"port_range_min": 22, "port_range_max": 22})},
		{name: "rule ICMP type 300", call: rule(map[string]any{"protocol": "icmp", "port_range_min": 300})},
		{name: "rule unknown protocol", call: rule(map[string]any{"protocol": "bogus"})},
		{name: "rule bad prefix", call: rule(map[string]any{"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/33"})},
		{name: "rule prefix and remote group", call: rule(map[string]any{"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": g.ID})},
		{name: "rule bad direction", call: rule(map[string]any{"direction": "sideways"})},
		{name: "rule unknown group", call: func() error {
			return alpha.Do(e.ctx, "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
				"security_group_id": "00000000-0000-0000-0000-000000000000", "direction": "ingress"}}, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot()
			err := tt.call()
			var ae *lab.APIError
			if !asAPIError(err, &ae) || ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("got %v, want a 4xx", err)
			}
			if ae.Type == "" || ae.Message == "" {
				t.Errorf("4xx without a NeutronError type and message: %+v", ae)
			}
			if after := snapshot(); after != before {
				t.Errorf("ports, floating IPs, rules, routers %v -> %v: something was stored", before, after)
			}
			t.Logf("%d %s: %s", ae.Status, ae.Type, ae.Message)
		})
	}
}
