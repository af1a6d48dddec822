package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"hivenet/internal/client/clienttest"
)

const testToken = "tok-123"

type exchange = clienttest.Exchange

func fakeNeutron(t *testing.T, exs []exchange) *httptest.Server {
	return clienttest.NewServer(t, testToken, exs...)
}

func newTestClient(t *testing.T, srv *httptest.Server) *Client {
	t.Helper()
	c, err := New(Config{Endpoint: srv.URL + "/v2.0/", Token: testToken})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

const notFound = `{"NeutronError": {"type": "NetworkNotFound", "message": "Network nope could not be found.", "detail": ""}}`

func TestCRUD(t *testing.T) {
	tests := []struct {
		name    string
		exs     []exchange
		call    func(context.Context, *Client) (any, error)
		want    any
		wantErr error // checked with errors.Is
	}{
		{
			name: "create network",
			exs: []exchange{{
				Method: "POST", Path: "/v2.0/networks",
				Body:   `{"network": {"name": "blue", "admin_state_up": false}}`,
				Status: 201, Resp: `{"network": {"id": "n1", "name": "blue", "admin_state_up": false, "mtu": 1450}}`,
			}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Create(ctx, Networks, Object{"name": "blue", "admin_state_up": false})
			},
			want: Object{"id": "n1", "name": "blue", "admin_state_up": false, "mtu": json.Number("1450")},
		},
		{
			name: "show port",
			exs: []exchange{{
				Method: "GET", Path: "/v2.0/ports/p1",
				Status: 200, Resp: `{"port": {"id": "p1", "binding:host_id": "h1"}}`,
			}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Get(ctx, Ports, "p1") },
			want: Object{"id": "p1", "binding:host_id": "h1"},
		},
		{
			name: "ID is escaped in the path",
			exs: []exchange{{
				Method: "GET", Path: "/v2.0/subnets/a%2Fb%20c",
				Status: 200, Resp: `{"subnet": {"id": "a/b c"}}`,
			}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Get(ctx, Subnets, "a/b c") },
			want: Object{"id": "a/b c"},
		},
		{
			name: "update subnet",
			exs: []exchange{{
				Method: "PUT", Path: "/v2.0/subnets/s1",
				Body:   `{"subnet": {"gateway_ip": null, "dns_nameservers": ["10.0.0.2"]}}`,
				Status: 200, Resp: `{"subnet": {"id": "s1", "gateway_ip": null, "dns_nameservers": ["10.0.0.2"]}}`,
			}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Update(ctx, Subnets, "s1", Object{"gateway_ip": nil, "dns_nameservers": []string{"10.0.0.2"}})
			},
			want: Object{"id": "s1", "gateway_ip": nil, "dns_nameservers": []any{"10.0.0.2"}},
		},
		{
			name: "delete",
			exs:  []exchange{{Method: "DELETE", Path: "/v2.0/networks/n1", Status: 204}},
			call: func(ctx context.Context, c *Client) (any, error) { return nil, c.Delete(ctx, Networks, "n1") },
			want: nil,
		},
		{
			name: "list with filters",
			exs: []exchange{{
				Method: "GET", Path: "/v2.0/ports", Query: "binding%3Ahost_id=h1&network_id=n1",
				Status: 200, Resp: `{"ports": [{"id": "p1"}, {"id": "p2"}]}`,
			}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.List(ctx, Ports, url.Values{"network_id": {"n1"}, "binding:host_id": {"h1"}})
			},
			want: []Object{{"id": "p1"}, {"id": "p2"}},
		},
		{
			name: "empty list is empty, not nil",
			exs:  []exchange{{Method: "GET", Path: "/v2.0/agents", Status: 200, Resp: `{"agents": []}`}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.List(ctx, Agents, nil) },
			want: []Object{},
		},
		{
			name: "list follows next links",
			exs: []exchange{
				{
					Method: "GET", Path: "/v2.0/networks", Query: "limit=1",
					Status: 200, Resp: `{"networks": [{"id": "a"}], "networks_links": [{"rel": "next", "href": "/v2.0/networks?limit=1&marker=a"}]}`,
				},
				{
					Method: "GET", Path: "/v2.0/networks", Query: "limit=1&marker=a",
					Status: 200, Resp: `{"networks": [{"id": "b"}], "networks_links": [{"rel": "previous", "href": "/v2.0/networks?limit=1&marker=b&page_reverse=True"}]}`,
				},
			},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.List(ctx, Networks, url.Values{"limit": {"1"}})
			},
			want: []Object{{"id": "a"}, {"id": "b"}},
		},
		{
			name:    "not found is an *Error and ErrNotFound",
			exs:     []exchange{{Method: "GET", Path: "/v2.0/networks/nope", Status: 404, Resp: notFound}},
			call:    func(ctx context.Context, c *Client) (any, error) { return c.Get(ctx, Networks, "nope") },
			want:    &Error{Status: 404, Type: "NetworkNotFound", Message: "Network nope could not be found."},
			wantErr: ErrNotFound,
		},
		{
			name: "conflict",
			exs: []exchange{{
				Method: "DELETE", Path: "/v2.0/networks/n1", Status: 409,
				Resp: `{"NeutronError": {"type": "NetworkInUse", "message": "Unable to complete operation on network n1. There are one or more ports still in use on the network.", "detail": ""}}`,
			}},
			call: func(ctx context.Context, c *Client) (any, error) { return nil, c.Delete(ctx, Networks, "n1") },
			want: &Error{Status: 409, Type: "NetworkInUse", Message: "Unable to complete operation on network n1. There are one or more ports still in use on the network."},
		},
		{
			name: "plain-text error body",
			exs:  []exchange{{Method: "GET", Path: "/v2.0/networks", Status: 502, Resp: "bad gateway\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.List(ctx, Networks, nil) },
			want: &Error{Status: 502, Message: "bad gateway"},
		},
		{
			name: "empty error body uses the status text",
			exs:  []exchange{{Method: "GET", Path: "/v2.0/networks", Status: 401}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.List(ctx, Networks, nil) },
			want: &Error{Status: 401, Message: "Unauthorized"},
		},
		{
			name: "response without the wrapper key",
			exs:  []exchange{{Method: "GET", Path: "/v2.0/networks/n1", Status: 200, Resp: `{"id": "n1"}`}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Get(ctx, Networks, "n1") },
			want: errors.New(`client: response to GET /v2.0/networks/n1 has no "network"`),
		},
		{
			name: "malformed JSON response",
			exs:  []exchange{{Method: "GET", Path: "/v2.0/networks", Status: 200, Resp: `{"networks": [`}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.List(ctx, Networks, nil) },
			want: errors.New("client: decoding response to GET /v2.0/networks: unexpected EOF"),
		},
		{
			name: "resolve by ID",
			exs:  []exchange{{Method: "GET", Path: "/v2.0/networks/n1", Status: 200, Resp: `{"network": {"id": "n1", "name": "blue"}}`}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Resolve(ctx, Networks, "n1") },
			want: "n1",
		},
		{
			name: "resolve by name",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/networks/blue", Status: 404, Resp: notFound},
				{Method: "GET", Path: "/v2.0/networks", Query: "name=blue", Status: 200, Resp: `{"networks": [{"id": "n1", "name": "blue"}]}`},
			},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Resolve(ctx, Networks, "blue") },
			want: "n1",
		},
		{
			name: "resolve after a 400 for a non-UUID",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/subnets/s", Status: 400, Resp: `{"NeutronError": {"type": "HTTPBadRequest", "message": "bad id"}}`},
				{Method: "GET", Path: "/v2.0/subnets", Query: "name=s", Status: 200, Resp: `{"subnets": [{"id": "s1", "name": "s"}]}`},
			},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Resolve(ctx, Subnets, "s") },
			want: "s1",
		},
		{
			name: "resolve agent by host",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/agents/host-1", Status: 404, Resp: notFound},
				{Method: "GET", Path: "/v2.0/agents", Query: "host=host-1", Status: 200, Resp: `{"agents": [{"id": "a1", "host": "host-1"}]}`},
			},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Resolve(ctx, Agents, "host-1") },
			want: "a1",
		},
		{
			name: "resolve ignores inexact matches",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/networks/blue", Status: 404, Resp: notFound},
				{Method: "GET", Path: "/v2.0/networks", Query: "name=blue", Status: 200, Resp: `{"networks": [{"id": "n2", "name": "blue2"}]}`},
			},
			call:    func(ctx context.Context, c *Client) (any, error) { return c.Resolve(ctx, Networks, "blue") },
			want:    errors.New(`client: not found: no network with name or ID "blue"`),
			wantErr: ErrNotFound,
		},
		{
			name: "resolve ambiguous",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/networks/blue", Status: 404, Resp: notFound},
				{Method: "GET", Path: "/v2.0/networks", Query: "name=blue", Status: 200, Resp: `{"networks": [{"id": "n1", "name": "blue"}, {"id": "n2", "name": "blue"}]}`},
			},
			call:    func(ctx context.Context, c *Client) (any, error) { return c.Resolve(ctx, Networks, "blue") },
			want:    errors.New(`client: ambiguous name: 2 network objects have name "blue" (n1, n2); use an ID`),
			wantErr: ErrAmbiguous,
		},
		{
			name: "resolve in a scope filters by it",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/subnets/default", Status: 404, Resp: notFound},
				{Method: "GET", Path: "/v2.0/subnets", Query: "name=default&network_id=n2", Status: 200,
					Resp: `{"subnets": [{"id": "s1", "name": "default", "network_id": "n1"}, {"id": "s2", "name": "default", "network_id": "n2"}]}`},
			},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ResolveIn(ctx, Subnets, "default", url.Values{"network_id": {"n2"}})
			},
			want: "s2",
		},
		{
			name: "resolve in a scope refuses an ID outside it",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/subnets/s1", Status: 200, Resp: `{"subnet": {"id": "s1", "network_id": "n1"}}`},
			},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ResolveIn(ctx, Subnets, "s1", url.Values{"network_id": {"n2"}})
			},
			want:    errors.New(`client: not found: subnet s1 is not in network_id n2`),
			wantErr: ErrNotFound,
		},
		{
			name: "resolve in a scope, no match",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/subnets/default", Status: 404, Resp: notFound},
				{Method: "GET", Path: "/v2.0/subnets", Query: "name=default&network_id=n2", Status: 200, Resp: `{"subnets": []}`},
			},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ResolveIn(ctx, Subnets, "default", url.Values{"network_id": {"n2"}})
			},
			want:    errors.New(`client: not found: no subnet with name or ID "default" in network_id n2`),
			wantErr: ErrNotFound,
		},
		{
			name: "resolve passes other errors through",
			exs: []exchange{
				{Method: "GET", Path: "/v2.0/networks/blue", Status: 401, Resp: `{"NeutronError": {"type": "Unauthorized", "message": "bad token"}}`},
			},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Resolve(ctx, Networks, "blue") },
			want: &Error{Status: 401, Type: "Unauthorized", Message: "bad token"},
		},
		{
			name: "trace",
			exs: []exchange{{
				Method: "POST", Path: "/v2.0/hivenet/trace",
				Body:   `{"trace": {"port_id": "p1", "eth_dst": "fa:16:3e:00:00:02", "ip_dst": "10.0.0.3", "proto": "tcp", "dst_port": 80}}`,
				Status: 200,
				Resp:   `{"trace": {"verdict": "forward", "steps": [{"device": "port a", "stage": "ingress", "detail": "ok"}], "outputs": [{"port_id": "p2", "host": "h2", "tunnel_key": 7}], "flow": "cacheable"}}`,
			}},
			call: func(ctx context.Context, c *Client) (any, error) {
				res, err := c.Trace(ctx, TraceRequest{PortID: "p1", EthDst: "fa:16:3e:00:00:02", IPDst: "10.0.0.3", Proto: "tcp", DstPort: 80})
				if res != nil {
					res.Raw = nil
				}
				return res, err
			},
			want: &TraceResult{
				Verdict: "forward",
				Steps:   []TraceStep{{Device: "port a", Stage: "ingress", Detail: "ok"}},
				Outputs: []TraceOutput{{PortID: "p2", Host: "h2", TunnelKey: 7}},
				Flow:    "cacheable",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, fakeNeutron(t, tt.exs))
			got, err := tt.call(context.Background(), c)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			switch want := tt.want.(type) {
			case *Error:
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error = %v (%T), want *Error %+v", err, err, want)
				}
				if !reflect.DeepEqual(e, want) {
					t.Errorf("error = %+v, want %+v", e, want)
				}
			case error:
				if err == nil || err.Error() != want.Error() {
					t.Errorf("error = %v, want %v", err, want)
				}
			default:
				if err != nil {
					t.Fatalf("error = %v", err)
				}
				if tt.want == nil {
					return
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %#v, want %#v", got, tt.want)
				}
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{name: "full", err: &Error{Status: 404, Type: "NetworkNotFound", Message: "Network x could not be found."}, want: "Network x could not be found. (HTTP 404 NetworkNotFound)"},
		{name: "no type", err: &Error{Status: 502, Message: "bad gateway"}, want: "bad gateway (HTTP 502)"},
		{name: "nothing", err: &Error{Status: 500}, want: "(HTTP 500)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseError(t *testing.T) {
	long := strings.Repeat("é", 400)
	tests := []struct {
		name   string
		status int
		body   string
		want   *Error
	}{
		{name: "neutron with detail object", status: 400, body: `{"NeutronError": {"type": "InvalidInput", "message": "Invalid input for cidr.", "detail": {"field": "cidr"}}}`,
			want: &Error{Status: 400, Type: "InvalidInput", Message: "Invalid input for cidr.", Detail: `{"field":"cidr"}`}},
		{name: "octavia faultstring", status: 404, body: `{"faultcode": "Client", "faultstring": "Load Balancer x not found.", "debuginfo": null}`,
			want: &Error{Status: 404, Message: "Load Balancer x not found."}},
		{name: "unknown JSON kept as text", status: 500, body: `{"error": "boom"}`,
			want: &Error{Status: 500, Message: `{"error": "boom"}`}},
		{name: "long body cut on a rune boundary", status: 500, body: long,
			want: &Error{Status: 500, Message: strings.Repeat("é", 256) + "..."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseError(tt.status, []byte(tt.body)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseError(%d, %q) = %+v, want %+v", tt.status, tt.body, got, tt.want)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Config
	}{
		{name: "empty", env: nil, want: Config{}},
		{name: "hivenet vars win", env: map[string]string{"HIVENET_URL": "http://a:1", "OS_URL": "http://b:2", "HIVENET_TOKEN": "t1", "HIVENET_ADMIN_TOKEN": "t2", "OS_TOKEN": "t3"},
			want: Config{Endpoint: "http://a:1", Token: "t1"}},
		{name: "admin token before OS_TOKEN", env: map[string]string{"HIVENET_ADMIN_TOKEN": "t2", "OS_TOKEN": "t3"},
			want: Config{Token: "t2"}},
		{name: "openstack fallbacks", env: map[string]string{"OS_ENDPOINT": "http://c:3", "OS_URL": "http://b:2", "OS_TOKEN": "t3"},
			want: Config{Endpoint: "http://c:3", Token: "t3"}},
		{name: "OS_URL", env: map[string]string{"OS_URL": "http://b:2"}, want: Config{Endpoint: "http://b:2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Errorf("ConfigFromEnv(%v) = %+v, want %+v", tt.env, got, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantBase string
		wantErr  string
	}{
		{name: "default", cfg: Config{}, wantBase: "http://127.0.0.1:9696"},
		{name: "trailing slash", cfg: Config{Endpoint: "http://h:9696/"}, wantBase: "http://h:9696"},
		{name: "v2.0 suffix", cfg: Config{Endpoint: "https://h/neutron/v2.0/"}, wantBase: "https://h/neutron"},
		{name: "no scheme", cfg: Config{Endpoint: "h:9696"}, wantErr: `client: endpoint "h:9696": scheme must be http or https`},
		{name: "no host", cfg: Config{Endpoint: "http:///x"}, wantErr: `client: endpoint "http:///x": no host`},
		{name: "query", cfg: Config{Endpoint: "http://h/?a=b"}, wantErr: `client: endpoint "http://h/?a=b": must not have a query or fragment`},
		{name: "bad token", cfg: Config{Token: "a\nb"}, wantErr: "client: token contains a line break"},
		{name: "negative timeout", cfg: Config{Timeout: -1}, wantErr: "client: negative timeout -1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("New(%+v) error = %v, want %q", tt.cfg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%+v) = %v", tt.cfg, err)
			}
			if c.Endpoint() != tt.wantBase {
				t.Errorf("New(%+v).Endpoint() = %q, want %q", tt.cfg, c.Endpoint(), tt.wantBase)
			}
		})
	}
}

func TestNoTokenSendsNoHeader(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Values("X-Auth-Token")
		io.WriteString(w, `{"networks": []}`)
	}))
	defer srv.Close()
	c, err := New(Config{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(context.Background(), Networks, nil); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("X-Auth-Token sent without a token: %q", got)
	}
}

func TestListStopsOnALinkLoop(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		io.WriteString(w, `{"ports": [{"id": "p"}], "ports_links": [{"rel": "next", "href": "/v2.0/ports"}]}`)
	}))
	defer srv.Close()
	c, err := New(Config{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.List(context.Background(), Ports, nil)
	if err != nil || len(got) != 1 || n != 1 {
		t.Errorf("List = %v, %v after %d requests; want 1 port after 1 request", got, err, n)
	}
}

// The token must never be sent to another host, by a redirect or by a
// pagination link.
func TestTokenStaysOnTheEndpoint(t *testing.T) {
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("X-Auth-Token"))
		io.WriteString(w, `{"networks": [{"id": "evil"}]}`)
	}))
	defer other.Close()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{
			name: "redirect to another host",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/v2.0/networks", http.StatusFound)
			},
			wantErr: "refusing redirect",
		},
		{
			name: "next link to another host",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"networks": [{"id": "n1"}], "networks_links": [{"rel": "next", "href": "`+other.URL+`/v2.0/networks?marker=n1"}]}`)
			},
			wantErr: "leaves",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, err := New(Config{Endpoint: srv.URL, Token: testToken})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.List(context.Background(), Networks, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("List = %v, want an error containing %q", err, tt.wantErr)
			}
			if len(leaked) != 0 {
				t.Errorf("the other host received tokens %q", leaked)
			}
		})
	}
}

func TestSameHostRedirectIsFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2.0/networks" {
			http.Redirect(w, r, "/v2.0/networks/", http.StatusMovedPermanently)
			return
		}
		if r.Header.Get("X-Auth-Token") != testToken {
			t.Errorf("redirected request lost the token")
		}
		io.WriteString(w, `{"networks": [{"id": "n1"}]}`)
	}))
	defer srv.Close()
	c, err := New(Config{Endpoint: srv.URL, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.List(context.Background(), Networks, nil); err != nil || len(got) != 1 {
		t.Errorf("List through a same-host redirect = %v, %v", got, err)
	}
}
