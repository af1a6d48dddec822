package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"hivenet/internal/api"
	"hivenet/internal/store"
	"hivenet/internal/topology"
	"hivenet/internal/trace"
)

func init() {
	var (
		cfg       api.RunConfig
		endpoints string
		tokenFile string
		verbose   bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the OpenStack Networking v2.0 API server (with an embedded etcd unless --etcd-endpoints is given)",
		Long: `Run the hivenet API server on --listen (default :9696).

With no --etcd-endpoints it starts an embedded single-node etcd in
--data-dir/etcd whose client URL is --etcd-listen: agents on other hosts
connect there. With --etcd-endpoints (comma-separated URLs) it uses that
cluster.

Auth: X-Auth-Token. The admin token comes from --admin-token or
HIVENET_ADMIN_TOKEN; more tokens from --token-file (JSON
[{"token","project_id","role"}] or lines "token project_id [role]").
With no token at all the server generates an admin token on first start
and keeps it in --data-dir/admin-token (mode 0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.API.AdminToken == "" {
				cfg.API.AdminToken = os.Getenv("HIVENET_ADMIN_TOKEN")
			}
			if endpoints != "" {
				for _, e := range strings.Split(endpoints, ",") {
					if e = strings.TrimSpace(e); e != "" {
						cfg.EtcdEndpoints = append(cfg.EtcdEndpoints, e)
					}
				}
			}
			if tokenFile != "" {
				f, err := os.Open(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				cfg.API.Tokens, err = api.LoadTokens(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("--token-file %s: %w", tokenFile, err)
				}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			cfg.TraceWith = traceHook
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "server")
			return api.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", ":9696", "API listen address ADDR:PORT")
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/hivenet", "data directory (embedded etcd, generated admin token)")
	f.StringVar(&cfg.EtcdListen, "etcd-listen", "http://127.0.0.1:2379", "client URL of the embedded etcd (reachable by the agents)")
	f.StringVar(&endpoints, "etcd-endpoints", "", "comma-separated URLs of an external etcd cluster (no embedded etcd)")
	f.StringVar(&cfg.API.AdminToken, "admin-token", "", "admin X-Auth-Token (default $HIVENET_ADMIN_TOKEN)")
	f.StringVar(&tokenFile, "token-file", "", "file of more tokens: JSON or lines \"token project_id [role]\"")
	f.IntVar(&cfg.API.UnderlayMTU, "underlay-mtu", 1500, "MTU of the hosts' tunnel network; networks get this minus 50")
	f.BoolVar(&cfg.API.InsecureNoAuth, "insecure-no-auth", false, "treat requests without a token as admin (development only)")
	f.BoolVar(&verbose, "verbose", false, "debug logging")
	root.AddCommand(cmd)
}

// traceHook serves POST /v2.0/hivenet/trace with package trace on the
// current topology.
func traceHook(st *store.Store) api.TraceFunc {
	load := func(ctx context.Context) (*topology.Snapshot, error) {
		snap, _, err := st.LoadTopology(ctx)
		return snap, err
	}
	return func(ctx context.Context, req api.TraceRequest) (any, error) {
		var r trace.Request
		if err := json.Unmarshal(req.Body, &r); err != nil {
			return nil, api.Errorf(http.StatusBadRequest, "InvalidInput", "Invalid input for trace: %v", err)
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
