package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AddVM creates VM namespace <prefix><name> attached to host: a veth pair
// with eth0 (MAC mac, when not empty) inside the VM and its peer ifname in
// the host namespace (the name the port binding expects), both up.
func (l *Lab) AddVM(ctx context.Context, name, host, ifname, mac string) error {
	if err := validName("VM", name); err != nil {
		return err
	}
	if err := validIfName(ifname); err != nil {
		return err
	}
	if reservedName(name) {
		return fmt.Errorf("lab: VM name %q is reserved (ul, ctl, api, out, hostN)", name)
	}
	if mac != "" {
		if _, err := net.ParseMAC(mac); err != nil {
			return fmt.Errorf("lab: VM %s: %w", name, err)
		}
	}
	h, err := l.Host(host)
	if err != nil {
		return err
	}
	if _, err := l.VM(name); err == nil {
		return fmt.Errorf("lab: VM %q exists", name)
	}
	vm := VM{Name: name, Host: h.Name, Netns: l.cfg.Prefix + name, IfName: ifname, MAC: mac}
	if err := addNetns(ctx, vm.Netns); err != nil {
		return err
	}
	cmds := []string{"link add eth0 netns " + vm.Netns + " type veth peer " + ifname + " netns " + h.Netns}
	if mac != "" {
		cmds = append(cmds, "-n "+vm.Netns+" link set eth0 address "+mac)
	}
	cmds = append(cmds,
		"-n "+vm.Netns+" link set eth0 up",
		"-n "+h.Netns+" link set "+ifname+" up",
	)
	if err := ipBatch(ctx, cmds); err != nil {
		_ = ip(context.WithoutCancel(ctx), "netns", "del", vm.Netns)
		return fmt.Errorf("attaching VM %s to %s: %w", name, host, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.VMs = append(l.st.VMs, vm)
	l.log.Info("vm added", "vm", name, "host", host, "ifname", ifname, "mac", mac)
	return l.saveStateLocked()
}

// DeleteVM stops the VM's dhclient and deletes its namespace (and so the
// veth pair).
func (l *Lab) DeleteVM(ctx context.Context, name string) error {
	vm, err := l.VM(name)
	if err != nil {
		return err
	}
	if err := l.stopNamed("dhclient-" + name); err != nil {
		return err
	}
	if err := ip(ctx, "netns", "del", vm.Netns); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.VMs = slices.DeleteFunc(l.st.VMs, func(v VM) bool { return v.Name == name })
	return l.saveStateLocked()
}

func reservedName(n string) bool {
	if n == "ul" || n == "ctl" || n == "api" || n == "out" {
		return true
	}
	if rest, ok := strings.CutPrefix(n, "host"); ok {
		_, err := strconv.Atoi(rest)
		return err == nil
	}
	return false
}

// Lease is what the lab's dhclient script applied to eth0.
type Lease struct {
	Addr    netip.Prefix // address and prefix length
	Router  netip.Addr   // default gateway (invalid when none)
	MTU     int          // interface MTU (0 when the server sent none)
	DNS     []netip.Addr
	Routes  []string // classless static routes, "dst/len via gw"
	Took    time.Duration
	Applied string // dhclient's reason: BOUND, RENEW, ...
}

// DHCPTimeout bounds one DHCP exchange.
const DHCPTimeout = 15 * time.Second

// DHCP runs the real dhclient on the VM's eth0 with the lab's script and
// returns the lease it applied. dhclient stays running (to renew) as
// process "dhclient-<vm>" until the VM or the lab goes down.
func (l *Lab) DHCP(ctx context.Context, vmName string) (Lease, error) {
	vm, err := l.VM(vmName)
	if err != nil {
		return Lease{}, err
	}
	script, conf, err := l.writeDHCPFiles()
	if err != nil {
		return Lease{}, err
	}
	name := "dhclient-" + vm.Name
	if err := l.stopNamed(name); err != nil {
		return Lease{}, err
	}
	leaseInfo := filepath.Join(l.cfg.RunDir, "dhcp", vm.Name+".info")
	os.Remove(leaseInfo)
	start := time.Now()
	// -1: try once, exit non-zero without a lease (after conf's timeout);
	// with a lease dhclient forks into the background, writes -pf and renews.
	argv := []string{"ip", "netns", "exec", vm.Netns, "dhclient", "-1", "-v",
		"-cf", conf, "-sf", script,
		"-lf", filepath.Join(l.cfg.RunDir, "dhcp", vm.Name+".leases"),
		"-pf", l.pidPath(name),
		"-e", "HIVENET_LEASE_INFO=" + leaseInfo,
		"eth0"}
	logf, err := os.OpenFile(l.logPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Lease{}, err
	}
	defer logf.Close()
	cctx, cancel := context.WithTimeout(ctx, DHCPTimeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return Lease{}, fmt.Errorf("lab: dhclient on %s: %w\n%s", vm.Name, err, l.LogTail(name, 8))
	}
	lease, err := readLeaseInfo(leaseInfo)
	if err != nil {
		return Lease{}, fmt.Errorf("lab: dhclient on %s: %w", vm.Name, err)
	}
	lease.Took = time.Since(start)
	l.log.Info("dhcp lease", "vm", vm.Name, "addr", lease.Addr, "router", lease.Router, "mtu", lease.MTU, "took", lease.Took.Round(time.Millisecond))
	return lease, nil
}

// dhclientConf asks for what the script applies; dhclient runs with it
// instead of /etc/dhcp/dhclient.conf so the host's settings do not matter.
const dhclientConf = `# hivenet lab dhclient.conf (generated)
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name,
	domain-name-servers, interface-mtu, rfc3442-classless-static-routes;
timeout ` + "15" + `;
retry 1;
initial-interval 1;
`

// dhclientScript applies a lease to the VM's interface. It runs inside the
// VM namespace and never touches /etc/resolv.conf or anything outside the
// namespace; it records what it applied in $HIVENET_LEASE_INFO.
const dhclientScript = `#!/bin/sh
# hivenet lab dhclient script (generated). Applies address, prefix,
# default route, classless static routes and MTU; nothing else.
mask2len() {
	n=0
	for o in $(echo "$1" | tr . ' '); do
		case $o in
		255) n=$((n+8)) ;; 254) n=$((n+7)) ;; 252) n=$((n+6)) ;; 248) n=$((n+5)) ;;
		240) n=$((n+4)) ;; 224) n=$((n+3)) ;; 192) n=$((n+2)) ;; 128) n=$((n+1)) ;;
		esac
	done
	echo $n
}
apply_routes() {
	# RFC 3442: width, significant octets of the destination, 4 router octets.
	set -- $new_rfc3442_classless_static_routes
	while [ $# -gt 0 ]; do
		w=$1; shift
		nb=$(( (w + 7) / 8 ))
		d=""; i=0
		while [ $i -lt 4 ]; do
			if [ $i -lt $nb ]; then o=$1; shift; else o=0; fi
			d="$d${d:+.}$o"; i=$((i+1))
		done
		gw="$1.$2.$3.$4"; shift 4
		if [ "$gw" = "0.0.0.0" ]; then
			ip -4 route replace "$d/$w" dev "$interface"
		else
			ip -4 route replace "$d/$w" via "$gw" dev "$interface"
		fi
		echo "route=$d/$w via $gw" >> "$info.tmp"
	done
}
case "$reason" in
PREINIT)
	ip link set dev "$interface" up
	;;
BOUND|RENEW|REBIND|REBOOT)
	len=$(mask2len "$new_subnet_mask")
	if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
		ip -4 addr flush dev "$interface"
	fi
	if [ -n "$new_interface_mtu" ] && [ "$new_interface_mtu" -ge 576 ]; then
		ip link set dev "$interface" mtu "$new_interface_mtu"
	fi
	ip -4 addr replace "$new_ip_address/$len" dev "$interface" valid_lft "${new_dhcp_lease_time:-forever}" preferred_lft "${new_dhcp_lease_time:-forever}"
	info=${HIVENET_LEASE_INFO:-/dev/null}
	{
		echo "reason=$reason"
		echo "addr=$new_ip_address/$len"
		echo "mtu=$new_interface_mtu"
		echo "dns=$new_domain_name_servers"
	} > "$info.tmp"
	if [ -n "$new_rfc3442_classless_static_routes" ]; then
		apply_routes
		# RFC 3442: with option 121 present, option 3 (routers) is ignored.
	elif [ -n "$new_routers" ]; then
		set -- $new_routers
		ip -4 route replace default via "$1" dev "$interface"
		echo "router=$1" >> "$info.tmp"
	fi
	mv "$info.tmp" "$info"
	;;
EXPIRE|FAIL|RELEASE|STOP)
	if [ -n "$old_ip_address" ]; then
		ip -4 addr flush dev "$interface"
	fi
	;;
esac
exit 0
`

// writeDHCPFiles writes the script and conf into RunDir/dhcp.
func (l *Lab) writeDHCPFiles() (script, conf string, err error) {
	dir := filepath.Join(l.cfg.RunDir, "dhcp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	script, conf = filepath.Join(dir, "dhclient-script"), filepath.Join(dir, "dhclient.conf")
	if err := os.WriteFile(script, []byte(dhclientScript), 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(conf, []byte(dhclientConf), 0o600); err != nil {
		return "", "", err
	}
	return script, conf, nil
}

// readLeaseInfo parses the file the script writes.
func readLeaseInfo(path string) (Lease, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Lease{}, errors.New("no lease applied (script wrote nothing)")
	}
	if err != nil {
		return Lease{}, err
	}
	defer f.Close()
	return parseLeaseInfo(bufio.NewScanner(f))
}

func parseLeaseInfo(sc *bufio.Scanner) (Lease, error) {
	var ls Lease
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "reason":
			ls.Applied = v
		case "addr":
			ls.Addr, err = netip.ParsePrefix(v)
		case "router":
			ls.Router, err = netip.ParseAddr(v)
		case "mtu":
			if v != "" {
				ls.MTU, err = strconv.Atoi(v)
			}
		case "dns":
			for f := range strings.FieldsSeq(v) {
				a, perr := netip.ParseAddr(f)
				if perr != nil {
					err = perr
					break
				}
				ls.DNS = append(ls.DNS, a)
			}
		case "route":
			ls.Routes = append(ls.Routes, v)
			if dst, gw, ok := strings.Cut(v, " via "); ok && strings.HasSuffix(dst, "/0") && gw != "0.0.0.0" {
				ls.Router, err = netip.ParseAddr(gw)
			}
		}
		if err != nil {
			return Lease{}, fmt.Errorf("lease info %s=%q: %w", k, v, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Lease{}, err
	}
	if !ls.Addr.IsValid() {
		return Lease{}, errors.New("lease info has no address")
	}
	return ls, nil
}

// Exec runs argv inside netns ns (a lab namespace: a VM, "host1", "ctl",
// ...; the prefix is added when missing) and returns its stdout.
func (l *Lab) Exec(ctx context.Context, ns string, argv ...string) (string, error) {
	if !strings.HasPrefix(ns, l.cfg.Prefix) {
		ns = l.cfg.Prefix + ns
	}
	return nsExec(ctx, ns, argv...)
}

// PingResult is the outcome of Ping.
type PingResult struct {
	Sent, Received int
	RTTs           []time.Duration // per reply, in order
}

// Ping sends count echo requests from VM from to dst, waiting at most
// timeout in total, and reports whether any reply came back and the median
// RTT of the replies.
func (l *Lab) Ping(ctx context.Context, from string, dst netip.Addr, count int, timeout time.Duration) (ok bool, rtt time.Duration, err error) {
	r, err := l.PingDetail(ctx, from, dst, count, 200*time.Millisecond, timeout)
	if err != nil {
		return false, 0, err
	}
	return r.Received > 0, median(r.RTTs), nil
}

// PingDetail runs `ping -n -c count -i interval -w timeout dst` in VM from.
func (l *Lab) PingDetail(ctx context.Context, from string, dst netip.Addr, count int, interval, timeout time.Duration) (PingResult, error) {
	vm, err := l.VM(from)
	if err != nil {
		return PingResult{}, err
	}
	if count < 1 {
		count = 1
	}
	secs := int((timeout + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	argv := []string{"ip", "netns", "exec", vm.Netns, "ping", "-n", "-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-w", strconv.Itoa(secs), dst.String()}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.Output()
	// ping exits 1 when no reply came back: that is a result, not an error.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return PingResult{}, fmt.Errorf("lab: ping from %s: %w", from, err)
	}
	return parsePing(string(out)), nil
}

var (
	pingReply = regexp.MustCompile(`bytes from .*time=([0-9.]+) ms`)
	pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
)

// parsePing reads iputils ping output.
func parsePing(out string) PingResult {
	var r PingResult
	for line := range strings.Lines(out) {
		if m := pingReply.FindStringSubmatch(line); m != nil {
			if ms, err := strconv.ParseFloat(m[1], 64); err == nil {
				r.RTTs = append(r.RTTs, time.Duration(ms*float64(time.Millisecond)))
			}
		}
		if m := pingStats.FindStringSubmatch(line); m != nil {
			r.Sent, _ = strconv.Atoi(m[1])
			r.Received, _ = strconv.Atoi(m[2])
		}
	}
	return r
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Neighbor returns the MAC the VM's ARP cache holds for addr ("" if none).
func (l *Lab) Neighbor(ctx context.Context, vmName string, addr netip.Addr) (string, error) {
	vm, err := l.VM(vmName)
	if err != nil {
		return "", err
	}
	out, err := nsExec(ctx, vm.Netns, "ip", "-4", "neigh", "show", addr.String(), "dev", "eth0")
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if i := slices.Index(f, "lladdr"); i >= 0 && i+1 < len(f) {
		return f[i+1], nil
	}
	return "", nil
}
