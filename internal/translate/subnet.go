package translate

import (
	"fmt"
	"net/netip"
	"slices"
)

// FieldError is an invalid value of one API attribute. Its message
// follows Neutron's: "Invalid input for <field>. Reason: <reason>."
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return "Invalid input for " + e.Field + ". Reason: " + e.Reason + "."
}

func fieldErr(field, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// Range is an inclusive range of IPv4 addresses.
type Range struct{ Start, End netip.Addr }

// Contains reports whether a is in r.
func (r Range) Contains(a netip.Addr) bool {
	return r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

// MaxDNSNameservers and MaxHostRoutes are Neutron's default limits;
// MaxAllocationPools bounds the pool checks (quadratic in the count).
const (
	MaxDNSNameservers  = 5
	MaxHostRoutes      = 20
	MaxAllocationPools = 64
)

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// HostRange returns the usable addresses of p: all but the network and
// broadcast addresses.
func HostRange(p netip.Prefix) Range {
	return Range{Start: p.Masked().Addr().Next(), End: lastAddr(p).Prev()}
}

// ParseCIDR checks a subnet CIDR: IPv4, no host bits, room for hosts.
func ParseCIDR(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fieldErr(field, "'%s' is not a valid IP subnet", s)
	}
	if !p.Addr().Is4() {
		return p, fieldErr(field, "'%s' is not an IPv4 subnet (only IPv4 is supported)", s)
	}
	if p.Masked() != p {
		return p, fieldErr(field, "'%s' isn't a recognized IP subnet cidr, '%s' is recommended", s, p.Masked())
	}
	if p.Bits() > 30 {
		return p, fieldErr(field, "'%s' is too small: the prefix length must be at most 30", s)
	}
	return p, nil
}

func parseIPv4(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fieldErr(field, "'%s' is not a valid IPv4 address", s)
	}
	return a, nil
}

// PrepareSubnet validates a subnet being created, normalizes it and fills
// in the defaults, in place:
//
//   - ip_version must be 4 and cidr a valid IPv4 network of /30 or larger;
//   - gateway_ip, when gatewayGiven, is null (no gateway) or a host address
//     of cidr; when not given it is the first host address;
//   - allocation_pools, when empty, is every host address but the gateway;
//     given pools must be inside cidr, ordered, disjoint and must not
//     contain the gateway;
//   - dns_nameservers are IPv4 addresses (at most 5, no duplicates);
//   - host_routes have an IPv4 CIDR destination and an IPv4 next hop;
//   - cidr overlaps none of others (the other subnets of the network).
//
// The DHCP server address is chosen later, against the used addresses
// (see FreeAddr).
func PrepareSubnet(s *Subnet, gatewayGiven bool, others []*Subnet) error {
	if s.IPVersion != 4 {
		return fieldErr("ip_version", "IPv%d is not supported, only 4 is", s.IPVersion)
	}
	cidr, err := ParseCIDR("cidr", s.CIDR)
	if err != nil {
		return err
	}
	for _, o := range others {
		oc, err := netip.ParsePrefix(o.CIDR)
		if err != nil {
			continue
		}
		if oc.Overlaps(cidr) {
			return fieldErr("cidr", "requested subnet with cidr %s for network %s overlaps with subnet %s (cidr %s)", s.CIDR, s.NetworkID, o.ID, o.CIDR)
		}
	}
	hosts := HostRange(cidr)
	var gw netip.Addr
	switch {
	case !gatewayGiven:
		gw = hosts.Start
		g := gw.String()
		s.GatewayIP = &g
	case s.GatewayIP != nil:
		if gw, err = parseIPv4("gateway_ip", *s.GatewayIP); err != nil {
			return err
		}
		if !hosts.Contains(gw) {
			return fieldErr("gateway_ip", "gateway IP %s is not a host address of subnet %s", gw, cidr)
		}
		g := gw.String()
		s.GatewayIP = &g
	}
	if err := prepareSubnetOptions(s); err != nil {
		return err
	}

	if len(s.AllocationPools) == 0 {
		s.AllocationPools = nil
		for _, r := range subtract(hosts, gw) {
			s.AllocationPools = append(s.AllocationPools, AllocationPool{Start: r.Start.String(), End: r.End.String()})
		}
		return nil
	}
	if len(s.AllocationPools) > MaxAllocationPools {
		return fieldErr("allocation_pools", "%d pools exceed the maximum of %d", len(s.AllocationPools), MaxAllocationPools)
	}
	pools, err := parsePools(s.AllocationPools)
	if err != nil {
		return err
	}
	for i, r := range pools {
		if !hosts.Contains(r.Start) || !hosts.Contains(r.End) {
			return fieldErr("allocation_pools", "the allocation pool %s-%s spans beyond the host addresses of subnet %s", r.Start, r.End, cidr)
		}
		if gw.IsValid() && r.Contains(gw) {
			return fieldErr("allocation_pools", "the gateway IP %s conflicts with the allocation pool %s-%s", gw, r.Start, r.End)
		}
		for _, o := range pools[:i] {
			if r.Start.Compare(o.End) <= 0 && o.Start.Compare(r.End) <= 0 {
				return fieldErr("allocation_pools", "the allocation pools %s-%s and %s-%s overlap", o.Start, o.End, r.Start, r.End)
			}
		}
		s.AllocationPools[i] = AllocationPool{Start: r.Start.String(), End: r.End.String()}
	}
	return nil
}

func prepareSubnetOptions(s *Subnet) error {
	if len(s.DNSNameservers) > MaxDNSNameservers {
		return fieldErr("dns_nameservers", "%d nameservers exceed the maximum of %d", len(s.DNSNameservers), MaxDNSNameservers)
	}
	for i, d := range s.DNSNameservers {
		a, err := parseIPv4("dns_nameservers", d)
		if err != nil {
			return err
		}
		s.DNSNameservers[i] = a.String()
		if slices.Contains(s.DNSNameservers[:i], a.String()) {
			return fieldErr("dns_nameservers", "duplicate nameserver '%s'", d)
		}
	}
	if len(s.HostRoutes) > MaxHostRoutes {
		return fieldErr("host_routes", "%d routes exceed the maximum of %d", len(s.HostRoutes), MaxHostRoutes)
	}
	for i, r := range s.HostRoutes {
		d, err := netip.ParsePrefix(r.Destination)
		if err != nil || !d.Addr().Is4() || d.Masked() != d {
			return fieldErr("host_routes", "destination '%s' is not a valid IPv4 CIDR", r.Destination)
		}
		nh, err := parseIPv4("host_routes", r.NextHop)
		if err != nil {
			return err
		}
		s.HostRoutes[i] = HostRoute{Destination: d.String(), NextHop: nh.String()}
	}
	if s.DNSNameservers == nil {
		s.DNSNameservers = []string{}
	}
	if s.HostRoutes == nil {
		s.HostRoutes = []HostRoute{}
	}
	return nil
}

func parsePools(ps []AllocationPool) ([]Range, error) {
	out := make([]Range, 0, len(ps))
	for _, p := range ps {
		st, err := parseIPv4("allocation_pools", p.Start)
		if err != nil {
			return nil, err
		}
		en, err := parseIPv4("allocation_pools", p.End)
		if err != nil {
			return nil, err
		}
		if en.Less(st) {
			return nil, fieldErr("allocation_pools", "the pool start %s is after its end %s", st, en)
		}
		out = append(out, Range{st, en})
	}
	return out, nil
}

// Pools returns the parsed allocation pools of a stored subnet.
func Pools(s *Subnet) ([]Range, error) { return parsePools(s.AllocationPools) }

// subtract returns r without a (zero, one or two ranges).
func subtract(r Range, a netip.Addr) []Range {
	if !a.IsValid() || !r.Contains(a) {
		return []Range{r}
	}
	var out []Range
	if r.Start.Less(a) {
		out = append(out, Range{r.Start, a.Prev()})
	}
	if a.Less(r.End) {
		out = append(out, Range{a.Next(), r.End})
	}
	return out
}

// FreeAddr returns the first address of pools (in order) that used does
// not report, and false if every address is used.
func FreeAddr(pools []Range, used func(netip.Addr) bool) (netip.Addr, bool) {
	for _, r := range pools {
		for a := r.Start; a.IsValid() && a.Compare(r.End) <= 0; a = a.Next() {
			if !used(a) {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// CheckFixedIP checks that a requested port address is a host address of
// the subnet and not its gateway.
func CheckFixedIP(s *Subnet, ip string) (netip.Addr, error) {
	a, err := parseIPv4("fixed_ips", ip)
	if err != nil {
		return a, err
	}
	cidr, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return a, fmt.Errorf("translate: subnet %s: %w", s.ID, err)
	}
	if !HostRange(cidr).Contains(a) {
		return a, fieldErr("fixed_ips", "IP address %s is not a valid IP for the specified subnet %s (%s)", a, s.ID, s.CIDR)
	}
	return a, nil
}
