package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"hivenet/internal/store"
	"hivenet/internal/topology"
	"hivenet/internal/translate"
)

var (
	portCreateAttrs = []string{"network_id", "name", "description", "admin_state_up", "mac_address", "fixed_ips", "device_id",
		"device_owner", "project_id", "tenant_id", "security_groups", "allowed_address_pairs", "port_security_enabled",
		"binding:host_id", "binding:profile", "binding:vnic_type", "tags"}
	portUpdateAttrs = []string{"name", "description", "admin_state_up", "mac_address", "fixed_ips", "device_id", "device_owner",
		"security_groups", "allowed_address_pairs", "port_security_enabled", "binding:host_id", "binding:profile",
		"binding:vnic_type", "tags"}
	portReadOnly = []string{"id", "network_id", "project_id", "tenant_id", "status", "created_at", "updated_at",
		"revision_number", "binding:vif_type", "binding:vif_details", "hivenet:tunnel_key"}
)

// Port statuses: DOWN until an agent has published a binding.
const (
	statusActive = "ACTIVE"
	statusDown   = "DOWN"
)

// maxIfName is Linux's IFNAMSIZ - 1. maxFixedIPs and maxAddressPairs are
// Neutron's default max_fixed_ips_per_port and max_allowed_address_pair.
const (
	maxIfName       = 15
	maxFixedIPs     = 5
	maxAddressPairs = 10
)

func (s *Server) portsResource() *resource {
	return &resource{
		singular: "port", plural: "ports",
		attrs: attrNames(translate.Port{}),
		list: func(ctx context.Context, c *caller) ([]any, error) {
			ps, err := listVisible[translate.Port](ctx, s.st, c, "ports")
			if err != nil {
				return nil, err
			}
			bound, err := s.boundPorts(ctx)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				setStatus(p, bound[p.ID])
			}
			return anys(ps), nil
		},
		show: func(ctx context.Context, c *caller, id string) (any, error) {
			return s.readPort(ctx, c, id)
		},
		create: s.createPort,
		update: s.updatePort,
		delete: s.deletePort,
	}
}

func setStatus(p *translate.Port, bound bool) {
	p.Status = statusDown
	if bound {
		p.Status = statusActive
	}
}

// boundPorts returns the IDs of the ports some agent has bound.
func (s *Server) boundPorts(ctx context.Context) (map[string]bool, error) {
	prefix := store.PrefixState + topology.KindPortBinding.String() + "/"
	kvs, err := s.st.Client().Get(ctx, prefix, clientv3WithPrefixKeysOnly()...)
	if err != nil {
		return nil, fmt.Errorf("api: reading port bindings: %w", err)
	}
	out := make(map[string]bool, len(kvs.Kvs))
	for _, kv := range kvs.Kvs {
		out[strings.TrimPrefix(string(kv.Key), prefix)] = true
	}
	return out, nil
}

// readPort returns a port the caller can see, with its status.
func (s *Server) readPort(ctx context.Context, c *caller, id string) (*translate.Port, error) {
	var p *translate.Port
	_, err := s.st.View(ctx, func(tx *store.Tx) (err error) {
		if p, err = visiblePort(tx, c, id); err != nil {
			return err
		}
		b, err := tx.Get(store.TopoKey(topology.KindPortBinding, id))
		if err != nil {
			return err
		}
		setStatus(p, b != nil)
		return nil
	})
	return p, err
}

func visiblePort(tx *store.Tx, c *caller, id string) (*translate.Port, error) {
	return visibleObj[translate.Port](tx, c, "ports", "Port", id)
}

// bindingAttrs may only be set by an admin (Neutron's default policy): a
// binding names a host and, through binding:profile.interface_name, any
// interface on it, so a tenant could otherwise claim another tenant's tap
// device or a host's uplink.
var bindingAttrs = []string{"binding:host_id", "binding:profile"}

func checkBindingPolicy(c *caller, a attrs) error {
	if c.Admin {
		return nil
	}
	for _, k := range bindingAttrs {
		if a.has(k) {
			return forbidden("(rule:create_port:%s) is disallowed by policy: only an admin may set %s", k, k)
		}
	}
	return nil
}

// portAttrs decodes and checks the attributes shared by create and
// update, everything that does not need the store.
func portAttrs(a attrs, p *translate.Port) error {
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{
		{"name", &p.Name, maxNameLen}, {"description", &p.Description, maxDescLen},
		{"device_id", &p.DeviceID, 255}, {"device_owner", &p.DeviceOwner, 255},
		{"binding:host_id", &p.HostID, 255}, {"binding:vnic_type", &p.VNICType, 64},
	} {
		if err := a.str(f.name, f.dst, f.max); err != nil {
			return err
		}
	}
	if err := a.boolean("admin_state_up", &p.AdminStateUp); err != nil {
		return err
	}
	if err := a.boolean("port_security_enabled", &p.PortSecurityEnabled); err != nil {
		return err
	}
	if p.VNICType != "normal" {
		return invalidInput("binding:vnic_type", "vnic type '%s' is not supported, only 'normal' is", p.VNICType)
	}
	if a.has("mac_address") {
		if err := a.str("mac_address", &p.MACAddress, 64); err != nil {
			return err
		}
		m, err := topology.ParseMAC(p.MACAddress)
		if err != nil || m.IsMulticast() || m == (topology.MAC{}) {
			return invalidInput("mac_address", "'%s' is not a valid unicast MAC address", clip([]byte(p.MACAddress)))
		}
		p.MACAddress = m.String()
	}
	if err := a.object("binding:profile", &p.Profile); err != nil {
		return err
	}
	if v, ok := p.Profile["interface_name"]; ok {
		name, isStr := v.(string)
		if !isStr || len(name) > maxIfName || strings.ContainsAny(name, "/: \t\n\x00") || name == "." || name == ".." {
			return invalidInput("binding:profile", "interface_name %v is not a valid Linux interface name (at most %d characters, no '/', ':' or spaces)", v, maxIfName)
		}
	}
	if a.has("device_owner") && (p.DeviceOwner == translate.OwnerRouterInterface || p.DeviceOwner == translate.OwnerRouterGateway) {
		return invalidInput("device_owner", "device owner %s is reserved for ports the router API makes (add_router_interface, external_gateway_info)", p.DeviceOwner)
	}
	if a.has("security_groups") {
		var sgs []string
		if err := a.strList("security_groups", &sgs); err != nil {
			return err
		}
		var uniq []string
		for _, g := range sgs {
			if !validID(g) {
				return invalidInput("security_groups", "'%s' is not a security group ID", clip([]byte(g)))
			}
			if !slices.Contains(uniq, g) {
				uniq = append(uniq, g)
			}
		}
		if len(uniq) > maxGroupsPerPort {
			return invalidInput("security_groups", "%d groups exceed the maximum of %d per port", len(uniq), maxGroupsPerPort)
		}
		if uniq == nil {
			uniq = []string{}
		}
		p.SecurityGroups = uniq
	}
	if a.has("allowed_address_pairs") {
		var pairs []translate.AddressPair
		if err := a.list("allowed_address_pairs", &pairs); err != nil {
			return err
		}
		if len(pairs) > maxAddressPairs {
			return invalidInput("allowed_address_pairs", "%d pairs exceed the maximum of %d", len(pairs), maxAddressPairs)
		}
		for i, ap := range pairs {
			pfx, err := translate.ParseAddrOrPrefix(ap.IPAddress)
			if err != nil {
				return invalidInput("allowed_address_pairs", "ip_address: %v", err)
			}
			pairs[i].IPAddress = pfx.String()
			if pfx.Bits() == 32 {
				pairs[i].IPAddress = pfx.Addr().String()
			}
			if ap.MACAddress != "" {
				m, err := topology.ParseMAC(ap.MACAddress)
				if err != nil || m.IsMulticast() || m == (topology.MAC{}) {
					return invalidInput("allowed_address_pairs", "mac_address '%s' is not a valid unicast MAC address", clip([]byte(ap.MACAddress)))
				}
				pairs[i].MACAddress = m.String()
			}
			for _, o := range pairs[:i] {
				if o.IPAddress == pairs[i].IPAddress && (o.MACAddress == pairs[i].MACAddress) {
					return invalidInput("allowed_address_pairs", "duplicate address pair %s", ap.IPAddress)
				}
			}
		}
		if pairs == nil {
			pairs = []translate.AddressPair{}
		}
		p.AllowedAddressPairs = pairs
	}
	if err := decodeTags(a, &p.Tags); err != nil {
		return err
	}
	return nil
}

func decodeFixedIPs(a attrs) ([]translate.FixedIP, error) {
	var ips []translate.FixedIP
	if err := a.list("fixed_ips", &ips); err != nil {
		return nil, err
	}
	if len(ips) > maxFixedIPs {
		return nil, invalidInput("fixed_ips", "%d addresses exceed the maximum of %d per port", len(ips), maxFixedIPs)
	}
	return ips, nil
}

// finishPort fills derived attributes and checks the cross-attribute rules.
func finishPort(p *translate.Port) error {
	if !p.PortSecurityEnabled && len(p.AllowedAddressPairs) > 0 {
		return conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port (port_security_enabled, allowed_address_pairs).")
	}
	for i := range p.AllowedAddressPairs {
		if p.AllowedAddressPairs[i].MACAddress == "" {
			p.AllowedAddressPairs[i].MACAddress = p.MACAddress
		}
	}
	p.VIFType = "unbound"
	p.VIFDetails = map[string]any{}
	if p.HostID != "" {
		p.VIFType = "ovs"
		p.VIFDetails = map[string]any{"port_filter": p.PortSecurityEnabled, "interface_name": translate.InterfaceName(p)}
	}
	return nil
}

// networkSubnets reads the subnets of n (guarded), in creation order.
func networkSubnets(tx *store.Tx, n *translate.Network) ([]*translate.Subnet, error) {
	keys := make([]string, len(n.Subnets))
	for i, id := range n.Subnets {
		keys[i] = store.APIKey("subnets", id)
	}
	if err := tx.Prefetch(keys...); err != nil {
		return nil, err
	}
	var out []*translate.Subnet
	for _, id := range n.Subnets {
		sn, err := getObj[translate.Subnet](tx, "subnets", id)
		if err != nil {
			return nil, err
		}
		if sn != nil {
			out = append(out, sn)
		}
	}
	return out, nil
}

// resolveFixedIPs turns the requested fixed_ips (or, if !given, the
// default: one address from the first subnet with room) into addresses.
// Addresses currently held by portID (on update) count as free for it.
func resolveFixedIPs(tx *store.Tx, n *translate.Network, portID, deviceOwner string, req []translate.FixedIP, given bool) ([]translate.FixedIP, error) {
	subnets, err := networkSubnets(tx, n)
	if err != nil {
		return nil, err
	}
	used, err := usedAddrs(tx, n.ID)
	if err != nil {
		return nil, err
	}
	taken := func(a netip.Addr) bool {
		owner, ok := used[a]
		return ok && owner != portID
	}
	byID := func(id string) *translate.Subnet {
		i := slices.IndexFunc(subnets, func(s *translate.Subnet) bool { return s.ID == id })
		if i < 0 {
			return nil
		}
		return subnets[i]
	}
	allocate := func(sn *translate.Subnet) (netip.Addr, bool, error) {
		pools, err := translate.Pools(sn)
		if err != nil {
			return netip.Addr{}, false, err
		}
		a, ok := translate.FreeAddr(pools, taken)
		return a, ok, nil
	}
	var out []translate.FixedIP
	claim := func(sn *translate.Subnet, a netip.Addr) {
		used[a] = portID
		out = append(out, translate.FixedIP{SubnetID: sn.ID, IPAddress: a.String()})
	}
	if !given {
		for _, sn := range subnets {
			a, ok, err := allocate(sn)
			if err != nil {
				return nil, err
			}
			if ok {
				claim(sn, a)
				return out, nil
			}
		}
		if len(subnets) > 0 {
			return nil, conflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
		}
		return []translate.FixedIP{}, nil
	}
	for _, f := range req {
		var sn *translate.Subnet
		if f.SubnetID != "" {
			if sn = byID(f.SubnetID); sn == nil {
				return nil, invalidInput("fixed_ips", "subnet %s is not a subnet of network %s", f.SubnetID, n.ID)
			}
		}
		if f.IPAddress == "" {
			if sn == nil {
				return nil, invalidInput("fixed_ips", "each entry needs a subnet_id or an ip_address")
			}
			a, ok, err := allocate(sn)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, conflict("IpAddressGenerationFailure", "No more IP addresses available on subnet %s.", sn.ID)
			}
			claim(sn, a)
			continue
		}
		if sn == nil {
			a, err := netip.ParseAddr(f.IPAddress)
			if err != nil || !a.Is4() {
				return nil, invalidInput("fixed_ips", "'%s' is not a valid IPv4 address", clip([]byte(f.IPAddress)))
			}
			for _, c := range subnets {
				if p, err := netip.ParsePrefix(c.CIDR); err == nil && p.Contains(a) {
					sn = c
				}
			}
			if sn == nil {
				return nil, invalidInput("fixed_ips", "IP address %s is not in any subnet of network %s", a, n.ID)
			}
		}
		a, err := translate.CheckFixedIP(sn, f.IPAddress)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(x translate.FixedIP) bool { return x.IPAddress == a.String() }) {
			return nil, invalidInput("fixed_ips", "IP address %s is requested twice", a)
		}
		if sn.GatewayIP != nil && *sn.GatewayIP == a.String() && !strings.HasPrefix(deviceOwner, "network:router") {
			return nil, conflict("IpAddressInUse", "Unable to complete operation for network %s. The IP address %s is in use (gateway of subnet %s).", n.ID, a, sn.ID)
		}
		if taken(a) {
			return nil, conflict("IpAddressInUse", "Unable to complete operation for network %s. The IP address %s is in use.", n.ID, a)
		}
		claim(sn, a)
	}
	if out == nil {
		out = []translate.FixedIP{}
	}
	return out, nil
}

// chooseMAC checks a requested MAC (409 if another port of the network
// has it) or draws a free fa:16:3e:xx:xx:xx.
func (s *Server) chooseMAC(tx *store.Tx, networkID, portID, mac string) (string, error) {
	if mac != "" {
		owner, err := tx.Get(store.PrefixIndex + translate.MACIndex(networkID, mac))
		if err != nil {
			return "", err
		}
		if owner != nil && string(owner) != portID {
			return "", conflict("MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", networkID, mac)
		}
		return mac, nil
	}
	for range 16 {
		var b [3]byte
		if _, err := s.cfg.Rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("api: drawing a MAC: %w", err)
		}
		m := translate.MACFromBytes(b)
		owner, err := tx.Get(store.PrefixIndex + translate.MACIndex(networkID, m))
		if err != nil {
			return "", err
		}
		if owner == nil {
			return m, nil
		}
	}
	return "", conflict("MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", networkID)
}

// writePort stores p (api object, topology, index keys), replacing old.
func writePort(tx *store.Tx, old, p *translate.Port) error {
	tp, err := translate.TopoPort(p)
	if err != nil {
		return err
	}
	stored := *p
	stored.Status = statusDown // the live status comes from the bindings
	if err := tx.PutJSON(store.APIKey("ports", p.ID), &stored); err != nil {
		return err
	}
	if err := putTopo(tx, topology.KindPort, p.ID, tp); err != nil {
		return err
	}
	var oldIdx []string
	if old != nil {
		oldIdx = translate.PortIndexes(old)
	}
	return writeIndexes(tx, oldIdx, translate.PortIndexes(p), p.ID)
}

func (s *Server) createPort(ctx context.Context, c *caller, a attrs) (any, error) {
	if err := a.check(portCreateAttrs, nil); err != nil {
		return nil, err
	}
	if err := checkBindingPolicy(c, a); err != nil {
		return nil, err
	}
	project, err := ownerProject(c, a)
	if err != nil {
		return nil, err
	}
	tmpl := translate.Port{
		ID: newID(), ProjectID: project, TenantID: project, AdminStateUp: true, Status: statusDown,
		SecurityGroups: []string{}, AllowedAddressPairs: []translate.AddressPair{}, Profile: map[string]any{},
		VNICType: "normal", Tags: []string{}, RevisionNumber: 1,
	}
	if err := a.str("network_id", &tmpl.NetworkID, 64); err != nil {
		return nil, err
	}
	if tmpl.NetworkID == "" {
		return nil, invalidInput("network_id", "a network_id is required")
	}
	if err := portAttrs(a, &tmpl); err != nil {
		return nil, err
	}
	reqIPs, err := decodeFixedIPs(a)
	if err != nil {
		return nil, err
	}
	var p translate.Port
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		p = tmpl
		var written map[string]*translate.SecurityGroup // groups this tx writes
		p.AllowedAddressPairs = slices.Clone(tmpl.AllowedAddressPairs)
		// One round trip for what every create reads.
		if validID(p.NetworkID) {
			if err := tx.Prefetch(store.APIKey("networks", p.NetworkID), seqTunnelKey); err != nil {
				return err
			}
		}
		n, err := visibleNetwork(tx, c, p.NetworkID)
		if err != nil {
			return err
		}
		if !n.Shared && !c.canChange(n.ProjectID) {
			return notFound("Network", p.NetworkID)
		}
		if !a.has("port_security_enabled") {
			p.PortSecurityEnabled = n.PortSecurityEnabled
		}
		switch {
		case !p.PortSecurityEnabled && len(p.SecurityGroups) > 0:
			return errPortSecurityForGroups()
		case p.PortSecurityEnabled && !a.has("security_groups"):
			g, created, err := s.defaultGroup(tx, p.ProjectID)
			if err != nil {
				return err
			}
			p.SecurityGroups = []string{g.ID}
			if created {
				written = map[string]*translate.SecurityGroup{g.ID: g}
			}
		default:
			if err := checkPortGroups(tx, c, &p, nil); err != nil {
				return err
			}
		}
		if p.FixedIPs, err = resolveFixedIPs(tx, n, p.ID, p.DeviceOwner, reqIPs, a.has("fixed_ips")); err != nil {
			return err
		}
		if p.MACAddress, err = s.chooseMAC(tx, n.ID, p.ID, tmpl.MACAddress); err != nil {
			return err
		}
		if err := finishPort(&p); err != nil {
			return err
		}
		if p.TunnelKey, err = allocTunnelKey(tx); err != nil {
			return err
		}
		p.CreatedAt, p.UpdatedAt = s.now(), s.now()
		if err := writePort(tx, nil, &p); err != nil {
			return err
		}
		return syncPortSecurity(tx, nil, &p, written)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (s *Server) updatePort(ctx context.Context, c *caller, id string, a attrs) (any, error) {
	if err := a.check(portUpdateAttrs, portReadOnly); err != nil {
		return nil, err
	}
	if err := checkBindingPolicy(c, a); err != nil {
		return nil, err
	}
	reqIPs, err := decodeFixedIPs(a)
	if err != nil {
		return nil, err
	}
	var p *translate.Port
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		old, err := visiblePort(tx, c, id)
		if err != nil {
			return err
		}
		if translate.IsRouterPort(old) {
			for _, k := range []string{"device_owner", "device_id", "fixed_ips", "port_security_enabled", "security_groups", "allowed_address_pairs", "binding:host_id", "binding:profile", "mac_address"} {
				if a.has(k) {
					return errRouterPort(old, k)
				}
			}
		}
		cp := *old
		cp.AllowedAddressPairs = slices.Clone(old.AllowedAddressPairs)
		cp.Tags = slices.Clone(old.Tags)
		cp.SecurityGroups = slices.Clone(old.SecurityGroups)
		p = &cp
		if err := portAttrs(a, p); err != nil {
			return err
		}
		if !p.PortSecurityEnabled && len(p.SecurityGroups) > 0 {
			if a.has("security_groups") {
				return errPortSecurityForGroups()
			}
			return conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or ip address until security group is removed (security_groups, port_security_enabled).")
		}
		if err := checkPortGroups(tx, c, p, old); err != nil {
			return err
		}
		n, err := getObj[translate.Network](tx, "networks", p.NetworkID)
		if err != nil {
			return err
		}
		if n == nil {
			return notFound("Network", p.NetworkID)
		}
		if a.has("fixed_ips") {
			if p.FixedIPs, err = resolveFixedIPs(tx, n, p.ID, p.DeviceOwner, reqIPs, true); err != nil {
				return err
			}
		}
		if p.MACAddress != old.MACAddress {
			b, err := tx.Get(store.TopoKey(topology.KindPortBinding, id))
			if err != nil {
				return err
			}
			if b != nil {
				return conflict("PortBound", "Unable to complete operation on port %s: it is bound (ACTIVE); the mac_address of a bound port cannot change.", id)
			}
			if _, err := s.chooseMAC(tx, n.ID, p.ID, p.MACAddress); err != nil {
				return err
			}
			// Pairs that defaulted to the port's MAC follow it.
			if !a.has("allowed_address_pairs") {
				for i := range p.AllowedAddressPairs {
					if p.AllowedAddressPairs[i].MACAddress == old.MACAddress {
						p.AllowedAddressPairs[i].MACAddress = p.MACAddress
					}
				}
			}
		}
		if err := finishPort(p); err != nil {
			return err
		}
		p.UpdatedAt = s.now()
		p.RevisionNumber++
		if err := keepAssociatedIPs(tx, old, p); err != nil {
			return err
		}
		if err := writePort(tx, old, p); err != nil {
			return err
		}
		if err := syncPortSecurity(tx, old, p, nil); err != nil {
			return err
		}
		b, err := tx.Get(store.TopoKey(topology.KindPortBinding, id))
		if err != nil {
			return err
		}
		setStatus(p, b != nil)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Server) deletePort(ctx context.Context, c *caller, id string) error {
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		p, err := visiblePort(tx, c, id)
		if err != nil {
			return err
		}
		if translate.IsRouterPort(p) {
			return errRouterPort(p, "")
		}
		if err := s.disassociatePort(tx, p.ID); err != nil {
			return err
		}
		return removePort(tx, p)
	})
	return err
}

// removePort deletes p with its translation and index keys.
func removePort(tx *store.Tx, p *translate.Port) error {
	tx.Delete(store.APIKey("ports", p.ID))
	tx.Delete(store.TopoKey(topology.KindPort, p.ID))
	if err := writeIndexes(tx, translate.PortIndexes(p), nil, ""); err != nil {
		return err
	}
	return syncPortSecurity(tx, p, nil, nil)
}

func errPortSecurityForGroups() *Error {
	return Errorf(http.StatusBadRequest, "PortSecurityAndIPRequiredForSecurityGroups",
		"Port security must be enabled and port must have an IP address in order to use security groups (security_groups, port_security_enabled).")
}

// errRouterPort refuses changing (attr) or deleting ("") a router's port
// through the ports API.
func errRouterPort(p *translate.Port, attr string) *Error {
	if attr == "" {
		return conflict("L3PortInUse", "Port %s has owner %s and therefore cannot be deleted directly via the port API (use remove_router_interface or clear external_gateway_info of router %s).", p.ID, p.DeviceOwner, p.DeviceID)
	}
	return conflict("L3PortInUse", "Port %s has owner %s (router %s): %s cannot be changed through the port API.", p.ID, p.DeviceOwner, p.DeviceID, attr)
}

// checkPortGroups checks the groups p joins (not in old): they exist and
// belong to the port's project. The reads guard the commit, so a group
// deleted meanwhile makes the write retry and fail.
func checkPortGroups(tx *store.Tx, c *caller, p, old *translate.Port) error {
	var fresh []string
	for _, g := range p.SecurityGroups {
		if old == nil || !slices.Contains(old.SecurityGroups, g) {
			fresh = append(fresh, g)
		}
	}
	groups, err := loadGroups(tx, fresh, nil)
	if err != nil {
		return err
	}
	for _, id := range fresh {
		g := groups[id]
		if g == nil || (g.ProjectID != p.ProjectID && !c.Admin) {
			return notFound("SecurityGroup", id)
		}
	}
	return nil
}
