package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"hivenet/internal/store"
	"hivenet/internal/translate"
)

// Server is the OpenStack Networking v2.0 API over the store. It is an
// http.Handler, stateless (everything is in etcd): run as many as needed.
type Server struct {
	cfg    Config
	st     *store.Store
	log    *slog.Logger
	mtu    int
	tokens map[string]Token
	res    map[string]*resource
}

// caller is the authenticated identity of a request.
type caller struct {
	Project string
	Admin   bool
}

// canSee reports whether the caller may see an object of project (shared
// objects are visible to all).
func (c *caller) canSee(project string, shared bool) bool {
	return c.Admin || c.Project == project || shared
}

// canChange reports whether the caller may modify an object of project.
func (c *caller) canChange(project string) bool { return c.Admin || c.Project == project }

// New validates cfg and returns the handler.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.UnderlayMTU == 0 {
		cfg.UnderlayMTU = 1500
	}
	if cfg.AdminProject == "" {
		cfg.AdminProject = "admin"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	s := &Server{
		cfg:    cfg,
		st:     cfg.Store,
		log:    cfg.Logger,
		mtu:    cfg.UnderlayMTU - translate.TunnelOverhead,
		tokens: map[string]Token{},
	}
	for _, t := range cfg.Tokens {
		s.tokens[t.Token] = t
	}
	s.res = map[string]*resource{
		"networks": s.networksResource(),
		"subnets":  s.subnetsResource(),
		"ports":    s.portsResource(),
		"agents":   s.agentsResource(),

		"routers":              s.routersResource(),
		"floatingips":          s.floatingIPsResource(),
		"security-groups":      s.securityGroupsResource(),
		"security-group-rules": s.securityGroupRulesResource(),
	}
	return s, nil
}

func (s *Server) now() string { return s.cfg.Now().UTC().Format("2006-01-02T15:04:05Z") }

func (s *Server) authenticate(r *http.Request) (*caller, *Error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		if s.cfg.InsecureNoAuth {
			return &caller{Project: s.cfg.AdminProject, Admin: true}, nil
		}
		return nil, Errorf(http.StatusUnauthorized, "NotAuthenticated", "Authentication required: no X-Auth-Token header")
	}
	if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) == 1 {
		return &caller{Project: s.cfg.AdminProject, Admin: true}, nil
	}
	if t, ok := s.tokens[tok]; ok {
		return &caller{Project: t.ProjectID, Admin: t.Role == RoleAdmin}, nil
	}
	return nil, Errorf(http.StatusUnauthorized, "NotAuthenticated", "Authentication failed: the X-Auth-Token is not valid")
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// ServeHTTP routes /, /v2.0/, /v2.0/extensions, /v2.0/<resource>[/<id>]
// and /v2.0/hivenet/trace. Each request is logged at Debug.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	s.route(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	s.log.Debug("API request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	path = strings.TrimSuffix(path, ".json")
	switch path {
	case "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, methodNotAllowed(r))
			return
		}
		writeJSON(w, http.StatusOK, s.versions(r))
		return
	case "/v2.0":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, methodNotAllowed(r))
			return
		}
		writeJSON(w, http.StatusOK, s.resources(r))
		return
	}
	rest, ok := strings.CutPrefix(path, "/v2.0/")
	if !ok {
		writeError(w, Errorf(http.StatusNotFound, "HTTPNotFound", "The resource %s could not be found.", r.URL.Path))
		return
	}
	c, aerr := s.authenticate(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	parts := strings.Split(rest, "/")
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	switch {
	case parts[0] == "extensions":
		s.serveExtensions(w, r, parts[1:])
		return
	case rest == "hivenet/trace":
		if r.Method != http.MethodPost {
			writeError(w, methodNotAllowed(r))
			return
		}
		s.serveTrace(ctx, w, r, c)
		return
	}
	if len(parts) == 3 && parts[0] == "routers" {
		if err := s.serveRouterAction(ctx, w, r, c, parts[1], parts[2]); err != nil {
			s.fail(w, r, err)
		}
		return
	}
	res := s.res[parts[0]]
	if res == nil || len(parts) > 2 || (len(parts) == 2 && parts[1] == "") {
		writeError(w, Errorf(http.StatusNotFound, "HTTPNotFound", "The resource %s could not be found.", r.URL.Path))
		return
	}
	var err error
	if len(parts) == 1 {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			err = s.serveList(ctx, w, r, c, res)
		case http.MethodPost:
			err = s.serveCreate(ctx, w, r, c, res)
		default:
			err = methodNotAllowed(r)
		}
	} else {
		id := parts[1]
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			err = s.serveShow(ctx, w, r, c, res, id)
		case http.MethodPut:
			err = s.serveUpdate(ctx, w, r, c, res, id)
		case http.MethodDelete:
			err = s.serveDelete(ctx, w, c, res, id)
		default:
			err = methodNotAllowed(r)
		}
	}
	if err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae, known := asError(err)
	if !known {
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, ae)
}

func methodNotAllowed(r *http.Request) *Error {
	return Errorf(http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "The method %s is not allowed for %s.", r.Method, r.URL.Path)
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) versions(r *http.Request) any {
	return map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []any{map[string]string{"rel": "self", "href": baseURL(r) + "/v2.0/"}},
	}}}
}

func (s *Server) resources(r *http.Request) any {
	var out []any
	for _, p := range []struct{ name, coll string }{
		{"network", "networks"}, {"subnet", "subnets"}, {"port", "ports"}, {"agent", "agents"},
		{"router", "routers"}, {"floatingip", "floatingips"}, {"security_group", "security-groups"}, {"security_group_rule", "security-group-rules"},
	} {
		out = append(out, map[string]any{
			"name": p.name, "collection": p.coll,
			"links": []any{map[string]string{"rel": "self", "href": baseURL(r) + "/v2.0/" + p.coll}},
		})
	}
	return map[string]any{"resources": out}
}

// extensions lists the Neutron API extensions this server implements.
var extensions = []struct{ alias, name, desc string }{
	{"agent", "agent", "The agent management extension: one agent per live hivenet host."},
	{"allowed-address-pairs", "Allowed Address Pairs", "Extra (IP or CIDR, MAC) pairs a port may send from."},
	{"binding", "Port Binding", "binding:host_id, binding:profile (interface_name), binding:vif_type, binding:vnic_type."},
	{"external-net", "Neutron external network", "router:external: flat networks on a physical network, reached through gateway hosts' uplinks."},
	{"router", "Neutron L3 Router", "Distributed routers, external gateways with SNAT, floating IPs."},
	{"extraroute", "Neutron Extra Route", "Static routes of routers (routes)."},
	{"ext-gw-mode", "Neutron L3 Configurable external gateway mode", "enable_snat of external_gateway_info."},
	{"security-group", "security-group", "Stateful security groups and rules, compiled into filter chains."},
	{"network-mtu", "Network MTU", "The network MTU: underlay MTU minus the VXLAN overhead."},
	{"port-security", "Port Security", "port_security_enabled on networks and ports."},
	{"provider", "Provider Network", "provider:network_type vxlan (provider:segmentation_id read-only) or flat with provider:physical_network (admin only)."},
	{"hivenet-trace", "hivenet trace", "POST /v2.0/hivenet/trace simulates a packet through the virtual topology."},
}

func extensionView(i int) map[string]any {
	e := extensions[i]
	return map[string]any{"alias": e.alias, "name": e.name, "description": e.desc, "updated": "2026-01-01T00:00:00-00:00", "links": []any{}}
}

func (s *Server) serveExtensions(w http.ResponseWriter, r *http.Request, parts []string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, methodNotAllowed(r))
		return
	}
	switch len(parts) {
	case 0:
		var out []any
		for i := range extensions {
			out = append(out, extensionView(i))
		}
		writeJSON(w, http.StatusOK, map[string]any{"extensions": out})
		return
	case 1:
		for i, e := range extensions {
			if e.alias == parts[0] {
				writeJSON(w, http.StatusOK, map[string]any{"extension": extensionView(i)})
				return
			}
		}
	}
	writeError(w, Errorf(http.StatusNotFound, "ExtensionNotFound", "Extension %s could not be found.", strings.Join(parts, "/")))
}

func (s *Server) serveTrace(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller) {
	if s.cfg.Trace == nil {
		writeError(w, Errorf(http.StatusNotImplemented, "NotImplemented", "trace is not available on this server"))
		return
	}
	a, derr := decodeBody(r.Body, "trace")
	if derr != nil {
		writeError(w, derr)
		return
	}
	var portID string
	if err := a.str("port_id", &portID, 255); err != nil {
		writeError(w, err)
		return
	}
	if portID == "" {
		writeError(w, invalidInput("port_id", "a port_id is required"))
		return
	}
	// The caller must be allowed to see the port it traces from.
	if _, err := s.readPort(ctx, c, portID); err != nil {
		s.fail(w, r, err)
		return
	}
	body, _ := json.Marshal(a)
	res, err := s.cfg.Trace(ctx, TraceRequest{PortID: portID, Body: body})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"trace": res})
}
