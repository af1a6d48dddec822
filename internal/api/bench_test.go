package api

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkCreatePort measures one port create through HTTP against the
// embedded etcd (no fsync): decoding, the guarded transaction (network,
// subnets, address scan, MAC and tunnel-key allocation) and the response.
func BenchmarkCreatePort(b *testing.B) {
	e := newEnv(b, func(c *Config) { c.Logger = discardLogger() })
	nid := e.network(adminTok, "bench")
	e.subnet(adminTok, nid, "10.0.0.0/16")
	body := `{"port": {"network_id": "` + nid + `"}}`
	b.ResetTimer()
	for b.Loop() {
		if code, m := e.do("POST", "/v2.0/ports", adminTok, body); code != 201 {
			b.Fatalf("POST port = %d %v", code, m)
		}
	}
}

// BenchmarkCreatePortParallel is the same with 8 concurrent clients on
// one network: every create conflicts on the tunnel-key counter, so this
// shows the cost of optimistic retries.
func BenchmarkCreatePortParallel(b *testing.B) {
	e := newEnv(b, func(c *Config) { c.Logger = discardLogger() })
	nid := e.network(adminTok, "bench")
	e.subnet(adminTok, nid, "10.0.0.0/16")
	body := `{"port": {"network_id": "` + nid + `"}}`
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if code, m := e.do("POST", "/v2.0/ports", adminTok, body); code != 201 {
					b.Errorf("POST port = %d %v", code, m)
				}
			}
		}()
	}
	for b.Loop() {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	st := e.st.Stats()
	b.ReportMetric(float64(st.Conflicts)/float64(st.Commits), "conflicts/commit")
}

// BenchmarkCreateRule measures a rule create in a group with 100 member
// ports: the group is rewritten and every member's two chains are
// recompiled in the same transaction (O(members)).
func BenchmarkCreateRule(b *testing.B) {
	e := newEnv(b)
	nid := e.network(tokA, "bench")
	e.subnet(tokA, nid, "10.0.0.0/16")
	g := createAt(e, "security-groups", "security_group", tokA, `{"security_group": {"name": "g"}}`)["id"].(string)
	for range 100 {
		e.create("port", tokA, `{"port": {"network_id": "`+nid+`", "security_groups": ["`+g+`"]}}`)
	}
	port := 1
	b.ResetTimer()
	for b.Loop() {
		body := fmt.Sprintf(`{"security_group_rule": {"security_group_id": "%s", "direction": "ingress", "protocol": "tcp", "port_range_min": %d}}`, g, port)
		port++
		if code, m := e.do("POST", "/v2.0/security-group-rules", tokA, body); code != 201 {
			b.Fatalf("POST rule = %d %v", code, m)
		}
	}
}
