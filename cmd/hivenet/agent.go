package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hivenet/internal/agent"
	"hivenet/internal/client"
	"hivenet/internal/datapath"
	"hivenet/internal/datapath/ebpf"
	"hivenet/internal/datapath/userspace"
	"hivenet/internal/flowstate/conntrack"
	"hivenet/internal/store"
)

func init() {
	var (
		host, tunnelIP, endpoints, dpName, logLevel string
		stateDir, bpfPinRoot, controlSocket         string
		mappings                                    []string
		tunnelPort                                  uint16
		hostTTL, flowIdle, flowHard, stateIdle      time.Duration
		maxFlows                                    int
		destroyPins, dpConntrack                    bool
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: bind local ports, simulate and forward",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(logLevel).With("component", "agent", "host", host)
			ip, err := netip.ParseAddr(tunnelIP)
			if err != nil || !ip.Is4() {
				return fmt.Errorf("--tunnel-ip: %q is not an IPv4 address", tunnelIP)
			}
			if stateIdle <= flowHard {
				return fmt.Errorf("--flow-state-idle (%v) must exceed --flow-hard-timeout (%v)", stateIdle, flowHard)
			}
			dlog := log.With("component", "datapath")
			ecfg := ebpf.Config{Name: host, TunnelIP: ip, TunnelPort: tunnelPort, PinRoot: bpfPinRoot, Persist: true,
				MaxFlows: maxFlows, IdleTimeout: flowIdle, HardTimeout: flowHard, ConnIdle: stateIdle, Logger: dlog}
			if destroyPins {
				e, err := ebpf.New(ecfg)
				if err != nil {
					return err
				}
				return e.Destroy()
			}
			if dpName != "userspace" && dpName != "ebpf" {
				return fmt.Errorf("--datapath: %q is not supported (supported: ebpf, userspace)", dpName)
			}
			bm, err := parseBridgeMappings(mappings)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := store.Open(ctx, store.Config{Endpoints: splitList(endpoints)})
			if err != nil {
				return err
			}
			defer st.Close()
			dp, dpName, err := openDatapath(dpName, log,
				func() (datapath.Datapath, error) { return ebpf.New(ecfg) },
				func() (datapath.Datapath, error) {
					return userspace.New(userspace.Config{TunnelIP: ip, TunnelPort: tunnelPort, MaxFlows: maxFlows, IdleTimeout: flowIdle, HardTimeout: flowHard, Logger: dlog})
				})
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Config{
				Host: host, TunnelIP: ip, TunnelPort: tunnelPort, Store: st, Datapath: dp, KeepForwarding: dpName == "ebpf",
				DatapathName: dpName, Logger: log, HostTTL: hostTTL, BridgeMappings: bm, StateDir: stateDir,
				FlowState:     conntrack.Config{ConnIdle: int64(stateIdle), NATIdle: int64(stateIdle)},
				ControlSocket: controlSocket, NoDatapathConntrack: !dpConntrack,
			})
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	hn, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&host, "host", hn, "this host's name; ports with binding:host_id equal to it are bound here")
	f.StringVar(&tunnelIP, "tunnel-ip", "", "underlay IPv4 address other hosts reach this host's VXLAN endpoint on (required)")
	f.Uint16Var(&tunnelPort, "tunnel-port", 4789, "UDP port for VXLAN")
	f.StringVar(&endpoints, "etcd-endpoints", "http://127.0.0.1:2379", "comma-separated etcd client URLs")
	f.StringVar(&dpName, "datapath", "ebpf", "datapath implementation: ebpf (falls back to userspace, with one warning, where the kernel lacks support) or userspace")
	f.StringVar(&bpfPinRoot, "bpf-pin-root", "/sys/fs/bpf/hivenet", "ebpf datapath: bpffs directory where maps and links are pinned (under <host>/) so forwarding survives agent restarts; under `ip netns exec` use a bpffs mounted outside /sys")
	f.BoolVar(&destroyPins, "destroy-pins", false, "ebpf datapath: detach this host's programs, remove its pins under --bpf-pin-root and its VXLAN device, then exit (forwarding stops; for decommissioning)")
	f.DurationVar(&hostTTL, "host-ttl", 5*time.Second, "lease TTL of the host registration, bindings and learned MACs")
	f.BoolVar(&dpConntrack, "datapath-conntrack", true, "ebpf datapath: track connections in the datapath, so new connections through security groups cost no upcall once a flow for their kind exists; false keeps connection tracking in the agent (an upcall per connection on each host, as with userspace)")
	f.IntVar(&maxFlows, "max-flows", 65536, "flow table capacity")
	f.DurationVar(&flowIdle, "flow-idle-timeout", 30*time.Second, "idle time after which a flow is removed")
	f.StringVar(&stateDir, "state-dir", "/var/lib/hivenet/agent", "directory keeping the agent's flow state (conntrack, NAT) across restarts; empty: not kept")
	f.StringSliceVar(&mappings, "bridge-mappings", nil, "PHYSNET:INTERFACE[,...]: bind INTERFACE as the uplink of the flat external network on PHYSNET (gateway hosts)")
	f.DurationVar(&flowHard, "flow-hard-timeout", 2*time.Minute, "age after which a flow is removed even if busy (it is simulated again: state it depends on is refreshed then)")
	f.DurationVar(&stateIdle, "flow-state-idle", 10*time.Minute, "idle time after which a conntrack entry or NAT binding is removed (must exceed --flow-hard-timeout)")
	f.StringVar(&controlSocket, "control-socket", client.DefaultAgentSocket, "unix socket (mode 0600) of the local control endpoint that hivenet flows and hivenet agent-stats read; empty: none")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("tunnel-ip")
	root.AddCommand(cmd)
}

// openDatapath opens the datapath named name: ebpf by openEBPF, falling
// back to openUser with one warning when the kernel lacks support
// (ebpf.ErrUnsupported); userspace by openUser. It returns the name of the
// datapath opened.
func openDatapath(name string, log *slog.Logger, openEBPF, openUser func() (datapath.Datapath, error)) (datapath.Datapath, string, error) {
	switch name {
	case "ebpf":
		dp, err := openEBPF()
		if err == nil {
			return dp, name, nil
		}
		if !errors.Is(err, ebpf.ErrUnsupported) {
			return nil, "", err
		}
		log.Warn("eBPF datapath not supported here; falling back to the userspace datapath", "err", err)
	case "userspace":
	default:
		return nil, "", fmt.Errorf("--datapath: %q is not supported (supported: ebpf, userspace)", name)
	}
	dp, err := openUser()
	if err != nil {
		return nil, "", err
	}
	return dp, "userspace", nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// parseBridgeMappings parses "physnet1:eth1" items.
func parseBridgeMappings(items []string) (map[string]string, error) {
	m := map[string]string{}
	for _, it := range items {
		phys, iface, ok := strings.Cut(strings.TrimSpace(it), ":")
		if !ok || phys == "" || iface == "" {
			return nil, fmt.Errorf("--bridge-mappings: %q is not PHYSNET:INTERFACE", it)
		}
		if _, dup := m[phys]; dup {
			return nil, fmt.Errorf("--bridge-mappings: physical network %q mapped twice", phys)
		}
		m[phys] = iface
	}
	return m, nil
}
