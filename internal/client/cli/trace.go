package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
)

func traceCommand() *cobra.Command {
	g := &globals{}
	var (
		port string
		req  client.TraceRequest
	)
	cmd := &cobra.Command{
		Use:   "trace --port PORT [packet fields]",
		Short: "Simulate a packet entering at a port and print its path",
		Long: "Simulate a packet entering the virtual network at a port, with the same code the agents run,\n" +
			"and print every device, stage and decision on its path, then the verdict. Fields left out\n" +
			"default to what the port itself would send (its MAC and first address), an ICMP echo request.",
		Example: "  hivenet trace --port vm1 --eth-dst fa:16:3e:00:00:02 --ip-dst 10.0.0.6 --proto tcp --dst-port 80",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTrace(cmd, &req); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			id, err := c.Resolve(cmd.Context(), client.Ports, port)
			if err != nil {
				return fmt.Errorf("--port: %w", err)
			}
			req.PortID = id
			res, err := c.Trace(cmd.Context(), req)
			if err != nil {
				return err
			}
			if g.output == formatJSON {
				return writeJSON(cmd.OutOrStdout(), res.Raw)
			}
			return printTrace(cmd.OutOrStdout(), res)
		},
	}
	g.register(cmd)
	f := cmd.Flags()
	f.StringVar(&port, "port", "", "port the packet enters at (name or ID)")
	f.StringVar(&req.EthSrc, "eth-src", "", "source MAC (default: the port's)")
	f.StringVar(&req.EthDst, "eth-dst", "", "destination MAC (default: broadcast)")
	f.StringVar(&req.IPSrc, "ip-src", "", "source IPv4 address (default: the port's first)")
	f.StringVar(&req.IPDst, "ip-dst", "", "destination IPv4 address")
	f.StringVar(&req.Proto, "proto", "", "icmp (default), tcp, udp, arp, or an IP protocol number")
	f.IntVar(&req.SrcPort, "src-port", 0, "TCP/UDP source port")
	f.IntVar(&req.DstPort, "dst-port", 0, "TCP/UDP destination port")
	f.IntVar(&req.TTL, "ttl", 0, "IP TTL (default 64)")
	f.StringVar(&req.CTState, "ct-state", "", "trace as a datapath that tracks connections (ebpf) sees the packet: new, est (established) or rpl (established reply); default: as the agent's own tables do, every packet new")
	_ = cmd.MarkFlagRequired("port")
	return cmd
}

// checkTrace validates the packet fields before anything is sent.
func checkTrace(cmd *cobra.Command, req *client.TraceRequest) error {
	changed := cmd.Flags().Changed
	for _, m := range []struct {
		flag string
		v    string
	}{{"eth-src", req.EthSrc}, {"eth-dst", req.EthDst}} {
		if changed(m.flag) {
			if err := checkMAC(m.flag, m.v); err != nil {
				return err
			}
		}
	}
	for _, a := range []struct {
		flag string
		v    string
	}{{"ip-src", req.IPSrc}, {"ip-dst", req.IPDst}} {
		if changed(a.flag) {
			if err := checkIP(a.flag, a.v); err != nil {
				return err
			}
		}
	}
	req.Proto = strings.ToLower(req.Proto)
	switch req.Proto {
	case "", "icmp", "tcp", "udp", "arp":
	default:
		if n, err := strconv.Atoi(req.Proto); err != nil || n < 0 || n > 255 {
			return fmt.Errorf("--proto %q: want icmp, tcp, udp, arp or a number from 0 to 255", req.Proto)
		}
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"src-port", req.SrcPort}, {"dst-port", req.DstPort}} {
		if p.v < 0 || p.v > 65535 {
			return fmt.Errorf("--%s %d: want 0 to 65535", p.flag, p.v)
		}
	}
	if req.TTL < 0 || req.TTL > 255 {
		return fmt.Errorf("--ttl %d: want 1 to 255", req.TTL)
	}
	return nil
}

// printTrace prints one step per line, devices and stages aligned, then
// where the packet goes and the verdict last:
//
//	host: host-1
//	  1  port vm1      ingress      admin up
//	  2  bridge blue   mac-lookup   fa:16:3e:00:00:02 is on port vm2
//	output: port 6f0... on host host-2 (tunnel key 17)
//	flow: cacheable: matches in_port,eth_src,eth_dst
//	verdict: forward
func printTrace(w io.Writer, res *client.TraceResult) error {
	var b strings.Builder
	if res.Host != "" {
		fmt.Fprintf(&b, "host: %s\n", res.Host)
	}
	dw, sw := 0, 0
	for _, s := range res.Steps {
		dw = max(dw, utf8.RuneCountInString(s.Device))
		sw = max(sw, utf8.RuneCountInString(s.Stage))
	}
	for i, s := range res.Steps {
		line := fmt.Sprintf("%3d  %s  %s  %s", i+1, pad(s.Device, dw), pad(s.Stage, sw), s.Detail)
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	for _, o := range res.Outputs {
		where := "on host " + o.Host
		if o.Local {
			where = "local"
		}
		fmt.Fprintf(&b, "output: port %s %s (tunnel key %d)\n", o.PortID, where, o.TunnelKey)
	}
	if res.Flood != "" {
		fmt.Fprintf(&b, "flood: %s\n", res.Flood)
	}
	if res.Emitted > 0 {
		fmt.Fprintf(&b, "answered: %d frame(s)\n", res.Emitted)
	}
	if res.Flow != "" {
		fmt.Fprintf(&b, "flow: %s\n", res.Flow)
	}
	b.WriteString("verdict: " + res.Verdict)
	if res.Reason != "" {
		b.WriteString(" (" + res.Reason + ")")
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func pad(s string, width int) string {
	return s + strings.Repeat(" ", width-utf8.RuneCountInString(s))
}
