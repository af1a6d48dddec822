package api

import (
	"context"
	"net/http"
	"net/netip"
	"slices"

	"hivenet/internal/store"
	"hivenet/internal/topology"
	"hivenet/internal/translate"
)

// Floating IPs. A floating IP owns its address on the external network
// (the ip/<network>/<addr> index, like a port's address) and, while
// associated, fipport/<port>/<fixed ip> (one floating IP per port
// address) and routerfip/<router>/<fip> (the router that translates it
// cannot lose its gateway or the interface it reaches the port through).

var (
	fipCreateAttrs = []string{"floating_network_id", "floating_ip_address", "port_id", "fixed_ip_address", "subnet_id", "description", "project_id", "tenant_id", "tags"}
	fipUpdateAttrs = []string{"port_id", "fixed_ip_address", "description", "tags"}
	fipReadOnly    = []string{"id", "floating_network_id", "floating_ip_address", "router_id", "status", "project_id", "tenant_id", "created_at", "updated_at", "revision_number"}
)

func (s *Server) floatingIPsResource() *resource {
	return visibleResource[translate.FloatingIP](&resource{
		singular: "floatingip", plural: "floatingips",
		attrs:  attrNames(translate.FloatingIP{}),
		create: s.createFIP,
		update: s.updateFIP,
		delete: s.deleteFIP,
	}, s.st, "floatingips", "FloatingIP")
}

func visibleFIP(tx *store.Tx, c *caller, id string) (*translate.FloatingIP, error) {
	return visibleObj[translate.FloatingIP](tx, c, "floatingips", "FloatingIP", id)
}

// writeFIP stores f (API object, translation, index keys), replacing old.
func writeFIP(tx *store.Tx, old, f *translate.FloatingIP) error {
	f.Status = statusDown
	if f.PortID != nil {
		f.Status = statusActive
	}
	tf, err := translate.TopoFloatingIP(f)
	if err != nil {
		return err
	}
	if err := tx.PutJSON(store.APIKey("floatingips", f.ID), f); err != nil {
		return err
	}
	if err := putTopo(tx, topology.KindFloatingIP, f.ID, tf); err != nil {
		return err
	}
	var oldIdx []string
	if old != nil {
		oldIdx = translate.FloatingIPIndexes(old)
	}
	return writeIndexes(tx, oldIdx, translate.FloatingIPIndexes(f), f.ID)
}

// associate points f at port portID (fixedIP: one of its addresses, ""
// for its first), finding the router that connects the port's subnet to
// f's external network.
func associate(tx *store.Tx, c *caller, f *translate.FloatingIP, portID, fixedIP string) error {
	p, err := visiblePort(tx, c, portID)
	if err != nil {
		return err
	}
	if !c.canChange(p.ProjectID) {
		return notFound("Port", portID)
	}
	if translate.IsRouterPort(p) {
		return invalidInput("port_id", "port %s is a router's port (%s)", p.ID, p.DeviceOwner)
	}
	var fixed *translate.FixedIP
	for i := range p.FixedIPs {
		if fixedIP == "" || p.FixedIPs[i].IPAddress == fixedIP {
			fixed = &p.FixedIPs[i]
			break
		}
	}
	if fixed == nil {
		if fixedIP != "" {
			return invalidInput("fixed_ip_address", "port %s does not have fixed ip %s", p.ID, fixedIP)
		}
		return invalidInput("port_id", "port %s has no fixed IP to associate a floating IP with", p.ID)
	}
	if p.NetworkID == f.FloatingNetworkID {
		return invalidInput("port_id", "port %s is on the external network %s itself", p.ID, p.NetworkID)
	}
	// The routers with an interface on the port's subnet (guarded).
	kvs, err := tx.List(store.PrefixIndex + translate.SubnetRouterPrefix(fixed.SubnetID))
	if err != nil {
		return err
	}
	var router string
	for _, kv := range kvs {
		rp, err := getObj[translate.Port](tx, "ports", string(kv.Value))
		if err != nil {
			return err
		}
		if rp == nil {
			continue
		}
		r, err := getObj[translate.Router](tx, "routers", rp.DeviceID)
		if err != nil {
			return err
		}
		if r != nil && r.GatewayInfo != nil && r.GatewayInfo.NetworkID == f.FloatingNetworkID {
			router = r.ID
			break
		}
	}
	if router == "" {
		return Errorf(http.StatusNotFound, "ExternalGatewayForFloatingIPNotFound",
			"External network %s is not reachable from subnet %s. Therefore, cannot associate Port %s with a Floating IP (port_id).", f.FloatingNetworkID, fixed.SubnetID, p.ID)
	}
	owner, err := tx.Get(store.PrefixIndex + translate.FIPPortIndex(p.ID, fixed.IPAddress))
	if err != nil {
		return err
	}
	if owner != nil && string(owner) != f.ID {
		return conflict("FloatingIPPortAlreadyAssociated", "Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s (port_id).",
			f.FloatingIPAddress, f.ID, p.ID, fixed.IPAddress, f.FloatingNetworkID)
	}
	pid, ip := p.ID, fixed.IPAddress
	f.PortID, f.FixedIPAddress, f.RouterID = &pid, &ip, &router
	return nil
}

func disassociate(f *translate.FloatingIP) { f.PortID, f.FixedIPAddress, f.RouterID = nil, nil, nil }

// disassociatePort disassociates every floating IP of a port (being
// deleted or becoming a router's), as Neutron does.
func (s *Server) disassociatePort(tx *store.Tx, portID string) error {
	kvs, err := tx.List(store.PrefixIndex + "fipport/" + portID + "/")
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		old, err := getObj[translate.FloatingIP](tx, "floatingips", string(kv.Value))
		if err != nil {
			return err
		}
		if old == nil {
			continue
		}
		f := *old
		disassociate(&f)
		f.RevisionNumber++
		f.UpdatedAt = s.now()
		if err := writeFIP(tx, old, &f); err != nil {
			return err
		}
	}
	return nil
}

// keepAssociatedIPs refuses a port update that drops a fixed IP a
// floating IP is associated with.
func keepAssociatedIPs(tx *store.Tx, old, p *translate.Port) error {
	for _, f := range old.FixedIPs {
		if slices.Contains(p.FixedIPs, f) {
			continue
		}
		owner, err := tx.Get(store.PrefixIndex + translate.FIPPortIndex(old.ID, f.IPAddress))
		if err != nil {
			return err
		}
		if owner != nil {
			return conflict("FloatingIPPortInUse", "Fixed IP %s of port %s has floating IP %s associated; disassociate it first (fixed_ips).", f.IPAddress, old.ID, owner)
		}
	}
	return nil
}

// allocFloatingAddr takes floating IP address want ("" for any free one)
// on external network n (from subnetID if given).
func allocFloatingAddr(tx *store.Tx, n *translate.Network, subnetID, want string) (string, error) {
	subnets, err := networkSubnets(tx, n)
	if err != nil {
		return "", err
	}
	if subnetID != "" {
		subnets = slices.DeleteFunc(subnets, func(s *translate.Subnet) bool { return s.ID != subnetID })
		if len(subnets) == 0 {
			return "", invalidInput("subnet_id", "subnet %s is not a subnet of network %s", subnetID, n.ID)
		}
	}
	used, err := usedAddrs(tx, n.ID)
	if err != nil {
		return "", err
	}
	if want != "" {
		a, err := netip.ParseAddr(want)
		if err != nil || !a.Is4() {
			return "", invalidInput("floating_ip_address", "'%s' is not a valid IPv4 address", clip([]byte(want)))
		}
		for _, sn := range subnets {
			c, err := netip.ParsePrefix(sn.CIDR)
			if err != nil || !translate.HostRange(c).Contains(a) {
				continue
			}
			if sn.GatewayIP != nil && *sn.GatewayIP == a.String() {
				return "", conflict("IpAddressInUse", "Unable to complete operation for network %s. The IP address %s is in use (gateway of subnet %s) (floating_ip_address).", n.ID, a, sn.ID)
			}
			if _, taken := used[a]; taken {
				return "", conflict("IpAddressInUse", "Unable to complete operation for network %s. The IP address %s is in use (floating_ip_address).", n.ID, a)
			}
			return a.String(), nil
		}
		return "", invalidInput("floating_ip_address", "%s is not in any subnet of network %s", a, n.ID)
	}
	for _, sn := range subnets {
		pools, err := translate.Pools(sn)
		if err != nil {
			return "", err
		}
		if a, ok := translate.FreeAddr(pools, func(a netip.Addr) bool { _, u := used[a]; return u }); ok {
			return a.String(), nil
		}
	}
	return "", conflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
}

func (s *Server) createFIP(ctx context.Context, c *caller, a attrs) (any, error) {
	if err := a.check(fipCreateAttrs, nil); err != nil {
		return nil, err
	}
	project, err := ownerProject(c, a)
	if err != nil {
		return nil, err
	}
	tmpl := translate.FloatingIP{ID: newID(), ProjectID: project, TenantID: project, Tags: []string{}, RevisionNumber: 1}
	var want, subnetID, portID, fixedIP string
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{
		{"floating_network_id", &tmpl.FloatingNetworkID, 64}, {"floating_ip_address", &want, 64}, {"subnet_id", &subnetID, 64},
		{"port_id", &portID, 64}, {"fixed_ip_address", &fixedIP, 64}, {"description", &tmpl.Description, maxDescLen},
	} {
		if !a.isNull(f.name) {
			if err := a.str(f.name, f.dst, f.max); err != nil {
				return nil, err
			}
		}
	}
	if err := decodeTags(a, &tmpl.Tags); err != nil {
		return nil, err
	}
	if tmpl.FloatingNetworkID == "" {
		return nil, invalidInput("floating_network_id", "a floating_network_id is required")
	}
	if want != "" && !c.Admin {
		return nil, forbidden("(rule:create_floatingip:floating_ip_address) is disallowed by policy: only an admin may choose floating_ip_address")
	}
	if fixedIP != "" && portID == "" {
		return nil, invalidInput("fixed_ip_address", "fixed_ip_address requires a port_id")
	}
	var f translate.FloatingIP
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		f = tmpl
		f.CreatedAt, f.UpdatedAt = s.now(), s.now()
		n, err := visibleNetwork(tx, c, f.FloatingNetworkID)
		if err != nil {
			return err
		}
		if !n.External {
			return invalidInput("floating_network_id", "network %s is not an external network (router:external)", n.ID)
		}
		if f.FloatingIPAddress, err = allocFloatingAddr(tx, n, subnetID, want); err != nil {
			return err
		}
		if portID != "" {
			if err := associate(tx, c, &f, portID, fixedIP); err != nil {
				return err
			}
		}
		return writeFIP(tx, nil, &f)
	})
	if err != nil {
		return nil, err
	}
	return &f, nil
}

func (s *Server) updateFIP(ctx context.Context, c *caller, id string, a attrs) (any, error) {
	if err := a.check(fipUpdateAttrs, fipReadOnly); err != nil {
		return nil, err
	}
	var portID, fixedIP string
	for _, k := range []struct {
		name string
		dst  *string
	}{{"port_id", &portID}, {"fixed_ip_address", &fixedIP}} {
		if !a.isNull(k.name) {
			if err := a.str(k.name, k.dst, 64); err != nil {
				return nil, err
			}
		}
	}
	if fixedIP != "" && portID == "" {
		return nil, invalidInput("fixed_ip_address", "fixed_ip_address requires a port_id")
	}
	var f *translate.FloatingIP
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		old, err := visibleFIP(tx, c, id)
		if err != nil {
			return err
		}
		if !c.canChange(old.ProjectID) {
			return notFound("FloatingIP", id)
		}
		cp := *old
		cp.Tags = slices.Clone(old.Tags)
		f = &cp
		if err := a.str("description", &f.Description, maxDescLen); err != nil {
			return err
		}
		if err := decodeTags(a, &f.Tags); err != nil {
			return err
		}
		if a.has("port_id") {
			disassociate(f)
			if portID != "" {
				if err := associate(tx, c, f, portID, fixedIP); err != nil {
					return err
				}
			}
		}
		f.UpdatedAt = s.now()
		f.RevisionNumber++
		return writeFIP(tx, old, f)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (s *Server) deleteFIP(ctx context.Context, c *caller, id string) error {
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		f, err := visibleFIP(tx, c, id)
		if err != nil {
			return err
		}
		if !c.canChange(f.ProjectID) {
			return notFound("FloatingIP", id)
		}
		tx.Delete(store.APIKey("floatingips", id))
		tx.Delete(store.TopoKey(topology.KindFloatingIP, id))
		return writeIndexes(tx, translate.FloatingIPIndexes(f), nil, "")
	})
	return err
}
