package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
	"hivenet/internal/lab"
)

// `hivenet flows` and `hivenet agent-stats`: read the control endpoint of
// the agent of this host (or of a lab host) over its unix socket.

// agentCtlFlags say which agent to ask: --socket, or --lab HOST (with the
// lab's --prefix or --run-dir).
type agentCtlFlags struct {
	socket, labHost, prefix, runDir, output string
	timeout                                 time.Duration
}

func (f *agentCtlFlags) add(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.socket, "socket", client.DefaultAgentSocket, "the agent's control socket (agent --control-socket)")
	fl.StringVar(&f.labHost, "lab", "", "ask the agent of this lab host instead (e.g. host1 of a running hivenet lab)")
	fl.StringVar(&f.prefix, "prefix", lab.DefaultPrefix, "with --lab: the lab's prefix")
	fl.StringVar(&f.runDir, "run-dir", "", "with --lab: the lab's run directory (default /run/hivenet/lab-<prefix>)")
	fl.StringVarP(&f.output, "output", "o", "table", "table or json")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on the exchange with the agent")
	c.MarkFlagsMutuallyExclusive("socket", "lab")
}

// control returns the client of the chosen agent.
func (f *agentCtlFlags) control() (*client.AgentControl, error) {
	if f.output != "table" && f.output != "json" {
		return nil, fmt.Errorf("-o: %q is not table or json", f.output)
	}
	socket := f.socket
	if f.labHost != "" {
		dir := f.runDir
		if dir == "" {
			dir = lab.DefaultRunDir(f.prefix)
		}
		l, err := lab.Load(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, fmt.Errorf("--lab: %w", err)
		}
		h, err := l.Host(f.labHost)
		if err != nil {
			return nil, fmt.Errorf("--lab: %w", err)
		}
		socket = lab.ControlSocket(dir, h.Name)
	}
	return client.NewAgentControl(socket, f.timeout), nil
}

func init() {
	var (
		cf     agentCtlFlags
		filter client.FlowFilter
	)
	flows := &cobra.Command{
		Use:   "flows",
		Short: "List the flows installed in this host's datapath, with their statistics (from the local agent)",
		Long: "List the flows installed in the datapath of the agent on this host, one per line as ovs-dpctl dump-flows does:\n" +
			"the fields the flow matches, packets, bytes, how long ago it was last used, and its actions.",
		Example: "  hivenet flows\n  hivenet flows --port 3 -o json\n  hivenet flows --lab host1 --match ip_dst=10.20.0.12",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.control()
			if err != nil {
				return err
			}
			fl, err := c.Flows(cmd.Context(), filter)
			if err != nil {
				return err
			}
			return client.WriteAgentFlows(cmd.OutOrStdout(), cf.output, fl)
		},
	}
	cf.add(flows)
	flows.Flags().StringVar(&filter.Port, "port", "", "only flows entering on or output to this port: a datapath port number or the ID of a port bound on the host")
	flows.Flags().StringVar(&filter.Match, "match", "", "only flows whose match contains this text")

	var sf agentCtlFlags
	stats := &cobra.Command{
		Use:   "agent-stats",
		Short: "Show the counters of this host's agent and datapath (from the local agent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.control()
			if err != nil {
				return err
			}
			s, err := c.Stats(cmd.Context())
			if err != nil {
				return err
			}
			return client.WriteAgentStats(cmd.OutOrStdout(), sf.output, s)
		},
	}
	sf.add(stats)
	root.AddCommand(flows, stats)
}
