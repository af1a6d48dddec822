package cli

import (
	"maps"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		name           string
		in             string
		wantLo, wantHi int
		wantErr        bool
	}{
		{name: "single", in: "22", wantLo: 22, wantHi: 22},
		{name: "range", in: "1000:2000", wantLo: 1000, wantHi: 2000},
		{name: "full", in: "1:65535", wantLo: 1, wantHi: 65535},
		{name: "zero", in: "0", wantErr: true},
		{name: "too big", in: "65536", wantErr: true},
		{name: "reversed", in: "90:80", wantErr: true},
		{name: "garbage", in: "ssh", wantErr: true},
		{name: "empty max", in: "80:", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, err := parsePortRange(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && (lo != tt.wantLo || hi != tt.wantHi)) {
				t.Errorf("parsePortRange(%q) = %d, %d, %v; want %d, %d, err %v", tt.in, lo, hi, err, tt.wantLo, tt.wantHi, tt.wantErr)
			}
		})
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{name: "ok", in: "destination=10.1.0.0/16,gateway=10.0.0.254", want: map[string]string{"destination": "10.1.0.0/16", "nexthop": "10.0.0.254"}},
		{name: "no gateway", in: "destination=10.1.0.0/16", wantErr: true},
		{name: "bad cidr", in: "destination=10.1.0.0,gateway=10.0.0.254", wantErr: true},
		{name: "bad gateway", in: "destination=10.1.0.0/16,gateway=x", wantErr: true},
		{name: "unknown key", in: "destination=10.1.0.0/16,gateway=10.0.0.1,metric=5", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRoute(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && !maps.Equal(got, tt.want)) {
				t.Errorf("parseRoute(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFormatGateway(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{name: "none", in: nil, want: ""},
		{name: "snat", in: map[string]any{"network_id": "n", "enable_snat": true, "external_fixed_ips": []any{map[string]any{"ip_address": "203.0.113.2"}}}, want: "n (203.0.113.2)"},
		{name: "no snat", in: map[string]any{"network_id": "n", "enable_snat": false}, want: "n SNAT off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatGateway(tt.in, tt.in != nil); got != tt.want {
				t.Errorf("formatGateway(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
