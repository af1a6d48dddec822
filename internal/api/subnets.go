package api

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"hivenet/internal/store"
	"hivenet/internal/topology"
	"hivenet/internal/translate"
)

var (
	subnetCreateAttrs = []string{"network_id", "cidr", "ip_version", "name", "description", "gateway_ip", "allocation_pools",
		"dns_nameservers", "host_routes", "enable_dhcp", "project_id", "tenant_id", "tags", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id"}
	subnetUpdateAttrs = []string{"name", "description", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp", "tags"}
	subnetReadOnly    = []string{"id", "network_id", "cidr", "ip_version", "project_id", "tenant_id", "created_at", "updated_at",
		"revision_number", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "hivenet:dhcp_server"}
)

func (s *Server) subnetsResource() *resource {
	return &resource{
		singular: "subnet", plural: "subnets",
		attrs: attrNames(translate.Subnet{}),
		list: func(ctx context.Context, c *caller) ([]any, error) {
			sns, err := listObjs[translate.Subnet](ctx, s.st, "subnets")
			if err != nil {
				return nil, err
			}
			shared := map[string]bool{}
			if !c.Admin {
				ns, err := listObjs[translate.Network](ctx, s.st, "networks")
				if err != nil {
					return nil, err
				}
				for _, n := range ns {
					shared[n.ID] = n.Shared || n.External
				}
			}
			var out []any
			for _, sn := range sns {
				if c.canSee(sn.ProjectID, shared[sn.NetworkID]) {
					out = append(out, sn)
				}
			}
			return out, nil
		},
		show: func(ctx context.Context, c *caller, id string) (any, error) {
			var sn *translate.Subnet
			_, err := s.st.View(ctx, func(tx *store.Tx) (err error) {
				sn, err = visibleSubnet(tx, c, id)
				return err
			})
			return sn, err
		},
		create: s.createSubnet,
		update: s.updateSubnet,
		delete: s.deleteSubnet,
	}
}

func visibleSubnet(tx *store.Tx, c *caller, id string) (*translate.Subnet, error) {
	if !validID(id) {
		return nil, notFound("Subnet", id)
	}
	sn, err := getObj[translate.Subnet](tx, "subnets", id)
	if err != nil {
		return nil, err
	}
	if sn == nil {
		return nil, notFound("Subnet", id)
	}
	if c.canSee(sn.ProjectID, false) {
		return sn, nil
	}
	n, err := getObj[translate.Network](tx, "networks", sn.NetworkID)
	if err != nil {
		return nil, err
	}
	if n == nil || !(n.Shared || n.External) {
		return nil, notFound("Subnet", id)
	}
	return sn, nil
}

// subnetAttrs decodes the attributes shared by create and update.
// gatewayGiven reports whether gateway_ip was in the request.
func subnetAttrs(a attrs, sn *translate.Subnet) (gatewayGiven bool, err error) {
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{{"name", &sn.Name, maxNameLen}, {"description", &sn.Description, maxDescLen}} {
		if err := a.str(f.name, f.dst, f.max); err != nil {
			return false, err
		}
	}
	if a.has("gateway_ip") {
		if a.isNull("gateway_ip") {
			sn.GatewayIP = nil
		} else {
			var g string
			if err := a.str("gateway_ip", &g, 64); err != nil {
				return false, err
			}
			sn.GatewayIP = &g
			if g == "" {
				sn.GatewayIP = nil
			}
		}
	}
	if err := a.boolean("enable_dhcp", &sn.EnableDHCP); err != nil {
		return false, err
	}
	if err := a.strList("dns_nameservers", &sn.DNSNameservers); err != nil {
		return false, err
	}
	if err := a.list("allocation_pools", &sn.AllocationPools); err != nil {
		return false, err
	}
	if err := a.list("host_routes", &sn.HostRoutes); err != nil {
		return false, err
	}
	if err := decodeTags(a, &sn.Tags); err != nil {
		return false, err
	}
	return a.has("gateway_ip"), nil
}

func (s *Server) createSubnet(ctx context.Context, c *caller, a attrs) (any, error) {
	if err := a.check(subnetCreateAttrs, nil); err != nil {
		return nil, err
	}
	project, err := ownerProject(c, a)
	if err != nil {
		return nil, err
	}
	tmpl := translate.Subnet{ID: newID(), ProjectID: project, TenantID: project, IPVersion: 4, EnableDHCP: true,
		Tags: []string{}, RevisionNumber: 1}
	if err := a.str("network_id", &tmpl.NetworkID, 64); err != nil {
		return nil, err
	}
	if tmpl.NetworkID == "" {
		return nil, invalidInput("network_id", "a network_id is required")
	}
	if err := a.integer("ip_version", &tmpl.IPVersion); err != nil {
		return nil, err
	}
	if err := a.str("cidr", &tmpl.CIDR, 64); err != nil {
		return nil, err
	}
	if tmpl.CIDR == "" {
		return nil, invalidInput("cidr", "a cidr is required (subnet pools are not supported)")
	}
	for _, f := range []string{"ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id"} {
		if a.has(f) && !a.isNull(f) {
			return nil, invalidInput(f, "%s is only valid for IPv6 or subnet pools, which are not supported", f)
		}
	}
	gatewayGiven, err := subnetAttrs(a, &tmpl)
	if err != nil {
		return nil, err
	}
	// Everything that does not depend on the store is checked before
	// touching it.
	if err := translate.PrepareSubnet(&tmpl, gatewayGiven, nil); err != nil {
		return nil, err
	}
	var sn translate.Subnet
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		sn = tmpl
		n, err := changeableNetwork(tx, c, sn.NetworkID)
		if err != nil {
			return err
		}
		if sn.ProjectID != n.ProjectID && !c.Admin {
			return forbidden("Subnets must belong to the project of their network")
		}
		var others []*translate.Subnet
		for _, id := range n.Subnets {
			o, err := getObj[translate.Subnet](tx, "subnets", id)
			if err != nil {
				return err
			}
			if o != nil {
				others = append(others, o)
			}
		}
		if err := translate.PrepareSubnet(&sn, true, others); err != nil {
			return err
		}
		if sn.EnableDHCP {
			if err := reserveDHCP(tx, &sn); err != nil {
				return err
			}
		}
		sn.CreatedAt, sn.UpdatedAt = s.now(), s.now()
		if err := writeSubnet(tx, nil, &sn); err != nil {
			return err
		}
		n.Subnets = append(n.Subnets, sn.ID)
		n.RevisionNumber++
		n.UpdatedAt = s.now()
		return tx.PutJSON(store.APIKey("networks", n.ID), n)
	})
	if err != nil {
		return nil, err
	}
	return &sn, nil
}

// usedAddrs returns the addresses of a network taken by ports or DHCP
// servers (an unguarded scan: each address taken is guarded by Create).
func usedAddrs(tx *store.Tx, networkID string) (map[netip.Addr]string, error) {
	prefix := store.PrefixIndex + translate.IPIndexPrefix(networkID)
	kvs, err := tx.Peek(prefix)
	if err != nil {
		return nil, err
	}
	used := make(map[netip.Addr]string, len(kvs))
	for _, kv := range kvs {
		if a, err := netip.ParseAddr(strings.TrimPrefix(kv.Key, prefix)); err == nil {
			used[a] = string(kv.Value)
		}
	}
	return used, nil
}

// reserveDHCP picks the subnet's DHCP server address: the first pool
// address not used. Its index key is created by writeSubnet.
func reserveDHCP(tx *store.Tx, sn *translate.Subnet) error {
	used, err := usedAddrs(tx, sn.NetworkID)
	if err != nil {
		return err
	}
	pools, err := translate.Pools(sn)
	if err != nil {
		return err
	}
	a, ok := translate.FreeAddr(pools, func(a netip.Addr) bool { _, u := used[a]; return u })
	if !ok {
		return conflict("IpAddressGenerationFailure", "No more IP addresses available on subnet %s for the DHCP server.", sn.ID)
	}
	sn.DHCPServer = a.String()
	return nil
}

// writeSubnet stores sn (api object, topology, index keys), replacing old.
func writeSubnet(tx *store.Tx, old, sn *translate.Subnet) error {
	ts, err := translate.TopoSubnet(sn)
	if err != nil {
		return err
	}
	if err := tx.PutJSON(store.APIKey("subnets", sn.ID), sn); err != nil {
		return err
	}
	if err := putTopo(tx, topology.KindSubnet, sn.ID, ts); err != nil {
		return err
	}
	var oldIdx []string
	if old != nil {
		oldIdx = translate.SubnetIndexes(old)
	}
	return writeIndexes(tx, oldIdx, translate.SubnetIndexes(sn), translate.DHCPOwner(sn.ID))
}

func deleteSubnetKeys(tx *store.Tx, sn *translate.Subnet) {
	tx.Delete(store.APIKey("subnets", sn.ID))
	tx.Delete(store.TopoKey(topology.KindSubnet, sn.ID))
	for _, k := range translate.SubnetIndexes(sn) {
		tx.Delete(store.PrefixIndex + k)
	}
}

func changeableSubnet(tx *store.Tx, c *caller, id string) (*translate.Subnet, error) {
	sn, err := visibleSubnet(tx, c, id)
	if err != nil {
		return nil, err
	}
	if !c.canChange(sn.ProjectID) {
		return nil, forbidden("Subnet %s belongs to another project", id)
	}
	return sn, nil
}

func (s *Server) updateSubnet(ctx context.Context, c *caller, id string, a attrs) (any, error) {
	if err := a.check(subnetUpdateAttrs, subnetReadOnly); err != nil {
		return nil, err
	}
	var sn *translate.Subnet
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		old, err := changeableSubnet(tx, c, id)
		if err != nil {
			return err
		}
		cp := *old
		cp.DNSNameservers = slices.Clone(old.DNSNameservers)
		cp.HostRoutes = slices.Clone(old.HostRoutes)
		cp.AllocationPools = slices.Clone(old.AllocationPools)
		sn = &cp
		if _, err := subnetAttrs(a, sn); err != nil {
			return err
		}
		// Re-run the create checks on the result (gateway inside the
		// CIDR and outside the pools, pools, options).
		if err := translate.PrepareSubnet(sn, true, nil); err != nil {
			return err
		}
		if sn.GatewayIP != nil && (old.GatewayIP == nil || *old.GatewayIP != *sn.GatewayIP) {
			gw := netip.MustParseAddr(*sn.GatewayIP)
			owner, err := tx.Get(store.PrefixIndex + translate.IPIndex(sn.NetworkID, gw))
			if err != nil {
				return err
			}
			if owner != nil {
				return conflict("GatewayIpInUse", "Gateway ip %s is already in use by %s. Unable to update subnet %s.", gw, owner, sn.ID)
			}
		}
		switch {
		case sn.EnableDHCP && sn.DHCPServer == "":
			if err := reserveDHCP(tx, sn); err != nil {
				return err
			}
		case !sn.EnableDHCP:
			sn.DHCPServer = ""
		}
		sn.UpdatedAt = s.now()
		sn.RevisionNumber++
		if err := writeSubnet(tx, old, sn); err != nil {
			return err
		}
		if !equalPtr(old.GatewayIP, sn.GatewayIP) {
			// Routers with a gateway on this subnet route by default to
			// its gateway_ip.
			return rewriteGatewayRouters(tx, sn)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sn, nil
}

// deleteSubnet refuses a subnet whose addresses ports use (409).
func (s *Server) deleteSubnet(ctx context.Context, c *caller, id string) error {
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		sn, err := changeableSubnet(tx, c, id)
		if err != nil {
			return err
		}
		cidr, err := netip.ParsePrefix(sn.CIDR)
		if err != nil {
			return err
		}
		// Guarded: a port taking an address meanwhile is a conflict.
		prefix := store.PrefixIndex + translate.IPIndexPrefix(sn.NetworkID)
		kvs, err := tx.List(prefix)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			a, err := netip.ParseAddr(strings.TrimPrefix(kv.Key, prefix))
			if err != nil || !cidr.Contains(a) || string(kv.Value) == translate.DHCPOwner(sn.ID) {
				continue
			}
			return conflict("SubnetInUse", "Unable to complete operation on subnet %s: one or more ports have an IP allocation from this subnet (%s used by port %s).", id, a, kv.Value)
		}
		deleteSubnetKeys(tx, sn)
		n, err := getObj[translate.Network](tx, "networks", sn.NetworkID)
		if err != nil {
			return err
		}
		if n != nil {
			n.Subnets = slices.DeleteFunc(n.Subnets, func(x string) bool { return x == id })
			n.RevisionNumber++
			n.UpdatedAt = s.now()
			return tx.PutJSON(store.APIKey("networks", n.ID), n)
		}
		return nil
	})
	return err
}

func equalPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// rewriteGatewayRouters rewrites the routers whose gateway port has its
// first address on subnet sn (now in its new state), reading the ports
// of sn's network (on an external network: the routers' gateways).
func rewriteGatewayRouters(tx *store.Tx, sn *translate.Subnet) error {
	kvs, err := tx.List(store.PrefixIndex + translate.NetworkPortPrefix(sn.NetworkID))
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		p, err := getObj[translate.Port](tx, "ports", string(kv.Value))
		if err != nil {
			return err
		}
		if p == nil || p.DeviceOwner != translate.OwnerRouterGateway || len(p.FixedIPs) == 0 || p.FixedIPs[0].SubnetID != sn.ID {
			continue
		}
		r, err := getObj[translate.Router](tx, "routers", p.DeviceID)
		if err != nil {
			return err
		}
		if r == nil {
			continue
		}
		tr, err := translate.TopoRouter(r, p, sn)
		if err != nil {
			return err
		}
		if err := putTopo(tx, topology.KindRouter, r.ID, tr); err != nil {
			return err
		}
	}
	return nil
}
