package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// ErrDemoFailed is returned by RunDemo when a lease or the ping matrix is
// not what the topology implies.
var ErrDemoFailed = errors.New("lab: demo failed")

// DemoConfig configures RunDemo.
type DemoConfig struct {
	Lab  Config    // Hosts below 3 is raised to 3
	Keep bool      // leave the lab running afterwards (and print how to reach it)
	Out  io.Writer // the summary
}

// demoVM is one VM of the demo topology.
type demoVM struct {
	name, network, host string
	ip                  netip.Addr
}

// The demo topology: two projects; red (alpha) and blue (beta) use the SAME
// CIDR, two VMs each on different hosts, host1 carrying both; red1 and blue1
// even share an address, blue2's address exists only in blue. Project alpha
// also has green, joined to red by alpha's router, whose gateway is on the
// external network (uplink on host3, the "outside" namespace beyond it).
// green1 is in alpha's default group and in "web" (tcp/8080 and ICMP from
// anywhere) and gets a floating IP.
//
//	project alpha: network red   10.10.0.0/24  red1 .11 @host1    red2 .12 @host2
//	               network green 10.20.0.0/24  green1 .11 @host2  green2 .12 @host3
//	               router alpha-router: red .1, green .1, gateway on "public"
//	project beta:  network blue  10.10.0.0/24  blue1 .11 @host3   blue2 .13 @host1
//	admin:         network public 203.0.113.0/24 (flat, physnet1, router:external)
var demoNetworks = []struct{ name, project, cidr, gateway string }{
	{"red", "alpha", "10.10.0.0/24", "10.10.0.1"},
	{"blue", "beta", "10.10.0.0/24", "10.10.0.1"},
	{"green", "alpha", "10.20.0.0/24", "10.20.0.1"},
}

// demoRouted are the networks alpha's router joins.
var demoRouted = []string{"red", "green"}

// demoFIPVM is the VM that gets the floating IP and the "web" group.
const demoFIPVM = "green1"

var demoVMs = []demoVM{
	{"red1", "red", "host1", netip.MustParseAddr("10.10.0.11")},
	{"red2", "red", "host2", netip.MustParseAddr("10.10.0.12")},
	{"blue1", "blue", "host3", netip.MustParseAddr("10.10.0.11")},
	{"blue2", "blue", "host1", netip.MustParseAddr("10.10.0.13")},
	{"green1", "green", "host2", netip.MustParseAddr("10.20.0.11")},
	{"green2", "green", "host3", netip.MustParseAddr("10.20.0.12")},
}

// routed reports whether alpha's router joins networks a and b.
func routed(a, b string) bool {
	return a != b && slices.Contains(demoRouted, a) && slices.Contains(demoRouted, b)
}

// Cell outcomes of the ping matrix.
const (
	CellReached = "ok"    // replies, and the replier is the destination VM (ARP MAC)
	CellRouted  = "ok(r)" // replies through the router (another subnet: no ARP to check)
	CellNoReply = "--"    // no reply
	CellSelf    = "self"  // the destination's address is the source's own
	CellOther   = "other" // replies from the VM holding that address in the source's own network
)

// Cell is one entry of the ping matrix: From pinged To's address.
type Cell struct {
	From, To string
	Addr     netip.Addr
	Outcome  string
	RTT      time.Duration
	Want     bool // whether From should reach To (same network, or joined by the router)
	OK       bool // outcome as expected
}

// DemoResult is what RunDemo measured.
type DemoResult struct {
	Leases  map[string]Lease
	Matrix  []Cell
	Timings []Timing
	L3      []Check  // router, SNAT, security group and floating IP checks
	Errors  []string // what was not as expected
}

// Check is one L3 check of the demo.
type Check struct {
	What   string
	OK     bool
	Detail string
}

// Timing is one phase of the demo.
type Timing struct {
	Phase string
	Took  time.Duration
}

// RunDemo builds a 3-host lab, two tenant networks with overlapping CIDRs
// in two projects, two VMs per network spread across hosts, runs dhclient in
// every VM and a ping matrix, prints a summary to cfg.Out and tears the lab
// down (unless Keep), also when ctx is cancelled. It returns ErrDemoFailed
// (wrapped) when a lease or the matrix is wrong.
func RunDemo(ctx context.Context, cfg DemoConfig) (res DemoResult, err error) {
	if cfg.Lab.Hosts < 3 {
		cfg.Lab.Hosts = 3
	}
	if len(cfg.Lab.Gateways) == 0 {
		cfg.Lab.Gateways = []string{HostName(3)}
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	for _, n := range demoNetworks {
		if slices.ContainsFunc(cfg.Lab.Tokens, func(t Token) bool { return t.ProjectID == n.project }) {
			continue
		}
		tok, err := randomToken(n.project)
		if err != nil {
			return res, err
		}
		cfg.Lab.Tokens = append(cfg.Lab.Tokens, Token{Token: tok, ProjectID: n.project, Role: "member"})
	}
	l, err := New(cfg.Lab)
	if err != nil {
		return res, err
	}
	defer func() {
		if cfg.Keep && ctx.Err() == nil {
			if _, serr := os.Stat(l.cfg.RunDir); serr != nil {
				return // nothing was built
			}
			if serr := l.setOwner(0); serr != nil {
				err = errors.Join(err, serr)
			}
			fmt.Fprintf(out, "\nThe lab keeps running. To explore it:\n%s", l.HowTo())
			return
		}
		fmt.Fprintf(out, "\ntearing the lab down ...\n")
		if derr := l.Down(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	res.Leases = map[string]Lease{}
	phase := func(name string, start time.Time) {
		res.Timings = append(res.Timings, Timing{name, time.Since(start)})
	}

	fmt.Fprintf(out, "hivenet demo: %d hosts (prefix %s); red and blue both 10.10.0.0/24 in two projects; red and green routed; gateway %v\n",
		cfg.Lab.Hosts, l.cfg.Prefix, l.cfg.Gateways)
	start := time.Now()
	// A crashed demo leaves its server and agents running (they live in
	// their own sessions): clear them. A lab that is meant to be running
	// (`lab up`, `demo --keep`, another demo) is left alone.
	if prev, err := Load(l.cfg.RunDir, nil); err == nil {
		if live, what := prev.live(); live {
			return res, fmt.Errorf("%w with prefix %s (%s): `hivenet lab down --prefix %s` first, or use another --prefix", ErrRunning, l.cfg.Prefix, what, l.cfg.Prefix)
		}
	}
	if err := l.Cleanup(ctx); err != nil {
		return res, fmt.Errorf("clearing an earlier run: %w", err)
	}
	if err := l.Up(ctx); err != nil {
		return res, err
	}
	if err := l.setOwner(os.Getpid()); err != nil {
		return res, err
	}
	phase("lab up (namespaces, server, agents alive)", start)
	fmt.Fprintf(out, "lab up: API %s, %d agents alive (%v)\n", l.APIURL(), len(l.Hosts()), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	top, err := demoTopology(ctx, l)
	if err != nil {
		return res, err
	}
	ports := top.ports
	phase("API: networks, router + gateway, security group, ports, bindings", start)
	// Each project sees its own networks (and the shared external one) only.
	listed := map[string]bool{}
	for _, n := range demoNetworks {
		if listed[n.project] {
			continue
		}
		listed[n.project] = true
		api, _ := l.ProjectAPI(n.project)
		nets, err := api.Networks(ctx)
		if err != nil {
			return res, fmt.Errorf("listing networks as %s: %w", n.project, err)
		}
		var names []string
		for _, x := range nets {
			names = append(names, x.Name)
		}
		fmt.Fprintf(out, "project %s sees networks %v\n", n.project, names)
		want := []string{}
		for _, m := range demoNetworks {
			if m.project == n.project {
				want = append(want, m.name)
			}
		}
		want = append(want, "public") // shared external network
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			res.Errors = append(res.Errors, fmt.Sprintf("project %s sees networks %v, want %v", n.project, names, want))
		}
	}

	start = time.Now()
	var mtus = map[string]int{}
	for _, v := range demoVMs {
		p := ports[v.name]
		if err := l.AddVM(ctx, v.name, v.host, p.port.InterfaceName(), p.port.MACAddress); err != nil {
			return res, err
		}
		mtus[v.name] = p.mtu
	}
	phase("VM namespaces attached", start)

	start = time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	dhcpErr := make([]error, len(demoVMs))
	for i, v := range demoVMs {
		wg.Go(func() {
			lease, err := l.DHCP(ctx, v.name)
			mu.Lock()
			defer mu.Unlock()
			dhcpErr[i] = err
			if err == nil {
				res.Leases[v.name] = lease
			}
		})
	}
	wg.Wait()
	phase(fmt.Sprintf("dhclient in %d VMs (in parallel)", len(demoVMs)), start)
	for i, v := range demoVMs {
		if dhcpErr[i] != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", v.name, dhcpErr[i]))
			continue
		}
		lease := res.Leases[v.name]
		if lease.Addr.Addr() != v.ip || lease.Addr.Bits() != 24 {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: leased %s, want %s/24", v.name, lease.Addr, v.ip))
		}
		if want := mtus[v.name]; want != 0 && lease.MTU != want {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: lease MTU %d, want the network's %d", v.name, lease.MTU, want))
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	start = time.Now()
	// Let every same-network pair get its first reply (bindings and flows
	// settle) before the matrix, for at most 10 s.
	warm(ctx, l, 10*time.Second)
	phase("warm-up (first reply of each same-network or routed pair)", start)
	start = time.Now()
	res.Matrix = pingMatrix(ctx, l)
	phase(fmt.Sprintf("ping matrix (%d pairs, in parallel)", len(res.Matrix)), start)
	for _, c := range res.Matrix {
		if !c.OK {
			want := "reach"
			if !c.Want {
				want = "be isolated from"
			}
			res.Errors = append(res.Errors, fmt.Sprintf("%s should %s %s (%s): got %s", c.From, want, c.To, c.Addr, c.Outcome))
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	start = time.Now()
	res.L3 = demoL3(ctx, l, top)
	phase("L3: SNAT, security group, floating IP (API call -> reachable)", start)
	for _, c := range res.L3 {
		if !c.OK {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %s", c.What, c.Detail))
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	writeSummary(out, res)
	if len(res.Errors) > 0 {
		return res, fmt.Errorf("%w: %s", ErrDemoFailed, strings.Join(res.Errors, "; "))
	}
	return res, nil
}

type demoPort struct {
	port Port
	mtu  int
}

// demoTop is what demoTopology created.
type demoTop struct {
	ports  map[string]demoPort
	router Router
	ext    ExternalNetwork
	web    SecurityGroup
	snat   netip.Addr // the router's gateway address
}

// demoTopology creates, as the tenants (with their project tokens), the
// networks, subnets, alpha's "web" security group, alpha's router between
// red and green and the ports; as the admin, the external network, and
// binds each port to its host, the way Nova does. The router's gateway is
// set by alpha on the shared external network.
func demoTopology(ctx context.Context, l *Lab) (demoTop, error) {
	top := demoTop{ports: map[string]demoPort{}}
	admin := l.api()
	alpha, err := l.ProjectAPI("alpha")
	if err != nil {
		return top, err
	}
	nets := map[string]Network{}
	subnets := map[string]Subnet{}
	for _, n := range demoNetworks {
		api, err := l.ProjectAPI(n.project)
		if err != nil {
			return top, err
		}
		net, err := api.CreateNetwork(ctx, Network{Name: n.name})
		if err != nil {
			return top, fmt.Errorf("creating network %s as %s: %w", n.name, n.project, err)
		}
		sub, err := api.CreateSubnet(ctx, Subnet{Name: n.name + "-subnet", NetworkID: net.ID, CIDR: n.cidr, GatewayIP: n.gateway})
		if err != nil {
			return top, fmt.Errorf("creating subnet of %s as %s: %w", n.name, n.project, err)
		}
		nets[n.name], subnets[n.name] = net, sub
	}
	if top.ext, err = l.CreateExternalNetwork(ctx, "public"); err != nil {
		return top, err
	}
	if top.router, err = alpha.CreateRouter(ctx, Router{Name: "alpha-router"}); err != nil {
		return top, fmt.Errorf("creating router as alpha: %w", err)
	}
	for _, n := range demoRouted {
		if _, err := alpha.AddRouterInterface(ctx, top.router.ID, subnets[n].ID, ""); err != nil {
			return top, fmt.Errorf("adding %s to the router: %w", n, err)
		}
	}
	top.router, err = alpha.UpdateRouter(ctx, top.router.ID, map[string]any{"external_gateway_info": map[string]any{"network_id": top.ext.Network.ID}})
	if err != nil {
		return top, fmt.Errorf("setting the router's gateway: %w", err)
	}
	if g := top.router.GatewayInfo; g == nil || len(g.ExternalIPs) == 0 {
		return top, fmt.Errorf("router gateway %+v has no external address", g)
	}
	if top.snat, err = netip.ParseAddr(top.router.GatewayInfo.ExternalIPs[0].IPAddress); err != nil {
		return top, fmt.Errorf("router gateway address: %w", err)
	}
	defaults, err := alpha.SecurityGroups(ctx, "default")
	if err != nil || len(defaults) != 1 {
		return top, fmt.Errorf("alpha's default security group: %d found, %v", len(defaults), err)
	}
	if top.web, err = alpha.CreateSecurityGroup(ctx, SecurityGroup{Name: "web", Description: "tcp/8080 and ICMP from anywhere"}); err != nil {
		return top, fmt.Errorf("creating security group web: %w", err)
	}
	for _, r := range []SecurityGroupRule{
		{Protocol: "tcp", PortRangeMin: Ptr(8080), PortRangeMax: Ptr(8080), RemoteIPPrefix: "0.0.0.0/0"},
		{Protocol: "icmp", RemoteIPPrefix: "0.0.0.0/0"},
	} {
		r.SecurityGroupID, r.Direction, r.Ethertype = top.web.ID, "ingress", "IPv4"
		if _, err := alpha.CreateSecurityGroupRule(ctx, r); err != nil {
			return top, fmt.Errorf("adding a rule to web: %w", err)
		}
	}
	for _, v := range demoVMs {
		var project string
		for _, n := range demoNetworks {
			if n.name == v.network {
				project = n.project
			}
		}
		api, err := l.ProjectAPI(project)
		if err != nil {
			return top, err
		}
		req := Port{
			Name: v.name, NetworkID: nets[v.network].ID,
			FixedIPs:    []FixedIP{{SubnetID: subnets[v.network].ID, IPAddress: v.ip.String()}},
			DeviceOwner: "compute:lab", DeviceID: "lab-" + v.name,
		}
		if v.name == demoFIPVM {
			req.SecurityGroups = []string{defaults[0].ID, top.web.ID}
		}
		p, err := api.CreatePort(ctx, req)
		if err != nil {
			return top, fmt.Errorf("creating port %s as %s: %w", v.name, project, err)
		}
		if p, err = admin.UpdatePort(ctx, p.ID, map[string]any{"binding:host_id": v.host}); err != nil {
			return top, fmt.Errorf("binding port %s to %s: %w", v.name, v.host, err)
		}
		top.ports[v.name] = demoPort{port: p, mtu: nets[v.network].MTU}
	}
	return top, nil
}

// randomToken returns name + "-" + 32 hex digits.
func randomToken(name string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return name + "-" + hex.EncodeToString(b[:]), nil
}

func vmByName(n string) demoVM {
	for _, v := range demoVMs {
		if v.name == n {
			return v
		}
	}
	return demoVM{}
}

// warm pings each same-network pair until it answers or the budget ends.
func warm(ctx context.Context, l *Lab, budget time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range demoVMs {
		for _, b := range demoVMs {
			if a.name == b.name || (a.network != b.network && !routed(a.network, b.network)) {
				continue
			}
			wg.Go(func() {
				for ctx.Err() == nil {
					if ok, _, err := l.Ping(ctx, a.name, b.ip, 1, time.Second); err != nil || ok {
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// pingMatrix pings every VM's address from every other VM, 3 echoes each.
// A reply counts as reaching the destination only if the source's ARP entry
// for the address is the destination's MAC.
func pingMatrix(ctx context.Context, l *Lab) []Cell {
	var cells []Cell
	for _, a := range demoVMs {
		for _, b := range demoVMs {
			if a.name != b.name {
				cells = append(cells, Cell{From: a.name, To: b.name, Addr: b.ip, Want: a.network == b.network || routed(a.network, b.network)})
			}
		}
	}
	var wg sync.WaitGroup
	for i := range cells {
		wg.Go(func() {
			c := &cells[i]
			from, to := vmByName(c.From), vmByName(c.To)
			switch {
			case from.ip == to.ip:
				c.Outcome = CellSelf
			default:
				r, err := l.PingDetail(ctx, c.From, c.Addr, 3, 200*time.Millisecond, 2*time.Second)
				switch {
				case err != nil:
					c.Outcome = "error: " + err.Error()
				case r.Received == 0:
					c.Outcome = CellNoReply
				case routed(from.network, to.network):
					c.RTT = median(r.RTTs)
					c.Outcome = CellRouted
				default:
					c.RTT = median(r.RTTs)
					toVM, _ := l.VM(c.To)
					mac, _ := l.Neighbor(ctx, c.From, c.Addr)
					if strings.EqualFold(mac, toVM.MAC) {
						c.Outcome = CellReached
					} else {
						c.Outcome = CellOther
					}
				}
			}
			c.OK = cellOK(c.Outcome, c.Want)
		})
	}
	wg.Wait()
	return cells
}

// cellOK: a same-network or routed pair must reach its VM; any other pair
// must not (no reply, its own address, or a same-address VM of its own
// network).
func cellOK(outcome string, want bool) bool {
	if want {
		return outcome == CellReached || outcome == CellRouted
	}
	return outcome == CellNoReply || outcome == CellSelf || outcome == CellOther
}

func writeSummary(w io.Writer, res DemoResult) {
	fmt.Fprintf(w, "\nDHCP leases (real dhclient in each VM namespace)\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VM\tNETWORK\tHOST\tADDRESS\tROUTER\tMTU\tTOOK")
	for _, v := range demoVMs {
		ls, ok := res.Leases[v.name]
		if !ok {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t(none)\t\t\t\n", v.name, v.network, v.host)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%v\n", v.name, v.network, v.host, ls.Addr, ls.Router, ls.MTU, ls.Took.Round(time.Millisecond))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nPing matrix (row pings the column's address; 3 echoes)\n")
	fmt.Fprintf(w, "  ok = reached that VM (ARP says its MAC)   ok(r) = reached through alpha's router\n")
	fmt.Fprintf(w, "  -- = no reply   self = that is the row's own address\n")
	fmt.Fprintf(w, "  other = answered by the row's own network's VM with that address (overlapping CIDRs stay apart)\n")
	fmt.Fprintf(w, "  ! = not as expected (same network or routed must be ok, others must not be)\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "  \t")
	for _, b := range demoVMs {
		fmt.Fprintf(tw, "%s %s\t", b.name, b.ip)
	}
	fmt.Fprintln(tw)
	for _, a := range demoVMs {
		fmt.Fprintf(tw, "  %s (%s)\t", a.name, a.network)
		for _, b := range demoVMs {
			cell := "·"
			for _, c := range res.Matrix {
				if c.From == a.name && c.To == b.name {
					cell = c.Outcome
					if c.Outcome == CellReached || c.Outcome == CellRouted || c.Outcome == CellOther {
						cell += fmt.Sprintf(" %.2fms", float64(c.RTT.Microseconds())/1000)
					}
					if !c.OK {
						cell = "! " + cell
					}
				}
			}
			fmt.Fprintf(tw, "%s\t", cell)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()

	if len(res.L3) > 0 {
		fmt.Fprintf(w, "\nRouter, NAT, security groups (TCP: banner of the server reached, source address it saw)\n")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, c := range res.L3 {
			v := "ok"
			if !c.OK {
				v = "FAIL"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.What, v, c.Detail)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nTimings\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range res.Timings {
		fmt.Fprintf(tw, "  %s\t%v\n", t.Phase, t.Took.Round(time.Millisecond))
	}
	tw.Flush()
	if len(res.Errors) == 0 {
		fmt.Fprintf(w, "\nRESULT: PASS (leases as allocated; reachability within each network and through the router, isolation between projects; SNAT, security group, floating IP)\n")
		return
	}
	fmt.Fprintf(w, "\nRESULT: FAIL\n")
	for _, e := range res.Errors {
		fmt.Fprintf(w, "  - %s\n", e)
	}
}
