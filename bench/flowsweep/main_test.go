package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder echoes like serve and records every sender's port.
type recorder struct {
	net.PacketConn
	mu    sync.Mutex
	ports map[int]int
}

func (r *recorder) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := r.PacketConn.ReadFrom(b)
	if err == nil {
		r.mu.Lock()
		r.ports[from.(*net.UDPAddr).Port]++
		r.mu.Unlock()
	}
	return n, from, err
}

func listen(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func TestRun(t *testing.T) {
	rec := &recorder{PacketConn: listen(t), ports: map[int]int{}}
	go serve(rec)
	silent := listen(t) // receives, never answers
	closed := listen(t)
	closedAddr := closed.LocalAddr().String()
	closed.Close()

	tests := []struct {
		name      string
		addr      string
		flows     int
		sport     int
		wantOK    int64
		wantFails int64
		record    bool
	}{
		{name: "server echoes every exchange", addr: rec.LocalAddr().String(), flows: 200, sport: 23100, wantOK: 200, record: true},
		{name: "server never answers", addr: silent.LocalAddr().String(), flows: 4, sport: 23400, wantFails: 4},
		{name: "nothing listens", addr: closedAddr, flows: 4, sport: 23500, wantFails: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config{addr: tt.addr, flows: tt.flows, sport: tt.sport, concurrency: 4, timeout: 200 * time.Millisecond}
			if err := c.validate(); err != nil {
				t.Fatal(err)
			}
			r := run(context.Background(), c)
			if r.ok != tt.wantOK || r.fails != tt.wantFails || r.flows != int64(tt.flows) {
				t.Errorf("run = %v, want ok=%d fails=%d", r, tt.wantOK, tt.wantFails)
			}
			if tt.wantFails > 0 && r.firstErr == nil {
				t.Errorf("failures without a first error: %v", r)
			}
			if !tt.record {
				return
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.ports) != tt.flows {
				t.Errorf("server saw %d distinct source ports, want %d (one per exchange)", len(rec.ports), tt.flows)
			}
			for p, n := range rec.ports {
				if p < tt.sport || p >= tt.sport+tt.flows || n != 1 {
					t.Errorf("source port %d used %d times, want once, in %d..%d", p, n, tt.sport, tt.sport+tt.flows-1)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := config{addr: "127.0.0.1:7200", flows: 10, sport: 10000, concurrency: 2, timeout: time.Second}
	tests := []struct {
		name    string
		edit    func(*config)
		wantErr string
	}{
		{name: "good", edit: func(*config) {}},
		{name: "last port 65535", edit: func(c *config) { c.sport, c.flows = 65526, 10 }},
		{name: "no port", edit: func(c *config) { c.addr = "127.0.0.1" }, wantErr: "bad -connect"},
		{name: "port 0", edit: func(c *config) { c.addr = "127.0.0.1:0" }, wantErr: "needs a port"},
		{name: "no flows", edit: func(c *config) { c.flows = 0 }, wantErr: "-flows 0"},
		{name: "ports past 65535", edit: func(c *config) { c.sport, c.flows = 65000, 600 }, wantErr: "do not fit"},
		{name: "port 0 start", edit: func(c *config) { c.sport = 0 }, wantErr: "do not fit"},
		{name: "no concurrency", edit: func(c *config) { c.concurrency = 0 }, wantErr: "-concurrency 0"},
		{name: "no timeout", edit: func(c *config) { c.timeout = 0 }, wantErr: "-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.validate()
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validate(%+v) = %v, want error containing %q", c, err, tt.wantErr)
			}
		})
	}
}
