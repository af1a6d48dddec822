package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"hivenet/internal/store"
	"hivenet/internal/store/storetest"
)

// Tokens of the test server.
const (
	adminTok = "admin-token"
	tokA     = "token-a" // member of project-a
	tokB     = "token-b" // member of project-b
)

type testEnv struct {
	t   testing.TB
	srv *httptest.Server
	api *Server
	st  *store.Store
}

func newEnv(t testing.TB, mod ...func(*Config)) *testEnv {
	t.Helper()
	st := storetest.New(t)
	cfg := Config{
		Store:      st,
		AdminToken: adminTok,
		Tokens: []Token{
			{Token: tokA, ProjectID: "project-a", Role: RoleMember},
			{Token: tokB, ProjectID: "project-b", Role: RoleMember},
		},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
		Now:    func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
	for _, m := range mod {
		m(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &testEnv{t: t, srv: srv, api: a, st: st}
}

// do sends a request and returns the status and the decoded JSON body.
func (e *testEnv) do(method, path, token, body string) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			e.t.Fatalf("%s %s: non-JSON body %q", method, path, b)
		}
	}
	return resp.StatusCode, m
}

// create POSTs and returns the created object, failing unless 201.
func (e *testEnv) create(resource, token, body string) map[string]any {
	e.t.Helper()
	code, m := e.do("POST", "/v2.0/"+resource+"s", token, body)
	if code != http.StatusCreated {
		e.t.Fatalf("POST %ss %s = %d %v", resource, body, code, m)
	}
	return m[resource].(map[string]any)
}

func (e *testEnv) network(token, name string) string {
	e.t.Helper()
	return e.create("network", token, `{"network": {"name": "`+name+`"}}`)["id"].(string)
}

func (e *testEnv) subnet(token, network, cidr string) string {
	e.t.Helper()
	return e.create("subnet", token, `{"subnet": {"network_id": "`+network+`", "cidr": "`+cidr+`", "ip_version": 4}}`)["id"].(string)
}

// dump returns every key under the hivenet root with its value.
func (e *testEnv) dump() map[string]string {
	e.t.Helper()
	resp, err := e.st.Client().Get(context.Background(), store.Root, clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out
}

func (e *testEnv) keys(prefix string) []string {
	e.t.Helper()
	var out []string
	for k := range e.dump() {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// neutronError returns the type and message of a NeutronError body.
func neutronError(m map[string]any) (typ, msg string) {
	ne, _ := m["NeutronError"].(map[string]any)
	typ, _ = ne["type"].(string)
	msg, _ = ne["message"].(string)
	return typ, msg
}
