package lab

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		check   func(t *testing.T, c Config)
	}{
		{
			name: "zero value gets defaults",
			cfg:  Config{Binary: "/bin/hivenet"},
			check: func(t *testing.T, c Config) {
				if c.Prefix != "hn-" || c.Hosts != 3 || c.UnderlayCIDR != DefaultUnderlayCIDR {
					t.Errorf("defaults = %q %d %s", c.Prefix, c.Hosts, c.UnderlayCIDR)
				}
				if c.RunDir != "/run/hivenet/lab-hn" {
					t.Errorf("RunDir = %q", c.RunDir)
				}
				if !strings.HasPrefix(c.AdminToken, "lab-") || len(c.AdminToken) != 36 {
					t.Errorf("AdminToken = %q", c.AdminToken)
				}
			},
		},
		{name: "underlay is masked", cfg: Config{Binary: "x", UnderlayCIDR: netip.MustParsePrefix("10.9.0.7/24")},
			check: func(t *testing.T, c Config) {
				if c.UnderlayCIDR.String() != "10.9.0.0/24" {
					t.Errorf("UnderlayCIDR = %s", c.UnderlayCIDR)
				}
			}},
		{name: "prefix too long", cfg: Config{Binary: "x", Prefix: "abcdefghijk"}, wantErr: true},
		{name: "prefix uppercase", cfg: Config{Binary: "x", Prefix: "Hn-"}, wantErr: true},
		{name: "prefix starts with digit", cfg: Config{Binary: "x", Prefix: "1n-"}, wantErr: true},
		{name: "prefix with slash", cfg: Config{Binary: "x", Prefix: "h/"}, wantErr: true},
		{name: "negative hosts", cfg: Config{Binary: "x", Hosts: -1}, wantErr: true},
		{name: "hosts fill a /29", cfg: Config{Binary: "x", Hosts: 5, UnderlayCIDR: netip.MustParsePrefix("10.0.0.0/29")}},
		{name: "too many hosts for a /29", cfg: Config{Binary: "x", Hosts: 6, UnderlayCIDR: netip.MustParsePrefix("10.0.0.0/29")}, wantErr: true},
		{name: "IPv6 underlay", cfg: Config{Binary: "x", UnderlayCIDR: netip.MustParsePrefix("fd00::/64")}, wantErr: true},
		{name: "API link not a /30", cfg: Config{Binary: "x", APILink: netip.MustParsePrefix("10.251.0.0/29")}, wantErr: true},
		{name: "API link inside underlay", cfg: Config{Binary: "x", APILink: netip.MustParsePrefix("10.250.0.0/30")}, wantErr: true},
		{name: "project token", cfg: Config{Binary: "x", Tokens: []Token{{Token: "t1", ProjectID: "alpha"}}}},
		{name: "token without project", cfg: Config{Binary: "x", Tokens: []Token{{Token: "t1"}}}, wantErr: true},
		{name: "token with a space", cfg: Config{Binary: "x", Tokens: []Token{{Token: "t 1", ProjectID: "alpha"}}}, wantErr: true},
		{name: "relative run dir", cfg: Config{Binary: "x", RunDir: "run"}, wantErr: true},
		{name: "root run dir", cfg: Config{Binary: "x", RunDir: "/"}, wantErr: true},
		{name: "external defaults", cfg: Config{Binary: "x", Gateways: []string{"host3"}},
			check: func(t *testing.T, c Config) {
				if c.PhysNet != "physnet1" || c.ExternalCIDR != DefaultExternalCIDR || c.Internet != DefaultInternet {
					t.Errorf("external defaults = %q %s %s", c.PhysNet, c.ExternalCIDR, c.Internet)
				}
				if g := ExternalGateway(c.ExternalCIDR); g != netip.MustParseAddr("203.0.113.1") {
					t.Errorf("ExternalGateway = %s", g)
				}
			}},
		{name: "two gateways", cfg: Config{Binary: "x", Gateways: []string{"host2", "host3"}}},
		{name: "gateway beyond the hosts", cfg: Config{Binary: "x", Gateways: []string{"host4"}}, wantErr: true},
		{name: "gateway not a host name", cfg: Config{Binary: "x", Gateways: []string{"gw"}}, wantErr: true},
		{name: "gateway twice", cfg: Config{Binary: "x", Gateways: []string{"host1", "host1"}}, wantErr: true},
		{name: "physnet with a colon", cfg: Config{Binary: "x", PhysNet: "phys:1"}, wantErr: true},
		{name: "external CIDR too small", cfg: Config{Binary: "x", ExternalCIDR: netip.MustParsePrefix("203.0.113.0/30")}, wantErr: true},
		{name: "internet inside external CIDR", cfg: Config{Binary: "x", Internet: netip.MustParseAddr("203.0.113.9")}, wantErr: true},
		{name: "external CIDR overlaps underlay", cfg: Config{Binary: "x", ExternalCIDR: netip.MustParsePrefix("10.250.0.0/16")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%+v) error = %v, wantErr %v", tt.cfg, err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrConfig) {
					t.Errorf("New error %v does not wrap ErrConfig", err)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, l.Config())
			}
		})
	}
}

func TestAddresses(t *testing.T) {
	tests := []struct {
		name     string
		underlay string
		host     int
		wantHost string
		wantCtl  string
	}{
		{name: "default /24", underlay: "10.250.0.0/24", host: 1, wantHost: "10.250.0.1", wantCtl: "10.250.0.254"},
		{name: "third host", underlay: "10.250.0.0/24", host: 3, wantHost: "10.250.0.3", wantCtl: "10.250.0.254"},
		{name: "/16 crosses an octet", underlay: "172.16.0.0/16", host: 300, wantHost: "172.16.1.44", wantCtl: "172.16.255.254"},
		{name: "/29", underlay: "192.168.5.8/29", host: 2, wantHost: "192.168.5.10", wantCtl: "192.168.5.14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.underlay)
			if got := hostAddr(p, tt.host); got.String() != tt.wantHost {
				t.Errorf("hostAddr(%s, %d) = %s, want %s", p, tt.host, got, tt.wantHost)
			}
			if got := ctlAddr(p); got.String() != tt.wantCtl {
				t.Errorf("ctlAddr(%s) = %s, want %s", p, got, tt.wantCtl)
			}
		})
	}
}

func TestNewHosts(t *testing.T) {
	l, err := New(Config{Binary: "/x/hivenet", Prefix: "hlt-", Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []Host{
		{Name: "host1", Netns: "hlt-host1", TunnelIP: netip.MustParseAddr("10.250.0.1"), AgentName: "agent-host1"},
		{Name: "host2", Netns: "hlt-host2", TunnelIP: netip.MustParseAddr("10.250.0.2"), AgentName: "agent-host2"},
	}
	if got := l.Hosts(); !slices.Equal(got, want) {
		t.Errorf("Hosts() = %+v, want %+v", got, want)
	}
	if got := l.EtcdURL(); got != "http://10.250.0.254:2379" {
		t.Errorf("EtcdURL() = %q", got)
	}
	if _, err := l.Host("host3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Host(host3) error = %v, want ErrNotFound", err)
	}
}

func TestPickAPILink(t *testing.T) {
	pool := netip.MustParsePrefix("10.251.0.0/16")
	tests := []struct {
		name    string
		used    []string
		want    string
		wantErr bool
	}{
		{name: "empty machine", want: "10.251.0.0/30"},
		{name: "first taken", used: []string{"10.251.0.0/30"}, want: "10.251.0.4/30"},
		{name: "a /24 route covers the start", used: []string{"10.251.0.0/24", "192.168.1.0/24"}, want: "10.251.1.0/30"},
		{name: "a host address", used: []string{"10.251.0.2/32"}, want: "10.251.0.4/30"},
		{name: "pool full", used: []string{"10.0.0.0/8"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var used []netip.Prefix
			for _, u := range tt.used {
				used = append(used, netip.MustParsePrefix(u))
			}
			got, err := pickAPILink(pool, used)
			if (err != nil) != tt.wantErr {
				t.Fatalf("pickAPILink(%v) error = %v, wantErr %v", tt.used, err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("pickAPILink(%v) = %s, want %s", tt.used, got, tt.want)
			}
		})
	}
}

func TestOwnedBy(t *testing.T) {
	labNS := map[uint64]bool{42: true}
	tests := []struct {
		name    string
		cmdline string
		nsIno   uint64
		want    bool
	}{
		{name: "agent in a lab namespace", cmdline: "/tmp/b/hivenet\x00agent\x00--host\x00host1\x00", nsIno: 42, want: true},
		{name: "server naming the run dir", cmdline: "/usr/bin/hivenet\x00server\x00--data-dir\x00/run/hivenet/lab-hlt/server\x00", nsIno: 7, want: true},
		{name: "dhclient with lease file in run dir", cmdline: "dhclient\x00-1\x00-lf\x00/run/hivenet/lab-hlt/dhcp/a.leases\x00eth0\x00", want: true},
		{name: "configured binary name", cmdline: "/x/hivenet.test\x00agent\x00", nsIno: 42, want: true},
		{name: "hivenet of another lab", cmdline: "/usr/bin/hivenet\x00agent\x00--host\x00host1\x00", nsIno: 9, want: false},
		{name: "run dir prefix is not enough", cmdline: "/usr/bin/hivenet\x00server\x00--data-dir\x00/run/hivenet/lab-hlt2/server\x00", want: false},
		{name: "pid reused by sshd in our netns", cmdline: "/usr/sbin/sshd\x00-D\x00", nsIno: 42, want: false},
		{name: "kernel thread", cmdline: "", nsIno: 42, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ownedBy([]byte(tt.cmdline), tt.nsIno, "/run/hivenet/lab-hlt", "/x/hivenet.test", labNS)
			if got != tt.want {
				t.Errorf("ownedBy(%q, %d) = %v, want %v", tt.cmdline, tt.nsIno, got, tt.want)
			}
		})
	}
}

func TestParsePing(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want PingResult
	}{
		{
			name: "two replies",
			out: `PING 10.10.0.12 (10.10.0.12) 56(84) bytes of data.
64 bytes from 10.10.0.12: icmp_seq=1 ttl=64 time=1.52 ms
64 bytes from 10.10.0.12: icmp_seq=2 ttl=64 time=0.110 ms

--- 10.10.0.12 ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 1001ms
rtt min/avg/max/mdev = 0.110/0.815/1.520/0.705 ms
`,
			want: PingResult{Sent: 2, Received: 2, RTTs: []time.Duration{1520 * time.Microsecond, 110 * time.Microsecond}},
		},
		{
			name: "no reply",
			out: `PING 10.10.0.13 (10.10.0.13) 56(84) bytes of data.

--- 10.10.0.13 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 2030ms
`,
			want: PingResult{Sent: 3},
		},
		{
			name: "errors and duplicates count as received",
			out: `From 10.10.0.11 icmp_seq=1 Destination Host Unreachable
64 bytes from 10.10.0.12: icmp_seq=2 ttl=64 time=0.3 ms
3 packets transmitted, 1 received, +1 errors, 66.6667% packet loss, time 2030ms
`,
			want: PingResult{Sent: 3, Received: 1, RTTs: []time.Duration{300 * time.Microsecond}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parsePing(tt.out)
			if got.Sent != tt.want.Sent || got.Received != tt.want.Received || !slices.Equal(got.RTTs, tt.want.RTTs) {
				t.Errorf("parsePing() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseLeaseInfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Lease
		wantErr bool
	}{
		{
			name: "router and mtu",
			in:   "reason=BOUND\naddr=10.10.0.11/24\nmtu=1450\ndns=10.10.0.2 10.10.0.3\nrouter=10.10.0.1\n",
			want: Lease{Applied: "BOUND", Addr: netip.MustParsePrefix("10.10.0.11/24"), MTU: 1450,
				Router: netip.MustParseAddr("10.10.0.1"),
				DNS:    []netip.Addr{netip.MustParseAddr("10.10.0.2"), netip.MustParseAddr("10.10.0.3")}},
		},
		{
			name: "classless routes give the router",
			in:   "reason=BOUND\naddr=10.10.0.11/24\nmtu=\ndns=\nroute=192.168.0.0/16 via 10.10.0.9\nroute=0.0.0.0/0 via 10.10.0.1\n",
			want: Lease{Applied: "BOUND", Addr: netip.MustParsePrefix("10.10.0.11/24"),
				Router: netip.MustParseAddr("10.10.0.1"), Routes: []string{"192.168.0.0/16 via 10.10.0.9", "0.0.0.0/0 via 10.10.0.1"}},
		},
		{name: "no address", in: "reason=BOUND\nmtu=1450\n", wantErr: true},
		{name: "bad mtu", in: "addr=10.0.0.1/24\nmtu=big\n", wantErr: true},
		{name: "bad address", in: "addr=10.0.0.300/24\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLeaseInfo(bufio.NewScanner(strings.NewReader(tt.in)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseLeaseInfo(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Applied != tt.want.Applied || got.Addr != tt.want.Addr || got.Router != tt.want.Router ||
				got.MTU != tt.want.MTU || !slices.Equal(got.DNS, tt.want.DNS) || !slices.Equal(got.Routes, tt.want.Routes) {
				t.Errorf("parseLeaseInfo(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestMissingAlive(t *testing.T) {
	tests := []struct {
		name   string
		agents []Agent
		want   []string
	}{
		{name: "none", want: []string{"host1", "host2"}},
		{name: "one dead", agents: []Agent{{Host: "host1", Alive: true}, {Host: "host2"}}, want: []string{"host2"}},
		{name: "all alive plus a stranger", agents: []Agent{{Host: "host2", Alive: true}, {Host: "host1", Alive: true}, {Host: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := missingAlive([]string{"host1", "host2"}, tt.agents); !slices.Equal(got, tt.want) {
				t.Errorf("missingAlive(%+v) = %v, want %v", tt.agents, got, tt.want)
			}
		})
	}
}

func TestPortInterfaceName(t *testing.T) {
	tests := []struct {
		name string
		port Port
		want string
	}{
		{name: "tap convention", port: Port{ID: "0123456789abcdef-0000"}, want: "tap0123456789a"},
		{name: "profile wins", port: Port{ID: "0123456789abcdef", Profile: map[string]any{"interface_name": "vm-eth"}}, want: "vm-eth"},
		{name: "profile without a name", port: Port{ID: "0123456789abcdef", Profile: map[string]any{"vnic": 3.0}}, want: "tap0123456789a"},
		{name: "short id", port: Port{ID: "abc"}, want: "tapabc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.port.InterfaceName(); got != tt.want {
				t.Errorf("InterfaceName(%+v) = %q, want %q", tt.port, got, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name     string
		vm       string
		ifname   string
		reserved bool
		badVM    bool
		badIf    bool
	}{
		{name: "plain", vm: "red1", ifname: "tap0123456789a"},
		{name: "reserved host name", vm: "host2", ifname: "x", reserved: true},
		{name: "hostile is fine", vm: "hostile", ifname: "x"},
		{name: "reserved ctl", vm: "ctl", ifname: "x", reserved: true},
		{name: "space in VM name", vm: "a b", ifname: "x", badVM: true},
		{name: "interface name too long", vm: "a", ifname: "tap0123456789abc", badIf: true},
		{name: "interface with slash", vm: "a", ifname: "a/b", badIf: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reservedName(tt.vm); got != tt.reserved {
				t.Errorf("reservedName(%q) = %v", tt.vm, got)
			}
			if err := validName("VM", tt.vm); (err != nil) != tt.badVM {
				t.Errorf("validName(%q) = %v", tt.vm, err)
			}
			if err := validIfName(tt.ifname); (err != nil) != tt.badIf {
				t.Errorf("validIfName(%q) = %v", tt.ifname, err)
			}
		})
	}
}

func TestCleanupOrder(t *testing.T) {
	procs := []string{"server", "agent-host2", "dhclient-a", "agent-host1", "iperf"}
	slices.SortStableFunc(procs, func(a, b string) int { return procOrder(a) - procOrder(b) })
	if want := []string{"dhclient-a", "agent-host2", "agent-host1", "iperf", "server"}; !slices.Equal(procs, want) {
		t.Errorf("process stop order = %v, want %v", procs, want)
	}
	ns := []string{"hn-ul", "hn-ctl", "hn-host1", "hn-red1"}
	slices.SortStableFunc(ns, func(a, b string) int { return nsOrder("hn-", a) - nsOrder("hn-", b) })
	if want := []string{"hn-red1", "hn-host1", "hn-ctl", "hn-ul"}; !slices.Equal(ns, want) {
		t.Errorf("netns delete order = %v, want %v", ns, want)
	}
	if got := parseNetnsList("hn-a (id: 3)\nhn-b\n\n"); !slices.Equal(got, []string{"hn-a", "hn-b"}) {
		t.Errorf("parseNetnsList = %v", got)
	}
}

// TestDemoTopology checks the demo shows what it claims: red and blue on
// the same CIDR in different projects, each spread across hosts, one host
// carrying both, one address used in both networks and one address used in
// only one of them (so the matrix has "self", "other" and "--" cells); the
// routed networks in one project on disjoint CIDRs; the floating-IP VM on
// a routed network.
func TestDemoTopology(t *testing.T) {
	byName := map[string]int{}
	for i, n := range demoNetworks {
		byName[n.name] = i
	}
	red, blue := demoNetworks[byName["red"]], demoNetworks[byName["blue"]]
	if red.cidr != blue.cidr || red.project == blue.project {
		t.Fatalf("red %+v, blue %+v: want the same CIDR in different projects", red, blue)
	}
	if len(demoRouted) != 2 {
		t.Fatalf("demoRouted = %v, want two networks", demoRouted)
	}
	r0, r1 := demoNetworks[byName[demoRouted[0]]], demoNetworks[byName[demoRouted[1]]]
	if r0.project != r1.project || netip.MustParsePrefix(r0.cidr).Overlaps(netip.MustParsePrefix(r1.cidr)) {
		t.Errorf("routed networks %+v, %+v: want one project, disjoint CIDRs", r0, r1)
	}
	if !routed(r0.name, r1.name) || routed(r0.name, r0.name) || routed("blue", r0.name) {
		t.Errorf("routed() disagrees with demoRouted %v", demoRouted)
	}
	hostsOf := map[string]map[string]bool{}
	netsOnHost := map[string]map[string]bool{}
	addrs := map[netip.Addr]map[string]bool{}
	fipOnRouted := false
	for _, v := range demoVMs {
		if hostsOf[v.network] == nil {
			hostsOf[v.network] = map[string]bool{}
		}
		hostsOf[v.network][v.host] = true
		if v.name == demoFIPVM {
			fipOnRouted = slices.Contains(demoRouted, v.network)
		}
		n := demoNetworks[byName[v.network]]
		if !netip.MustParsePrefix(n.cidr).Contains(v.ip) {
			t.Errorf("%s: %s outside %s", v.name, v.ip, n.cidr)
		}
		if v.network != "red" && v.network != "blue" {
			continue
		}
		if netsOnHost[v.host] == nil {
			netsOnHost[v.host] = map[string]bool{}
		}
		netsOnHost[v.host][v.network] = true
		if addrs[v.ip] == nil {
			addrs[v.ip] = map[string]bool{}
		}
		addrs[v.ip][v.network] = true
	}
	if !fipOnRouted {
		t.Errorf("floating-IP VM %s is not on a routed network", demoFIPVM)
	}
	for n, hs := range hostsOf {
		if len(hs) < 2 {
			t.Errorf("network %s is on %d host(s), want VMs spread across hosts", n, len(hs))
		}
	}
	shared, single := false, false
	for _, nets := range addrs {
		shared = shared || len(nets) == 2
		single = single || len(nets) == 1
	}
	both := false
	for _, nets := range netsOnHost {
		both = both || len(nets) == 2
	}
	if !shared || !single || !both {
		t.Errorf("demo VMs: shared address %v, single-network address %v, host with both networks %v; want all", shared, single, both)
	}
}

func TestCellOK(t *testing.T) {
	tests := []struct {
		outcome string
		want    bool
		ok      bool
	}{
		{outcome: CellReached, want: true, ok: true},
		{outcome: CellRouted, want: true, ok: true},
		{outcome: CellRouted, want: false, ok: false},
		{outcome: CellNoReply, want: true, ok: false},
		{outcome: CellOther, want: true, ok: false},
		{outcome: CellReached, want: false, ok: false},
		{outcome: CellNoReply, want: false, ok: true},
		{outcome: CellOther, want: false, ok: true},
		{outcome: CellSelf, want: false, ok: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/want=%v", tt.outcome, tt.want), func(t *testing.T) {
			if got := cellOK(tt.outcome, tt.want); got != tt.ok {
				t.Errorf("cellOK(%q, %v) = %v, want %v", tt.outcome, tt.want, got, tt.ok)
			}
		})
	}
}

func TestRemoveRunFiles(t *testing.T) {
	tests := []struct {
		name    string
		foreign bool // a file the lab did not write
	}{
		{name: "only lab files: run dir removed"},
		{name: "foreign file kept with its dir", foreign: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			l, err := New(Config{Binary: "x", RunDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"server/etcd", "logs", "pids", "dhcp"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			os.WriteFile(filepath.Join(dir, "lab.json"), []byte("{}"), 0o600)
			os.WriteFile(filepath.Join(dir, "server/etcd/db"), []byte("x"), 0o600)
			if tt.foreign {
				os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600)
			}
			if err := l.removeRunFiles(); err != nil {
				t.Fatalf("removeRunFiles() = %v", err)
			}
			entries, err := os.ReadDir(dir)
			switch {
			case tt.foreign && (err != nil || len(entries) != 1 || entries[0].Name() != "notes.txt"):
				t.Errorf("run dir after removeRunFiles: %v, %v; want only notes.txt", entries, err)
			case !tt.foreign && !os.IsNotExist(err):
				t.Errorf("run dir still there: %v, %v", entries, err)
			}
		})
	}
}

func TestParseBanner(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    TCPReply
		wantErr bool
	}{
		{name: "name and peer", in: "vm1 203.0.113.10:40000\n", want: TCPReply{Server: "vm1", Peer: netip.MustParseAddrPort("203.0.113.10:40000")}},
		{name: "no peer", in: "vm1\n", wantErr: true},
		{name: "bad peer", in: "vm1 nowhere\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBanner(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseBanner(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("parseBanner(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseIperf(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    IperfResult
		wantErr bool
	}{
		{name: "result", in: `{"end":{"sum_sent":{"retransmits":3},"sum_received":{"bits_per_second":2.5e9}}}`, want: IperfResult{Gbps: 2.5, Retransmits: 3}},
		{name: "iperf error", in: `{"error":"unable to connect to server"}`, wantErr: true},
		{name: "not JSON", in: `iperf3: error`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIperf([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseIperf error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("parseIperf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
