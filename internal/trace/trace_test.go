package trace

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"hivenet/internal/topology"
)

// A bridge with two ports on two hosts; p1 traces towards p2.
func testSnapshot() *topology.Snapshot {
	mac := func(b byte) topology.MAC { return topology.MAC{0xfa, 0x16, 0x3e, 0, 0, b} }
	s, _ := topology.Empty().Apply([]topology.Change{
		{Kind: topology.KindBridge, ID: "b1", Bridge: &topology.Bridge{ID: "b1", Name: "net", AdminUp: true, FloodKey: 100, MTU: 1450}},
		{Kind: topology.KindPort, ID: "p1", Port: &topology.Port{ID: "p1", Name: "vm1", BridgeID: "b1", MAC: mac(1), AdminUp: true, PortSecurity: true,
			FixedIPs: []topology.FixedIP{{SubnetID: "s1", Addr: netip.MustParseAddr("10.0.0.11")}}, HostID: "h1", TunnelKey: 101}},
		{Kind: topology.KindPort, ID: "p2", Port: &topology.Port{ID: "p2", Name: "vm2", BridgeID: "b1", MAC: mac(2), AdminUp: true, PortSecurity: true,
			FixedIPs: []topology.FixedIP{{SubnetID: "s1", Addr: netip.MustParseAddr("10.0.0.12")}}, HostID: "h2", TunnelKey: 102}},
		{Kind: topology.KindChain, ID: "in3", Chain: &topology.Chain{ID: "in3", Name: "in3", Default: topology.RuleDrop, Rules: []topology.Rule{
			{ID: "established", Action: topology.RuleAccept, CTState: topology.CTEstablished, ICMPType: -1, ICMPCode: -1}}}},
		{Kind: topology.KindPort, ID: "p3", Port: &topology.Port{ID: "p3", Name: "vm3", BridgeID: "b1", MAC: mac(3), AdminUp: true, PortSecurity: true,
			FixedIPs: []topology.FixedIP{{SubnetID: "s1", Addr: netip.MustParseAddr("10.0.0.13")}}, HostID: "h2", TunnelKey: 103, InboundChain: "in3"}},
		{Kind: topology.KindPortBinding, ID: "p3", Binding: &topology.PortBinding{PortID: "p3", Host: "h2"}},
		{Kind: topology.KindHost, ID: "h1", Host: &topology.Host{Name: "h1", TunnelIP: netip.MustParseAddr("10.250.0.1"), TunnelPort: 4789}},
		{Kind: topology.KindHost, ID: "h2", Host: &topology.Host{Name: "h2", TunnelIP: netip.MustParseAddr("10.250.0.2"), TunnelPort: 4789, Conntrack: true}},
		{Kind: topology.KindPortBinding, ID: "p1", Binding: &topology.PortBinding{PortID: "p1", Host: "h1"}},
		{Kind: topology.KindPortBinding, ID: "p2", Binding: &topology.PortBinding{PortID: "p2", Host: "h2"}},
	})
	return s
}

func TestSimulate(t *testing.T) {
	snap := testSnapshot()
	tests := []struct {
		name        string
		req         Request
		wantErr     error
		wantVerdict string
		wantReason  string
		wantOutput  string // port ID of the single output, if any
		wantFlow    string // a substring of Flow
	}{
		{name: "new connection into a port admitting only established ones", req: Request{PortID: "p1", EthDst: "fa:16:3e:00:00:03", IPDst: "10.0.0.13", Proto: "tcp", SrcPort: 40000, DstPort: 22},
			wantVerdict: "drop", wantReason: "filter-drop"},
		{name: "the same as the datapath's new", req: Request{PortID: "p1", EthDst: "fa:16:3e:00:00:03", IPDst: "10.0.0.13", Proto: "tcp", SrcPort: 40000, DstPort: 22, CTState: "new"},
			wantVerdict: "drop", wantReason: "filter-drop", wantFlow: "ct_state"},
		{name: "an established connection as the datapath sees it", req: Request{PortID: "p1", EthDst: "fa:16:3e:00:00:03", IPDst: "10.0.0.13", Proto: "tcp", SrcPort: 40000, DstPort: 22, CTState: "est"},
			wantVerdict: "forward", wantOutput: "p3", wantFlow: "ct_state"},
		{name: "bad ct_state", req: Request{PortID: "p1", IPDst: "10.0.0.13", CTState: "related"}, wantErr: ErrInvalid},
		{name: "icmp to a port on another host", req: Request{PortID: "p1", EthDst: "fa:16:3e:00:00:02", IPDst: "10.0.0.12"},
			wantVerdict: "forward", wantOutput: "p2"},
		{name: "tcp", req: Request{PortID: "p1", EthDst: "fa:16:3e:00:00:02", IPDst: "10.0.0.12", Proto: "tcp", SrcPort: 40000, DstPort: 22},
			wantVerdict: "forward", wantOutput: "p2"},
		{name: "udp", req: Request{PortID: "p1", EthDst: "fa:16:3e:00:00:02", IPDst: "10.0.0.12", Proto: "UDP", DstPort: 53},
			wantVerdict: "forward", wantOutput: "p2"},
		{name: "protocol number", req: Request{PortID: "p1", EthDst: "fa:16:3e:00:00:02", IPDst: "10.0.0.12", Proto: "47"},
			wantVerdict: "forward", wantOutput: "p2"},
		{name: "arp for a known address is answered", req: Request{PortID: "p1", Proto: "arp", IPDst: "10.0.0.12"},
			wantVerdict: "consumed"},
		{name: "spoofed source IP", req: Request{PortID: "p1", EthDst: "fa:16:3e:00:00:02", IPSrc: "10.0.0.99", IPDst: "10.0.0.12"},
			wantVerdict: "drop", wantReason: "port-security"},
		{name: "spoofed source MAC", req: Request{PortID: "p1", EthSrc: "02:00:00:00:00:99", EthDst: "fa:16:3e:00:00:02", IPDst: "10.0.0.12"},
			wantVerdict: "drop", wantReason: "port-security"},
		{name: "missing port_id", req: Request{IPDst: "10.0.0.12"}, wantErr: ErrInvalid},
		{name: "unknown port", req: Request{PortID: "nope"}, wantErr: ErrNotFound},
		{name: "bad MAC", req: Request{PortID: "p1", EthDst: "fa:16"}, wantErr: ErrInvalid},
		{name: "bad IP", req: Request{PortID: "p1", IPDst: "10.0.0"}, wantErr: ErrInvalid},
		{name: "IPv6 destination", req: Request{PortID: "p1", IPDst: "2001:db8::1"}, wantErr: ErrInvalid},
		{name: "bad protocol", req: Request{PortID: "p1", Proto: "sctpx"}, wantErr: ErrInvalid},
		{name: "protocol out of range", req: Request{PortID: "p1", Proto: "300"}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Simulate(snap, tt.req, 0)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Simulate(%+v) error = %v, want %v", tt.req, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Simulate(%+v): %v", tt.req, err)
			}
			if got.Verdict != tt.wantVerdict || got.Reason != tt.wantReason {
				t.Errorf("Simulate(%+v) = %s/%s, want %s/%s", tt.req, got.Verdict, got.Reason, tt.wantVerdict, tt.wantReason)
			}
			if tt.wantOutput != "" && (len(got.Outputs) != 1 || got.Outputs[0].PortID != tt.wantOutput || got.Outputs[0].Host != "h2") {
				t.Errorf("outputs = %+v, want %s on h2", got.Outputs, tt.wantOutput)
			}
			if got.Host != "h1" {
				t.Errorf("simulated on %q, want the ingress port's host h1", got.Host)
			}
			if len(got.Steps) == 0 {
				t.Error("no trace steps")
			}
			if !strings.Contains(got.Flow, tt.wantFlow) {
				t.Errorf("flow = %q, want it to name %q", got.Flow, tt.wantFlow)
			}
			if tt.wantVerdict == "forward" && !strings.HasPrefix(got.Flow, "cacheable: matches ") {
				t.Errorf("flow = %q, want a cacheable flow description", got.Flow)
			}
		})
	}
}
