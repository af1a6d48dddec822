package api

import (
	"maps"
	"net/http"
	"strings"
	"testing"
)

// Every bad request gets the right status, a NeutronError whose message
// names the offending field, and leaves etcd exactly as it was.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	netA := e.network(tokA, "a")
	subA := e.subnet(tokA, netA, "10.0.0.0/24")
	netB := e.network(tokB, "b")
	port := e.create("port", tokA, `{"port": {"network_id": "`+netA+`", "mac_address": "fa:16:3e:00:00:10", "fixed_ips": [{"ip_address": "10.0.0.10"}]}}`)
	portID := port["id"].(string)

	r := strings.NewReplacer("NETA", netA, "NETB", netB, "SUBA", subA, "PORT", portID)
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		body       string
		wantStatus int
		wantType   string // "" = any
		wantInMsg  string
	}{
		{name: "no token", method: "GET", path: "/v2.0/networks", wantStatus: 401, wantType: "NotAuthenticated", wantInMsg: "X-Auth-Token"},
		{name: "bad token", method: "GET", path: "/v2.0/networks", token: "nope", wantStatus: 401, wantInMsg: "X-Auth-Token"},
		{name: "bad token on create", method: "POST", path: "/v2.0/networks", token: "nope", body: `{"network": {}}`, wantStatus: 401},
		{name: "malformed json", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"name": "x"`, wantStatus: 400, wantType: "HTTPBadRequest", wantInMsg: "Malformed"},
		{name: "trailing garbage", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {}} {}`, wantStatus: 400, wantInMsg: "Malformed"},
		{name: "empty body", method: "POST", path: "/v2.0/networks", token: tokA, wantStatus: 400, wantInMsg: "body"},
		{name: "not an object", method: "POST", path: "/v2.0/networks", token: tokA, body: `[1]`, wantStatus: 400, wantInMsg: "Malformed"},
		{name: "wrong wrapper", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"net": {}}`, wantStatus: 400, wantInMsg: "network"},
		{name: "inner not object", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": "x"}`, wantStatus: 400, wantInMsg: "network"},
		{name: "unknown attribute", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"colour": "red"}}`, wantStatus: 400, wantType: "HTTPBadRequest", wantInMsg: "colour"},
		{name: "name not string", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"name": 5}}`, wantStatus: 400, wantType: "InvalidInput", wantInMsg: "name"},
		{name: "name too long", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"name": "` + strings.Repeat("x", 256) + `"}}`, wantStatus: 400, wantInMsg: "name"},
		{name: "bad boolean", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"admin_state_up": "maybe"}}`, wantStatus: 400, wantInMsg: "admin_state_up"},
		{name: "mtu too big", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"mtu": 9000}}`, wantStatus: 400, wantInMsg: "mtu"},
		{name: "mtu not int", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"mtu": 1.5}}`, wantStatus: 400, wantInMsg: "mtu"},
		{name: "member shares", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"shared": true}}`, wantStatus: 403, wantInMsg: "shared"},
		{name: "member sets external", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"router:external": true}}`, wantStatus: 403, wantInMsg: "router:external"},
		{name: "member sets provider", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"provider:network_type": "flat", "provider:physical_network": "p"}}`, wantStatus: 403, wantInMsg: "provider:network_type"},
		{name: "vlan", method: "POST", path: "/v2.0/networks", token: adminTok, body: `{"network": {"provider:network_type": "vlan"}}`, wantStatus: 400, wantInMsg: "provider:network_type"},
		{name: "external vxlan", method: "POST", path: "/v2.0/networks", token: adminTok, body: `{"network": {"router:external": true}}`, wantStatus: 400, wantInMsg: "router:external"},
		{name: "flat without physnet", method: "POST", path: "/v2.0/networks", token: adminTok, body: `{"network": {"router:external": true, "provider:network_type": "flat"}}`, wantStatus: 400, wantInMsg: "provider:physical_network"},
		{name: "flat not external", method: "POST", path: "/v2.0/networks", token: adminTok, body: `{"network": {"provider:network_type": "flat", "provider:physical_network": "physnet9"}}`, wantStatus: 400, wantInMsg: "router:external"},
		{name: "physnet on vxlan", method: "POST", path: "/v2.0/networks", token: adminTok, body: `{"network": {"provider:physical_network": "physnet9"}}`, wantStatus: 400, wantInMsg: "provider:physical_network"},
		{name: "physnet with slash", method: "POST", path: "/v2.0/networks", token: adminTok, body: `{"network": {"router:external": true, "provider:network_type": "flat", "provider:physical_network": "a/b"}}`, wantStatus: 400, wantInMsg: "provider:physical_network"},
		{name: "member sets other project", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"project_id": "project-b"}}`, wantStatus: 403, wantInMsg: "project_id"},
		{name: "project and tenant differ", method: "POST", path: "/v2.0/networks", token: adminTok, body: `{"network": {"project_id": "x", "tenant_id": "y"}}`, wantStatus: 400, wantInMsg: "project_id"},
		{name: "tags not list", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"tags": "a"}}`, wantStatus: 400, wantInMsg: "tags"},

		{name: "subnet ipv6", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "fd00::/64", "ip_version": 6}}`, wantStatus: 400, wantType: "InvalidInput", wantInMsg: "ip_version"},
		{name: "subnet bad cidr", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/40"}}`, wantStatus: 400, wantInMsg: "cidr"},
		{name: "subnet host bits", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.1/24"}}`, wantStatus: 400, wantInMsg: "cidr"},
		{name: "subnet no cidr", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA"}}`, wantStatus: 400, wantInMsg: "cidr"},
		{name: "subnet overlap", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.0.0.128/25"}}`, wantStatus: 400, wantInMsg: "cidr"},
		{name: "subnet no network", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"cidr": "10.1.0.0/24"}}`, wantStatus: 400, wantInMsg: "network_id"},
		{name: "subnet missing network", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "8d3a4f1e-0000-4000-8000-000000000000", "cidr": "10.1.0.0/24"}}`, wantStatus: 404, wantType: "NetworkNotFound", wantInMsg: "8d3a4f1e"},
		{name: "subnet other project network", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETB", "cidr": "10.1.0.0/24"}}`, wantStatus: 404, wantType: "NetworkNotFound"},
		{name: "subnet gateway outside", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/24", "gateway_ip": "10.2.0.1"}}`, wantStatus: 400, wantInMsg: "gateway_ip"},
		{name: "subnet gateway garbage", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/24", "gateway_ip": 7}}`, wantStatus: 400, wantInMsg: "gateway_ip"},
		{name: "subnet pool outside", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.1.10"}]}}`, wantStatus: 400, wantInMsg: "allocation_pools"},
		{name: "subnet pool unknown key", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/24", "allocation_pools": [{"first": "10.1.0.10"}]}}`, wantStatus: 400, wantInMsg: "allocation_pools"},
		{name: "subnet bad dns", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/24", "dns_nameservers": ["dns.example"]}}`, wantStatus: 400, wantInMsg: "dns_nameservers"},
		{name: "subnet bad route", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/24", "host_routes": [{"destination": "x", "nexthop": "10.1.0.1"}]}}`, wantStatus: 400, wantInMsg: "host_routes"},
		{name: "subnet ipv6 mode", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/24", "ipv6_ra_mode": "slaac"}}`, wantStatus: 400, wantInMsg: "ipv6_ra_mode"},

		{name: "port bad mac", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "mac_address": "fa:16:3e:zz:00:01"}}`, wantStatus: 400, wantType: "InvalidInput", wantInMsg: "mac_address"},
		{name: "port multicast mac", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "mac_address": "01:00:5e:00:00:01"}}`, wantStatus: 400, wantInMsg: "mac_address"},
		{name: "port mac in use", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "mac_address": "FA:16:3E:00:00:10"}}`, wantStatus: 409, wantType: "MacAddressInUse", wantInMsg: "fa:16:3e:00:00:10"},
		{name: "port ip outside subnet", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"subnet_id": "SUBA", "ip_address": "10.9.0.5"}]}}`, wantStatus: 400, wantInMsg: "fixed_ips"},
		{name: "port ip in no subnet", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"ip_address": "10.9.0.5"}]}}`, wantStatus: 400, wantInMsg: "fixed_ips"},
		{name: "port ip garbage", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"ip_address": "ten"}]}}`, wantStatus: 400, wantInMsg: "fixed_ips"},
		{name: "port ip in use", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"ip_address": "10.0.0.10"}]}}`, wantStatus: 409, wantType: "IpAddressInUse", wantInMsg: "10.0.0.10"},
		{name: "port ip is dhcp server", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"ip_address": "10.0.0.2"}]}}`, wantStatus: 409, wantType: "IpAddressInUse", wantInMsg: "10.0.0.2"},
		{name: "port ip is gateway", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"ip_address": "10.0.0.1"}]}}`, wantStatus: 409, wantType: "IpAddressInUse", wantInMsg: "10.0.0.1"},
		{name: "port ip twice", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"ip_address": "10.0.0.50"}, {"ip_address": "10.0.0.50"}]}}`, wantStatus: 400, wantInMsg: "fixed_ips"},
		{name: "port foreign subnet", method: "POST", path: "/v2.0/ports", token: adminTok, body: `{"port": {"network_id": "NETB", "fixed_ips": [{"subnet_id": "SUBA"}]}}`, wantStatus: 400, wantInMsg: "fixed_ips"},
		{name: "port fixed ip unknown key", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"ip": "10.0.0.5"}]}}`, wantStatus: 400, wantInMsg: "fixed_ips"},
		{name: "port too many ips", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "fixed_ips": [{"subnet_id": "SUBA"}, {"subnet_id": "SUBA"}, {"subnet_id": "SUBA"}, {"subnet_id": "SUBA"}, {"subnet_id": "SUBA"}, {"subnet_id": "SUBA"}]}}`, wantStatus: 400, wantInMsg: "fixed_ips"},
		{name: "port too many pairs", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "allowed_address_pairs": [` + strings.Repeat(`{"ip_address": "10.0.0.1"}, `, 10) + `{"ip_address": "10.0.0.2"}]}}`, wantStatus: 400, wantInMsg: "allowed_address_pairs"},
		{name: "subnet too many pools", method: "POST", path: "/v2.0/subnets", token: tokA, body: `{"subnet": {"network_id": "NETA", "cidr": "10.1.0.0/16", "allocation_pools": [` + strings.Repeat(`{"start": "10.1.0.10", "end": "10.1.0.10"}, `, 64) + `{"start": "10.1.0.11", "end": "10.1.0.11"}]}}`, wantStatus: 400, wantInMsg: "allocation_pools"},
		{name: "port no network", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {}}`, wantStatus: 400, wantInMsg: "network_id"},
		{name: "port missing network", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "nope"}}`, wantStatus: 404, wantType: "NetworkNotFound"},
		{name: "port other project network", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETB"}}`, wantStatus: 404, wantType: "NetworkNotFound"},
		{name: "port bad pair", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "allowed_address_pairs": [{"ip_address": "10.0.0.0/33"}]}}`, wantStatus: 400, wantInMsg: "allowed_address_pairs"},
		{name: "port pair bad mac", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "allowed_address_pairs": [{"ip_address": "10.0.0.7", "mac_address": "x"}]}}`, wantStatus: 400, wantInMsg: "allowed_address_pairs"},
		{name: "port pairs without security", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "port_security_enabled": false, "allowed_address_pairs": [{"ip_address": "10.0.0.7"}]}}`, wantStatus: 409, wantInMsg: "port_security_enabled"},
		{name: "port security groups", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "security_groups": ["default"]}}`, wantStatus: 400, wantInMsg: "security_groups"},
		{name: "port vnic direct", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "binding:vnic_type": "direct"}}`, wantStatus: 400, wantInMsg: "binding:vnic_type"},
		{name: "member binds", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "binding:host_id": "h1"}}`, wantStatus: 403, wantType: "PolicyNotAuthorized", wantInMsg: "binding:host_id"},
		{name: "member sets profile", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "binding:profile": {"interface_name": "eth0"}}}`, wantStatus: 403, wantInMsg: "binding:profile"},
		{name: "member rebinds", method: "PUT", path: "/v2.0/ports/PORT", token: tokA, body: `{"port": {"binding:host_id": "h2"}}`, wantStatus: 403, wantInMsg: "binding:host_id"},
		{name: "port bad interface name", method: "POST", path: "/v2.0/ports", token: adminTok, body: `{"port": {"network_id": "NETA", "binding:profile": {"interface_name": "a/b"}}}`, wantStatus: 400, wantInMsg: "binding:profile"},
		{name: "port long interface name", method: "POST", path: "/v2.0/ports", token: adminTok, body: `{"port": {"network_id": "NETA", "binding:profile": {"interface_name": "abcdefghijklmnop"}}}`, wantStatus: 400, wantInMsg: "binding:profile"},
		{name: "port profile not object", method: "POST", path: "/v2.0/ports", token: adminTok, body: `{"port": {"network_id": "NETA", "binding:profile": "tap0"}}`, wantStatus: 400, wantInMsg: "binding:profile"},
		{name: "port read-only status", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NETA", "status": "ACTIVE"}}`, wantStatus: 400, wantInMsg: "status"},

		{name: "update network id", method: "PUT", path: "/v2.0/networks/NETA", token: tokA, body: `{"network": {"id": "x"}}`, wantStatus: 400, wantInMsg: "id"},
		{name: "update network unknown", method: "PUT", path: "/v2.0/networks/NETA", token: tokA, body: `{"network": {"colour": "x"}}`, wantStatus: 400, wantInMsg: "colour"},
		{name: "update network mtu", method: "PUT", path: "/v2.0/networks/NETA", token: tokA, body: `{"network": {"mtu": 1451}}`, wantStatus: 400, wantInMsg: "mtu"},
		{name: "update other project network", method: "PUT", path: "/v2.0/networks/NETB", token: tokA, body: `{"network": {"name": "x"}}`, wantStatus: 404, wantType: "NetworkNotFound"},
		{name: "update subnet cidr", method: "PUT", path: "/v2.0/subnets/SUBA", token: tokA, body: `{"subnet": {"cidr": "10.5.0.0/24"}}`, wantStatus: 400, wantInMsg: "cidr"},
		{name: "update subnet gateway in pool", method: "PUT", path: "/v2.0/subnets/SUBA", token: tokA, body: `{"subnet": {"gateway_ip": "10.0.0.20"}}`, wantStatus: 400, wantInMsg: "10.0.0.20"},
		{name: "update subnet dns", method: "PUT", path: "/v2.0/subnets/SUBA", token: tokA, body: `{"subnet": {"dns_nameservers": ["x"]}}`, wantStatus: 400, wantInMsg: "dns_nameservers"},
		{name: "update port network", method: "PUT", path: "/v2.0/ports/PORT", token: tokA, body: `{"port": {"network_id": "NETB"}}`, wantStatus: 400, wantInMsg: "network_id"},
		{name: "update port ip in use", method: "PUT", path: "/v2.0/ports/PORT", token: tokA, body: `{"port": {"fixed_ips": [{"ip_address": "10.0.0.2"}]}}`, wantStatus: 409, wantType: "IpAddressInUse"},
		{name: "update port security off with pairs", method: "PUT", path: "/v2.0/ports/PORT", token: tokA, body: `{"port": {"port_security_enabled": false, "allowed_address_pairs": [{"ip_address": "10.0.0.99"}]}}`, wantStatus: 409, wantInMsg: "port_security_enabled"},
		{name: "update port other project", method: "PUT", path: "/v2.0/ports/PORT", token: tokB, body: `{"port": {"name": "x"}}`, wantStatus: 404, wantType: "PortNotFound"},

		{name: "delete network in use", method: "DELETE", path: "/v2.0/networks/NETA", token: tokA, wantStatus: 409, wantType: "NetworkInUse", wantInMsg: "NETA"},
		{name: "delete subnet in use", method: "DELETE", path: "/v2.0/subnets/SUBA", token: tokA, wantStatus: 409, wantType: "SubnetInUse", wantInMsg: "10.0.0.10"},
		{name: "delete other project port", method: "DELETE", path: "/v2.0/ports/PORT", token: tokB, wantStatus: 404, wantType: "PortNotFound"},
		{name: "delete missing port", method: "DELETE", path: "/v2.0/ports/8d3a4f1e-0000-4000-8000-000000000000", token: tokA, wantStatus: 404, wantType: "PortNotFound"},
		{name: "show missing network", method: "GET", path: "/v2.0/networks/8d3a4f1e-0000-4000-8000-000000000000", token: tokA, wantStatus: 404, wantType: "NetworkNotFound"},
		{name: "show non-uuid", method: "GET", path: "/v2.0/networks/..%2f..", token: tokA, wantStatus: 404},
		{name: "show other project network", method: "GET", path: "/v2.0/networks/NETA", token: tokB, wantStatus: 404, wantType: "NetworkNotFound"},
		{name: "show other project subnet", method: "GET", path: "/v2.0/subnets/SUBA", token: tokB, wantStatus: 404, wantType: "SubnetNotFound"},
		{name: "show other project port", method: "GET", path: "/v2.0/ports/PORT", token: tokB, wantStatus: 404, wantType: "PortNotFound"},
		{name: "list bad filter", method: "GET", path: "/v2.0/networks?colour=red", token: tokA, wantStatus: 400, wantInMsg: "colour"},
		{name: "list bad limit", method: "GET", path: "/v2.0/networks?limit=-1", token: tokA, wantStatus: 400, wantInMsg: "limit"},
		{name: "list bad sort key", method: "GET", path: "/v2.0/networks?sort_key=colour", token: tokA, wantStatus: 400, wantInMsg: "colour"},
		{name: "list bad sort dir", method: "GET", path: "/v2.0/networks?sort_key=name&sort_dir=up", token: tokA, wantStatus: 400, wantInMsg: "sort_dir"},
		{name: "list unknown marker", method: "GET", path: "/v2.0/networks?marker=nope", token: tokA, wantStatus: 404, wantInMsg: "nope"},
		{name: "unknown resource", method: "GET", path: "/v2.0/widgets", token: tokA, wantStatus: 404},
		{name: "bad method", method: "PATCH", path: "/v2.0/networks", token: tokA, wantStatus: 405},
		{name: "agents by member", method: "GET", path: "/v2.0/agents", token: tokA, wantStatus: 403},
		{name: "agents create", method: "POST", path: "/v2.0/agents", token: adminTok, body: `{"agent": {}}`, wantStatus: 405},
		{name: "body too large", method: "POST", path: "/v2.0/networks", token: tokA, body: `{"network": {"name": "` + strings.Repeat("x", MaxBodyBytes) + `"}}`, wantStatus: 413},
		{name: "trace not wired", method: "POST", path: "/v2.0/hivenet/trace", token: tokA, body: `{"trace": {"port_id": "PORT"}}`, wantStatus: 501},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			before := e.dump()
			code, m := e.do(tt.method, r.Replace(tt.path), tt.token, r.Replace(tt.body))
			typ, msg := neutronError(m)
			if code != tt.wantStatus {
				t.Errorf("%s %s = %d %v, want %d", tt.method, tt.path, code, m, tt.wantStatus)
			}
			if m["NeutronError"] == nil {
				t.Errorf("%s %s: no NeutronError in %v", tt.method, tt.path, m)
			}
			if tt.wantType != "" && typ != tt.wantType {
				t.Errorf("%s %s: type %q, want %q", tt.method, tt.path, typ, tt.wantType)
			}
			if want := r.Replace(tt.wantInMsg); !strings.Contains(msg, want) {
				t.Errorf("%s %s: message %q does not name %q", tt.method, tt.path, msg, want)
			}
			if after := e.dump(); !maps.Equal(before, after) {
				t.Errorf("%s %s changed the store (%d keys before, %d after)", tt.method, tt.path, len(before), len(after))
			}
		})
	}
	e.t = t
	checkConsistency(t, e.dump())
	if code, _ := e.do("GET", "/v2.0/networks", tokA, ""); code != http.StatusOK {
		t.Errorf("server unusable after bad input: %d", code)
	}
}
