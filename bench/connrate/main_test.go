package main

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serve(ln)
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name      string
		addr      string
		wantFails bool
	}{
		{name: "server answers", addr: ln.Addr().String()},
		{name: "nothing listens", addr: closedAddr, wantFails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(context.Background(), tt.addr, 200*time.Millisecond, 2, time.Second)
			if (r.fails > 0) != tt.wantFails || (r.conns > 0) == tt.wantFails {
				t.Errorf("run(%s) = %v, want fails=%v", tt.addr, r, tt.wantFails)
			}
			if tt.wantFails && r.firstErr == nil {
				t.Errorf("failures without a first error: %v", r)
			}
		})
	}
}
