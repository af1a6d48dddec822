// Command flowsweep measures flow setups per second: it sends a sweep of
// UDP request/response exchanges, each from a source port no earlier
// exchange used, so each one is a new 5-tuple. Run the server in one
// namespace and the client in another (bench/datapath.sh does):
//
//	flowsweep -listen 0.0.0.0:7200
//	flowsweep -connect 10.40.0.12:7200 -flows 5000 -sport 10000 -concurrency 16
//
// Exchange i binds source port sport+i, sends one 8-byte datagram holding
// i, and waits up to -timeout for the server to echo it back; there is no
// retry, so a lost first packet (or a lost first reply) counts as a
// failure. On hivenet every exchange is one new flow simulated and
// installed by the agent of the client's host (the request) and one by the
// agent of the server's host (the reply), in series. Concurrency exchanges
// are in flight at once.
//
// The client prints one line: flows=N ok=K fails=M took=D rate=R/s (R =
// K/D, D from the first send to the last answer or timeout) plus the first
// failure's error. It exits 3 when some exchanges failed.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "", "serve (echo datagrams) on this UDP address")
	connect := flag.String("connect", "", "client: send the sweep to this UDP address")
	var cfg config
	flag.IntVar(&cfg.flows, "flows", 5000, "client: number of exchanges, each from a new source port")
	flag.IntVar(&cfg.sport, "sport", 10000, "client: source port of the first exchange (the sweep uses sport .. sport+flows-1)")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "client: exchanges in flight")
	flag.DurationVar(&cfg.timeout, "timeout", time.Second, "client: how long to wait for an exchange's echo")
	flag.Parse()
	switch {
	case *listen != "":
		pc, err := net.ListenPacket("udp4", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "flowsweep:", err)
			os.Exit(1)
		}
		serve(pc)
	case *connect != "":
		cfg.addr = *connect
		if err := cfg.validate(); err != nil {
			fmt.Fprintln(os.Stderr, "flowsweep:", err)
			os.Exit(2)
		}
		r := run(context.Background(), cfg)
		fmt.Println(r)
		if r.fails > 0 {
			os.Exit(3)
		}
	default:
		fmt.Fprintln(os.Stderr, "flowsweep: need -listen or -connect")
		os.Exit(2)
	}
}

// serve echoes every datagram to its sender until pc is closed.
func serve(pc net.PacketConn) {
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			b := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(b)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				_, _ = pc.WriteTo(b[:n], from)
			}
		})
	}
	wg.Wait()
}

// config is one sweep.
type config struct {
	addr        string // server's host:port
	flows       int
	sport       int
	concurrency int
	timeout     time.Duration
}

func (c config) validate() error {
	ap, err := net.ResolveUDPAddr("udp4", c.addr)
	switch {
	case err != nil:
		return fmt.Errorf("bad -connect %q: %w", c.addr, err)
	case ap.Port == 0:
		return fmt.Errorf("bad -connect %q: needs a port", c.addr)
	case c.flows < 1:
		return fmt.Errorf("-flows %d: need at least 1", c.flows)
	case c.sport < 1 || c.sport+c.flows-1 > 65535:
		return fmt.Errorf("-sport %d -flows %d: source ports %d..%d do not fit in 1..65535", c.sport, c.flows, c.sport, c.sport+c.flows-1)
	case c.concurrency < 1:
		return fmt.Errorf("-concurrency %d: need at least 1", c.concurrency)
	case c.timeout <= 0:
		return fmt.Errorf("-timeout %v: must be positive", c.timeout)
	}
	return nil
}

type result struct {
	flows, ok, fails int64
	took             time.Duration
	firstErr         error
}

func (r result) rate() float64 { return float64(r.ok) / r.took.Seconds() }

func (r result) String() string {
	s := fmt.Sprintf("flows=%d ok=%d fails=%d took=%.3fs rate=%.0f/s", r.flows, r.ok, r.fails, r.took.Seconds(), r.rate())
	if r.firstErr != nil {
		s += " first_error=" + fmt.Sprintf("%q", r.firstErr.Error())
	}
	return s
}

// run performs the sweep c (validated) from c.concurrency workers.
func run(ctx context.Context, c config) result {
	raddr, err := net.ResolveUDPAddr("udp4", c.addr)
	if err != nil {
		return result{flows: int64(c.flows), fails: int64(c.flows), took: time.Nanosecond, firstErr: err}
	}
	var next, ok, fails atomic.Int64
	var once sync.Once
	var first error
	start := time.Now()
	var wg sync.WaitGroup
	for range c.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(c.flows) {
					return
				}
				if err := one(raddr, c.sport+int(i), uint64(i), c.timeout); err != nil {
					fails.Add(1)
					once.Do(func() { first = err })
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return result{flows: int64(c.flows), ok: ok.Load(), fails: fails.Load(), took: time.Since(start), firstErr: first}
}

// one is exchange id: a datagram from source port sport to raddr and its echo.
func one(raddr *net.UDPAddr, sport int, id uint64, timeout time.Duration) error {
	c, err := net.DialUDP("udp4", &net.UDPAddr{Port: sport}, raddr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	if _, err := c.Write(b[:]); err != nil {
		return err
	}
	var r [16]byte
	for {
		n, err := c.Read(r[:])
		if err != nil {
			return fmt.Errorf("source port %d: %w", sport, err)
		}
		if n == 8 && binary.BigEndian.Uint64(r[:8]) == id {
			return nil
		}
		// a stray datagram (not our echo): keep waiting until the deadline
	}
}
