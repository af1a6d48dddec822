package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"hivenet/internal/client"
	"hivenet/internal/lab"
)

// TestPrivilegedFlowsListing: after vm1 pings vm2 across hosts, `hivenet
// flows` on the ingress host (host1) lists the flow that carried the
// echoes, with packets counted and actions tunnelling to host2; filters,
// the lab shorthand, `hivenet agent-stats` and a bad filter behave.
//
//	                net "n1" 10.30.0.0/24
//	[host1] vm1 .11 ──VXLAN (underlay 10.250.0.0/24)── [host2] vm2 .12
//	   └─ agent control socket RunDir/state/host1/agent.sock ◄── hivenet flows (root netns)
func TestPrivilegedFlowsListing(t *testing.T) {
	e := newEnv(t, 2)
	n, s := e.network(t, "n1", "alpha", "10.30.0.0/24")
	ip1, ip2 := netip.MustParseAddr("10.30.0.11"), netip.MustParseAddr("10.30.0.12")
	p1, _ := e.vm(t, "vm1", "host1", n, s, ip1)
	e.vm(t, "vm2", "host2", n, s, ip2)
	h2, err := e.lab.Host("host2")
	if err != nil {
		t.Fatal(err)
	}
	socket := lab.ControlSocket(e.lab.RunDir(), "host1")
	e.waitReach(t, "vm1", ip2, 10*time.Second)

	// tunnelled reports whether f is vm1's flow towards host2 with packets
	// (its match may not name vm2's address: with the datapath tracking
	// connections, an L2 flow reads only what the chains and the bridge do).
	tunnelled := func(f client.AgentFlow) bool {
		return f.Packets > 0 && f.PortID == p1.ID &&
			slices.ContainsFunc(f.ActionList, func(a client.AgentAction) bool {
				return a.Type == "tunnel" && a.Remote == h2.TunnelIP.String() && a.Key != 0
			})
	}
	// The flow may be replaced (invalidated by a topology change) between
	// pings and the listing: ping again until one listing shows it.
	var flows []client.AgentFlow
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ok, _, err := e.lab.Ping(e.ctx, "vm1", ip2, 3, 3*time.Second); err != nil || !ok {
			t.Fatalf("vm1 -> vm2 ping: ok=%v err=%v", ok, err)
		}
		flows = flowsJSON(t, "--socket", socket)
		if slices.ContainsFunc(flows, tunnelled) || time.Now().After(deadline) {
			break
		}
	}
	if !slices.ContainsFunc(flows, tunnelled) {
		t.Fatalf("host1 lists no flow from %s (vm1) to %s with packets > 0 and a tunnel to %s; flows:\n%s", p1.ID, ip2, h2.TunnelIP, flowLines(flows))
	}
	t.Logf("host1 flows:\n%s", flowLines(flows))

	t.Run("port filter", func(t *testing.T) {
		no := flows[slices.IndexFunc(flows, tunnelled)].InPort // vm1's datapath port
		got := flowsJSON(t, "--socket", socket, "--port", p1.ID)
		if !slices.ContainsFunc(got, tunnelled) {
			t.Errorf("--port %s lists no tunnelled flow:\n%s", p1.ID, flowLines(got))
		}
		for _, f := range got {
			out := slices.ContainsFunc(f.ActionList, func(a client.AgentAction) bool { return a.Type == "output" && a.Port == no })
			if f.PortID != p1.ID && !out {
				t.Errorf("--port %s lists a flow of another port: %s", p1.ID, client.FormatAgentFlow(f))
			}
		}
	})
	t.Run("match filter and lab shorthand, table", func(t *testing.T) {
		out, err := hivenet(t, "flows", "--lab", "host1", "--run-dir", e.lab.RunDir(), "--match", "ip_src="+ip1.String())
		if err != nil {
			t.Fatalf("hivenet flows --lab host1: %v\n%s", err, out)
		}
		want := fmt.Sprintf("actions:tunnel(%s", h2.TunnelIP)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.Contains(line, "ip_src="+ip1.String()) || !strings.Contains(line, " packets:") {
				t.Errorf("--match ip_src=%s lists %q", ip1, line)
			}
		}
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	})
	t.Run("agent-stats", func(t *testing.T) {
		out, err := hivenet(t, "agent-stats", "-o", "json", "--socket", socket)
		if err != nil {
			t.Fatalf("hivenet agent-stats: %v\n%s", err, out)
		}
		var st client.AgentStats
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("agent-stats -o json: %v\n%s", err, out)
		}
		wantDP := *datapath
		if wantDP == "" {
			wantDP = "userspace"
		}
		if st.Host != "host1" || st.Datapath != wantDP || st.Upcalls == 0 || st.FlowsInstalled == 0 || st.DP.Flows == 0 || st.PortsBound != 1 {
			t.Errorf("agent-stats = %+v; want host1 on %s with upcalls, flows and 1 port bound", st, wantDP)
		}
	})
	t.Run("bad filter", func(t *testing.T) {
		out, err := hivenet(t, "flows", "--socket", socket, "--port", "no-such-port")
		if err == nil || !strings.Contains(out, "HTTP 400") || !strings.Contains(out, "no-such-port") {
			t.Errorf("flows --port no-such-port: err=%v output %q; want a failure naming the port with HTTP 400", err, out)
		}
	})
}

// hivenet runs the binary under test with args and returns its combined
// output.
func hivenet(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), binary, args...).CombinedOutput()
	return string(out), err
}

// flowsJSON runs `hivenet flows -o json` with args and decodes the list.
func flowsJSON(t *testing.T, args ...string) []client.AgentFlow {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary, append([]string{"flows", "-o", "json"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("hivenet flows %v: %v\n%s", args, err, msg)
	}
	var flows []client.AgentFlow
	if err := json.Unmarshal(out, &flows); err != nil {
		t.Fatalf("hivenet flows -o json: %v\n%s", err, out)
	}
	return flows
}

func flowLines(flows []client.AgentFlow) string {
	var b strings.Builder
	for _, f := range flows {
		fmt.Fprintf(&b, "  %s (port %s)\n", client.FormatAgentFlow(f), f.PortID)
	}
	return b.String()
}
