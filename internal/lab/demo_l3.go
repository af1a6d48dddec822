package lab

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// demoL3 runs the demo's L3 checks on a built topology: SNAT towards the
// outside, the "web" security group, and a floating IP reached from the
// outside namespace (timed from the API call).
func demoL3(ctx context.Context, l *Lab, top demoTop) []Check {
	var checks []Check
	add := func(what string, ok bool, format string, args ...any) {
		checks = append(checks, Check{What: what, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	inet := netip.AddrPortFrom(l.Internet(), 8080)
	any8080, any8081 := netip.AddrPortFrom(netip.IPv4Unspecified(), 8080), netip.AddrPortFrom(netip.IPv4Unspecified(), 8081)
	var servers []*TCPServer
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for _, x := range []struct {
		ns   string
		at   netip.AddrPort
		name string
	}{{"out", inet, "internet"}, {demoFIPVM, any8080, demoFIPVM}, {demoFIPVM, any8081, demoFIPVM}} {
		s, err := l.ServeTCP(x.ns, x.at, x.name)
		if err != nil {
			add("TCP server in "+x.ns, false, "%v", err)
			return checks
		}
		servers = append(servers, s)
	}
	dial := func(ns string, dst netip.AddrPort, within time.Duration) (TCPReply, time.Duration, error) {
		start := time.Now()
		for {
			rep, err := l.DialTCP(ctx, ns, dst, 500*time.Millisecond)
			if err == nil || time.Since(start) > within || ctx.Err() != nil {
				return rep, time.Since(start), err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	rep, _, err := dial("red1", inet, 5*time.Second)
	what := fmt.Sprintf("red1 -> internet %s TCP (SNAT)", inet)
	switch {
	case err != nil:
		add(what, false, "%v", err)
	default:
		add(what, rep.Peer.Addr() == top.snat, "seen from %s (router gateway %s)", rep.Peer.Addr(), top.snat)
	}

	g1 := netip.AddrPortFrom(vmByName(demoFIPVM).ip, 8081)
	rep, _, err = dial("red2", g1, 5*time.Second)
	add(fmt.Sprintf("red2 -> %s %s TCP (same default group)", demoFIPVM, g1), err == nil && rep.Server == demoFIPVM, "%s", replyText(rep, err))

	alpha, err := l.ProjectAPI("alpha")
	if err != nil {
		add("floating IP", false, "%v", err)
		return checks
	}
	start := time.Now()
	fip, err := alpha.CreateFloatingIP(ctx, FloatingIP{FloatingNetworkID: top.ext.Network.ID, PortID: top.ports[demoFIPVM].port.ID})
	if err != nil {
		add("floating IP for "+demoFIPVM, false, "%v", err)
		return checks
	}
	fa, err := netip.ParseAddr(fip.FloatingIPAddress)
	if err != nil {
		add("floating IP for "+demoFIPVM, false, "address %q: %v", fip.FloatingIPAddress, err)
		return checks
	}
	rep, _, err = dial("out", netip.AddrPortFrom(fa, 8080), 10*time.Second)
	took := time.Since(start)
	add(fmt.Sprintf("outside -> floating IP %s:8080 TCP", fa), err == nil && rep.Server == demoFIPVM,
		"%s; %v after the API call", replyText(rep, err), took.Round(time.Millisecond))
	out, _ := nsExec(ctx, l.outNS(), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", fa.String())
	r := parsePing(out)
	add(fmt.Sprintf("outside -> floating IP %s ping", fa), r.Received > 0, "%d/%d replies, median %v", r.Received, r.Sent, median(r.RTTs))
	_, err = l.DialTCP(ctx, "out", netip.AddrPortFrom(fa, 8081), time.Second)
	add(fmt.Sprintf("outside -> floating IP %s:8081 TCP (not in group web)", fa), err != nil, "%s", blockedText(err))
	return checks
}

func replyText(rep TCPReply, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("served by %s, seen from %s", rep.Server, rep.Peer.Addr())
}

func blockedText(err error) string {
	if err != nil {
		return "blocked"
	}
	return "connected: the security group let it in"
}
