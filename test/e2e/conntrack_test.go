package e2e

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"hivenet/internal/client"
	"hivenet/internal/lab"
)

// TestPrivilegedConnectionsInDatapath: with the eBPF datapath tracking
// connections, new connections through a router and security groups
// reach no agent once a flow for their kind exists. vm1 (host1, net1)
// opens 40 connections to vm3 (host2, net2) through router r1; both are
// in the default group (ingress only from members), so each connection
// needs conntrack on both hosts: without the datapath's tracking that is
// an upcall on each host per connection (80 here). The flows match
// ct_state, not the ports; the first one carries the commit. A rule
// change still closes new connections at once, while an established one
// keeps working.
func TestPrivilegedConnectionsInDatapath(t *testing.T) {
	if *datapath == "userspace" {
		t.Skip("the userspace datapath tracks connections in the agent")
	}
	e := newEnv(t, 2, "alpha")
	n1, s1 := e.network(t, "net1", "alpha", "10.64.1.0/24")
	n2, s2 := e.network(t, "net2", "alpha", "10.64.2.0/24")
	e.router(t, "alpha", "r1", s1, s2)
	ip1, ip3 := netip.MustParseAddr("10.64.1.11"), netip.MustParseAddr("10.64.2.13")
	p1, _ := e.vm(t, "vm1", "host1", n1, s1, ip1)
	p3, _ := e.vm(t, "vm3", "host2", n2, s2, ip3)
	e.serve(t, "vm3", ap(netip.IPv4Unspecified(), 8080), "vm3")
	dst := ap(ip3, 8080)
	// The first connections install the flows: new (with the commit) and
	// established on host1, reply on host2.
	e.tcpWait(t, "vm1", dst, 10*time.Second)
	for range 3 {
		if _, err := e.lab.DialTCP(e.ctx, "vm1", dst, 2*time.Second); err != nil {
			t.Fatalf("warm-up connection: %v", err)
		}
	}
	sockets := []string{lab.ControlSocket(e.lab.RunDir(), "host1"), lab.ControlSocket(e.lab.RunDir(), "host2")}
	upcalls := func() (n uint64) {
		for _, s := range sockets {
			n += agentStats(t, s).Upcalls
		}
		return n
	}
	const conns = 40
	before := upcalls()
	for i := range conns {
		if _, err := e.lab.DialTCP(e.ctx, "vm1", dst, 2*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	got := upcalls() - before
	t.Logf("%d connections: %d upcalls on the two hosts", conns, got)
	if got > conns/5 {
		t.Errorf("%d connections cost %d upcalls; want almost none (the datapath tracks them)", conns, got)
	}

	flows := flowsJSON(t, "--socket", sockets[0], "--port", p1.ID)
	newFlow := slices.IndexFunc(flows, func(f client.AgentFlow) bool {
		return strings.Contains(f.Match, "ct_state=+new") && strings.Contains(f.Match, "ip_dst="+ip3.String())
	})
	if newFlow < 0 {
		t.Fatalf("host1 has no ct_state=+new flow from vm1 to %s:\n%s", ip3, flowLines(flows))
	}
	f := flows[newFlow]
	if f.Packets < conns {
		t.Errorf("the new-connection flow matched %d packets, want >= %d: %s", f.Packets, conns, client.FormatAgentFlow(f))
	}
	if strings.Contains(f.Match, "src_port") {
		t.Errorf("the new-connection flow matches the source port: %s", client.FormatAgentFlow(f))
	}
	commit := slices.ContainsFunc(f.ActionList, func(a client.AgentAction) bool { return a.Type == "ct_commit" })
	tunnelCommit := slices.ContainsFunc(f.ActionList, func(a client.AgentAction) bool { return a.Type == "tunnel" && a.Commit })
	if !commit || !tunnelCommit {
		t.Errorf("the new-connection flow lacks ct(commit) or the tunnel's commit bit: %s", client.FormatAgentFlow(f))
	}

	t.Run("a rule change closes new connections, not established ones", func(t *testing.T) {
		held, _, err := e.lab.OpenTCP(e.ctx, "vm1", dst, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		// vm3 leaves the default group for one that admits nothing.
		closed := e.group(t, "alpha", "closed")
		if err := e.api.Do(e.ctx, "PUT", "/v2.0/ports/"+p3.ID, map[string]any{"port": map[string]any{
			"security_groups": []string{closed.ID}}}, nil); err != nil {
			t.Fatal(err)
		}
		took := e.tcpGone(t, "vm1", dst, 5*time.Second)
		t.Logf("port update -> new connections fail: %v", took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("new connections still open %v after the update", took)
		}
		if err := held.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := held.Write([]byte("still there?\n")); err != nil {
			t.Fatalf("established connection: write: %v", err)
		}
		buf := make([]byte, 64)
		if n, err := held.Read(buf); err != nil || n == 0 {
			t.Errorf("established connection: read %d bytes: %v; want its echo", n, err)
		}
	})
}

// agentStats reads an agent's counters from its control socket.
func agentStats(t *testing.T, socket string) client.AgentStats {
	t.Helper()
	out, err := hivenet(t, "agent-stats", "-o", "json", "--socket", socket)
	if err != nil {
		t.Fatalf("hivenet agent-stats: %v\n%s", err, out)
	}
	var st client.AgentStats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("agent-stats -o json: %v\n%s", err, out)
	}
	return st
}
