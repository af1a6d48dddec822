package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// AttachPort creates VM vmName on host attached to API port idOrName: the
// VM's eth0 gets the port's MAC and its host-side veth the name the agent
// binds (binding:profile.interface_name, else tap + 11 characters of the
// id). A port with no binding:host_id is bound to host first; a port bound
// to another host is refused.
func (l *Lab) AttachPort(ctx context.Context, vmName, host, idOrName string) (Port, error) {
	if _, err := l.Host(host); err != nil {
		return Port{}, err
	}
	api := l.api()
	p, err := api.FindPort(ctx, idOrName)
	if err != nil {
		return Port{}, err
	}
	switch p.HostID {
	case host:
	case "":
		if p, err = api.UpdatePort(ctx, p.ID, map[string]any{"binding:host_id": host}); err != nil {
			return Port{}, fmt.Errorf("binding port %s to %s: %w", idOrName, host, err)
		}
	default:
		return Port{}, fmt.Errorf("lab: port %s is bound to host %q, not %q", idOrName, p.HostID, host)
	}
	if err := l.AddVM(ctx, vmName, host, p.InterfaceName(), p.MACAddress); err != nil {
		return Port{}, err
	}
	return p, nil
}

// WriteStatus prints the lab: API, hosts with their agents, VMs.
func (l *Lab) WriteStatus(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "lab %s (run dir %s)\n", l.cfg.Prefix, l.cfg.RunDir)
	fmt.Fprintf(w, "API   %s  (server in netns %s: %s)\n", l.APIURL(), l.ctlNS(), l.procState("server"))
	fmt.Fprintf(w, "etcd  %s\n", l.EtcdURL())
	if ns := l.OutsideNetns(); ns != "" {
		fmt.Fprintf(w, "outside netns %s: upstream router %s, internet %s; gateways %v bind %s as %s\n",
			ns, l.ExternalGateway(), l.Internet(), l.Gateways(), UplinkIf, l.PhysNet())
	}
	fmt.Fprintln(w)
	alive := map[string]bool{}
	agents, apiErr := l.api().Agents(ctx)
	for _, a := range agents {
		alive[a.Host] = a.Alive
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNETNS\tTUNNEL IP\tAGENT PROCESS\tALIVE (API)")
	for _, h := range l.Hosts() {
		a := "no"
		if alive[h.Name] {
			a = "yes"
		}
		if apiErr != nil {
			a = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Name, h.Netns, h.TunnelIP, l.procState(h.AgentName), a)
	}
	tw.Flush()
	if vms := l.VMs(); len(vms) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VM\tNETNS\tHOST\tHOST IFNAME\tMAC\tADDRESS")
		for _, v := range vms {
			addr, _ := nsExec(ctx, v.Netns, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
			a := "-"
			if f := strings.Fields(addr); len(f) >= 4 {
				a = f[3]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Netns, v.Host, v.IfName, v.MAC, a)
		}
		tw.Flush()
	}
	if apiErr != nil {
		fmt.Fprintf(w, "\nAPI not answering: %v\n", apiErr)
	}
	return nil
}

// procState describes process name: "pid N" or "not running".
func (l *Lab) procState(name string) string {
	pid, err := readPIDFile(l.pidPath(name))
	if err != nil || !alive(pid) {
		return "not running"
	}
	return fmt.Sprintf("pid %d", pid)
}

// HowTo is how to reach the lab from a shell: CLI environment and examples.
func (l *Lab) HowTo() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  export HIVENET_URL=%s HIVENET_TOKEN=%s\n", l.APIURL(), l.cfg.AdminToken)
	for _, t := range l.cfg.Tokens {
		fmt.Fprintf(&b, "  # as project %s: HIVENET_TOKEN=%s\n", t.ProjectID, t.Token)
	}
	fmt.Fprintf(&b, "  hivenet network list; hivenet port list; hivenet agent list\n")
	fmt.Fprintf(&b, "  curl -s -H \"X-Auth-Token: $HIVENET_TOKEN\" $HIVENET_URL/v2.0/ports | jq .\n")
	hosts := l.Hosts()
	if len(hosts) > 0 {
		fmt.Fprintf(&b, "  ip netns exec %s ip -br addr          # a host; agent log: %s\n", hosts[0].Netns, l.logPath(hosts[0].AgentName))
	}
	for i, v := range l.VMs() {
		if i == 0 {
			fmt.Fprintf(&b, "  ip netns exec %s ip -br addr; ip netns exec %s ping <address>\n", v.Netns, v.Netns)
		}
	}
	if ns := l.OutsideNetns(); ns != "" {
		fmt.Fprintf(&b, "  # external network: router:external, flat, provider:physical_network %s, subnet %s gateway %s\n", l.PhysNet(), l.ExternalCIDR(), l.ExternalGateway())
		fmt.Fprintf(&b, "  ip netns exec %s ping <floating IP>   # the outside (internet %s)\n", ns, l.Internet())
	}
	fmt.Fprintf(&b, "  hivenet lab vm add NAME --host host1 --port PORT  --prefix %s\n", l.cfg.Prefix)
	fmt.Fprintf(&b, "  hivenet lab status --prefix %s; hivenet lab down --prefix %s\n", l.cfg.Prefix, l.cfg.Prefix)
	return b.String()
}
