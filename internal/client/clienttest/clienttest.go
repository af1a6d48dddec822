// Package clienttest provides a scripted fake of the hivenet API for
// tests of the client and the CLI: it expects an exact sequence of
// requests (method, path, query, JSON body, token) and answers each with
// a canned OpenStack-shaped response.
package clienttest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
)

// Exchange is one request the server expects and its canned answer.
type Exchange struct {
	Method string
	Path   string // escaped path, as on the wire: "/v2.0/subnets/a%2Fb"
	Query  string // encoded query, "" for none: "name=blue&shared=false"
	Body   string // expected JSON body, compared as JSON; "" for no body
	Status int
	Resp   string // response body; "" for none
}

// NewServer starts a server that expects exactly the exchanges, in order,
// each carrying token in X-Auth-Token. Any other request, or an exchange
// never asked for by the end of the test, fails t. The server is closed
// when the test ends.
func NewServer(t testing.TB, token string, exs ...Exchange) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if next >= len(exs) {
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			http.Error(w, "unexpected request", http.StatusTeapot)
			return
		}
		ex := exs[next]
		next++
		if r.Method != ex.Method || r.URL.EscapedPath() != ex.Path || r.URL.RawQuery != ex.Query {
			t.Errorf("request %d = %s %s?%s, want %s %s?%s", next, r.Method, r.URL.EscapedPath(), r.URL.RawQuery, ex.Method, ex.Path, ex.Query)
		}
		if got := r.Header.Get("X-Auth-Token"); got != token {
			t.Errorf("request %d: X-Auth-Token = %q, want %q", next, got, token)
		}
		if got := r.Header.Get("Accept"); got != "application/json" {
			t.Errorf("request %d: Accept = %q, want application/json", next, got)
		}
		body, _ := io.ReadAll(r.Body)
		switch {
		case ex.Body == "" && len(body) != 0:
			t.Errorf("request %d: body %s, want none", next, body)
		case ex.Body != "":
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("request %d: Content-Type = %q, want application/json", next, ct)
			}
			if !JSONEqual(body, []byte(ex.Body)) {
				t.Errorf("request %d: body %s, want %s", next, body, ex.Body)
			}
		}
		if ex.Resp != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(ex.Status)
		io.WriteString(w, ex.Resp)
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		if next != len(exs) {
			t.Errorf("server saw %d requests, want %d", next, len(exs))
		}
	})
	return srv
}

// JSONEqual reports whether a and b are valid JSON with the same value.
func JSONEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
