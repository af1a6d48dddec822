package ebpf

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"hivenet/internal/flowtable"
)

func TestConfigValidate(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", cfg: Config{TunnelIP: ip}, check: func(t *testing.T, c Config) {
			if c.TunnelPort != 4789 || c.VXLANDevice != "hnvx0" || c.UpcallDevice != "hnup0" || c.PinRoot != "/sys/fs/bpf/hivenet" ||
				c.MaxFlows != 65536 || c.IdleTimeout != 10*time.Second || c.RestartGrace != 5*time.Second || c.Logger == nil ||
				c.ConnIdle != 5*time.Minute {
				t.Errorf("defaults not filled: %+v", c)
			}
		}},
		{name: "v4-mapped address unmapped", cfg: Config{TunnelIP: netip.MustParseAddr("::ffff:10.0.0.1")}, check: func(t *testing.T, c Config) {
			if !c.TunnelIP.Is4() {
				t.Errorf("TunnelIP %v not unmapped", c.TunnelIP)
			}
		}},
		{name: "no tunnel IP", cfg: Config{}, wantErr: "IPv4 address is required"},
		{name: "IPv6 tunnel IP", cfg: Config{TunnelIP: netip.MustParseAddr("fd00::1")}, wantErr: "IPv4 address is required"},
		{name: "persist without name", cfg: Config{TunnelIP: ip, Persist: true}, wantErr: "name without '/'"},
		{name: "persist with a path as name", cfg: Config{TunnelIP: ip, Persist: true, Name: "../x"}, wantErr: "name without '/'"},
		{name: "persist dot-dot", cfg: Config{TunnelIP: ip, Persist: true, Name: ".."}, wantErr: "name without '/'"},
		{name: "device name too long", cfg: Config{TunnelIP: ip, VXLANDevice: "a-very-long-device-name"}, wantErr: "at most 15 characters"},
		{name: "negative idle", cfg: Config{TunnelIP: ip, IdleTimeout: -1}, wantErr: "must not be negative"},
		{name: "negative flows", cfg: Config{TunnelIP: ip, MaxFlows: -1}, wantErr: "must not be negative"},
		{name: "negative conntrack idle", cfg: Config{TunnelIP: ip, ConnIdle: -time.Second}, wantErr: "must not be negative"},
		{name: "conntrack idle kept", cfg: Config{TunnelIP: ip, ConnIdle: 3 * time.Second}, check: func(t *testing.T, c Config) {
			if c.ConnIdle != 3*time.Second {
				t.Errorf("ConnIdle %v, want 3s", c.ConnIdle)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			err := c.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestCTSweepEvery(t *testing.T) {
	tests := []struct {
		name string
		idle time.Duration
		want time.Duration
	}{
		{name: "default: every 10 s", idle: 5 * time.Minute, want: 10 * time.Second},
		{name: "a fifth of the idle time", idle: 20 * time.Second, want: 4 * time.Second},
		{name: "at least the expiry tick", idle: 200 * time.Millisecond, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Datapath{cfg: Config{ConnIdle: tt.idle}}
			if got := d.ctSweepEvery(); got != tt.want {
				t.Errorf("ctSweepEvery() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIdleTimeoutUnderPressure(t *testing.T) {
	tests := []struct {
		name  string
		idle  time.Duration
		flows int
		want  time.Duration
	}{
		{name: "below half: the configured timeout", idle: 30 * time.Second, flows: 49, want: 30 * time.Second},
		{name: "half full: at most a second", idle: 30 * time.Second, flows: 50, want: time.Duration(flowtable.PressureIdle)},
		{name: "three quarters: at most 100 ms", idle: 30 * time.Second, flows: 75, want: time.Duration(flowtable.HighPressureIdle)},
		{name: "a shorter configured timeout stays", idle: 50 * time.Millisecond, flows: 99, want: 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Datapath{cfg: Config{MaxFlows: 100, IdleTimeout: tt.idle}}
			if got := d.idleTimeout(tt.flows); got != tt.want {
				t.Errorf("idleTimeout(%d) = %v, want %v", tt.flows, got, tt.want)
			}
		})
	}
}
