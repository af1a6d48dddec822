package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
)

// EmbeddedConfig configures a single-node etcd run inside this process.
type EmbeddedConfig struct {
	// Dir is the data directory (created if missing). Required. A restart
	// with the same Dir keeps the data.
	Dir string
	// ClientURL is where clients (the API server itself, agents on other
	// hosts) reach etcd, e.g. "http://10.250.0.254:2379". Port 0 picks a
	// free port; Endpoints reports the real one. Default
	// "http://127.0.0.1:2379".
	ClientURL string
	// PeerURL is the raft peer URL. A single node never talks to peers, so
	// the default is loopback: "http://127.0.0.1:<client port + 1>", or an
	// ephemeral loopback port when the client port is 0.
	PeerURL string
	// Name is the member name. Default "hivenet".
	Name string
	// UnsafeNoFsync skips fsync: for tests only (data is lost on a crash).
	UnsafeNoFsync bool
	// StartTimeout bounds the wait for the member to be ready. Default 30s.
	StartTimeout time.Duration
	// Logger receives etcd's warnings and errors. Default slog.Default().
	Logger *slog.Logger
}

func (c *EmbeddedConfig) setDefaults() {
	if c.ClientURL == "" {
		c.ClientURL = "http://127.0.0.1:2379"
	}
	if c.Name == "" {
		c.Name = "hivenet"
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PeerURL == "" {
		port := "0"
		if u, err := url.Parse(c.ClientURL); err == nil {
			if p, err := strconv.Atoi(u.Port()); err == nil && p > 0 && p < 65535 {
				port = strconv.Itoa(p + 1)
			}
		}
		c.PeerURL = "http://127.0.0.1:" + port
	}
}

// Validate reports the first invalid field (after defaults are applied).
func (c EmbeddedConfig) Validate() error {
	c.setDefaults()
	if c.Dir == "" {
		return errors.New("store: embedded etcd: Dir is required")
	}
	for _, f := range []struct{ name, v string }{{"ClientURL", c.ClientURL}, {"PeerURL", c.PeerURL}} {
		if _, err := parseURL(f.v); err != nil {
			return fmt.Errorf("store: embedded etcd: %s: %w", f.name, err)
		}
	}
	if c.StartTimeout < 0 {
		return errors.New("store: embedded etcd: StartTimeout is negative")
	}
	return nil
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("%q: want scheme://host:port", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("%q: bad port", s)
	}
	if host == "" {
		return nil, fmt.Errorf("%q: missing host", s)
	}
	return u, nil
}

// Embedded is a running single-node etcd.
type Embedded struct {
	e      *embed.Etcd
	muted  *atomic.Bool
	urls   []string
	closed atomic.Bool
}

// StartEmbedded starts etcd and waits until it serves clients.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	cu, _ := parseURL(cfg.ClientURL)
	pu, _ := parseURL(cfg.PeerURL)

	muted := new(atomic.Bool)
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.LogLevel = "error"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(cfg.Logger.With("component", "etcd"), zapcore.ErrorLevel, muted))
	ec.ListenClientUrls = []url.URL{*cu}
	ec.AdvertiseClientUrls = []url.URL{*cu}
	ec.ListenPeerUrls = []url.URL{*pu}
	ec.AdvertisePeerUrls = []url.URL{*pu}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	// API writes touch a few keys per object; deleting a network with many
	// subnets touches more. Leave room.
	ec.MaxTxnOps = 1024
	// Keep about an hour of history so a briefly disconnected agent can
	// resume its watch instead of reloading.
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "1h"

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("store: starting embedded etcd: %w", err)
	}
	t := time.NewTimer(cfg.StartTimeout)
	defer t.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		muted.Store(true)
		e.Close()
		return nil, fmt.Errorf("store: embedded etcd: %w", err)
	case <-t.C:
		muted.Store(true)
		e.Close()
		return nil, errors.New("store: embedded etcd: not ready in time")
	case <-ctx.Done():
		muted.Store(true)
		e.Close()
		return nil, ctx.Err()
	}
	em := &Embedded{e: e, muted: muted}
	host := cu.Hostname()
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on all addresses: reach it locally
	}
	for _, l := range e.Clients {
		u := *cu
		_, port, _ := net.SplitHostPort(l.Addr().String())
		u.Host = net.JoinHostPort(host, port)
		em.urls = append(em.urls, u.String())
	}
	return em, nil
}

// Endpoints returns the client URLs, with the real ports (and 127.0.0.1
// when the client URL's host is 0.0.0.0).
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.urls...) }

// Err reports a fatal server error (the channel is closed when it stops).
func (e *Embedded) Err() <-chan error { return e.e.Err() }

// Close stops the server. Safe to call more than once.
func (e *Embedded) Close() {
	if e.closed.Swap(true) {
		return
	}
	e.muted.Store(true) // its shutdown logs errors that are expected
	e.e.Close()
}
