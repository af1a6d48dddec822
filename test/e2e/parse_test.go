package e2e

import (
	"testing"
	"time"
)

func TestSNMPField(t *testing.T) {
	const snmp = `Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 10
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps
Icmp: 7 0 0 1 0 0 0 0 5 1
`
	tests := []struct {
		name, proto, field string
		want               int
		wantErr            bool
	}{
		{name: "InEchos", proto: "Icmp", field: "InEchos", want: 5},
		{name: "first field", proto: "Icmp", field: "InMsgs", want: 7},
		{name: "other protocol", proto: "Ip", field: "InReceives", want: 10},
		{name: "missing field", proto: "Icmp", field: "Nope", wantErr: true},
		{name: "missing protocol", proto: "Tcp", field: "InSegs", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := snmpField(snmp, tt.proto, tt.field)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("snmpField(%s, %s) = %d, %v; want %d, err %v", tt.proto, tt.field, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPingTimestamp(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		want   time.Time
		wantOK bool
	}{
		{name: "reply", line: "[1732406400.250000] 64 bytes from 10.20.0.12: icmp_seq=1 ttl=64 time=0.1 ms",
			want: time.Unix(1732406400, 250000000), wantOK: true},
		{name: "no timestamp", line: "64 bytes from 10.20.0.12: icmp_seq=1 ttl=64 time=0.1 ms"},
		{name: "unreachable", line: "[1732406400.25] From 10.20.0.11 icmp_seq=3 Destination Host Unreachable"},
		{name: "garbage stamp", line: "[abc] 64 bytes from x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pingTimestamp(tt.line)
			if ok != tt.wantOK || (ok && got.Sub(tt.want).Abs() > time.Microsecond) {
				t.Errorf("pingTimestamp(%q) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
