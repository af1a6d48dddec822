package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hivenet/internal/store/storetest"
	"hivenet/internal/topology"
)

// Run with an embedded etcd: serves, generates and keeps an admin token,
// and stops cleanly when its context ends.
func TestRunEmbedded(t *testing.T) {
	dir := t.TempDir()
	start := func() (string, context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, RunConfig{
				Listen: "127.0.0.1:0", DataDir: dir, EtcdListen: "http://127.0.0.1:0",
				Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
				Ready:  func(addr string, _ []string) { ready <- addr },
			})
		}()
		select {
		case addr := <-ready:
			return addr, cancel, done
		case err := <-done:
			cancel()
			t.Fatalf("Run: %v", err)
		case <-time.After(60 * time.Second):
			cancel()
			t.Fatal("Run not ready")
		}
		return "", nil, nil
	}
	get := func(addr, token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v2.0/networks", nil)
		req.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	post := func(addr, token string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v2.0/networks", strings.NewReader(`{"network": {"name": "kept"}}`))
		req.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	addr, cancel, done := start()
	b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatalf("generated admin token: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "admin-token")); fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode %v, want 0600", fi.Mode().Perm())
	}
	tok := strings.TrimSpace(string(b))
	if code, _ := get(addr, tok); code != 200 {
		t.Fatalf("GET with the generated token = %d", code)
	}
	if code, _ := get(addr, "guess"); code != 401 {
		t.Errorf("GET with a wrong token = %d", code)
	}
	if code := post(addr, tok); code != 201 {
		t.Fatalf("POST = %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}

	// A restart on the same data dir keeps the token and the data.
	addr, cancel, done = start()
	defer func() { cancel(); <-done }()
	if code, body := get(addr, tok); code != 200 || !strings.Contains(body, `"kept"`) {
		t.Fatalf("GET after restart = %d %s, want the network created before", code, body)
	}
}

func TestRunConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     RunConfig
		wantErr bool
	}{
		{name: "defaults", cfg: RunConfig{}},
		{name: "bad listen", cfg: RunConfig{Listen: "9696"}, wantErr: true},
		{name: "bad etcd listen", cfg: RunConfig{EtcdListen: "127.0.0.1:2379"}, wantErr: true},
		{name: "bad endpoints", cfg: RunConfig{EtcdEndpoints: []string{"x"}}, wantErr: true},
		{name: "external", cfg: RunConfig{EtcdEndpoints: []string{"http://10.0.0.1:2379"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate(%+v) = %v, wantErr %v", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

// With EtcdEndpoints, Run uses that cluster and starts no etcd of its own.
func TestRunExternalEtcd(t *testing.T) {
	st, endpoints := storetest.NewWithEndpoints(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{
			Listen: "127.0.0.1:0", DataDir: dir, EtcdEndpoints: endpoints,
			API:    Config{AdminToken: "t"},
			Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
			Ready:  func(addr string, _ []string) { ready <- addr },
		})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run not ready")
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v2.0/networks", strings.NewReader(`{"network": {"name": "ext"}}`))
	req.Header.Set("X-Auth-Token", "t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The network is in the external etcd; no embedded etcd or token file
	// was created.
	if snap, _, err := st.LoadTopology(context.Background()); err != nil || countBridges(snap) != 1 {
		t.Errorf("external etcd has %d bridges (%v), want 1", countBridges(snap), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("data dir has %d entries, want none", len(ents))
	}
}

func countBridges(s *topology.Snapshot) int {
	n := 0
	if s != nil {
		s.Bridges(func(*topology.Bridge) { n++ })
	}
	return n
}
