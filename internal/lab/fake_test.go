package lab

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeEnv makes the test binary act as a fake `hivenet server` or `hivenet
// agent` (see TestMain), so Up, WaitAgents, agent restarts and Down can be
// tested with real processes in real namespaces without the real binary.
const fakeEnv = "HIVENET_LAB_FAKE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) != "" && len(os.Args) > 1 {
		if err := runFake(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fake:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runFake: "server" answers the two API calls the lab makes and learns
// agents from heartbeats on its --etcd-listen address; "agent" sends a
// heartbeat every 200 ms to --etcd-endpoints.
func runFake(role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	fs.String("data-dir", "", "")
	etcdListen := fs.String("etcd-listen", "", "")
	token := fs.String("admin-token", "", "")
	host := fs.String("host", "", "")
	fs.String("tunnel-ip", "", "")
	fs.String("bridge-mappings", "", "")
	fs.String("state-dir", "", "")
	fs.String("control-socket", "", "")
	pinRoot := fs.String("bpf-pin-root", "", "")
	endpoints := fs.String("etcd-endpoints", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch role {
	case "server":
		var mu sync.Mutex
		seen := map[string]time.Time{}
		u, err := url.Parse(*etcdListen)
		if err != nil {
			return err
		}
		go http.ListenAndServe(u.Host, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.URL.Query().Get("host")] = time.Now()
			mu.Unlock()
		}))
		return http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Auth-Token") != *token {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			switch r.URL.Path {
			case "/v2.0/networks":
				json.NewEncoder(w).Encode(map[string]any{"networks": []any{}})
			case "/v2.0/agents":
				var agents []Agent
				mu.Lock()
				for h, t := range seen {
					agents = append(agents, Agent{ID: h, Host: h, Alive: time.Since(t) < time.Second})
				}
				mu.Unlock()
				json.NewEncoder(w).Encode(map[string]any{"agents": agents})
			default:
				w.WriteHeader(http.StatusNotFound)
			}
		}))
	case "agent":
		// Pins must land on the bpffs the lab mounted, not on one private
		// to this process: a directory stands for this agent's pins.
		if *pinRoot == "" || !isBPFFS(*pinRoot) {
			return fmt.Errorf("--bpf-pin-root %q is not a bpffs in the agent's mount namespace", *pinRoot)
		}
		if err := os.MkdirAll(filepath.Join(*pinRoot, *host), 0o700); err != nil {
			return err
		}
		for {
			if resp, err := http.Post(*endpoints+"/?host="+url.QueryEscape(*host), "text/plain", nil); err == nil {
				resp.Body.Close()
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return fmt.Errorf("unknown role %q", role)
}

// TestPrivilegedUpDownProcesses runs Up with the test binary as a fake
// server and fake agents, in the real lab layout:
//
//	root ──API link──▶ [hlt-ctl] fake server :9696, heartbeats on 10.250.0.254:2379
//	[hlt-host1] fake agent ─┐
//	[hlt-host2] fake agent ─┴─ heartbeats over the underlay bridge in [hlt-ul]
//
// and checks that Up waits for both agents, that a killed agent is seen
// dead and a restarted one alive again (StartAgent, RestartAgent), that
// the agents' pins land on the lab's bpffs (PinRoot), and that Load+Down
// from a fresh value (as `hivenet lab down` does) stops every process and
// removes everything, pins included.
func TestPrivilegedUpDownProcesses(t *testing.T) {
	requireRoot(t)
	t.Setenv(fakeEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	l := newTestLab(t, 2)
	l.cfg.Binary = exe
	l.st.Binary = exe
	l.cfg.StartTimeout = 20 * time.Second
	if err := l.Up(ctx); err != nil {
		t.Fatal(err)
	}
	agents, err := l.API().Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if missing := missingAlive([]string{"host1", "host2"}, agents); len(missing) > 0 {
		t.Fatalf("after Up, agents %v not alive", missing)
	}
	if err := l.API().WithToken("wrong").Do(ctx, http.MethodGet, "/v2.0/networks", nil, nil); err == nil {
		t.Errorf("API accepted a wrong token: the fake is not what the lab talked to")
	}

	// Kill host2's agent: the API sees it dead; start it: alive again.
	if err := l.KillAgent("host2"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		agents, _ := l.API().Agents(ctx)
		if slices.Contains(missingAlive([]string{"host2"}, agents), "host2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("killed agent still alive after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := l.StartAgent(ctx, "host2"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitAgents(ctx, 10*time.Second); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	before, _ := readPIDFile(l.pidPath("agent-host1"))
	if err := l.RestartAgent(ctx, "host1", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitAgents(ctx, 10*time.Second); err != nil {
		t.Fatalf("after RestartAgent: %v", err)
	}
	if after, _ := readPIDFile(l.pidPath("agent-host1")); after == before || alive(before) {
		t.Errorf("RestartAgent: agent pid %d before, %d after (old alive: %v)", before, after, alive(before))
	}
	if err := l.RestartAgent(ctx, "host9", syscall.SIGTERM); err == nil {
		t.Error("RestartAgent of an unknown host succeeded")
	}
	pins := PinRoot(l.RunDir())
	for _, h := range []string{"host1", "host2"} {
		if st, err := os.Stat(filepath.Join(pins, h)); err != nil || !st.IsDir() || !isBPFFS(pins) {
			t.Errorf("agent of %s: no pins on the lab's bpffs %s (%v)", h, pins, err)
		}
	}

	var pids []int
	for _, n := range []string{"server", "agent-host1", "agent-host2"} {
		pid, err := readPIDFile(l.pidPath(n))
		if err != nil || !alive(pid) {
			t.Fatalf("%s: pid %d, %v", n, pid, err)
		}
		pids = append(pids, pid)
	}
	// A second Up on the same run dir refuses: the lab is running.
	if err := l.UpNetwork(ctx); err == nil {
		t.Errorf("UpNetwork on a running lab succeeded, want ErrRunning")
	}

	// As `hivenet lab down` in another process: Load, then Down.
	other, err := Load(l.RunDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still running after Down", pid)
		}
	}
	if left := leftovers(t, testPrefix); len(left) > 0 {
		t.Errorf("after Down, left behind: %v", left)
	}
	if _, err := os.Stat(pins); !os.IsNotExist(err) || isBPFFS(pins) {
		t.Errorf("after Down, the pin root %s is still there (%v)", pins, err)
	}
}
