package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hivenet/internal/store"
)

// RunConfig is a whole API server process: where to listen, which etcd to
// use (an external cluster, or an embedded one in DataDir), and the API
// settings.
type RunConfig struct {
	// Listen is the API address. Default ":9696".
	Listen string
	// EtcdEndpoints selects an external etcd cluster. When empty an
	// embedded single-node etcd is started in DataDir/etcd, serving
	// clients (agents) at EtcdListen.
	EtcdEndpoints []string
	// DataDir holds the embedded etcd and the generated admin token.
	// Default "/var/lib/hivenet".
	DataDir string
	// EtcdListen is the embedded etcd's client URL. Default
	// "http://127.0.0.1:2379".
	EtcdListen string
	// API configures the handler; its Store is filled in by Run. When it
	// has no token at all and InsecureNoAuth is off, Run uses the token
	// in DataDir/admin-token, generating it on first start (the log says
	// where it is; the token itself is never logged).
	API Config
	// TraceWith, if set, builds API.Trace once the store is open.
	TraceWith func(*store.Store) TraceFunc
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Ready, if set, is called with the API address once it serves.
	Ready func(apiAddr string, etcdEndpoints []string)
}

// Validate reports the first invalid field (after defaults).
func (c RunConfig) Validate() error {
	c.setDefaults()
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("api: listen address %q: %w", c.Listen, err)
	}
	if len(c.EtcdEndpoints) > 0 {
		return store.Config{Endpoints: c.EtcdEndpoints}.Validate()
	}
	return store.EmbeddedConfig{Dir: filepath.Join(c.DataDir, "etcd"), ClientURL: c.EtcdListen}.Validate()
}

func (c *RunConfig) setDefaults() {
	if c.Listen == "" {
		c.Listen = ":9696"
	}
	if c.DataDir == "" {
		c.DataDir = "/var/lib/hivenet"
	}
	if c.EtcdListen == "" {
		c.EtcdListen = "http://127.0.0.1:2379"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Run serves the API until ctx is done, then shuts down cleanly (in-flight
// requests get 5 s, then etcd stops).
func Run(ctx context.Context, cfg RunConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.setDefaults()
	log := cfg.Logger

	endpoints := cfg.EtcdEndpoints
	if len(endpoints) == 0 {
		e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{
			Dir: filepath.Join(cfg.DataDir, "etcd"), ClientURL: cfg.EtcdListen, Logger: log,
		})
		if err != nil {
			return err
		}
		defer e.Close()
		endpoints = e.Endpoints()
		log.Info("embedded etcd started", "endpoints", strings.Join(endpoints, ","), "dir", filepath.Join(cfg.DataDir, "etcd"))
	}
	st, err := store.Open(ctx, store.Config{Endpoints: endpoints, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()

	ac := cfg.API
	ac.Store = st
	ac.Logger = log
	if cfg.TraceWith != nil {
		ac.Trace = cfg.TraceWith(st)
	}
	if ac.AdminToken == "" && len(ac.Tokens) == 0 && !ac.InsecureNoAuth {
		path := filepath.Join(cfg.DataDir, "admin-token")
		if ac.AdminToken, err = adminTokenFile(path); err != nil {
			return err
		}
		log.Warn("no admin token configured: using the generated one", "file", path)
	}
	srv, err := New(ac)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("API server listening", "addr", ln.Addr().String(), "underlay_mtu", srv.cfg.UnderlayMTU, "network_mtu", srv.mtu)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String(), endpoints)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("api: serving: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("api: shutting down: %w", err)
	}
	log.Info("API server stopped")
	return nil
}

// adminTokenFile returns the token stored in path, creating it (mode
// 0600, 32 random bytes in hex) if missing.
func adminTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("api: reading admin token: %w", err)
	}
	var r [32]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	t := hex.EncodeToString(r[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("api: writing admin token: %w", err)
	}
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("api: writing admin token: %w", err)
	}
	return t, nil
}
