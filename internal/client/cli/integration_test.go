package cli

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"hivenet/internal/api"
	"hivenet/internal/client"
	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
	"hivenet/internal/trace"
)

// traceHook plugs package trace into the API the way the server does.
func traceHook(st *store.Store) api.TraceFunc {
	load := func(ctx context.Context) (*topology.Snapshot, error) {
		snap, _, err := st.LoadTopology(ctx)
		return snap, err
	}
	return func(ctx context.Context, req api.TraceRequest) (any, error) {
		var r trace.Request
		if err := json.Unmarshal(req.Body, &r); err != nil {
			return nil, api.Errorf(http.StatusBadRequest, "InvalidInput", "Invalid trace request: %v", err)
		}
		r.PortID = req.PortID
		res, err := trace.Run(ctx, load, r)
		switch {
		case errors.Is(err, trace.ErrInvalid):
			return nil, api.Errorf(http.StatusBadRequest, "InvalidInput", "%v", err)
		case errors.Is(err, trace.ErrNotFound):
			return nil, api.Errorf(http.StatusNotFound, "PortNotFound", "%v", err)
		}
		return res, err
	}
}

// realServer starts the real API over an embedded etcd and returns its URL.
func realServer(t *testing.T) string {
	t.Helper()
	st := storetest.New(t)
	h, err := api.New(api.Config{
		Store:      st,
		Trace:      traceHook(st),
		AdminToken: testToken,
		Tokens:     []api.Token{{Token: "member-token", ProjectID: "project-b", Role: api.RoleMember}},
		Logger:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// cli runs a command that must succeed and returns its output.
func cli(t *testing.T, url string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, url, args...)
	if err != nil {
		t.Fatalf("hivenet %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// cliObject runs a command with -o json and decodes the object it prints.
func cliObject(t *testing.T, url string, args ...string) client.Object {
	t.Helper()
	var obj client.Object
	out := cli(t, url, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("hivenet %s -o json printed %q: %v", strings.Join(args, " "), out, err)
	}
	return obj
}

// cliList runs a list command with -o json and returns the IDs listed.
func cliList(t *testing.T, url string, args ...string) []string {
	t.Helper()
	var objs []client.Object
	out := cli(t, url, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &objs); err != nil {
		t.Fatalf("hivenet %s -o json printed %q: %v", strings.Join(args, " "), out, err)
	}
	ids := []string{}
	for _, o := range objs {
		ids = append(ids, o["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestAgainstServer drives the real API server (internal/api over an
// embedded etcd) through the CLI: create, list, show, update and delete
// networks, subnets and ports by name, and the errors a user sees.
func TestAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	url := realServer(t)

	// Networks.
	blue := cliObject(t, url, "network", "create", "blue")
	red := cliObject(t, url, "network", "create", "red", "--disable")
	blueID, redID := blue["id"].(string), red["id"].(string)
	if blue["admin_state_up"] != true || red["admin_state_up"] != false {
		t.Errorf("admin_state_up: blue %v, red %v; want true, false", blue["admin_state_up"], red["admin_state_up"])
	}
	if blue["mtu"] != float64(1450) {
		t.Errorf("blue mtu = %v, want 1450 (1500 underlay less VXLAN)", blue["mtu"])
	}
	if got, want := cliList(t, url, "network", "list"), sorted(blueID, redID); !slices.Equal(got, want) {
		t.Errorf("network list = %v, want %v", got, want)
	}
	if got := cliList(t, url, "network", "list", "--name", "red"); !slices.Equal(got, []string{redID}) {
		t.Errorf("network list --name red = %v, want [%s]", got, redID)
	}
	table := cli(t, url, "network", "list")
	for _, want := range []string{"| ID ", "| blue ", "| red ", blueID} {
		if !strings.Contains(table, want) {
			t.Errorf("network list table lacks %q:\n%s", want, table)
		}
	}
	if got := cliObject(t, url, "network", "show", "blue"); got["id"] != blueID {
		t.Errorf("network show blue = %v, want id %s", got, blueID)
	}
	upd := cliObject(t, url, "network", "update", "red", "--name", "green", "--enable")
	if upd["name"] != "green" || upd["admin_state_up"] != true {
		t.Errorf("network update red = %v, want name green, admin_state_up true", upd)
	}

	// Subnets.
	sub := cliObject(t, url, "subnet", "create", "blue-v4", "--network", "blue", "--subnet-range", "10.20.0.0/24",
		"--dns-nameserver", "10.20.0.2", "--allocation-pool", "start=10.20.0.10,end=10.20.0.99",
		"--host-route", "destination=192.168.0.0/16,gateway=10.20.0.254")
	subID := sub["id"].(string)
	if sub["network_id"] != blueID || sub["cidr"] != "10.20.0.0/24" || sub["gateway_ip"] != "10.20.0.1" {
		t.Errorf("subnet create = %v, want network %s, cidr 10.20.0.0/24, gateway 10.20.0.1", sub, blueID)
	}
	cliObject(t, url, "subnet", "create", "green-v4", "--network", "green", "--subnet-range", "10.20.0.0/24", "--gateway", "none", "--no-dhcp")
	if got := cliList(t, url, "subnet", "list", "--network", "blue"); !slices.Equal(got, []string{subID}) {
		t.Errorf("subnet list --network blue = %v, want [%s]", got, subID)
	}
	upd = cliObject(t, url, "subnet", "update", "blue-v4", "--no-dns-nameservers", "--name", "blue-net")
	if ns, _ := upd["dns_nameservers"].([]any); upd["name"] != "blue-net" || len(ns) != 0 {
		t.Errorf("subnet update = %v, want name blue-net and no DNS servers", upd)
	}

	// The same subnet name on another network: --fixed-ip subnet=NAME
	// looks among the port's network's subnets only.
	cli(t, url, "subnet", "update", "green-v4", "--name", "blue-net")

	// Ports.
	p1 := cliObject(t, url, "port", "create", "vm1", "--network", "blue", "--fixed-ip", "subnet=blue-net,ip-address=10.20.0.50",
		"--host", "host-1", "--interface-name", "vm1-eth0", "--allowed-address", "ip-address=10.20.0.200")
	p1ID := p1["id"].(string)
	ips, _ := p1["fixed_ips"].([]any)
	if len(ips) != 1 || ips[0].(map[string]any)["ip_address"] != "10.20.0.50" || p1["binding:host_id"] != "host-1" {
		t.Errorf("port create vm1 = %v, want 10.20.0.50 on host-1", p1)
	}
	if prof, _ := p1["binding:profile"].(map[string]any); prof["interface_name"] != "vm1-eth0" {
		t.Errorf("port create vm1 binding:profile = %v, want interface_name vm1-eth0", p1["binding:profile"])
	}
	p2 := cliObject(t, url, "port", "create", "vm2", "--network", blueID, "--host", "host-2", "--disable-port-security")
	p2ID := p2["id"].(string)
	if got := cliList(t, url, "port", "list", "--network", "blue"); !slices.Equal(got, sorted(p1ID, p2ID)) {
		t.Errorf("port list --network blue = %v, want %v", got, sorted(p1ID, p2ID))
	}
	if got := cliList(t, url, "port", "list", "--host", "host-2"); !slices.Equal(got, []string{p2ID}) {
		t.Errorf("port list --host host-2 = %v, want [%s]", got, p2ID)
	}
	if got := cliObject(t, url, "port", "show", "vm2"); got["port_security_enabled"] != false {
		t.Errorf("port show vm2 = %v, want port security off", got)
	}
	upd = cliObject(t, url, "port", "update", "vm2", "--host", "host-3", "--name", "vm2b")
	if upd["binding:host_id"] != "host-3" || upd["name"] != "vm2b" {
		t.Errorf("port update vm2 = %v, want host-3, name vm2b", upd)
	}
	if table := cli(t, url, "port", "list"); !strings.Contains(table, "ip_address='10.20.0.50'") {
		t.Errorf("port list table lacks vm1's address:\n%s", table)
	}

	// Trace from vm1 to vm2, through the real simulation.
	out := cli(t, url, "trace", "--port", "vm1", "--eth-dst", p2["mac_address"].(string), "--ip-dst", "10.20.0.3", "--proto", "udp", "--dst-port", "53")
	t.Logf("hivenet trace --port vm1 ...:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "host: host-1") || !strings.HasPrefix(lines[1], "  1  ") ||
		!strings.HasPrefix(lines[len(lines)-1], "verdict: ") {
		t.Errorf("trace printed\n%s\nwant the host, numbered steps and the verdict last", out)
	}
	tr := cliObject(t, url, "trace", "--port", p1ID, "--eth-src", "fa:16:3e:99:99:99")
	if steps, _ := tr["steps"].([]any); tr["verdict"] != "drop" || len(steps) == 0 {
		t.Errorf("trace of a spoofed MAC = %v, want a drop with steps", tr)
	}

	// Errors the server reports, printed with its message.
	errCases := []struct {
		name       string
		args       []string
		wantStatus int
		wantInMsg  string
	}{
		{name: "address in use", args: []string{"port", "create", "dup", "--network", "blue", "--fixed-ip", "ip-address=10.20.0.50"}, wantStatus: 409, wantInMsg: "10.20.0.50"},
		{name: "network with ports", args: []string{"network", "delete", "blue"}, wantStatus: 409},
		{name: "address outside the subnet", args: []string{"port", "create", "out", "--network", "blue", "--fixed-ip", "subnet=blue-net,ip-address=10.99.0.5"}, wantStatus: 400, wantInMsg: "10.99.0.5"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, url, tt.args...)
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus || !strings.Contains(apiErr.Message, tt.wantInMsg) {
				t.Errorf("hivenet %s: error %v, want HTTP %d mentioning %q", strings.Join(tt.args, " "), err, tt.wantStatus, tt.wantInMsg)
			}
		})
	}
	if _, err := runCLI(t, url, "network", "show", "nosuch"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("network show nosuch: error %v, want not found", err)
	}
	// Two networks named alike make the name ambiguous.
	cliObject(t, url, "network", "create", "green")
	if _, err := runCLI(t, url, "network", "show", "green"); !errors.Is(err, client.ErrAmbiguous) {
		t.Errorf("network show green (twice): error %v, want ambiguous", err)
	}
	// A member of another project sees none of this.
	out, err := runCLIWithToken(t, url, "member-token", "network", "list", "-o", "json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("network list as another project = %q, %v; want []", out, err)
	}
	if _, err := runCLIWithToken(t, url, "bad-token", "network", "list"); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("network list with a bad token: error %v, want HTTP 401", err)
	}

	// Deletes, by name, and nothing left.
	cli(t, url, "port", "delete", "vm1", "vm2b")
	if _, err := runCLI(t, url, "subnet", "delete", "blue-net"); !errors.Is(err, client.ErrAmbiguous) {
		t.Errorf("subnet delete blue-net (on two networks): error %v, want ambiguous", err)
	}
	cli(t, url, "subnet", "delete", subID)
	cli(t, url, "network", "delete", "blue", redID)
	if got := cliList(t, url, "port", "list"); len(got) != 0 {
		t.Errorf("port list after deletes = %v, want none", got)
	}
	if _, err := runCLI(t, url, "port", "show", p1ID); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("port show of a deleted port: error %v, want not found", err)
	}
}

// runCLIWithToken is runCLI with another token.
func runCLIWithToken(t *testing.T, url, token string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out strings.Builder
	root.SetOut(&out)
	root.SetArgs(append(args, "--url", url, "--token", token))
	err := root.Execute()
	return out.String(), err
}
