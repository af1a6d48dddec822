package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// run runs argv and returns its stdout; on failure the error carries the
// command and its stderr.
func run(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return out.String(), nil
}

// ip runs `ip args...`.
func ip(ctx context.Context, args ...string) error {
	_, err := run(ctx, append([]string{"ip"}, args...)...)
	return err
}

// ipBatch runs ip commands in order, one `ip [-n NS] -batch -` process per
// run of consecutive lines with the same "-n NS" prefix (ip's batch mode
// does not take options per line). ip stops at the first failing line.
func ipBatch(ctx context.Context, lines []string) error {
	for len(lines) > 0 {
		ns := lineNetns(lines[0])
		n := 1
		for n < len(lines) && lineNetns(lines[n]) == ns {
			n++
		}
		args := []string{"-batch", "-"}
		if ns != "" {
			args = []string{"-n", ns, "-batch", "-"}
		}
		var b strings.Builder
		for _, l := range lines[:n] {
			if ns != "" {
				l = strings.TrimPrefix(l, "-n "+ns+" ")
			}
			b.WriteString(l + "\n")
		}
		cmd := exec.CommandContext(ctx, "ip", args...)
		cmd.Stdin = strings.NewReader(b.String())
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		lines = lines[n:]
	}
	return nil
}

// lineNetns returns NS of a line starting with "-n NS ", else "".
func lineNetns(line string) string {
	rest, ok := strings.CutPrefix(line, "-n ")
	if !ok {
		return ""
	}
	ns, _, _ := strings.Cut(rest, " ")
	return ns
}

// nsExec runs argv inside netns ns.
func nsExec(ctx context.Context, ns string, argv ...string) (string, error) {
	return run(ctx, append([]string{"ip", "netns", "exec", ns}, argv...)...)
}

// listNetns returns the names of all named network namespaces.
func listNetns(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	return parseNetnsList(out), nil
}

// parseNetnsList parses `ip netns list` ("name (id: 3)" or "name" per line).
func parseNetnsList(out string) []string {
	var names []string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// rootLinks returns the names of the links in the caller's (root) netns.
func rootLinks(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "ip", "-j", "link", "show")
	if err != nil {
		return nil, err
	}
	var links []struct {
		IfName string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("parsing ip -j link: %w", err)
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.IfName)
	}
	return names, nil
}

// rootPrefixes returns the IPv4 prefixes of every address and route of the
// root netns, so a new link avoids them.
func rootPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	out, err := run(ctx, "ip", "-j", "-4", "addr", "show")
	if err != nil {
		return nil, err
	}
	var ifs []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &ifs); err != nil {
		return nil, fmt.Errorf("parsing ip -j addr: %w", err)
	}
	var ps []netip.Prefix
	for _, i := range ifs {
		for _, a := range i.AddrInfo {
			if p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)); err == nil {
				ps = append(ps, p.Masked())
			}
		}
	}
	out, err = run(ctx, "ip", "-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, err
	}
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return nil, fmt.Errorf("parsing ip -j route: %w", err)
	}
	for _, r := range routes {
		if r.Dst == "default" || r.Dst == "" {
			continue
		}
		s := r.Dst
		if !strings.Contains(s, "/") {
			s += "/32"
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			ps = append(ps, p.Masked())
		}
	}
	return ps, nil
}
