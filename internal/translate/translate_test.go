package translate

import (
	"errors"
	"net/netip"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"hivenet/internal/topology"
)

func ptr(s string) *string { return &s }

func TestPrepareSubnet(t *testing.T) {
	others := []*Subnet{{ID: "s-other", NetworkID: "n1", CIDR: "10.1.0.0/16"}}
	tests := []struct {
		name         string
		in           Subnet
		gatewayGiven bool
		wantField    string // "" = valid
		wantGateway  *string
		wantPools    []AllocationPool
	}{
		{
			name:        "defaults",
			in:          Subnet{IPVersion: 4, CIDR: "10.0.0.0/24"},
			wantGateway: ptr("10.0.0.1"),
			wantPools:   []AllocationPool{{"10.0.0.2", "10.0.0.254"}},
		},
		{
			name:         "no gateway",
			in:           Subnet{IPVersion: 4, CIDR: "10.0.0.0/24"},
			gatewayGiven: true,
			wantPools:    []AllocationPool{{"10.0.0.1", "10.0.0.254"}},
		},
		{
			name:         "gateway in the middle splits the pool",
			in:           Subnet{IPVersion: 4, CIDR: "10.0.0.0/29", GatewayIP: ptr("10.0.0.3")},
			gatewayGiven: true,
			wantGateway:  ptr("10.0.0.3"),
			wantPools:    []AllocationPool{{"10.0.0.1", "10.0.0.2"}, {"10.0.0.4", "10.0.0.6"}},
		},
		{
			name:        "explicit pools",
			in:          Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", AllocationPools: []AllocationPool{{"10.0.0.100", "10.0.0.150"}, {"10.0.0.10", "10.0.0.20"}}},
			wantGateway: ptr("10.0.0.1"),
			wantPools:   []AllocationPool{{"10.0.0.100", "10.0.0.150"}, {"10.0.0.10", "10.0.0.20"}},
		},
		{name: "ipv6", in: Subnet{IPVersion: 6, CIDR: "fd00::/64"}, wantField: "ip_version"},
		{name: "bad cidr", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/33"}, wantField: "cidr"},
		{name: "garbage cidr", in: Subnet{IPVersion: 4, CIDR: "hello"}, wantField: "cidr"},
		{name: "host bits", in: Subnet{IPVersion: 4, CIDR: "10.0.0.5/24"}, wantField: "cidr"},
		{name: "ipv6 cidr with version 4", in: Subnet{IPVersion: 4, CIDR: "fd00::/64"}, wantField: "cidr"},
		{name: "too small", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/31"}, wantField: "cidr"},
		{name: "overlap", in: Subnet{IPVersion: 4, CIDR: "10.1.2.0/24", NetworkID: "n1"}, wantField: "cidr"},
		{name: "gateway outside", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", GatewayIP: ptr("10.0.1.1")}, gatewayGiven: true, wantField: "gateway_ip"},
		{name: "gateway is broadcast", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", GatewayIP: ptr("10.0.0.255")}, gatewayGiven: true, wantField: "gateway_ip"},
		{name: "gateway garbage", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", GatewayIP: ptr("x")}, gatewayGiven: true, wantField: "gateway_ip"},
		{name: "pool outside", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", AllocationPools: []AllocationPool{{"10.0.0.10", "10.0.1.20"}}}, wantField: "allocation_pools"},
		{name: "pool reversed", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", AllocationPools: []AllocationPool{{"10.0.0.20", "10.0.0.10"}}}, wantField: "allocation_pools"},
		{name: "pool has gateway", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", AllocationPools: []AllocationPool{{"10.0.0.1", "10.0.0.10"}}}, wantField: "allocation_pools"},
		{name: "pools overlap", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", AllocationPools: []AllocationPool{{"10.0.0.10", "10.0.0.20"}, {"10.0.0.15", "10.0.0.30"}}}, wantField: "allocation_pools"},
		{name: "pool garbage", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", AllocationPools: []AllocationPool{{"a", "b"}}}, wantField: "allocation_pools"},
		{name: "bad dns", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", DNSNameservers: []string{"8.8.8.8", "nope"}}, wantField: "dns_nameservers"},
		{name: "dup dns", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", DNSNameservers: []string{"8.8.8.8", "8.8.8.8"}}, wantField: "dns_nameservers"},
		{name: "bad route", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", HostRoutes: []HostRoute{{"10.9.0.0/33", "10.0.0.1"}}}, wantField: "host_routes"},
		{name: "bad nexthop", in: Subnet{IPVersion: 4, CIDR: "10.0.0.0/24", HostRoutes: []HostRoute{{"10.9.0.0/16", "x"}}}, wantField: "host_routes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.in
			err := PrepareSubnet(&s, tt.gatewayGiven, others)
			if tt.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.wantField {
					t.Fatalf("PrepareSubnet(%+v) = %v, want FieldError on %s", tt.in, err, tt.wantField)
				}
				if !strings.Contains(err.Error(), tt.wantField) {
					t.Errorf("error %q does not name %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("PrepareSubnet(%+v) = %v", tt.in, err)
			}
			if !reflect.DeepEqual(s.GatewayIP, tt.wantGateway) {
				t.Errorf("gateway = %v, want %v", deref(s.GatewayIP), deref(tt.wantGateway))
			}
			if !reflect.DeepEqual(s.AllocationPools, tt.wantPools) {
				t.Errorf("pools = %v, want %v", s.AllocationPools, tt.wantPools)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestFreeAddr(t *testing.T) {
	pools := []Range{
		{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")},
		{netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.0.10")},
	}
	tests := []struct {
		name   string
		used   []string
		want   string
		wantOK bool
	}{
		{name: "empty", want: "10.0.0.2", wantOK: true},
		{name: "first used", used: []string{"10.0.0.2"}, want: "10.0.0.3", wantOK: true},
		{name: "next pool", used: []string{"10.0.0.2", "10.0.0.3"}, want: "10.0.0.10", wantOK: true},
		{name: "hole", used: []string{"10.0.0.3", "10.0.0.10"}, want: "10.0.0.2", wantOK: true},
		{name: "full", used: []string{"10.0.0.2", "10.0.0.3", "10.0.0.10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			used := map[netip.Addr]bool{}
			for _, u := range tt.used {
				used[netip.MustParseAddr(u)] = true
			}
			got, ok := FreeAddr(pools, func(a netip.Addr) bool { return used[a] })
			if ok != tt.wantOK || (ok && got.String() != tt.want) {
				t.Errorf("FreeAddr(used %v) = %v, %v; want %s, %v", tt.used, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestNextTunnelKey(t *testing.T) {
	tests := []struct {
		name    string
		last    uint32
		taken   []uint32
		want    uint32
		wantErr bool
	}{
		{name: "first", last: 0, want: 1},
		{name: "next", last: 41, want: 42},
		{name: "skips taken", last: 1, taken: []uint32{2, 3}, want: 4},
		{name: "skips flow state key and wraps", last: FlowStateKey - 1, want: 1},
		{name: "wraps past taken", last: FlowStateKey - 2, taken: []uint32{FlowStateKey - 1, 1}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			taken := map[uint32]bool{}
			for _, k := range tt.taken {
				taken[k] = true
			}
			got, err := NextTunnelKey(tt.last, func(k uint32) bool { return taken[k] })
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("NextTunnelKey(%d, %v) = %d, %v; want %d", tt.last, tt.taken, got, err, tt.want)
			}
			if got == 0 || got == FlowStateKey {
				t.Errorf("NextTunnelKey returned reserved key %d", got)
			}
		})
	}
	if _, err := NextTunnelKey(5, func(uint32) bool { return true }); err == nil {
		t.Error("NextTunnelKey with every key taken: nil error")
	}
}

func TestTopoPort(t *testing.T) {
	base := Port{
		ID: "0123456789abcdef", NetworkID: "n1", ProjectID: "p", MACAddress: "fa:16:3e:00:00:01",
		AdminStateUp: true, PortSecurityEnabled: true, TunnelKey: 9, HostID: "h1",
		FixedIPs: []FixedIP{{SubnetID: "s1", IPAddress: "10.0.0.5"}},
	}
	tests := []struct {
		name      string
		mod       func(p *Port)
		wantIface string
		wantPairs []topology.AddressPair
		wantErr   bool
	}{
		{name: "default interface", mod: func(*Port) {}, wantIface: "tap0123456789a"},
		{name: "profile interface", mod: func(p *Port) { p.Profile = map[string]any{"interface_name": "veth-vm1"} }, wantIface: "veth-vm1"},
		{name: "empty profile name", mod: func(p *Port) { p.Profile = map[string]any{"interface_name": ""} }, wantIface: "tap0123456789a"},
		{
			name: "address pairs",
			mod: func(p *Port) {
				p.AllowedAddressPairs = []AddressPair{{IPAddress: "10.0.0.0/24", MACAddress: "fa:16:3e:00:00:01"}, {IPAddress: "10.0.9.9", MACAddress: "fa:16:3e:00:00:99"}}
			},
			wantIface: "tap0123456789a",
			wantPairs: []topology.AddressPair{
				{Prefix: netip.MustParsePrefix("10.0.0.0/24")},
				{Prefix: netip.MustParsePrefix("10.0.9.9/32"), MAC: topology.MAC{0xfa, 0x16, 0x3e, 0, 0, 0x99}},
			},
		},
		{name: "bad mac", mod: func(p *Port) { p.MACAddress = "zz" }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.mod(&p)
			got, err := TopoPort(&p)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("TopoPort(%+v) = nil error", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := &topology.Port{
				ID: p.ID, ProjectID: "p", BridgeID: "n1", MAC: topology.MAC{0xfa, 0x16, 0x3e, 0, 0, 1},
				FixedIPs: []topology.FixedIP{{SubnetID: "s1", Addr: netip.MustParseAddr("10.0.0.5")}},
				AdminUp:  true, PortSecurity: true, AllowedAddressPairs: tt.wantPairs, HostID: "h1",
				InterfaceName: tt.wantIface, TunnelKey: 9,
				InboundChain: "in-" + p.ID, OutboundChain: "out-" + p.ID,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("TopoPort = %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestTopoSubnetAndBridge(t *testing.T) {
	s := &Subnet{
		ID: "s1", NetworkID: "n1", IPVersion: 4, CIDR: "10.0.0.0/24", GatewayIP: ptr("10.0.0.1"),
		DNSNameservers: []string{"10.0.0.53"}, HostRoutes: []HostRoute{{"192.168.0.0/16", "10.0.0.254"}},
		EnableDHCP: true, DHCPServer: "10.0.0.2",
	}
	got, err := TopoSubnet(s)
	if err != nil {
		t.Fatal(err)
	}
	want := &topology.Subnet{
		ID: "s1", BridgeID: "n1", CIDR: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
		DNS:        []netip.Addr{netip.MustParseAddr("10.0.0.53")},
		HostRoutes: []topology.HostRoute{{Destination: netip.MustParsePrefix("192.168.0.0/16"), NextHop: netip.MustParseAddr("10.0.0.254")}},
		DHCP:       true, DHCPServer: netip.MustParseAddr("10.0.0.2"), LeaseSeconds: LeaseSeconds,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TopoSubnet = %+v\nwant %+v", got, want)
	}
	if idx := SubnetIndexes(s); !reflect.DeepEqual(idx, []string{"ip/n1/10.0.0.2"}) {
		t.Errorf("SubnetIndexes = %v", idx)
	}
	s.GatewayIP = nil
	if got, _ := TopoSubnet(s); got.Gateway.IsValid() {
		t.Errorf("no gateway: Gateway = %v", got.Gateway)
	}

	n := &Network{ID: "n1", Name: "net", ProjectID: "p", AdminStateUp: true, MTU: 1450, SegmentationID: 7}
	if b := Bridge(n); *b != (topology.Bridge{ID: "n1", Name: "net", ProjectID: "p", AdminUp: true, FloodKey: 7, MTU: 1450}) {
		t.Errorf("Bridge = %+v", b)
	}
	if idx := NetworkIndexes(n); !reflect.DeepEqual(idx, []string{"tunnelkey/7"}) {
		t.Errorf("NetworkIndexes = %v", idx)
	}
}

func TestPortIndexes(t *testing.T) {
	p := &Port{ID: "p1", NetworkID: "n1", MACAddress: "fa:16:3e:00:00:01", TunnelKey: 12,
		FixedIPs: []FixedIP{{"s1", "10.0.0.5"}, {"s2", "10.1.0.5"}}}
	want := []string{"mac/n1/fa:16:3e:00:00:01", "tunnelkey/12", "netport/n1/p1", "ip/n1/10.0.0.5", "ip/n1/10.1.0.5"}
	if got := PortIndexes(p); !reflect.DeepEqual(got, want) {
		t.Errorf("PortIndexes = %v, want %v", got, want)
	}
	p.HostID = "h1"
	want = []string{"mac/n1/fa:16:3e:00:00:01", "tunnelkey/12", "netport/n1/p1", "iface/h1/tapp1", "ip/n1/10.0.0.5", "ip/n1/10.1.0.5"}
	if got := PortIndexes(p); !reflect.DeepEqual(got, want) {
		t.Errorf("bound PortIndexes = %v, want %v", got, want)
	}
}

func TestCheckFixedIP(t *testing.T) {
	s := &Subnet{ID: "s1", CIDR: "10.0.0.0/24"}
	tests := []struct {
		name    string
		ip      string
		wantErr bool
	}{
		{name: "ok", ip: "10.0.0.7"},
		{name: "outside", ip: "10.0.1.7", wantErr: true},
		{name: "network address", ip: "10.0.0.0", wantErr: true},
		{name: "broadcast", ip: "10.0.0.255", wantErr: true},
		{name: "garbage", ip: "10.0.0", wantErr: true},
		{name: "ipv6", ip: "::1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckFixedIP(s, tt.ip)
			var fe *FieldError
			if tt.wantErr != (err != nil) || (err != nil && !errors.As(err, &fe)) {
				t.Errorf("CheckFixedIP(%s) = %v, wantErr %v", tt.ip, err, tt.wantErr)
			}
		})
	}
}

func TestMACFromBytes(t *testing.T) {
	if got := MACFromBytes([3]byte{1, 0xab, 0xff}); got != "fa:16:3e:01:ab:ff" {
		t.Errorf("MACFromBytes = %s", got)
	}
}

// translate is pure: it and the hivenet packages it uses import no I/O,
// clock or randomness (fmt's own use of os does not count).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := map[string]bool{"net": true, "os": true, "syscall": true, "log": true, "log/slog": true, "math/rand": true, "math/rand/v2": true, "crypto/rand": true, "time": true}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ": ")
		if !strings.HasPrefix(pkg, "hivenet/") {
			continue
		}
		for _, d := range strings.Fields(imports) {
			if forbidden[d] || strings.Contains(d, "etcd") || d == "hivenet/internal/store" {
				t.Errorf("%s imports %s; translate must stay pure", pkg, d)
			}
		}
	}
}
