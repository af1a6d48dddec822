package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultEndpoint is the API endpoint used when neither the Config nor the
// environment names one: the server's default listen port on loopback.
const DefaultEndpoint = "http://127.0.0.1:9696"

// DefaultTimeout bounds one HTTP exchange when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// maxBodyBytes bounds a response body read into memory (64 MiB: a list of
// about 100k ports).
const maxBodyBytes = 64 << 20

// maxPages bounds how many pagination links List follows, so a server that
// keeps answering with a "next" link cannot keep the client busy forever.
const maxPages = 10000

// Config says where the API is and how to authenticate.
type Config struct {
	// Endpoint is the base URL of the API, such as http://10.0.0.1:9696.
	// A trailing "/" or "/v2.0" is dropped, so an OpenStack-style service
	// URL works too. Empty means DefaultEndpoint.
	Endpoint string
	// Token is sent as X-Auth-Token. Empty sends no token.
	Token string
	// Timeout bounds each HTTP exchange; zero means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, is used as is: Timeout is then ignored, and
	// the redirect policy is the caller's (the default client follows
	// redirects only on the same scheme and host, since X-Auth-Token would
	// go along).
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent; empty means "hivenet-client".
	UserAgent string
}

// Environment variables read by ConfigFromEnv, in order of precedence.
var (
	// EndpointEnv: HIVENET_URL, then the OpenStack client's token-auth
	// endpoint variables OS_ENDPOINT and OS_URL.
	EndpointEnv = []string{"HIVENET_URL", "OS_ENDPOINT", "OS_URL"}
	// TokenEnv: HIVENET_TOKEN, then the server's HIVENET_ADMIN_TOKEN (handy
	// on a single machine), then the OpenStack client's OS_TOKEN.
	TokenEnv = []string{"HIVENET_TOKEN", "HIVENET_ADMIN_TOKEN", "OS_TOKEN"}
)

// ConfigFromEnv returns a Config whose Endpoint and Token come from the
// first non-empty variable of EndpointEnv and TokenEnv, looked up with
// getenv (os.Getenv in a program; a map lookup in tests).
func ConfigFromEnv(getenv func(string) string) Config {
	first := func(names []string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	return Config{Endpoint: first(EndpointEnv), Token: first(TokenEnv)}
}

// normalizeEndpoint validates an endpoint and returns it without a
// trailing "/" or "/v2.0".
func normalizeEndpoint(s string) (string, error) {
	if s == "" {
		s = DefaultEndpoint
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("client: endpoint %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("client: endpoint %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("client: endpoint %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("client: endpoint %q: must not have a query or fragment", s)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/v2.0")
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}

// Validate reports whether the Config can be used.
func (c Config) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("client: negative timeout %v", c.Timeout)
	}
	if strings.ContainsAny(c.Token, "\r\n") {
		return errors.New("client: token contains a line break")
	}
	_, err := normalizeEndpoint(c.Endpoint)
	return err
}

// Client talks to one hivenet API endpoint. It is safe for concurrent use.
type Client struct {
	base  string // normalized endpoint, no trailing slash
	token string
	ua    string
	hc    *http.Client
}

// New returns a Client for cfg, or an error if cfg is invalid.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, _ := normalizeEndpoint(cfg.Endpoint)
	hc := cfg.HTTPClient
	if hc == nil {
		t := cfg.Timeout
		if t == 0 {
			t = DefaultTimeout
		}
		hc = &http.Client{Timeout: t, CheckRedirect: sameHostRedirects}
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "hivenet-client"
	}
	return &Client{base: base, token: cfg.Token, ua: ua, hc: hc}, nil
}

// maxRedirects bounds the redirects the default HTTP client follows.
const maxRedirects = 5

// sameHostRedirects refuses redirects to another scheme or host: the
// request carries X-Auth-Token, which net/http would send on to it.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("client: stopped after %d redirects", maxRedirects)
	}
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("client: refusing redirect from %s to %s://%s (the token would go along)", first.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// Endpoint returns the normalized base URL the client sends requests to.
func (c *Client) Endpoint() string { return c.base }

// Do sends one request and decodes the JSON response into out (when out is
// not nil and the response has a body). path is relative to the endpoint
// ("/v2.0/networks"); query may be nil; in, when not nil, is marshalled as
// the JSON body. A status outside 2xx is returned as an *Error.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return c.doURL(ctx, method, u, in, out)
}

func (c *Client) doURL(ctx context.Context, method, u string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encoding %s %s: %w", method, u, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, u, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return fmt.Errorf("client: reading response to %s %s: %w", method, req.URL.Path, err)
	}
	if len(data) > maxBodyBytes {
		return fmt.Errorf("client: response to %s %s larger than %d bytes", method, req.URL.Path, maxBodyBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseError(resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("client: decoding response to %s %s: %w", method, req.URL.Path, err)
	}
	return nil
}
