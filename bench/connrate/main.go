// Command connrate measures new TCP connections per second: many short
// connections, each a new flow, with failures counted. Run the server in
// one namespace and the client in another (bench/l3.sh does):
//
//	connrate -listen 0.0.0.0:7001
//	connrate -connect 10.0.2.13:7001 -duration 5s -concurrency 8
//
// Each client connection connects, sends one byte, reads the one-byte
// answer and closes first (so TIME_WAIT stays with the client, where
// net.ipv4.tcp_tw_reuse=1 lets new connections reuse source ports quickly).
// The client prints one line: conns=N fails=M rate=R/s plus the first
// failure's error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "", "serve on this address")
	connect := flag.String("connect", "", "connect to this address")
	dur := flag.Duration("duration", 5*time.Second, "client: how long to open connections")
	conc := flag.Int("concurrency", 8, "client: connections in flight")
	timeout := flag.Duration("timeout", 2*time.Second, "client: bound of one connection (connect + exchange)")
	flag.Parse()
	switch {
	case *listen != "":
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "connrate:", err)
			os.Exit(1)
		}
		serve(ln)
	case *connect != "":
		r := run(context.Background(), *connect, *dur, *conc, *timeout)
		fmt.Println(r)
		if r.fails > 0 {
			os.Exit(3)
		}
	default:
		fmt.Fprintln(os.Stderr, "connrate: need -listen or -connect")
		os.Exit(2)
	}
}

// serve answers each connection's byte and closes after the client does.
func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			if _, err := c.Write(b[:]); err != nil {
				return
			}
			_, _ = c.Read(b[:]) // until the client's FIN
		}()
	}
}

type result struct {
	conns, fails int64
	took         time.Duration
	firstErr     error
}

func (r result) rate() float64 { return float64(r.conns) / r.took.Seconds() }

func (r result) String() string {
	s := fmt.Sprintf("conns=%d fails=%d rate=%.0f/s", r.conns, r.fails, r.rate())
	if r.firstErr != nil {
		s += " first_error=" + fmt.Sprintf("%q", r.firstErr.Error())
	}
	return s
}

// run opens connections to addr from conc workers for dur.
func run(ctx context.Context, addr string, dur time.Duration, conc int, timeout time.Duration) result {
	var conns, fails atomic.Int64
	var once sync.Once
	var first error
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := one(ctx, addr, timeout); err != nil {
					fails.Add(1)
					once.Do(func() { first = err })
					continue
				}
				conns.Add(1)
			}
		})
	}
	wg.Wait()
	return result{conns: conns.Load(), fails: fails.Load(), took: time.Since(start), firstErr: first}
}

// one is one short connection: connect, one byte each way, close.
func one(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	return nil
}
