package api

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

// l3Fixture is a small L3 world: an external network, project-a's router
// with a gateway and an interface, a VM port with a floating IP, groups.
type l3Fixture struct {
	ext, extSub, net, sub, router, iface, port, fip string
	other, otherSub, otherPort                      string // project-a, not routed
	overlapSub, noGWSub                             string
	group, refGroup, rule, groupB, defaultA         string
	portB                                           string
}

func newL3Fixture(e *testEnv) *l3Fixture {
	e.t.Helper()
	f := &l3Fixture{}
	f.ext = e.create("network", adminTok, `{"network": {"name": "public", "router:external": true, "provider:network_type": "flat", "provider:physical_network": "physnet1"}}`)["id"].(string)
	f.extSub = e.create("subnet", adminTok, `{"subnet": {"network_id": "`+f.ext+`", "cidr": "203.0.113.0/24", "enable_dhcp": false, "allocation_pools": [{"start": "203.0.113.2", "end": "203.0.113.200"}]}}`)["id"].(string)
	f.net = e.network(tokA, "a")
	f.sub = e.subnet(tokA, f.net, "10.0.0.0/24")
	f.router = e.create("router", tokA, `{"router": {"name": "r", "external_gateway_info": {"network_id": "`+f.ext+`"}}}`)["id"].(string)
	code, m := e.do("PUT", "/v2.0/routers/"+f.router+"/add_router_interface", tokA, `{"subnet_id": "`+f.sub+`"}`)
	if code != 200 {
		e.t.Fatalf("add_router_interface = %d %v", code, m)
	}
	f.iface = m["port_id"].(string)
	f.port = e.create("port", tokA, `{"port": {"network_id": "`+f.net+`", "fixed_ips": [{"ip_address": "10.0.0.10"}]}}`)["id"].(string)
	f.fip = e.create("floatingip", tokA, `{"floatingip": {"floating_network_id": "`+f.ext+`", "port_id": "`+f.port+`"}}`)["id"].(string)
	f.other = e.network(tokA, "other")
	f.otherSub = e.subnet(tokA, f.other, "10.5.0.0/24")
	f.otherPort = e.create("port", tokA, `{"port": {"network_id": "`+f.other+`"}}`)["id"].(string)
	n2 := e.network(tokA, "overlap")
	f.overlapSub = e.subnet(tokA, n2, "10.0.0.128/25")
	n3 := e.network(tokA, "nogw")
	f.noGWSub = e.create("subnet", tokA, `{"subnet": {"network_id": "`+n3+`", "cidr": "10.6.0.0/24", "gateway_ip": null}}`)["id"].(string)
	f.group = createAt(e, "security-groups", "security_group", tokA, `{"security_group": {"name": "web"}}`)["id"].(string)
	f.refGroup = createAt(e, "security-groups", "security_group", tokA, `{"security_group": {"name": "db"}}`)["id"].(string)
	f.rule = createAt(e, "security-group-rules", "security_group_rule", tokA, `{"security_group_rule": {"security_group_id": "`+f.group+`", "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}}`)["id"].(string)
	createAt(e, "security-group-rules", "security_group_rule", tokA, `{"security_group_rule": {"security_group_id": "`+f.group+`", "direction": "ingress", "remote_group_id": "`+f.refGroup+`"}}`)
	code, m = e.do("PUT", "/v2.0/ports/"+f.port, tokA, `{"port": {"security_groups": ["`+f.group+`"]}}`)
	if code != 200 {
		e.t.Fatalf("port into group = %d %v", code, m)
	}
	f.groupB = createAt(e, "security-groups", "security_group", tokB, `{"security_group": {"name": "b"}}`)["id"].(string)
	_, m = e.do("GET", "/v2.0/security-groups?name=default", tokA, "")
	f.defaultA = m["security_groups"].([]any)[0].(map[string]any)["id"].(string)
	netB := e.network(tokB, "b")
	e.subnet(tokB, netB, "10.9.0.0/24")
	f.portB = e.create("port", tokB, `{"port": {"network_id": "`+netB+`"}}`)["id"].(string)
	return f
}

// Every bad L3 request gets the right status and NeutronError type, a
// message naming the offending field, and leaves etcd as it was.
func TestL3BadInput(t *testing.T) {
	e := newEnv(t)
	f := newL3Fixture(e)
	r := strings.NewReplacer("EXTSUB", f.extSub, "EXT", f.ext, "ROUTER", f.router, "IFACE", f.iface, "OTHERPORT", f.otherPort,
		"OVERLAPSUB", f.overlapSub, "NOGWSUB", f.noGWSub, "OTHERSUB", f.otherSub, "SUB", f.sub, "NET", f.net, "PORTB", f.portB, "PORT", f.port, "FIP", f.fip,
		"REFGROUP", f.refGroup, "GROUPB", f.groupB, "GROUP", f.group, "DEFAULTA", f.defaultA, "RULE", f.rule,
		"MISSING", "8d3a4f1e-0000-4000-8000-000000000000")
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		body       string
		wantStatus int
		wantType   string
		wantInMsg  string
	}{
		// External networks.
		{name: "second flat network on physnet", method: "POST", path: "/v2.0/networks", token: adminTok, body: `{"network": {"router:external": true, "provider:network_type": "flat", "provider:physical_network": "physnet1"}}`, wantStatus: 409, wantType: "FlatNetworkInUse", wantInMsg: "physnet1"},
		{name: "unexternal", method: "PUT", path: "/v2.0/networks/EXT", token: adminTok, body: `{"network": {"router:external": false}}`, wantStatus: 400, wantInMsg: "router:external"},
		{name: "external network in use", method: "DELETE", path: "/v2.0/networks/EXT", token: adminTok, wantStatus: 409, wantType: "NetworkInUse"},
		{name: "member changes external network", method: "PUT", path: "/v2.0/networks/EXT", token: tokA, body: `{"network": {"name": "x"}}`, wantStatus: 403},
		{name: "member port on external network", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "EXT"}}`, wantStatus: 404, wantType: "NetworkNotFound"},

		// Routers.
		{name: "gateway not external", method: "POST", path: "/v2.0/routers", token: tokA, body: `{"router": {"external_gateway_info": {"network_id": "NET"}}}`, wantStatus: 400, wantType: "InvalidInput", wantInMsg: "external_gateway_info"},
		{name: "gateway without network", method: "POST", path: "/v2.0/routers", token: tokA, body: `{"router": {"external_gateway_info": {"enable_snat": false}}}`, wantStatus: 400, wantInMsg: "external_gateway_info"},
		{name: "gateway unknown key", method: "POST", path: "/v2.0/routers", token: tokA, body: `{"router": {"external_gateway_info": {"network_id": "EXT", "colour": 1}}}`, wantStatus: 400, wantInMsg: "external_gateway_info"},
		{name: "gateway missing network", method: "POST", path: "/v2.0/routers", token: tokA, body: `{"router": {"external_gateway_info": {"network_id": "MISSING"}}}`, wantStatus: 404, wantType: "NetworkNotFound"},
		{name: "member picks gateway address", method: "POST", path: "/v2.0/routers", token: tokA, body: `{"router": {"external_gateway_info": {"network_id": "EXT", "external_fixed_ips": [{"ip_address": "203.0.113.50"}]}}}`, wantStatus: 403, wantInMsg: "external_gateway_info"},
		{name: "gateway address taken", method: "POST", path: "/v2.0/routers", token: adminTok, body: `{"router": {"external_gateway_info": {"network_id": "EXT", "external_fixed_ips": [{"ip_address": "203.0.113.2"}]}}}`, wantStatus: 409, wantType: "IpAddressInUse"},
		{name: "routes on create", method: "POST", path: "/v2.0/routers", token: tokA, body: `{"router": {"routes": [{"destination": "10.8.0.0/16", "nexthop": "10.0.0.254"}]}}`, wantStatus: 400, wantType: "InvalidRoutes", wantInMsg: "routes"},
		{name: "member sets distributed", method: "POST", path: "/v2.0/routers", token: tokA, body: `{"router": {"distributed": false}}`, wantStatus: 403, wantInMsg: "distributed"},
		{name: "centralized router", method: "POST", path: "/v2.0/routers", token: adminTok, body: `{"router": {"distributed": false}}`, wantStatus: 400, wantInMsg: "distributed"},
		{name: "route nexthop not connected", method: "PUT", path: "/v2.0/routers/ROUTER", token: tokA, body: `{"router": {"routes": [{"destination": "10.8.0.0/16", "nexthop": "10.77.0.1"}]}}`, wantStatus: 400, wantType: "InvalidRoutes", wantInMsg: "not connected"},
		{name: "route nexthop is the router", method: "PUT", path: "/v2.0/routers/ROUTER", token: tokA, body: `{"router": {"routes": [{"destination": "10.8.0.0/16", "nexthop": "10.0.0.1"}]}}`, wantStatus: 400, wantType: "InvalidRoutes", wantInMsg: "routes"},
		{name: "route bad destination", method: "PUT", path: "/v2.0/routers/ROUTER", token: tokA, body: `{"router": {"routes": [{"destination": "10.8.0.1/16", "nexthop": "10.0.0.9"}]}}`, wantStatus: 400, wantType: "InvalidRoutes", wantInMsg: "routes"},
		{name: "route duplicate", method: "PUT", path: "/v2.0/routers/ROUTER", token: tokA, body: `{"router": {"routes": [{"destination": "10.8.0.0/16", "nexthop": "10.0.0.9"}, {"destination": "10.8.0.0/16", "nexthop": "10.0.0.9"}]}}`, wantStatus: 400, wantInMsg: "routes"},
		{name: "route unknown key", method: "PUT", path: "/v2.0/routers/ROUTER", token: tokA, body: `{"router": {"routes": [{"destination": "10.8.0.0/16", "via": "10.0.0.9"}]}}`, wantStatus: 400, wantInMsg: "routes"},
		{name: "clear gateway used by floating IP", method: "PUT", path: "/v2.0/routers/ROUTER", token: tokA, body: `{"router": {"external_gateway_info": {}}}`, wantStatus: 409, wantType: "RouterExternalGatewayInUseByFloatingIp", wantInMsg: "FIP"},
		{name: "update other project router", method: "PUT", path: "/v2.0/routers/ROUTER", token: tokB, body: `{"router": {"name": "x"}}`, wantStatus: 404, wantType: "RouterNotFound"},
		{name: "router read-only", method: "PUT", path: "/v2.0/routers/ROUTER", token: tokA, body: `{"router": {"status": "DOWN"}}`, wantStatus: 400, wantInMsg: "status"},
		{name: "delete router in use", method: "DELETE", path: "/v2.0/routers/ROUTER", token: tokA, wantStatus: 409, wantType: "RouterInUse", wantInMsg: "ROUTER"},
		{name: "interface overlapping", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"subnet_id": "OVERLAPSUB"}`, wantStatus: 400, wantInMsg: "overlaps"},
		{name: "interface twice", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"subnet_id": "SUB"}`, wantStatus: 400, wantInMsg: "subnet_id"},
		{name: "interface subnet and port", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"subnet_id": "OTHERSUB", "port_id": "OTHERPORT"}`, wantStatus: 400, wantInMsg: "port_id"},
		{name: "interface nothing", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{}`, wantStatus: 400, wantInMsg: "subnet_id"},
		{name: "interface unknown key", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"net_id": "x"}`, wantStatus: 400, wantInMsg: "net_id"},
		{name: "interface without gateway", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"subnet_id": "NOGWSUB"}`, wantStatus: 400, wantInMsg: "gateway"},
		{name: "interface on external subnet", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"subnet_id": "EXTSUB"}`, wantStatus: 400, wantInMsg: "external"},
		{name: "interface other project port", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"port_id": "PORTB"}`, wantStatus: 404, wantType: "PortNotFound"},
		{name: "interface router of other project", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokB, body: `{"port_id": "PORTB"}`, wantStatus: 404, wantType: "RouterNotFound"},
		{name: "interface port in use", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"port_id": "IFACE"}`, wantStatus: 409, wantType: "PortInUse"},
		{name: "interface port overlapping", method: "PUT", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, body: `{"port_id": "PORT"}`, wantStatus: 400, wantInMsg: "already has a port on subnet"},
		{name: "bad router action", method: "PUT", path: "/v2.0/routers/ROUTER/add_gateway", token: tokA, body: `{}`, wantStatus: 404},
		{name: "router action by GET", method: "GET", path: "/v2.0/routers/ROUTER/add_router_interface", token: tokA, wantStatus: 405},
		{name: "remove missing interface", method: "PUT", path: "/v2.0/routers/ROUTER/remove_router_interface", token: tokA, body: `{"subnet_id": "OTHERSUB"}`, wantStatus: 404, wantType: "RouterInterfaceNotFoundForSubnet"},
		{name: "remove interface used by floating IP", method: "PUT", path: "/v2.0/routers/ROUTER/remove_router_interface", token: tokA, body: `{"subnet_id": "SUB"}`, wantStatus: 409, wantType: "RouterInterfaceInUseByFloatingIP"},
		{name: "delete router port", method: "DELETE", path: "/v2.0/ports/IFACE", token: tokA, wantStatus: 409, wantType: "L3PortInUse", wantInMsg: "IFACE"},
		{name: "readdress router port", method: "PUT", path: "/v2.0/ports/IFACE", token: tokA, body: `{"port": {"fixed_ips": [{"ip_address": "10.0.0.99"}]}}`, wantStatus: 409, wantType: "L3PortInUse", wantInMsg: "fixed_ips"},
		{name: "forge router port", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NET", "device_owner": "network:router_interface", "device_id": "ROUTER"}}`, wantStatus: 400, wantInMsg: "device_owner"},
		{name: "delete routed subnet", method: "DELETE", path: "/v2.0/subnets/SUB", token: tokA, wantStatus: 409, wantType: "SubnetInUse"},

		// Floating IPs.
		{name: "fip on internal network", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {"floating_network_id": "NET"}}`, wantStatus: 400, wantInMsg: "floating_network_id"},
		{name: "fip without network", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {}}`, wantStatus: 400, wantInMsg: "floating_network_id"},
		{name: "fip member picks address", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {"floating_network_id": "EXT", "floating_ip_address": "203.0.113.77"}}`, wantStatus: 403, wantInMsg: "floating_ip_address"},
		{name: "fip address taken", method: "POST", path: "/v2.0/floatingips", token: adminTok, body: `{"floatingip": {"floating_network_id": "EXT", "floating_ip_address": "203.0.113.2"}}`, wantStatus: 409, wantType: "IpAddressInUse", wantInMsg: "floating_ip_address"},
		{name: "fip address is upstream gateway", method: "POST", path: "/v2.0/floatingips", token: adminTok, body: `{"floatingip": {"floating_network_id": "EXT", "floating_ip_address": "203.0.113.1"}}`, wantStatus: 409, wantInMsg: "floating_ip_address"},
		{name: "fip address outside", method: "POST", path: "/v2.0/floatingips", token: adminTok, body: `{"floatingip": {"floating_network_id": "EXT", "floating_ip_address": "198.51.100.7"}}`, wantStatus: 400, wantInMsg: "floating_ip_address"},
		{name: "fip port not routed", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {"floating_network_id": "EXT", "port_id": "OTHERPORT"}}`, wantStatus: 404, wantType: "ExternalGatewayForFloatingIPNotFound", wantInMsg: "port_id"},
		{name: "fip foreign fixed ip", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {"floating_network_id": "EXT", "port_id": "PORT", "fixed_ip_address": "10.0.0.11"}}`, wantStatus: 400, wantInMsg: "fixed_ip_address"},
		{name: "fip fixed ip without port", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {"floating_network_id": "EXT", "fixed_ip_address": "10.0.0.10"}}`, wantStatus: 400, wantInMsg: "fixed_ip_address"},
		{name: "fip second on a port address", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {"floating_network_id": "EXT", "port_id": "PORT"}}`, wantStatus: 409, wantType: "FloatingIPPortAlreadyAssociated", wantInMsg: "port_id"},
		{name: "fip on router port", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {"floating_network_id": "EXT", "port_id": "IFACE"}}`, wantStatus: 400, wantInMsg: "port_id"},
		{name: "fip other project port", method: "POST", path: "/v2.0/floatingips", token: tokA, body: `{"floatingip": {"floating_network_id": "EXT", "port_id": "PORTB"}}`, wantStatus: 404, wantType: "PortNotFound"},
		{name: "fip update other project", method: "PUT", path: "/v2.0/floatingips/FIP", token: tokB, body: `{"floatingip": {"port_id": null}}`, wantStatus: 404, wantType: "FloatingIPNotFound"},
		{name: "fip update read-only", method: "PUT", path: "/v2.0/floatingips/FIP", token: tokA, body: `{"floatingip": {"floating_ip_address": "203.0.113.99"}}`, wantStatus: 400, wantInMsg: "floating_ip_address"},
		{name: "fip move to unrouted port", method: "PUT", path: "/v2.0/floatingips/FIP", token: tokA, body: `{"floatingip": {"port_id": "OTHERPORT"}}`, wantStatus: 404, wantType: "ExternalGatewayForFloatingIPNotFound"},
		{name: "drop address with floating IP", method: "PUT", path: "/v2.0/ports/PORT", token: tokA, body: `{"port": {"fixed_ips": [{"ip_address": "10.0.0.12"}]}}`, wantStatus: 409, wantType: "FloatingIPPortInUse", wantInMsg: "fixed_ips"},

		// Security groups and rules.
		{name: "group named default", method: "POST", path: "/v2.0/security-groups", token: tokA, body: `{"security_group": {"name": "default"}}`, wantStatus: 409, wantType: "SecurityGroupDefaultAlreadyExists", wantInMsg: "default"},
		{name: "stateless group", method: "POST", path: "/v2.0/security-groups", token: tokA, body: `{"security_group": {"name": "x", "stateful": false}}`, wantStatus: 400, wantInMsg: "stateful"},
		{name: "rename default", method: "PUT", path: "/v2.0/security-groups/DEFAULTA", token: tokA, body: `{"security_group": {"name": "x"}}`, wantStatus: 409, wantType: "SecurityGroupCannotUpdateDefault"},
		{name: "rename to default", method: "PUT", path: "/v2.0/security-groups/GROUP", token: tokA, body: `{"security_group": {"name": "default"}}`, wantStatus: 409, wantType: "SecurityGroupDefaultAlreadyExists"},
		{name: "group rules read-only", method: "PUT", path: "/v2.0/security-groups/GROUP", token: tokA, body: `{"security_group": {"security_group_rules": []}}`, wantStatus: 400, wantInMsg: "security_group_rules"},
		{name: "delete group in use", method: "DELETE", path: "/v2.0/security-groups/GROUP", token: tokA, wantStatus: 409, wantType: "SecurityGroupInUse", wantInMsg: "PORT"},
		{name: "delete referenced group", method: "DELETE", path: "/v2.0/security-groups/REFGROUP", token: tokA, wantStatus: 409, wantType: "SecurityGroupInUse", wantInMsg: "remote_group_id"},
		{name: "member deletes default", method: "DELETE", path: "/v2.0/security-groups/DEFAULTA", token: tokA, wantStatus: 409, wantType: "SecurityGroupCannotRemoveDefault"},
		{name: "delete other project group", method: "DELETE", path: "/v2.0/security-groups/GROUPB", token: tokA, wantStatus: 404, wantType: "SecurityGroupNotFound"},
		{name: "rule bad direction", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "in"}}`, wantStatus: 400, wantType: "InvalidInput", wantInMsg: "direction"},
		{name: "rule bad ethertype", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "ethertype": "IPv5"}}`, wantStatus: 400, wantInMsg: "ethertype"},
		{name: "rule min above max", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": "tcp", "port_range_min": 90, "port_range_max": 80}}`, wantStatus: 400, wantInMsg: "port_range_min"},
		{name: "rule port above 65535", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": "udp", "port_range_min": 1, "port_range_max": 70000}}`, wantStatus: 400, wantInMsg: "port_range_max"},
		{name: "rule port zero", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": "tcp", "port_range_min": 0, "port_range_max": 5}}`, wantStatus: 400, wantInMsg: "port_range_min"},
		{name: "rule port not int", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": "tcp", "port_range_min": "a"}}`, wantStatus: 400, wantInMsg: "port_range_min"},
		{name: "rule ports without protocol", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "port_range_min": 5, "port_range_max": 5}}`, wantStatus: 400, wantInMsg: "port_range_min"},
		{name: "rule icmp code without type", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": "icmp", "port_range_max": 0}}`, wantStatus: 400, wantInMsg: "port_range_max"},
		{name: "rule icmp type 256", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": "icmp", "port_range_min": 256}}`, wantStatus: 400, wantInMsg: "port_range_min"},
		{name: "rule bad protocol", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": "tcp6"}}`, wantStatus: 400, wantInMsg: "protocol"},
		{name: "rule protocol 300", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": 300}}`, wantStatus: 400, wantInMsg: "protocol"},
		{name: "rule prefix family", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}}`, wantStatus: 400, wantInMsg: "remote_ip_prefix"},
		{name: "rule bad prefix", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "remote_ip_prefix": "10.0.0.0/40"}}`, wantStatus: 400, wantInMsg: "remote_ip_prefix"},
		{name: "rule prefix and group", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "GROUP"}}`, wantStatus: 400, wantInMsg: "remote_ip_prefix"},
		{name: "rule remote group of other project", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "remote_group_id": "GROUPB"}}`, wantStatus: 404, wantType: "SecurityGroupNotFound", wantInMsg: "GROUPB"},
		{name: "rule remote group missing", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "remote_group_id": "MISSING"}}`, wantStatus: 404, wantType: "SecurityGroupNotFound"},
		{name: "rule duplicate", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "protocol": "6", "port_range_min": 22, "port_range_max": 22}}`, wantStatus: 409, wantType: "SecurityGroupRuleExists", wantInMsg: "RULE"},
		{name: "rule no group", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"direction": "ingress"}}`, wantStatus: 400, wantInMsg: "security_group_id"},
		{name: "rule with another project", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "project_id": "project-b"}}`, wantStatus: 403, wantInMsg: "project_id"},
		{name: "rule group of other project", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUPB", "direction": "ingress"}}`, wantStatus: 404, wantType: "SecurityGroupNotFound"},
		{name: "rule unknown attribute", method: "POST", path: "/v2.0/security-group-rules", token: tokA, body: `{"security_group_rule": {"security_group_id": "GROUP", "direction": "ingress", "action": "drop"}}`, wantStatus: 400, wantInMsg: "action"},
		{name: "rule update", method: "PUT", path: "/v2.0/security-group-rules/RULE", token: tokA, body: `{"security_group_rule": {"description": "x"}}`, wantStatus: 405},
		{name: "delete missing rule", method: "DELETE", path: "/v2.0/security-group-rules/MISSING", token: tokA, wantStatus: 404, wantType: "SecurityGroupRuleNotFound"},
		{name: "delete other project rule", method: "DELETE", path: "/v2.0/security-group-rules/RULE", token: tokB, wantStatus: 404, wantType: "SecurityGroupRuleNotFound"},

		// Ports and groups.
		{name: "port in other project group", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NET", "security_groups": ["GROUPB"]}}`, wantStatus: 404, wantType: "SecurityGroupNotFound", wantInMsg: "GROUPB"},
		{name: "port in missing group", method: "PUT", path: "/v2.0/ports/PORT", token: tokA, body: `{"port": {"security_groups": ["MISSING"]}}`, wantStatus: 404, wantType: "SecurityGroupNotFound"},
		{name: "groups without port security", method: "POST", path: "/v2.0/ports", token: tokA, body: `{"port": {"network_id": "NET", "port_security_enabled": false, "security_groups": ["GROUP"]}}`, wantStatus: 400, wantType: "PortSecurityAndIPRequiredForSecurityGroups", wantInMsg: "security_groups"},
		{name: "port security off with groups", method: "PUT", path: "/v2.0/ports/PORT", token: tokA, body: `{"port": {"port_security_enabled": false}}`, wantStatus: 409, wantType: "PortSecurityPortHasSecurityGroup", wantInMsg: "security_groups"},
		{name: "too many groups", method: "PUT", path: "/v2.0/ports/PORT", token: tokA, body: `{"port": {"security_groups": [` + manyIDs(maxGroupsPerPort+1) + `]}}`, wantStatus: 400, wantInMsg: "security_groups"},
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
}

// createAt POSTs to /v2.0/<path> and returns the created <key> object.
func createAt(e *testEnv, path, key, token, body string) map[string]any {
	e.t.Helper()
	code, m := e.do("POST", "/v2.0/"+path, token, body)
	if code != 201 {
		e.t.Fatalf("POST %s %s = %d %v", path, body, code, m)
	}
	return m[key].(map[string]any)
}

// manyIDs returns n distinct quoted UUIDs, comma-separated.
func manyIDs(n int) string {
	var l []string
	for i := range n {
		l = append(l, fmt.Sprintf(`"8d3a4f1e-0000-4000-8000-%012d"`, i))
	}
	return strings.Join(l, ", ")
}
