package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults for Config.
const (
	DefaultPrefix       = "hn-"
	DefaultHosts        = 3
	DefaultStartTimeout = 60 * time.Second
	// DefaultRunDirBase holds one directory per lab prefix.
	DefaultRunDirBase = "/run/hivenet"
	// APIPort is where the lab's server listens inside the control namespace.
	APIPort = 9696
	// EtcdPort is the embedded etcd's client port on the underlay.
	EtcdPort = 2379
	// maxPrefixLen keeps "<prefix>api" within IFNAMSIZ-1 (15) characters.
	maxPrefixLen = 10
	// maxNameLen bounds host and VM names (namespace names stay readable).
	maxNameLen = 32
	// DefaultPhysNet is the external network's physical network.
	DefaultPhysNet = "physnet1"
	// UplinkIf is the gateway hosts' interface towards the outside
	// namespace, bound by their agents as the physnet's uplink.
	UplinkIf = "ext0"
)

var (
	// DefaultUnderlayCIDR is the underlay between the host namespaces.
	DefaultUnderlayCIDR = netip.MustParsePrefix("10.250.0.0/24")
	// APILinkPool is where the /30 of the root<->ctl API link is taken from.
	APILinkPool = netip.MustParsePrefix("10.251.0.0/16")
	// DefaultExternalCIDR is the external network's subnet (TEST-NET-3).
	DefaultExternalCIDR = netip.MustParsePrefix("203.0.113.0/24")
	// DefaultInternet is the "internet" address behind the upstream
	// router (TEST-NET-2).
	DefaultInternet = netip.MustParseAddr("198.51.100.1")
)

// ErrConfig is wrapped by every Config validation error.
var ErrConfig = errors.New("lab: invalid config")

// Config describes a lab. The zero value of each field means its default;
// New fills the defaults in and validates.
type Config struct {
	// Prefix is put in front of every namespace and root link name the lab
	// creates ("hn-" by default). Labs with distinct prefixes are
	// independent. Lowercase letters, digits and '-', starting with a
	// letter, at most 10 characters.
	Prefix string
	// Hosts is the number of host namespaces (default 3), named host1..N.
	Hosts int
	// UnderlayCIDR is the underlay network (default 10.250.0.0/24): host i
	// gets address i, the control namespace the last usable address.
	UnderlayCIDR netip.Prefix
	// APILink is the /30 between the root namespace (first address) and the
	// control namespace (second address, where the API listens). Zero means
	// "pick a free one from APILinkPool".
	APILink netip.Prefix
	// RunDir holds logs, pid files, the embedded etcd data, lab.json and
	// the bpffs the agents pin their eBPF state in (PinRoot).
	// Default: /run/hivenet/lab-<prefix without its trailing '-'>.
	RunDir string
	// Binary is the hivenet binary to run (default: os.Executable()).
	Binary string
	// Datapath, when set, is passed to every agent as --datapath.
	Datapath string
	// AdminToken is the server's admin token (default: random).
	AdminToken string
	// Tokens are project tokens the server accepts besides the admin's
	// (written to RunDir/tokens.json and passed as --token-file).
	Tokens []Token
	// ServerArgs and AgentArgs are appended to the server's and agents'
	// command lines.
	ServerArgs []string
	AgentArgs  []string
	// StartTimeout bounds the wait for the API and for all agents to be
	// alive (default 60s).
	StartTimeout time.Duration
	// Logger receives the lab's state changes (default: discard).
	Logger *slog.Logger

	// Gateways are the hosts (host1..N) wired to the "outside" namespace:
	// each gets a veth whose host end, UplinkIf, its agent binds as the
	// uplink of PhysNet (--bridge-mappings PHYSNET:UPLINKIF). Empty: no
	// outside namespace, no external network.
	Gateways []string
	// PhysNet is the physical network name of the external network
	// (default "physnet1").
	PhysNet string
	// ExternalCIDR is the external network's subnet (default
	// 203.0.113.0/24, TEST-NET-3); the outside namespace holds its first
	// address as the upstream router's.
	ExternalCIDR netip.Prefix
	// Internet is an address behind the upstream router, on the outside
	// namespace's loopback (default 198.51.100.1, TEST-NET-2): what a VM
	// reaches "on the internet" through SNAT.
	Internet netip.Addr
}

// Token is one X-Auth-Token the lab's server accepts, in the server's
// --token-file format.
type Token struct {
	Token     string `json:"token"`
	ProjectID string `json:"project_id"`
	Role      string `json:"role,omitempty"` // "member" when empty
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() (Config, error) {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Hosts == 0 {
		c.Hosts = DefaultHosts
	}
	if !c.UnderlayCIDR.IsValid() {
		c.UnderlayCIDR = DefaultUnderlayCIDR
	}
	c.UnderlayCIDR = c.UnderlayCIDR.Masked()
	if c.RunDir == "" {
		c.RunDir = DefaultRunDir(c.Prefix)
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("locating the hivenet binary: %w", err)
		}
		c.Binary = exe
	}
	if c.AdminToken == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return c, fmt.Errorf("generating admin token: %w", err)
		}
		c.AdminToken = "lab-" + hex.EncodeToString(b[:])
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PhysNet == "" {
		c.PhysNet = DefaultPhysNet
	}
	if !c.ExternalCIDR.IsValid() {
		c.ExternalCIDR = DefaultExternalCIDR
	}
	c.ExternalCIDR = c.ExternalCIDR.Masked()
	if !c.Internet.IsValid() {
		c.Internet = DefaultInternet
	}
	return c, nil
}

// DefaultRunDir is the RunDir used for prefix when Config.RunDir is empty.
func DefaultRunDir(prefix string) string {
	return filepath.Join(DefaultRunDirBase, "lab-"+strings.TrimRight(prefix, "-"))
}

// Validate reports the first problem with c (after defaults are applied).
func (c Config) Validate() error {
	if err := validPrefix(c.Prefix); err != nil {
		return err
	}
	if c.Hosts < 1 {
		return fmt.Errorf("%w: hosts %d: need at least 1", ErrConfig, c.Hosts)
	}
	if !c.UnderlayCIDR.Addr().Is4() || c.UnderlayCIDR.Bits() > 30 {
		return fmt.Errorf("%w: underlay %s: need an IPv4 prefix of /30 or larger", ErrConfig, c.UnderlayCIDR)
	}
	// Usable addresses: size-2 (network, broadcast); one goes to ctl.
	if usable := (1 << (32 - c.UnderlayCIDR.Bits())) - 2; c.Hosts > usable-1 {
		return fmt.Errorf("%w: %d hosts do not fit in underlay %s (at most %d)", ErrConfig, c.Hosts, c.UnderlayCIDR, usable-1)
	}
	if c.APILink.IsValid() && (!c.APILink.Addr().Is4() || c.APILink.Bits() != 30) {
		return fmt.Errorf("%w: API link %s: need an IPv4 /30", ErrConfig, c.APILink)
	}
	if c.APILink.IsValid() && c.APILink.Overlaps(c.UnderlayCIDR) {
		return fmt.Errorf("%w: API link %s overlaps underlay %s", ErrConfig, c.APILink, c.UnderlayCIDR)
	}
	if !filepath.IsAbs(c.RunDir) || filepath.Clean(c.RunDir) == "/" {
		return fmt.Errorf("%w: run dir %q: need an absolute path below /", ErrConfig, c.RunDir)
	}
	if c.Binary == "" {
		return fmt.Errorf("%w: no hivenet binary", ErrConfig)
	}
	for _, t := range c.Tokens {
		if t.Token == "" || t.ProjectID == "" || strings.ContainsAny(t.Token+t.ProjectID, " \t\r\n") {
			return fmt.Errorf("%w: token %+v: need a token and a project id without spaces", ErrConfig, t)
		}
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("%w: start timeout %v is negative", ErrConfig, c.StartTimeout)
	}
	return c.validateExternal()
}

// validateExternal checks the gateway hosts and the external addressing.
func (c Config) validateExternal() error {
	seen := map[string]bool{}
	for _, g := range c.Gateways {
		i, err := hostIndex(g)
		if err != nil || i < 1 || i > c.Hosts {
			return fmt.Errorf("%w: gateway %q: not one of host1..host%d", ErrConfig, g, c.Hosts)
		}
		if seen[g] {
			return fmt.Errorf("%w: gateway %q listed twice", ErrConfig, g)
		}
		seen[g] = true
	}
	if c.PhysNet == "" || strings.ContainsAny(c.PhysNet, ":, \t") {
		return fmt.Errorf("%w: physnet %q: need a name without ':', ',' or spaces", ErrConfig, c.PhysNet)
	}
	if !c.ExternalCIDR.Addr().Is4() || c.ExternalCIDR.Bits() > 28 {
		return fmt.Errorf("%w: external CIDR %s: need an IPv4 prefix of /28 or larger", ErrConfig, c.ExternalCIDR)
	}
	if !c.Internet.Is4() || c.ExternalCIDR.Contains(c.Internet) {
		return fmt.Errorf("%w: internet address %s: need an IPv4 address outside the external CIDR %s", ErrConfig, c.Internet, c.ExternalCIDR)
	}
	for _, p := range []netip.Prefix{c.UnderlayCIDR, APILinkPool} {
		if p.Overlaps(c.ExternalCIDR) || p.Contains(c.Internet) {
			return fmt.Errorf("%w: external addressing %s / %s overlaps %s", ErrConfig, c.ExternalCIDR, c.Internet, p)
		}
	}
	return nil
}

// hostIndex returns i of "host<i>".
func hostIndex(name string) (int, error) {
	rest, ok := strings.CutPrefix(name, "host")
	if !ok {
		return 0, fmt.Errorf("lab: %q is not a host name", name)
	}
	return strconv.Atoi(rest)
}

// ExternalGateway is the upstream router's address on the external
// network (the first address of cidr), held by the outside namespace.
func ExternalGateway(cidr netip.Prefix) netip.Addr { return addN(cidr.Masked().Addr(), 1) }

func validPrefix(p string) error {
	if p == "" || len(p) > maxPrefixLen {
		return fmt.Errorf("%w: prefix %q: need 1 to %d characters", ErrConfig, p, maxPrefixLen)
	}
	if p[0] < 'a' || p[0] > 'z' {
		return fmt.Errorf("%w: prefix %q: must start with a lowercase letter", ErrConfig, p)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("%w: prefix %q: only a-z, 0-9 and '-' are allowed", ErrConfig, p)
		}
	}
	return nil
}

// validName checks a host or VM name chosen by a caller.
func validName(what, n string) error {
	if n == "" || len(n) > maxNameLen {
		return fmt.Errorf("lab: %s name %q: need 1 to %d characters", what, n, maxNameLen)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("lab: %s name %q: only letters, digits, '-' and '_' are allowed", what, n)
		}
	}
	return nil
}

// validIfName checks a Linux interface name (IFNAMSIZ 16 with the NUL).
func validIfName(n string) error {
	if n == "" || len(n) > 15 || n == "." || n == ".." {
		return fmt.Errorf("lab: interface name %q: need 1 to 15 characters", n)
	}
	for _, r := range n {
		if r <= ' ' || r == '/' || r == ':' || r > '~' {
			return fmt.Errorf("lab: interface name %q: invalid character %q", n, r)
		}
	}
	return nil
}

// HostName is the name of host i (1-based): the agent's --host and the
// ports' binding:host_id.
func HostName(i int) string { return fmt.Sprintf("host%d", i) }

// ControlSocket is the control socket of host's agent in a lab whose run
// directory is runDir (next to its flow state, so Down removes it): what
// `hivenet flows --socket` reads.
func ControlSocket(runDir, host string) string {
	return filepath.Join(runDir, "state", host, "agent.sock")
}

// hostAddr returns the underlay address of host i (1-based).
func hostAddr(underlay netip.Prefix, i int) netip.Addr {
	return addN(underlay.Addr(), uint32(i))
}

// ctlAddr returns the control namespace's underlay address: the last
// usable one.
func ctlAddr(underlay netip.Prefix) netip.Addr {
	return addN(underlay.Addr(), uint32(1)<<(32-underlay.Bits())-2)
}

func addN(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// pickAPILink returns the first /30 of pool overlapping none of used.
func pickAPILink(pool netip.Prefix, used []netip.Prefix) (netip.Prefix, error) {
	n := uint32(1) << (32 - pool.Bits()) / 4
	for k := range n {
		cand := netip.PrefixFrom(addN(pool.Masked().Addr(), 4*k), 30)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("lab: no free /30 left in %s for the API link", pool)
}
