package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hivenet/internal/client"
	"hivenet/internal/lab"
)

// restartGrace is the ebpf datapath's RestartGrace (its default): flows
// adopted from the previous run live this long unless installed again.
const restartGrace = 5 * time.Second

// echoInterval is how often the long-lived TCP connection exchanges data.
const echoInterval = 5 * time.Millisecond

// TestPrivilegedRestartNoLoss: the ingress host's agent is restarted twice,
// by kill -9 and by SIGTERM, while vm1 pings vm2 every 10 ms and keeps a
// TCP connection to vm2 busy with echoes every 5 ms. With the ebpf
// datapath the pinned maps and links keep forwarding while no agent runs,
// and the restarted agent takes over its lease: no ping is lost and the
// TCP stream never stalls over 100 ms. With the userspace datapath packets
// are lost while no agent runs (the test says so and skips that
// assertion). Either way new flows work soon after the restart, and the
// flows the new agent adopted are re-simulated (none is left stale after
// RestartGrace). Down leaves no pins.
//
//	                    net "n1" 10.40.0.0/24
//	[host1] vm1 .11 ──────── VXLAN (underlay) ────────── [host2] vm2 .12
//	   agent restarted       ping -i 0.01, TCP echo       TCP echo server :7000
//	   (pins in RunDir/bpf/host1)
func TestPrivilegedRestartNoLoss(t *testing.T) {
	e := newEnv(t, 2)
	n, s := e.network(t, "n1", "alpha", "10.40.0.0/24")
	ip1, ip2 := netip.MustParseAddr("10.40.0.11"), netip.MustParseAddr("10.40.0.12")
	e.vm(t, "vm1", "host1", n, s, ip1)
	e.vm(t, "vm2", "host2", n, s, ip2)
	e.serve(t, "vm2", ap(ip2, 7000), "vm2")
	e.waitReach(t, "vm1", ip2, 10*time.Second)
	ctl := client.NewAgentControl(lab.ControlSocket(e.lab.RunDir(), "host1"), 2*time.Second)
	st, err := ctl.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	dp := st.Datapath
	t.Logf("host1 runs the %s datapath (-datapath %q)", dp, *datapath)
	if *datapath != "" && dp != *datapath {
		t.Fatalf("host1 runs the %s datapath, -datapath asked for %s", dp, *datapath)
	}

	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sigName(sig), func(t *testing.T) {
			r := e.restartUnderLoad(t, dp, "host1", "vm1", ip2, sig)
			t.Logf("%s, %s datapath: %d of %d pings lost; longest TCP echo gap %v (ending %v after the restart; %v before it) over %d round trips; new flow %v after the restart; ICMP flow now in place: %d packets (at most %d if installed after the restart and RestartGrace)",
				sigName(sig), dp, r.lost, r.sent, r.tcpGap.Round(time.Millisecond), r.tcpGapAt.Round(time.Millisecond), r.tcpBaseline.Round(time.Millisecond), r.tcpTrips, r.newFlow.Round(time.Millisecond), r.icmpPackets, r.icmpBound)
			if dp != "ebpf" {
				t.Skipf("%s datapath: forwarding stops while no agent runs (%d of %d pings lost, TCP stalled %v); zero loss is asserted with -datapath ebpf only",
					dp, r.lost, r.sent, r.tcpGap.Round(time.Millisecond))
			}
			if r.lost != 0 {
				t.Errorf("%d of %d pings lost across the restart, want 0", r.lost, r.sent)
			}
			if r.tcpGap > 100*time.Millisecond {
				t.Errorf("the TCP stream stalled %v (ending %v after the restart; at most %v before it), want <= 100ms",
					r.tcpGap.Round(time.Millisecond), r.tcpGapAt.Round(time.Millisecond), r.tcpBaseline.Round(time.Millisecond))
			}
		})
	}

	if t.Failed() || *keepLogs {
		return // keep the logs for the cleanup's dump
	}
	pins := lab.PinRoot(e.lab.RunDir())
	if err := e.lab.Down(context.Background()); err != nil {
		t.Fatalf("lab down: %v", err)
	}
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		t.Errorf("after Down the pin root %s is still there (%v)", pins, err)
	}
}

// restartResult is what restartUnderLoad measured.
type restartResult struct {
	sent, lost  int
	tcpGap      time.Duration // longest time without a completed echo, from the restart on
	tcpGapAt    time.Duration // when it ended, from the restart
	tcpBaseline time.Duration // the same before the restart: the machine's noise
	tcpTrips    int
	newFlow     time.Duration // restart until a new connection completed
	icmpPackets uint64        // packets of the re-simulated ICMP flow
	icmpBound   uint64        // what it may have at most if installed after RestartGrace
}

// restartUnderLoad restarts host's agent with sig while VM from pings to
// every 10 ms and echoes over one TCP connection to to:7000 every 5 ms. It
// fails the test unless forwarding recovers: new connections within 2 s,
// the long-lived connection intact, pings answered again, and the flows
// adopted by the new agent replaced after RestartGrace.
func (e *env) restartUnderLoad(t *testing.T, dp, host, from string, to netip.Addr, sig syscall.Signal) restartResult {
	t.Helper()
	var r restartResult
	vm, err := e.lab.VM(from)
	if err != nil {
		t.Fatal(err)
	}
	// Ping for: 2 s before, the restart, the new agent's start (up to 2
	// s), RestartGrace, 3 s after.
	const interval = 10 * time.Millisecond
	total := 2*time.Second + 2*time.Second + restartGrace + 3*time.Second
	count := int(total / interval)
	ping := exec.CommandContext(e.ctx, "ip", "netns", "exec", vm.Netns, "ping", "-n", "-D", "-i", "0.01",
		"-c", strconv.Itoa(count), "-w", strconv.Itoa(int(total/time.Second)+5), to.String())
	out, err := ping.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	pingDone := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		ping.Wait()
		pingDone <- lines
	}()

	conn, _, err := e.lab.OpenTCP(e.ctx, from, ap(to, 7000), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stopEcho := make(chan struct{})
	echo := make(chan echoResult, 1)
	go func() { echo <- echoLoop(conn, stopEcho) }()

	time.Sleep(2 * time.Second)
	restarted := time.Now()
	if err := e.lab.RestartAgent(e.ctx, host, sig); err != nil {
		t.Fatal(err)
	}
	// New flows: each attempt is a new 5-tuple, simulated by the new agent.
	for {
		if _, err := e.lab.DialTCP(e.ctx, from, ap(to, 7000), 200*time.Millisecond); err == nil {
			r.newFlow = time.Since(restarted)
			break
		}
		if time.Since(restarted) > 10*time.Second {
			t.Fatalf("no new TCP connection %s -> %s within 10s of the restart", from, to)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.newFlow > 2*time.Second {
		t.Errorf("new connections worked %v after the restart, want within ~1s (2s at most)", r.newFlow.Round(time.Millisecond))
	}
	if err := e.lab.WaitAgents(e.ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// After RestartGrace the adopted flows are gone: the ICMP flow now in
	// place was installed by the new agent after the grace ended, so it
	// counts at most the pings since then (an adopted one would count all
	// pings since the test began). The grace starts when the new agent
	// opens the datapath, before new flows work; expiry runs every second.
	time.Sleep(time.Until(restarted.Add(r.newFlow + restartGrace + 2*time.Second)))
	ctl := client.NewAgentControl(lab.ControlSocket(e.lab.RunDir(), host), 2*time.Second)
	// Every flow on host is vm1's (replies arrive by the tunnel): with
	// the datapath tracking connections they match ct_state, not the
	// addresses and ports.
	flows, err := ctl.Flows(e.ctx, client.FlowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// Bounds: what each flow of vm1 can have counted since RestartGrace
	// ended (pings every 10 ms; echoes every 5 ms, a data segment and
	// maybe an ACK each), plus slack. The userspace datapath adopts
	// nothing: its flows are all installed after the restart.
	grace := restartGrace
	if dp != "ebpf" {
		grace = 0
	}
	sinceGrace := time.Since(restarted.Add(grace))
	r.icmpBound = uint64(sinceGrace/interval) + 50
	tcpBound := 2*uint64(sinceGrace/echoInterval) + 50
	found := false
	for _, f := range flows {
		bound := uint64(0)
		switch {
		case slices.Contains(strings.Fields(f.Match), "icmp"):
			found = f.Packets > 0 || found
			r.icmpPackets = max(r.icmpPackets, f.Packets)
			bound = r.icmpBound
		case slices.Contains(strings.Fields(f.Match), "tcp"):
			bound = tcpBound
		default:
			continue
		}
		if f.Packets > bound {
			t.Errorf("flow with %d packets > %d: adopted from the previous run and not re-simulated after RestartGrace: %s",
				f.Packets, bound, client.FormatAgentFlow(f))
		}
	}
	if !found {
		t.Errorf("host %s lists no busy ICMP flow to %s after the restart:\n%s", host, to, flowLines(flows))
	}
	st, err := ctl.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.FlowsInstalled == 0 {
		t.Errorf("the restarted agent installed no flow (stats %+v): nothing was re-simulated", st)
	}

	lines := <-pingDone
	close(stopEcho)
	er := <-echo
	conn.Close()
	p := parsePing(lines)
	r.sent, r.lost = p.Sent, p.Sent-p.Received
	r.tcpTrips = er.trips
	for _, g := range er.gaps {
		if g.end.After(restarted) && g.d > r.tcpGap {
			r.tcpGap, r.tcpGapAt = g.d, g.end.Sub(restarted)
		}
		if !g.end.After(restarted) {
			r.tcpBaseline = max(r.tcpBaseline, g.d)
		}
	}
	if p.Sent == 0 {
		t.Fatalf("ping reported nothing:\n%s", strings.Join(lines, "\n"))
	}
	if er.err != nil {
		t.Errorf("the TCP connection opened before the restart broke: %v (after %d round trips)", er.err, er.trips)
	}
	if len(p.replies) == 0 || p.replies[len(p.replies)-1].Before(restarted.Add(restartGrace)) {
		t.Errorf("pings not answered after the restart (%d replies)", len(p.replies))
	}
	return r
}

// echoResult is what echoLoop measured.
type echoResult struct {
	trips int
	gaps  []echoGap // times over 20 ms without a completed round trip
	err   error
}

type echoGap struct {
	end time.Time
	d   time.Duration
}

// echoLoop writes 32 bytes every 5 ms on c and reads them back (a ServeTCP
// echo) until stop closes, recording every time over 20 ms between
// completed round trips.
func echoLoop(c net.Conn, stop <-chan struct{}) echoResult {
	var r echoResult
	msg := make([]byte, 32)
	buf := make([]byte, 32)
	last := time.Now()
	tick := time.NewTicker(echoInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return r
		case <-tick.C:
		}
		copy(msg, fmt.Sprintf("%031d\n", r.trips))
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			r.err = err
			return r
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			r.err = err
			return r
		}
		if string(buf) != string(msg) {
			r.err = fmt.Errorf("echo %q, want %q", buf, msg)
			return r
		}
		now := time.Now()
		if d := now.Sub(last); d > 20*time.Millisecond {
			r.gaps = append(r.gaps, echoGap{now, d})
		}
		last = now
		r.trips++
	}
}

// pingRun is `ping -D` output parsed.
type pingRun struct {
	Sent, Received int
	replies        []time.Time
}

func parsePing(lines []string) pingRun {
	var p pingRun
	for _, l := range lines {
		if ts, ok := pingTimestamp(l); ok {
			p.replies = append(p.replies, ts)
		}
		if i := strings.Index(l, " packets transmitted, "); i > 0 {
			p.Sent, _ = strconv.Atoi(l[:i])
			rest := l[i+len(" packets transmitted, "):]
			if j := strings.Index(rest, " received"); j > 0 {
				p.Received, _ = strconv.Atoi(rest[:j])
			}
		}
	}
	return p
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}
