package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
	"hivenet/internal/client/clienttest"
)

const testToken = "cli-token"

type ex = clienttest.Exchange

// newRoot builds a root command as cmd/hivenet does: the CLI commands
// plus the agent verbs under an "agent" command.
func newRoot() *cobra.Command {
	root := &cobra.Command{Use: "hivenet", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands()...)
	agent := &cobra.Command{Use: "agent"}
	agent.AddCommand(AgentCommands()...)
	root.AddCommand(agent)
	return root
}

// runCLI runs one command line against url and returns what it printed.
func runCLI(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--url", url, "--token", testToken))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

const (
	blueNet = `{"id": "n1", "name": "blue", "admin_state_up": true, "mtu": 1450, "shared": false, "status": "ACTIVE", "subnets": ["s1"]}`
	// Name resolution of "blue": not an ID, one network by that name.
	blueNotID = `{"NeutronError": {"type": "NetworkNotFound", "message": "Network blue could not be found.", "detail": ""}}`
)

// resolveBlue are the exchanges that resolve the network name "blue".
var resolveBlue = []ex{
	{Method: "GET", Path: "/v2.0/networks/blue", Status: 404, Resp: blueNotID},
	{Method: "GET", Path: "/v2.0/networks", Query: "name=blue", Status: 200, Resp: `{"networks": [` + blueNet + `]}`},
}

func seq(parts ...[]ex) []ex {
	var out []ex
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		exs     []ex
		want    string // exact output; "" when wantErr is set and nothing is printed
		wantErr string // exact error text
	}{
		{
			name: "network create prints a field table",
			args: []string{"network", "create", "blue", "--mtu", "1400", "--disable"},
			exs: []ex{{
				Method: "POST", Path: "/v2.0/networks",
				Body:   `{"network": {"name": "blue", "mtu": 1400, "admin_state_up": false}}`,
				Status: 201, Resp: `{"network": {"id": "n1", "name": "blue", "admin_state_up": false, "mtu": 1400, "subnets": [], "description": null}}`,
			}},
			want: `+----------------+-------+
| Field          | Value |
+----------------+-------+
| admin_state_up | False |
| description    | None  |
| id             | n1    |
| mtu            | 1400  |
| name           | blue  |
| subnets        |       |
+----------------+-------+
`,
		},
		{
			name: "network create -o json prints the object",
			args: []string{"network", "create", "blue", "--share", "-o", "json"},
			exs: []ex{{
				Method: "POST", Path: "/v2.0/networks",
				Body:   `{"network": {"name": "blue", "shared": true}}`,
				Status: 201, Resp: `{"network": {"id": "n1", "name": "blue", "mtu": 1450, "shared": true}}`,
			}},
			want: `{
  "id": "n1",
  "mtu": 1450,
  "name": "blue",
  "shared": true
}
`,
		},
		{
			name: "network list table",
			args: []string{"network", "list"},
			exs: []ex{{
				Method: "GET", Path: "/v2.0/networks", Status: 200,
				Resp: `{"networks": [` + blueNet + `, {"id": "n2", "name": "réd", "mtu": 1450, "status": "ACTIVE", "subnets": ["s2", "s3"]}]}`,
			}},
			want: `+----+------+--------+------+---------+
| ID | Name | Status | MTU  | Subnets |
+----+------+--------+------+---------+
| n1 | blue | ACTIVE | 1450 | s1      |
| n2 | réd  | ACTIVE | 1450 | s2, s3  |
+----+------+--------+------+---------+
`,
		},
		{
			name: "network list -o json is an array of the raw objects",
			args: []string{"network", "list", "--name", "blue", "-o", "json"},
			exs: []ex{{
				Method: "GET", Path: "/v2.0/networks", Query: "name=blue", Status: 200,
				Resp: `{"networks": [{"id": "n1", "name": "blue", "mtu": 1450, "router:external": false}]}`,
			}},
			want: `[
  {
    "id": "n1",
    "mtu": 1450,
    "name": "blue",
    "router:external": false
  }
]
`,
		},
		{
			name: "empty list -o json is []",
			args: []string{"network", "list", "-o", "json", "--filter", "shared=true"},
			exs:  []ex{{Method: "GET", Path: "/v2.0/networks", Query: "shared=true", Status: 200, Resp: `{"networks": []}`}},
			want: "[]\n",
		},
		{
			name: "empty list table has only the header",
			args: []string{"subnet", "list"},
			exs:  []ex{{Method: "GET", Path: "/v2.0/subnets", Status: 200, Resp: `{"subnets": []}`}},
			want: `+----+------+---------+--------+---------+
| ID | Name | Network | Subnet | Gateway |
+----+------+---------+--------+---------+
`,
		},
		{
			name: "network update by name",
			args: []string{"network", "update", "blue", "--name", "green", "--enable", "-o", "json"},
			exs: seq(resolveBlue, []ex{{
				Method: "PUT", Path: "/v2.0/networks/n1",
				Body:   `{"network": {"name": "green", "admin_state_up": true}}`,
				Status: 200, Resp: `{"network": {"id": "n1", "name": "green"}}`,
			}}),
			want: "{\n  \"id\": \"n1\",\n  \"name\": \"green\"\n}\n",
		},
		{
			name:    "network update without changes",
			args:    []string{"network", "update", "blue"},
			wantErr: errNothingToUpdate.Error(),
		},
		{
			name:    "network delete conflict prints the NeutronError message",
			args:    []string{"network", "delete", "n1"},
			wantErr: `deleting network "n1": Unable to complete operation on network n1. There are one or more ports still in use on the network. (HTTP 409 NetworkInUse)`,
			exs: []ex{
				{Method: "GET", Path: "/v2.0/networks/n1", Status: 200, Resp: `{"network": ` + blueNet + `}`},
				{Method: "DELETE", Path: "/v2.0/networks/n1", Status: 409,
					Resp: `{"NeutronError": {"type": "NetworkInUse", "message": "Unable to complete operation on network n1. There are one or more ports still in use on the network.", "detail": ""}}`},
			},
		},
		{
			name: "delete several, one missing",
			args: []string{"port", "delete", "p1", "ghost", "p2"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/ports/p1", Status: 200, Resp: `{"port": {"id": "p1"}}`},
				{Method: "DELETE", Path: "/v2.0/ports/p1", Status: 204},
				{Method: "GET", Path: "/v2.0/ports/ghost", Status: 404, Resp: `{"NeutronError": {"type": "PortNotFound", "message": "Port ghost could not be found."}}`},
				{Method: "GET", Path: "/v2.0/ports", Query: "name=ghost", Status: 200, Resp: `{"ports": []}`},
				{Method: "GET", Path: "/v2.0/ports/p2", Status: 200, Resp: `{"port": {"id": "p2"}}`},
				{Method: "DELETE", Path: "/v2.0/ports/p2", Status: 204},
			},
			wantErr: `deleting port "ghost": client: not found: no port with name or ID "ghost"`,
		},
		{
			name: "ambiguous name",
			args: []string{"network", "show", "blue"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/networks/blue", Status: 404, Resp: blueNotID},
				{Method: "GET", Path: "/v2.0/networks", Query: "name=blue", Status: 200, Resp: `{"networks": [{"id": "n1", "name": "blue"}, {"id": "n9", "name": "blue"}]}`},
			},
			wantErr: `client: ambiguous name: 2 network objects have name "blue" (n1, n9); use an ID`,
		},
		{
			name: "subnet create with every option",
			args: []string{"subnet", "create", "blue-v4", "--network", "blue", "--subnet-range", "10.0.0.0/24",
				"--gateway", "10.0.0.254", "--dns-nameserver", "10.0.0.2", "--dns-nameserver", "10.0.0.3",
				"--allocation-pool", "start=10.0.0.10,end=10.0.0.99", "--allocation-pool", "start=10.0.0.150,end=10.0.0.199",
				"--host-route", "destination=192.168.0.0/16,gateway=10.0.0.1", "--no-dhcp", "-o", "json"},
			exs: seq(resolveBlue, []ex{{
				Method: "POST", Path: "/v2.0/subnets",
				Body: `{"subnet": {"name": "blue-v4", "network_id": "n1", "cidr": "10.0.0.0/24", "ip_version": 4,
					"gateway_ip": "10.0.0.254", "dns_nameservers": ["10.0.0.2", "10.0.0.3"],
					"allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.99"}, {"start": "10.0.0.150", "end": "10.0.0.199"}],
					"host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.1"}], "enable_dhcp": false}}`,
				Status: 201, Resp: `{"subnet": {"id": "s1"}}`,
			}}),
			want: "{\n  \"id\": \"s1\"\n}\n",
		},
		{
			name: "subnet create without gateway; table shows lists of objects one per line",
			args: []string{"subnet", "create", "blue-v4", "--network", "n1", "--subnet-range", "10.0.0.0/24", "--gateway", "none"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/networks/n1", Status: 200, Resp: `{"network": ` + blueNet + `}`},
				{
					Method: "POST", Path: "/v2.0/subnets",
					Body:   `{"subnet": {"name": "blue-v4", "network_id": "n1", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": null}}`,
					Status: 201,
					Resp: `{"subnet": {"id": "s1", "gateway_ip": null, "allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.99"}, ` +
						`{"start": "10.0.0.150", "end": "10.0.0.254"}], "dns_nameservers": ["10.0.0.2", "10.0.0.3"]}}`,
				},
			},
			want: `+------------------+--------------------------------------+
| Field            | Value                                |
+------------------+--------------------------------------+
| allocation_pools | end='10.0.0.99', start='10.0.0.1'    |
|                  | end='10.0.0.254', start='10.0.0.150' |
| dns_nameservers  | 10.0.0.2, 10.0.0.3                   |
| gateway_ip       | None                                 |
| id               | s1                                   |
+------------------+--------------------------------------+
`,
		},
		{
			name:    "subnet create with a bad CIDR sends nothing",
			args:    []string{"subnet", "create", "x", "--network", "blue", "--subnet-range", "10.0.0.0/33"},
			wantErr: `--subnet-range: "10.0.0.0/33" is not a CIDR (such as 10.0.0.0/24)`,
		},
		{
			name:    "subnet create with a half allocation pool",
			args:    []string{"subnet", "create", "x", "--network", "blue", "--subnet-range", "10.0.0.0/24", "--allocation-pool", "start=10.0.0.5"},
			wantErr: `--allocation-pool "start=10.0.0.5": missing end=; want start=...,end=...`,
		},
		{
			name:    "subnet create with an unknown key",
			args:    []string{"subnet", "create", "x", "--network", "blue", "--subnet-range", "10.0.0.0/24", "--host-route", "dest=10.1.0.0/16,gateway=10.0.0.1"},
			wantErr: `--host-route "dest=10.1.0.0/16,gateway=10.0.0.1": unknown key "dest"; want destination=...,gateway=...`,
		},
		{
			name:    "subnet create needs a network",
			args:    []string{"subnet", "create", "x", "--subnet-range", "10.0.0.0/24"},
			wantErr: `required flag(s) "network" not set`,
		},
		{
			name: "subnet update clears DNS servers and host routes",
			args: []string{"subnet", "update", "s1", "--no-dns-nameservers", "--no-host-route", "--gateway", "none", "--dhcp", "-o", "json"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/subnets/s1", Status: 200, Resp: `{"subnet": {"id": "s1"}}`},
				{
					Method: "PUT", Path: "/v2.0/subnets/s1",
					Body:   `{"subnet": {"dns_nameservers": [], "host_routes": [], "gateway_ip": null, "enable_dhcp": true}}`,
					Status: 200, Resp: `{"subnet": {"id": "s1"}}`,
				},
			},
			want: "{\n  \"id\": \"s1\"\n}\n",
		},
		{
			name:    "subnet update --gateway auto is refused",
			args:    []string{"subnet", "update", "s1", "--gateway", "auto"},
			wantErr: "--gateway auto: only for create; give an IP or none",
		},
		{
			name: "subnet list --network resolves the name",
			args: []string{"subnet", "list", "--network", "blue"},
			exs: seq(resolveBlue, []ex{{
				Method: "GET", Path: "/v2.0/subnets", Query: "network_id=n1", Status: 200,
				Resp: `{"subnets": [{"id": "s1", "name": "blue-v4", "network_id": "n1", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1"}]}`,
			}}),
			want: `+----+---------+---------+-------------+----------+
| ID | Name    | Network | Subnet      | Gateway  |
+----+---------+---------+-------------+----------+
| s1 | blue-v4 | n1      | 10.0.0.0/24 | 10.0.0.1 |
+----+---------+---------+-------------+----------+
`,
		},
		{
			name: "port create with every option",
			args: []string{"port", "create", "vm1", "--network", "blue",
				"--fixed-ip", "subnet=blue-v4,ip-address=10.0.0.5", "--fixed-ip", "ip-address=10.0.0.6",
				"--mac-address", "fa:16:3e:00:00:01", "--host", "host-1", "--interface-name", "vm1-eth0",
				"--disable-port-security", "--allowed-address", "ip-address=10.0.0.0/28,mac-address=fa:16:3e:00:00:09",
				"--allowed-address", "ip-address=10.0.0.77", "--device-owner", "compute:nova", "--device-id", "vm-1", "--disable", "-o", "json"},
			exs: seq(resolveBlue, []ex{
				// The subnet name is looked up among the network's subnets.
				{Method: "GET", Path: "/v2.0/subnets/blue-v4", Status: 404, Resp: `{"NeutronError": {"type": "SubnetNotFound", "message": "no"}}`},
				{Method: "GET", Path: "/v2.0/subnets", Query: "name=blue-v4&network_id=n1", Status: 200, Resp: `{"subnets": [{"id": "s1", "name": "blue-v4", "network_id": "n1"}]}`},
			}, []ex{{
				Method: "POST", Path: "/v2.0/ports",
				Body: `{"port": {"name": "vm1", "network_id": "n1",
					"fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.6"}],
					"mac_address": "fa:16:3e:00:00:01", "binding:host_id": "host-1", "binding:profile": {"interface_name": "vm1-eth0"},
					"port_security_enabled": false,
					"allowed_address_pairs": [{"ip_address": "10.0.0.0/28", "mac_address": "fa:16:3e:00:00:09"}, {"ip_address": "10.0.0.77"}],
					"device_owner": "compute:nova", "device_id": "vm-1", "admin_state_up": false}}`,
				Status: 201, Resp: `{"port": {"id": "p1"}}`,
			}}),
			want: "{\n  \"id\": \"p1\"\n}\n",
		},
		{
			name:    "port create with a bad MAC",
			args:    []string{"port", "create", "vm1", "--network", "blue", "--mac-address", "fa:16:3e:00:00"},
			wantErr: `--mac-address: "fa:16:3e:00:00" is not a MAC address (such as fa:16:3e:12:34:56)`,
		},
		{
			name:    "port create with contradicting flags",
			args:    []string{"port", "create", "vm1", "--network", "blue", "--enable-port-security", "--disable-port-security"},
			wantErr: "if any flags in the group [enable-port-security disable-port-security] are set none of the others can be; [disable-port-security enable-port-security] were all set",
		},
		{
			name: "port update moves the binding",
			args: []string{"port", "update", "p1", "--host", "host-2", "--no-interface-name", "--no-allowed-address", "--no-fixed-ip", "-o", "json"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/ports/p1", Status: 200, Resp: `{"port": {"id": "p1"}}`},
				{
					Method: "PUT", Path: "/v2.0/ports/p1",
					Body:   `{"port": {"binding:host_id": "host-2", "binding:profile": {}, "allowed_address_pairs": [], "fixed_ips": []}}`,
					Status: 200, Resp: `{"port": {"id": "p1", "binding:host_id": "host-2"}}`,
				},
			},
			want: "{\n  \"binding:host_id\": \"host-2\",\n  \"id\": \"p1\"\n}\n",
		},
		{
			name: "port update resolves a subnet name in the port's network",
			args: []string{"port", "update", "vm1", "--fixed-ip", "subnet=default", "-o", "json"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/ports/vm1", Status: 404, Resp: `{"NeutronError": {"type": "PortNotFound", "message": "no"}}`},
				{Method: "GET", Path: "/v2.0/ports", Query: "name=vm1", Status: 200, Resp: `{"ports": [{"id": "p1", "name": "vm1", "network_id": "n2"}]}`},
				{Method: "GET", Path: "/v2.0/subnets/default", Status: 404, Resp: `{"NeutronError": {"type": "SubnetNotFound", "message": "no"}}`},
				{Method: "GET", Path: "/v2.0/subnets", Query: "name=default&network_id=n2", Status: 200, Resp: `{"subnets": [{"id": "s2", "name": "default", "network_id": "n2"}]}`},
				{Method: "PUT", Path: "/v2.0/ports/p1", Body: `{"port": {"fixed_ips": [{"subnet_id": "s2"}]}}`, Status: 200, Resp: `{"port": {"id": "p1"}}`},
			},
			want: "{\n  \"id\": \"p1\"\n}\n",
		},
		{
			name: "port list with filters",
			args: []string{"port", "list", "--network", "blue", "--host", "host-1"},
			exs: seq(resolveBlue, []ex{{
				Method: "GET", Path: "/v2.0/ports", Query: "binding%3Ahost_id=host-1&network_id=n1", Status: 200,
				Resp: `{"ports": [{"id": "p1", "name": "vm1", "mac_address": "fa:16:3e:00:00:01", "binding:host_id": "host-1", "status": "ACTIVE",
					"fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}, {"subnet_id": "s2", "ip_address": "10.1.0.5"}]},
					{"id": "p2", "name": "", "mac_address": "fa:16:3e:00:00:02", "binding:host_id": "host-1", "status": "DOWN", "fixed_ips": []}]}`,
			}}),
			want: `+----+------+-------------------+---------------------------------------+--------+--------+
| ID | Name | MAC Address       | Fixed IP Addresses                    | Host   | Status |
+----+------+-------------------+---------------------------------------+--------+--------+
| p1 | vm1  | fa:16:3e:00:00:01 | ip_address='10.0.0.5', subnet_id='s1' | host-1 | ACTIVE |
|    |      |                   | ip_address='10.1.0.5', subnet_id='s2' |        |        |
| p2 |      | fa:16:3e:00:00:02 |                                       | host-1 | DOWN   |
+----+------+-------------------+---------------------------------------+--------+--------+
`,
		},
		{
			name: "agent list",
			args: []string{"agent", "list"},
			exs: []ex{{
				Method: "GET", Path: "/v2.0/agents", Status: 200,
				Resp: `{"agents": [{"id": "a1", "agent_type": "hivenet agent", "host": "host-1", "alive": true, "admin_state_up": true, "binary": "hivenet"},
					{"id": "a2", "agent_type": "hivenet agent", "host": "host-2", "alive": false, "admin_state_up": false, "binary": "hivenet"}]}`,
			}},
			want: `+----+---------------+--------+-------+-------+---------+
| ID | Agent Type    | Host   | Alive | State | Binary  |
+----+---------------+--------+-------+-------+---------+
| a1 | hivenet agent | host-1 | :-)   | UP    | hivenet |
| a2 | hivenet agent | host-2 | XXX   | DOWN  | hivenet |
+----+---------------+--------+-------+-------+---------+
`,
		},
		{
			name: "agent show by host",
			args: []string{"agent", "show", "host-1", "-o", "json"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/agents/host-1", Status: 404, Resp: `{"NeutronError": {"type": "AgentNotFound", "message": "no"}}`},
				{Method: "GET", Path: "/v2.0/agents", Query: "host=host-1", Status: 200, Resp: `{"agents": [{"id": "a1", "host": "host-1"}]}`},
			},
			want: "{\n  \"host\": \"host-1\",\n  \"id\": \"a1\"\n}\n",
		},
		{
			name: "trace prints steps then the verdict",
			args: []string{"trace", "--port", "vm1", "--eth-dst", "fa:16:3e:00:00:02", "--ip-dst", "10.0.0.6", "--proto", "TCP", "--dst-port", "80"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/ports/vm1", Status: 404, Resp: `{"NeutronError": {"type": "PortNotFound", "message": "no"}}`},
				{Method: "GET", Path: "/v2.0/ports", Query: "name=vm1", Status: 200, Resp: `{"ports": [{"id": "p1", "name": "vm1"}]}`},
				{
					Method: "POST", Path: "/v2.0/hivenet/trace",
					Body:   `{"trace": {"port_id": "p1", "eth_dst": "fa:16:3e:00:00:02", "ip_dst": "10.0.0.6", "proto": "tcp", "dst_port": 80}}`,
					Status: 200,
					Resp: `{"trace": {"host": "host-1", "verdict": "forward", "outputs": [{"port_id": "p2", "host": "host-2", "tunnel_key": 17, "local": false}],
						"emitted": 0, "flow": "cacheable: matches in_port,eth_dst", "steps": [
						{"device": "port vm1", "stage": "ingress", "detail": "admin up"},
						{"device": "bridge blue", "stage": "mac-lookup", "detail": "fa:16:3e:00:00:02 on port vm2"},
						{"device": "port vm2", "stage": "egress", "detail": ""}]}}`,
				},
			},
			want: `host: host-1
  1  port vm1     ingress     admin up
  2  bridge blue  mac-lookup  fa:16:3e:00:00:02 on port vm2
  3  port vm2     egress
output: port p2 on host host-2 (tunnel key 17)
flow: cacheable: matches in_port,eth_dst
verdict: forward
`,
		},
		{
			name: "trace of a drop -o json",
			args: []string{"trace", "--port", "p1", "-o", "json"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/ports/p1", Status: 200, Resp: `{"port": {"id": "p1"}}`},
				{Method: "POST", Path: "/v2.0/hivenet/trace", Body: `{"trace": {"port_id": "p1"}}`, Status: 200,
					Resp: `{"trace": {"verdict": "drop", "reason": "port-down", "steps": []}}`},
			},
			want: "{\n  \"verdict\": \"drop\",\n  \"reason\": \"port-down\",\n  \"steps\": []\n}\n",
		},
		{
			name: "trace of a drop prints the reason",
			args: []string{"trace", "--port", "p1", "--proto", "17"},
			exs: []ex{
				{Method: "GET", Path: "/v2.0/ports/p1", Status: 200, Resp: `{"port": {"id": "p1"}}`},
				{Method: "POST", Path: "/v2.0/hivenet/trace", Body: `{"trace": {"port_id": "p1", "proto": "17"}}`, Status: 200,
					Resp: `{"trace": {"verdict": "drop", "reason": "port-down", "steps": [{"device": "port p1", "stage": "ingress", "detail": "admin down"}]}}`},
			},
			want: "  1  port p1  ingress  admin down\nverdict: drop (port-down)\n",
		},
		{
			name:    "trace with a bad protocol",
			args:    []string{"trace", "--port", "p1", "--proto", "sctp"},
			wantErr: `--proto "sctp": want icmp, tcp, udp, arp or a number from 0 to 255`,
		},
		{
			name:    "trace with a bad port number",
			args:    []string{"trace", "--port", "p1", "--dst-port", "70000"},
			wantErr: "--dst-port 70000: want 0 to 65535",
		},
		{
			name:    "unknown output format",
			args:    []string{"network", "list", "-o", "yaml"},
			wantErr: `-o "yaml": want table or json`,
		},
		{
			name: "list with chosen fields",
			args: []string{"port", "list", "-c", "id", "--field", "binding:host_id", "--host", "host-1"},
			exs: []ex{{
				Method: "GET", Path: "/v2.0/ports", Query: "binding%3Ahost_id=host-1&fields=id&fields=binding%3Ahost_id", Status: 200,
				Resp: `{"ports": [{"id": "p1", "binding:host_id": "host-1"}]}`,
			}},
			want: `+----+-----------------+
| id | binding:host_id |
+----+-----------------+
| p1 | host-1          |
+----+-----------------+
`,
		},
		{
			name:    "bad --filter",
			args:    []string{"port", "list", "--filter", "nonsense"},
			wantErr: `--filter "nonsense": want FIELD=VALUE`,
		},
		{
			name:    "server error on list",
			args:    []string{"port", "list"},
			exs:     []ex{{Method: "GET", Path: "/v2.0/ports", Status: 401, Resp: `{"NeutronError": {"type": "HTTPUnauthorized", "message": "Authentication required", "detail": ""}}`}},
			wantErr: "Authentication required (HTTP 401 HTTPUnauthorized)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := clienttest.NewServer(t, testToken, tt.exs...)
			got, err := runCLI(t, srv.URL, tt.args...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("hivenet %s: error = %v, want %q", strings.Join(tt.args, " "), err, tt.wantErr)
				}
				if tt.want == "" {
					return
				}
			} else if err != nil {
				t.Fatalf("hivenet %s: %v", strings.Join(tt.args, " "), err)
			}
			if got != tt.want {
				t.Errorf("hivenet %s printed\n%s\nwant\n%s", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
}

func TestEnvironmentConfig(t *testing.T) {
	srv := clienttest.NewServer(t, "env-token", ex{Method: "GET", Path: "/v2.0/agents", Status: 200, Resp: `{"agents": []}`})
	t.Setenv("HIVENET_URL", srv.URL)
	t.Setenv("HIVENET_TOKEN", "")
	t.Setenv("HIVENET_ADMIN_TOKEN", "env-token")
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"agent", "list", "-o", "json"})
	if err := root.Execute(); err != nil {
		t.Fatalf("agent list with the environment: %v", err)
	}
	if out.String() != "[]\n" {
		t.Errorf("agent list printed %q, want []", out.String())
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	srv := clienttest.NewServer(t, testToken, ex{Method: "GET", Path: "/v2.0/networks", Status: 200, Resp: `{"networks": []}`})
	t.Setenv("HIVENET_URL", "http://127.0.0.1:1") // nothing listens there
	t.Setenv("HIVENET_TOKEN", "wrong")
	if _, err := runCLI(t, srv.URL, "network", "list"); err != nil {
		t.Fatalf("network list: %v", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	_, err := runCLI(t, url, "network", "list")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("network list against a closed port: error = %v, want connection refused", err)
	}
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		t.Errorf("a connection failure is not an API error: %v", apiErr)
	}
}

// Every verb the issue names exists, with its help.
func TestCommandShapes(t *testing.T) {
	tests := []struct {
		name string
		path []string
	}{
		{name: "network", path: []string{"network"}},
		{name: "subnet", path: []string{"subnet"}},
		{name: "port", path: []string{"port"}},
	}
	for _, tt := range tests {
		for _, verb := range []string{"create", "list", "show", "update", "delete"} {
			t.Run(tt.name+" "+verb, func(t *testing.T) {
				cmd, _, err := newRoot().Find(append(tt.path, verb))
				if err != nil || cmd.Name() != verb {
					t.Errorf("hivenet %s %s: %v, %v", tt.name, verb, cmd, err)
				}
			})
		}
	}
	for _, verb := range []string{"list", "show", "update", "delete"} {
		cmd, _, err := newRoot().Find([]string{"agent", verb})
		if err != nil || cmd.Name() != verb {
			t.Errorf("hivenet agent %s: %v, %v", verb, cmd, err)
		}
	}
}

func TestWriteTableEmptyColumns(t *testing.T) {
	var b bytes.Buffer
	if err := printList(&b, formatTable, []column{{header: "A", field: "a"}}, []client.Object{{"b": "x"}}); err != nil {
		t.Fatal(err)
	}
	want := "+---+\n| A |\n+---+\n|   |\n+---+\n"
	if b.String() != want {
		t.Errorf("printList with a missing field printed\n%s\nwant\n%s", b.String(), want)
	}
}

func TestCompletion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		exs  []ex
		want string
	}{
		{
			name: "network names",
			args: []string{"network", "show", "b"},
			exs: []ex{{Method: "GET", Path: "/v2.0/networks", Query: "fields=id&fields=name", Status: 200,
				Resp: `{"networks": [{"id": "n1", "name": "blue"}, {"id": "n2", "name": "red"}, {"id": "n3", "name": "black"}, {"id": "n4", "name": "blue"}, {"id": "b5", "name": ""}]}`}},
			want: "b5\nblack\nblue\n:4\n",
		},
		{
			name: "agents by host, already given ones left out",
			args: []string{"agent", "delete", "host-1", ""},
			exs: []ex{{Method: "GET", Path: "/v2.0/agents", Query: "fields=id&fields=host", Status: 200,
				Resp: `{"agents": [{"id": "a1", "host": "host-1"}, {"id": "a2", "host": "host-2"}]}`}},
			want: "host-2\n:4\n",
		},
		{
			name: "show takes one argument",
			args: []string{"port", "show", "vm1", ""},
			want: ":4\n",
		},
		{
			name: "API error completes nothing",
			args: []string{"subnet", "update", ""},
			exs:  []ex{{Method: "GET", Path: "/v2.0/subnets", Query: "fields=id&fields=name", Status: 500, Resp: `{"NeutronError": {"message": "boom"}}`}},
			want: ":5\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := clienttest.NewServer(t, testToken, tt.exs...)
			root := newRoot()
			var out, errOut bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			// Flags go before the word being completed, which must be last.
			args := append([]string{cobra.ShellCompRequestCmd}, tt.args[:len(tt.args)-1]...)
			args = append(args, "--url", srv.URL, "--token", testToken, tt.args[len(tt.args)-1])
			root.SetArgs(args)
			if err := root.Execute(); err != nil {
				t.Fatalf("completing %v: %v", tt.args, err)
			}
			if out.String() != tt.want {
				t.Errorf("completing %v printed %q, want %q", tt.args, out.String(), tt.want)
			}
		})
	}
}
