package client

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFormatAgentFlow(t *testing.T) {
	tests := []struct {
		name string
		flow AgentFlow
		want string
	}{
		{
			name: "used",
			flow: AgentFlow{Match: "in_port=1 ip ip_dst=10.0.0.12", Packets: 4, Bytes: 392, IdleMS: 840, Actions: "tunnel(10.250.0.2,key=102)"},
			want: "in_port=1 ip ip_dst=10.0.0.12 packets:4 bytes:392 used:0.84s actions:tunnel(10.250.0.2,key=102)",
		},
		{
			name: "never used",
			flow: AgentFlow{Match: "in_port=2 arp", IdleMS: 5000, Actions: "drop"},
			want: "in_port=2 arp packets:0 bytes:0 used:never actions:drop",
		},
		{
			name: "idle for minutes, empty match",
			flow: AgentFlow{Packets: 1, Bytes: 60, IdleMS: 125_400, Actions: "output:3"},
			want: "any packets:1 bytes:60 used:125s actions:output:3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatAgentFlow(tt.flow); got != tt.want {
				t.Errorf("FormatAgentFlow(%+v) =\n%s\nwant\n%s", tt.flow, got, tt.want)
			}
		})
	}
}

func TestWriteAgentOutput(t *testing.T) {
	flows := []AgentFlow{{Match: "in_port=1", Packets: 1, Actions: "drop", ActionList: []AgentAction{}}}
	stats := AgentStats{Host: "host1", TunnelIP: "10.250.0.1", Upcalls: 7, Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		DP: DatapathStats{RxPackets: 12, Flows: 3}}
	tests := []struct {
		name, format string
		write        func(w *bytes.Buffer, format string) error
		want         []string // lines or fragments expected in the output
		wantErr      string
	}{
		{name: "flows table", format: "table", write: func(w *bytes.Buffer, f string) error { return WriteAgentFlows(w, f, flows) },
			want: []string{"in_port=1 packets:1 bytes:0 used:0.00s actions:drop\n"}},
		{name: "flows json", format: "json", write: func(w *bytes.Buffer, f string) error { return WriteAgentFlows(w, f, flows) },
			want: []string{`"match": "in_port=1"`, `"action_list": []`}},
		{name: "no flows json is an empty array", format: "json", write: func(w *bytes.Buffer, f string) error { return WriteAgentFlows(w, f, nil) },
			want: []string{"[]\n"}},
		{name: "flows bad format", format: "yaml", write: func(w *bytes.Buffer, f string) error { return WriteAgentFlows(w, f, flows) },
			wantErr: `output format "yaml"`},
		{name: "stats table", format: "table", write: func(w *bytes.Buffer, f string) error { return WriteAgentStats(w, f, stats) },
			want: []string{"host                                 host1\n", "upcalls                              7\n",
				"started                              2026-01-02T03:04:05Z\n", "datapath.rx_packets                  12\n",
				"datapath.upcalls_dropped_rate_limit  0\n"}},
		{name: "stats json", format: "json", write: func(w *bytes.Buffer, f string) error { return WriteAgentStats(w, f, stats) },
			want: []string{`"tunnel_ip": "10.250.0.1"`, `"datapath_stats": {`, `"flows": 3`}},
		{name: "stats bad format", format: "", write: func(w *bytes.Buffer, f string) error { return WriteAgentStats(w, f, stats) },
			wantErr: `output format ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := tt.write(&b, tt.format)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || b.Len() != 0 {
					t.Errorf("write(%q) = %v, output %q; want error %q and no output", tt.format, err, b.String(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("write(%q) output lacks %q:\n%s", tt.format, w, b.String())
				}
			}
			if tt.format == "json" && !json.Valid(b.Bytes()) {
				t.Errorf("write(json) is not JSON:\n%s", b.String())
			}
		})
	}
}
