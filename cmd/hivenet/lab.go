package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"hivenet/internal/lab"
)

// labFlags are the flags shared by the lab subcommands.
type labFlags struct {
	prefix   string
	runDir   string
	hosts    int
	underlay string
	datapath string
	binary   string
	gateways []string
	physnet  string
	agentArg []string
	verbose  bool
}

func (f *labFlags) addCommon(c *cobra.Command) {
	c.Flags().StringVar(&f.prefix, "prefix", lab.DefaultPrefix, "prefix of the lab's namespace and link names (labs with distinct prefixes are independent)")
	c.Flags().StringVar(&f.runDir, "run-dir", "", "logs, pid files, etcd data and lab.json (default /run/hivenet/lab-<prefix>)")
	c.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log the lab's steps to stderr")
}

func (f *labFlags) addBuild(c *cobra.Command) {
	c.Flags().IntVar(&f.hosts, "hosts", lab.DefaultHosts, "number of host namespaces, each with an agent")
	c.Flags().StringVar(&f.underlay, "underlay", lab.DefaultUnderlayCIDR.String(), "underlay CIDR: hosts get .1..N, the server the last address")
	c.Flags().StringVar(&f.datapath, "datapath", "", "passed to every agent as --datapath (empty: the agent's default)")
	c.Flags().StringVar(&f.binary, "binary", "", "hivenet binary to run the server and agents with (default: this one)")
	c.Flags().StringSliceVar(&f.gateways, "gateways", nil, "hosts wired to the \"outside\" namespace (upstream router 203.0.113.1, internet 198.51.100.1); their agents run with --bridge-mappings PHYSNET:"+lab.UplinkIf)
	c.Flags().StringVar(&f.physnet, "physnet", lab.DefaultPhysNet, "physical network name of the external network on the gateways")
	c.Flags().StringArrayVar(&f.agentArg, "agent-arg", nil, "an extra argument for every agent (repeatable), e.g. --agent-arg=--datapath-conntrack=false")
}

func (f *labFlags) logger(level slog.Level) *slog.Logger {
	if f.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func (f *labFlags) config(level slog.Level) (lab.Config, error) {
	cfg := lab.Config{Prefix: f.prefix, RunDir: f.runDir, Hosts: f.hosts, Datapath: f.datapath, Binary: f.binary, Logger: f.logger(level),
		Gateways: f.gateways, PhysNet: f.physnet, AgentArgs: f.agentArg}
	if f.underlay != "" {
		p, err := netip.ParsePrefix(f.underlay)
		if err != nil {
			return cfg, fmt.Errorf("--underlay: %w", err)
		}
		cfg.UnderlayCIDR = p
	}
	return cfg, nil
}

// load returns the running lab of the flags' prefix/run dir.
func (f *labFlags) load() (*lab.Lab, error) {
	dir := f.runDir
	if dir == "" {
		dir = lab.DefaultRunDir(f.prefix)
	}
	return lab.Load(dir, f.logger(slog.LevelInfo))
}

func newLabCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "lab",
		Short: "Multi-host hivenet on one machine, in network namespaces (demo, tests, benchmarks)",
	}
	c.AddCommand(newLabUpCmd(), newLabDownCmd(), newLabStatusCmd(), newLabVMCmd(), newLabDemoCmd())
	return c
}

func newLabUpCmd() *cobra.Command {
	var f labFlags
	c := &cobra.Command{
		Use:   "up",
		Short: "Build the hosts, underlay, server and agents, and leave them running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(slog.LevelInfo)
			if err != nil {
				return err
			}
			l, err := lab.New(cfg)
			if err != nil {
				return err
			}
			if err := l.Up(cmd.Context()); err != nil {
				if !errors.Is(err, lab.ErrRunning) {
					err = errors.Join(err, l.Down(context.WithoutCancel(cmd.Context())))
				}
				return err
			}
			out := cmd.OutOrStdout()
			if err := l.WriteStatus(cmd.Context(), out); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nTo use it:\n%s", l.HowTo())
			return nil
		},
	}
	f.addCommon(c)
	f.addBuild(c)
	return c
}

func newLabDownCmd() *cobra.Command {
	var f labFlags
	c := &cobra.Command{
		Use:   "down",
		Short: "Stop the lab's processes and delete its namespaces, links and run dir (also after a crash)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := f.load()
			if errors.Is(err, lab.ErrNotFound) {
				// No lab.json: clear whatever carries the prefix anyway.
				cfg, cerr := f.config(slog.LevelInfo)
				if cerr != nil {
					return cerr
				}
				if l, err = lab.New(cfg); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			return l.Down(context.WithoutCancel(cmd.Context()))
		},
	}
	f.addCommon(c)
	return c
}

func newLabStatusCmd() *cobra.Command {
	var f labFlags
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the lab's API, hosts, agents and VMs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := f.load()
			if err != nil {
				return err
			}
			if err := l.WriteStatus(cmd.Context(), cmd.OutOrStdout()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nTo use it:\n%s", l.HowTo())
			return nil
		},
	}
	f.addCommon(c)
	return c
}

func newLabVMCmd() *cobra.Command {
	c := &cobra.Command{Use: "vm", Short: "Add or delete VM namespaces attached to ports"}
	var f labFlags
	var host, port string
	var noDHCP bool
	add := &cobra.Command{
		Use:   "add NAME --host HOST --port PORT_ID_OR_NAME",
		Short: "Create VM namespace NAME on HOST attached to the port's interface, then run dhclient in it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.load()
			if err != nil {
				return err
			}
			p, err := l.AttachPort(cmd.Context(), args[0], host, port)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "VM %s on %s: eth0 %s <-> %s (port %s)\n", args[0], host, p.MACAddress, p.InterfaceName(), p.ID)
			if noDHCP {
				return nil
			}
			lease, err := l.DHCP(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "DHCP: %s router %s mtu %d (%v)\n", lease.Addr, lease.Router, lease.MTU, lease.Took.Round(1e6))
			return nil
		},
	}
	f.addCommon(add)
	add.Flags().StringVar(&host, "host", "", "lab host (host1..N) whose agent binds the port")
	add.Flags().StringVar(&port, "port", "", "port id or name")
	add.Flags().BoolVar(&noDHCP, "no-dhcp", false, "do not run dhclient in the VM")
	_ = add.MarkFlagRequired("host")
	_ = add.MarkFlagRequired("port")

	var fd labFlags
	del := &cobra.Command{
		Use:   "del NAME",
		Short: "Delete VM namespace NAME (its dhclient and veth pair)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := fd.load()
			if err != nil {
				return err
			}
			return l.DeleteVM(cmd.Context(), args[0])
		},
	}
	fd.addCommon(del)
	c.AddCommand(add, del)
	return c
}

func newLabDemoCmd() *cobra.Command {
	var f labFlags
	var keep bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "3 hosts, overlapping tenant networks, a router with SNAT, security groups, a floating IP reached from outside; cleans up after itself",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(slog.LevelWarn)
			if err != nil {
				return err
			}
			_, err = lab.RunDemo(cmd.Context(), lab.DemoConfig{Lab: cfg, Keep: keep, Out: cmd.OutOrStdout()})
			return err
		},
	}
	f.addCommon(c)
	f.addBuild(c)
	c.Flags().BoolVar(&keep, "keep", false, "leave the lab running afterwards and print how to reach it")
	return c
}

func init() { root.AddCommand(newLabCmd()) }
