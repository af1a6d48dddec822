package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on an OS thread switched into lab namespace ns. Sockets
// fn creates belong to ns for their whole life, whichever goroutine uses
// them later. If the thread cannot be switched back it stays locked, so
// the runtime retires it with the goroutine.
func (l *Lab) inNetns(ns string, fn func() error) error {
	if !strings.HasPrefix(ns, l.cfg.Prefix) {
		ns = l.cfg.Prefix + ns
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: netns %s: %w", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: entering netns %s: %w", ns, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("lab: leaving netns %s: %w", ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// TCPServer is a TCP server inside a lab namespace (ServeTCP).
type TCPServer struct {
	Addr     netip.AddrPort
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	accepted int
}

// Accepted is how many connections the server accepted.
func (s *TCPServer) Accepted() int { s.mu.Lock(); defer s.mu.Unlock(); return s.accepted }

// Close stops accepting and waits for the open connections to end.
func (s *TCPServer) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// ServeTCP listens on addr inside lab namespace ns (a VM, "out", ...). Each
// connection gets the banner "<name> <the client's address:port as seen
// here>\n" and then its bytes echoed back, so a client learns which server
// answered and with which source address its packets arrived (NAT).
// Connections close after 30 s idle.
func (l *Lab) ServeTCP(ns string, addr netip.AddrPort, name string) (*TCPServer, error) {
	s := &TCPServer{Addr: addr}
	err := l.inNetns(ns, func() error {
		var err error
		s.ln, err = net.Listen("tcp4", addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: listening on %s in %s: %w", addr, ns, err)
	}
	s.wg.Go(func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr()); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			})
		}
	})
	return s, nil
}

// TCPReply is what DialTCP learned from a ServeTCP server.
type TCPReply struct {
	Server string         // the server's name
	Peer   netip.AddrPort // the client's address as the server saw it
	Took   time.Duration  // connect + banner + one echo
}

// DialTCP connects from lab namespace ns to a ServeTCP server at dst,
// reads its banner, checks one echo and closes, all within timeout.
func (l *Lab) DialTCP(ctx context.Context, ns string, dst netip.AddrPort, timeout time.Duration) (TCPReply, error) {
	c, rep, err := l.OpenTCP(ctx, ns, dst, timeout)
	if err != nil {
		return TCPReply{}, err
	}
	c.Close()
	return rep, nil
}

// OpenTCP is DialTCP leaving the connection open (the caller closes it):
// to hold many connections at once, e.g. to see which NAT source ports
// they were given.
func (l *Lab) OpenTCP(ctx context.Context, ns string, dst netip.AddrPort, timeout time.Duration) (net.Conn, TCPReply, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var c net.Conn
	err := l.inNetns(ns, func() error {
		var err error
		// One IPv4 literal: the dial (socket and connect) runs on this
		// goroutine, so on the namespaced thread.
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", dst.String())
		return err
	})
	if err != nil {
		return nil, TCPReply{}, err
	}
	rep, err := exchange(ctx, c, dst)
	if err != nil {
		c.Close()
		return nil, TCPReply{}, err
	}
	_ = c.SetDeadline(time.Time{})
	rep.Took = time.Since(start)
	return c, rep, nil
}

// exchange reads the banner and checks one echo on c before ctx ends.
func exchange(ctx context.Context, c net.Conn, dst netip.AddrPort) (TCPReply, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// One byte at a time: nothing past the echo is consumed.
	r := bufio.NewReaderSize(c, 16)
	banner, err := r.ReadString('\n')
	if err != nil {
		return TCPReply{}, fmt.Errorf("reading banner from %s: %w", dst, err)
	}
	rep, err := parseBanner(banner)
	if err != nil {
		return TCPReply{}, err
	}
	if _, err := io.WriteString(c, "hivenet\n"); err != nil {
		return TCPReply{}, err
	}
	echo, err := r.ReadString('\n')
	if err != nil || echo != "hivenet\n" {
		return TCPReply{}, fmt.Errorf("echo from %s: %q, %v", dst, echo, err)
	}
	return rep, nil
}

// parseBanner reads "<name> <ip:port>\n".
func parseBanner(b string) (TCPReply, error) {
	name, peer, ok := strings.Cut(strings.TrimSpace(b), " ")
	if !ok {
		return TCPReply{}, fmt.Errorf("lab: bad banner %q", b)
	}
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		return TCPReply{}, fmt.Errorf("lab: bad banner %q: %w", b, err)
	}
	return TCPReply{Server: name, Peer: ap}, nil
}

// IperfResult is one iperf3 client run.
type IperfResult struct {
	Gbps        float64 // received by the server
	Retransmits int     // TCP retransmissions at the sender
}

// StartIperfServer starts `iperf3 -s` inside lab namespace ns (stopped
// with the lab, or by StopProc("iperf3-<ns>")).
func (l *Lab) StartIperfServer(ctx context.Context, ns string) error {
	if !strings.HasPrefix(ns, l.cfg.Prefix) {
		ns = l.cfg.Prefix + ns
	}
	name := "iperf3-" + strings.TrimPrefix(ns, l.cfg.Prefix)
	if _, err := l.startProc(name, ns, "iperf3", "-s"); err != nil {
		return err
	}
	// Wait for the listener (port 5201).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := nsExec(ctx, ns, "ss", "-Htln", "sport = :5201")
		if strings.TrimSpace(out) != "" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("lab: iperf3 server in %s not listening after 5s\n%s", ns, l.LogTail(name, 5))
}

// StopProc stops a process the lab started by name ("iperf3-out", ...).
func (l *Lab) StopProc(name string) error { return l.stopNamed(name) }

// Iperf runs an iperf3 TCP client in lab namespace ns against dst for dur.
func (l *Lab) Iperf(ctx context.Context, ns string, dst netip.Addr, dur time.Duration) (IperfResult, error) {
	if !strings.HasPrefix(ns, l.cfg.Prefix) {
		ns = l.cfg.Prefix + ns
	}
	secs := strconv.Itoa(max(1, int(dur/time.Second)))
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "iperf3", "-J", "-c", dst.String(), "-t", secs, "--connect-timeout", "3000")
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return IperfResult{}, fmt.Errorf("lab: iperf3 from %s to %s: %w", ns, dst, err)
	}
	return parseIperf(out)
}

// parseIperf reads iperf3 -J output.
func parseIperf(b []byte) (IperfResult, error) {
	var j struct {
		Error string `json:"error"`
		End   struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return IperfResult{}, fmt.Errorf("lab: iperf3 output: %w", err)
	}
	if j.Error != "" {
		return IperfResult{}, fmt.Errorf("lab: iperf3: %s", j.Error)
	}
	return IperfResult{Gbps: j.End.SumReceived.BitsPerSecond / 1e9, Retransmits: j.End.SumSent.Retransmits}, nil
}
