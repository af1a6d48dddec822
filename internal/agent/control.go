package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"hivenet/internal/client"
	"hivenet/internal/datapath"
	"hivenet/internal/flowtable"
	"hivenet/internal/packet"
)

// The control endpoint: JSON over HTTP on a unix socket (Config.
// ControlSocket), for `hivenet flows` and `hivenet agent-stats` on this
// host. The wire shapes and the paths are documented with the client, in
// internal/client/agentctl.go. Handlers only read: the datapath's flow
// dump and counters, the port index (an atomic pointer) and atomic
// counters, so they need no lock of the loop's.

// ErrControlSocketInUse is returned by Run when another live process
// answers on Config.ControlSocket (another agent of this host).
var ErrControlSocketInUse = errors.New("agent: control socket in use")

// maxSocketPath is the longest unix socket path (sun_path is 108 bytes
// with its NUL).
const maxSocketPath = 107

// controlServer serves the control endpoint until close.
type controlServer struct {
	a       *Agent
	started time.Time
	ln      net.Listener
	srv     *http.Server
	done    chan struct{} // closed when Serve returned
	once    sync.Once
}

// startControl listens on the control socket and serves it; nil, nil when
// the endpoint is disabled. A socket file left by a dead process is
// replaced; one a live process answers on is not (ErrControlSocketInUse);
// a path that is not a socket is never removed.
func (a *Agent) startControl() (*controlServer, error) {
	path := a.cfg.ControlSocket
	if path == "" {
		return nil, nil
	}
	ln, err := listenControl(path)
	if err != nil {
		return nil, err
	}
	c := &controlServer{a: a, started: time.Now(), ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/flows", c.flows)
	mux.HandleFunc("/v1/stats", c.stats)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ctlError(w, http.StatusNotFound, "HTTPNotFound", fmt.Sprintf("no resource %s (try /v1/flows or /v1/stats)", r.URL.Path))
	})
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(c.done)
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("control endpoint stopped", "socket", path, "err", err)
		}
	}()
	a.log.Info("control endpoint listening", "socket", path)
	return c, nil
}

// listenControl binds path, 0600, creating its directory. When the path
// is taken it replaces a stale socket and refuses anything else.
func listenControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if errors.Is(err, syscall.EADDRINUSE) {
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
		ln, err = net.Listen("unix", path)
	}
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// removeStaleSocket removes path if it is a socket nobody listens on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: exists and is not a socket (%v); not removing it", path, fi.Mode().Type())
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("%w: %s: another process (an agent of this host?) answers on it", ErrControlSocketInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: probing: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("control socket: removing stale %s: %w", path, err)
	}
	return nil
}

// close stops serving (waiting up to 2s for requests in flight) and
// removes the socket file. Safe to call more than once, and on nil.
func (c *controlServer) close() {
	if c == nil {
		return
	}
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.srv.Shutdown(ctx); err != nil {
			c.srv.Close()
		}
		<-c.done
	})
}

func (c *controlServer) flows(w http.ResponseWriter, r *http.Request) {
	if !ctlGet(w, r, "port", "match") {
		return
	}
	q := r.URL.Query()
	idx := c.a.ports.Load()
	var port datapath.PortNo
	if s, ok := q["port"]; ok {
		var err error
		if port, err = parsePortFilter(s[0], idx); err != nil {
			ctlError(w, http.StatusBadRequest, "HTTPBadRequest", err.Error())
			return
		}
	}
	substr, hasMatch := "", false
	if s, ok := q["match"]; ok {
		if substr, hasMatch = s[0], true; substr == "" {
			ctlError(w, http.StatusBadRequest, "HTTPBadRequest", "match filter: empty")
			return
		}
	}
	now := time.Now()
	out := []client.AgentFlow{}
	for _, f := range c.a.dp.Flows() {
		if port != 0 && !flowUsesPort(&f, port) {
			continue
		}
		af := flowJSON(&f, idx, now)
		if hasMatch && !strings.Contains(af.Match, substr) {
			continue
		}
		out = append(out, af)
	}
	slices.SortFunc(out, func(x, y client.AgentFlow) int {
		return cmp.Or(cmp.Compare(x.InPort, y.InPort), cmp.Compare(x.Match, y.Match))
	})
	ctlJSON(w, map[string]any{"flows": out})
}

func (c *controlServer) stats(w http.ResponseWriter, r *http.Request) {
	if !ctlGet(w, r) {
		return
	}
	a := c.a
	ds := a.dp.Stats()
	conns, nats := a.fs.Len()
	s := client.AgentStats{
		Host: a.cfg.Host, TunnelIP: a.cfg.TunnelIP.String(), TunnelPort: a.cfg.TunnelPort,
		Datapath: a.cfg.DatapathName, Started: c.started.UTC(), PortsBound: len(a.ports.Load().byNo),
		Upcalls: a.stats.upcalls.Load(), FlowsInstalled: a.stats.installed.Load(),
		FramesEmitted: a.stats.emitted.Load(), LearnDropped: a.stats.learnDropped.Load(),
		StatePushed: a.stats.statePushed.Load(), StatePushFailed: a.stats.statePushFailed.Load(),
		StateReceived: a.stats.stateReceived.Load(), StateBad: a.stats.stateBad.Load(),
		StateMirrorFailed: a.stats.stateMirrorFailed.Load(),
		ResyncAnswered:    a.stats.resyncAnswered.Load(), ResyncSent: a.stats.resyncSent.Load(),
		SNATFailed: a.stats.snatFailed.Load(), Conns: conns, NATs: nats,
		DP: client.DatapathStats(ds),
	}
	ctlJSON(w, map[string]any{"stats": s})
}

// parsePortFilter reads a datapath port number or the ID of a port bound
// here.
func parsePortFilter(s string, idx *portIndex) (datapath.PortNo, error) {
	if s == "" {
		return 0, errors.New("port filter: empty")
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if n == 0 {
			return 0, errors.New("port filter: 0 is no port")
		}
		return datapath.PortNo(n), nil
	}
	if no, ok := idx.byID[s]; ok {
		return no, nil
	}
	return 0, fmt.Errorf("port filter: %q is neither a datapath port number nor a port bound on this host", s)
}

// flowUsesPort reports whether f enters on p or outputs to p.
func flowUsesPort(f *datapath.FlowInfo, p datapath.PortNo) bool {
	if f.Mask.InPort != 0 && datapath.PortNo(f.Match.InPort&f.Mask.InPort) == p {
		return true
	}
	for _, a := range f.Actions.List() {
		if a.Kind == flowtable.ActOutput && datapath.PortNo(a.Port) == p {
			return true
		}
	}
	return false
}

// flowJSON renders f for the wire; idx names its ingress port.
func flowJSON(f *datapath.FlowInfo, idx *portIndex, now time.Time) client.AgentFlow {
	af := client.AgentFlow{
		Match:      matchText(f),
		Mask:       maskFields(&f.Mask, isIPv6(f)),
		Actions:    datapath.FormatActions(&f.Actions),
		ActionList: actionList(&f.Actions),
		Packets:    f.Packets,
		Bytes:      f.Bytes,
		IdleMS:     f.IdleNano / int64(time.Millisecond),
		LastUsed:   now.Add(-time.Duration(f.IdleNano)).UTC(),
		AgeMS:      f.AgeNano / int64(time.Millisecond),
		Tags:       f.Tags,
	}
	if f.Mask.InPort != 0 {
		af.InPort = f.Match.InPort & f.Mask.InPort
		af.PortID = idx.byNo[datapath.PortNo(af.InPort)]
	}
	return af
}

// matchText is datapath.FormatFlow's match part: the fields the mask
// keeps, without actions and statistics.
func matchText(f *datapath.FlowInfo) string {
	s := datapath.FormatFlow(datapath.FlowInfo{Match: f.Match, Mask: f.Mask})
	if i := strings.Index(s, "actions="); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func isIPv6(f *datapath.FlowInfo) bool {
	return f.Mask.EthType == 0xffff && f.Match.EthType == packet.EthTypeIPv6
}

// maskFields names the mask of every field it keeps, by packet.FlowMatch
// field in snake case.
func maskFields(m *packet.FlowMatch, v6 bool) map[string]string {
	out := map[string]string{}
	hex := func(name string, v uint64, bits int) {
		if v != 0 {
			out[name] = fmt.Sprintf("%#0*x", bits/4, v)
		}
	}
	mac := func(name string, v [6]byte) {
		if v != ([6]byte{}) {
			out[name] = net.HardwareAddr(v[:]).String()
		}
	}
	ip := func(name string, v [16]byte) {
		switch {
		case v == ([16]byte{}):
		case v6:
			out[name] = netip.AddrFrom16(v).String()
		default:
			out[name] = netip.AddrFrom4([4]byte(v[12:])).String()
		}
	}
	hex("in_port", uint64(m.InPort), 32)
	mac("eth_src", m.EthSrc)
	mac("eth_dst", m.EthDst)
	hex("eth_type", uint64(m.EthType), 16)
	hex("vlan", uint64(m.VLAN), 16)
	ip("ip_src", m.IPSrc)
	ip("ip_dst", m.IPDst)
	hex("ip_proto", uint64(m.IPProto), 8)
	hex("ip_ttl", uint64(m.IPTTL), 8)
	hex("ip_frag", uint64(m.IPFrag), 8)
	hex("ct_state", uint64(m.CTState), 8)
	hex("src_port", uint64(m.SrcPort), 16)
	hex("dst_port", uint64(m.DstPort), 16)
	mac("arp_sha", m.ARPSha)
	hex("icmp_id", uint64(m.ICMPID), 16)
	return out
}

// actionList renders each action as an object (see client.AgentAction).
func actionList(as *flowtable.Actions) []client.AgentAction {
	out := []client.AgentAction{}
	for _, a := range as.List() {
		var j client.AgentAction
		switch a.Kind {
		case flowtable.ActOutput:
			j = client.AgentAction{Type: "output", Port: a.Port}
		case flowtable.ActTunnel:
			j = client.AgentAction{Type: "tunnel", Remote: netip.AddrFrom4(a.Remote).String(), RemotePort: a.RemotePort, Key: a.Key,
				Commit: a.Flags&flowtable.FlagCommit != 0}
		case flowtable.ActFlood:
			j = client.AgentAction{Type: "flood", Key: a.Key}
		case flowtable.ActSetEthSrc:
			j = client.AgentAction{Type: "set_eth_src", MAC: net.HardwareAddr(a.MAC[:]).String()}
		case flowtable.ActSetEthDst:
			j = client.AgentAction{Type: "set_eth_dst", MAC: net.HardwareAddr(a.MAC[:]).String()}
		case flowtable.ActDecTTL:
			j = client.AgentAction{Type: "dec_ttl", Port: a.Port}
		case flowtable.ActSetIPv4Src:
			j = client.AgentAction{Type: "set_ip_src", Addr: netip.AddrFrom4(a.Remote).String()}
		case flowtable.ActSetIPv4Dst:
			j = client.AgentAction{Type: "set_ip_dst", Addr: netip.AddrFrom4(a.Remote).String()}
		case flowtable.ActSetL4Src:
			j = client.AgentAction{Type: "set_l4_src", Port: uint32(a.RemotePort)}
		case flowtable.ActSetL4Dst:
			j = client.AgentAction{Type: "set_l4_dst", Port: uint32(a.RemotePort)}
		case flowtable.ActCTCommit:
			j = client.AgentAction{Type: "ct_commit", Key: a.Key, Port: a.Port}
		default:
			j = client.AgentAction{Type: "unknown(" + strconv.Itoa(int(a.Kind)) + ")"}
		}
		out = append(out, j)
	}
	return out
}

// ctlGet answers 405 to anything but GET and 400 to a query parameter
// not in allowed or given twice; it reports whether to go on.
func ctlGet(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		ctlError(w, http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", r.Method+" not allowed on "+r.URL.Path)
		return false
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		ctlError(w, http.StatusBadRequest, "HTTPBadRequest", "query: "+err.Error())
		return false
	}
	for k, v := range q {
		switch {
		case !slices.Contains(allowed, k):
			msg := fmt.Sprintf("unknown parameter %q", k)
			if len(allowed) > 0 {
				msg += " (known: " + strings.Join(allowed, ", ") + ")"
			}
			ctlError(w, http.StatusBadRequest, "HTTPBadRequest", msg)
			return false
		case len(v) > 1:
			ctlError(w, http.StatusBadRequest, "HTTPBadRequest", fmt.Sprintf("parameter %q given %d times", k, len(v)))
			return false
		}
	}
	return true
}

func ctlJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away
}

// ctlError answers in the API's error shape, which client parses.
func ctlError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"NeutronError": map[string]string{"type": typ, "message": msg, "detail": ""}})
}
