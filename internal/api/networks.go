package api

import (
	"context"
	"strings"

	"hivenet/internal/store"
	"hivenet/internal/topology"
	"hivenet/internal/translate"
)

var (
	networkCreateAttrs = []string{"name", "description", "admin_state_up", "shared", "project_id", "tenant_id", "mtu",
		"port_security_enabled", "router:external", "tags", "provider:network_type", "provider:physical_network"}
	networkUpdateAttrs = []string{"name", "description", "admin_state_up", "shared", "mtu", "port_security_enabled", "router:external", "tags"}
	networkReadOnly    = []string{"id", "status", "subnets", "project_id", "tenant_id", "created_at", "updated_at",
		"revision_number", "provider:network_type", "provider:physical_network", "provider:segmentation_id"}
	// maxPhysNetLen bounds provider:physical_network (Neutron's 64).
	maxPhysNetLen = 64
)

func (s *Server) networksResource() *resource {
	return &resource{
		singular: "network", plural: "networks",
		attrs: attrNames(translate.Network{}),
		list: func(ctx context.Context, c *caller) ([]any, error) {
			ns, err := listObjs[translate.Network](ctx, s.st, "networks")
			if err != nil {
				return nil, err
			}
			var out []any
			for _, n := range ns {
				if c.canSee(n.ProjectID, n.Shared || n.External) {
					out = append(out, n)
				}
			}
			return out, nil
		},
		show: func(ctx context.Context, c *caller, id string) (any, error) {
			var n *translate.Network
			_, err := s.st.View(ctx, func(tx *store.Tx) (err error) {
				n, err = visibleNetwork(tx, c, id)
				return err
			})
			return n, err
		},
		create: s.createNetwork,
		update: s.updateNetwork,
		delete: s.deleteNetwork,
	}
}

// visibleNetwork reads network id (guarded) or answers 404.
func visibleNetwork(tx *store.Tx, c *caller, id string) (*translate.Network, error) {
	if !validID(id) {
		return nil, notFound("Network", id)
	}
	n, err := getObj[translate.Network](tx, "networks", id)
	if err != nil {
		return nil, err
	}
	if n == nil || !c.canSee(n.ProjectID, n.Shared || n.External) {
		return nil, notFound("Network", id)
	}
	return n, nil
}

// changeableNetwork is visibleNetwork for writes: a shared network of
// another project is visible but not changeable (403).
func changeableNetwork(tx *store.Tx, c *caller, id string) (*translate.Network, error) {
	n, err := visibleNetwork(tx, c, id)
	if err != nil {
		return nil, err
	}
	if !c.canChange(n.ProjectID) {
		return nil, forbidden("Network %s belongs to another project", id)
	}
	return n, nil
}

// networkAttrs decodes the attributes shared by create and update into n.
func (s *Server) networkAttrs(c *caller, a attrs, n *translate.Network) error {
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{{"name", &n.Name, maxNameLen}, {"description", &n.Description, maxDescLen}} {
		if err := a.str(f.name, f.dst, f.max); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"admin_state_up", &n.AdminStateUp}, {"shared", &n.Shared}, {"port_security_enabled", &n.PortSecurityEnabled}, {"router:external", &n.External}} {
		if err := a.boolean(f.name, f.dst); err != nil {
			return err
		}
	}
	if a.has("shared") && n.Shared && !c.Admin {
		return forbidden("Only an admin may share a network (shared)")
	}
	if a.has("router:external") && n.External && !c.Admin {
		return forbidden("(rule:create_network:router:external) is disallowed by policy: only an admin may set router:external")
	}
	if err := a.integer("mtu", &n.MTU); err != nil {
		return err
	}
	if a.has("mtu") && (n.MTU < 68 || n.MTU > s.mtu) {
		return invalidInput("mtu", "MTU %d is out of range: the maximum is %d (underlay MTU minus %d of VXLAN overhead), the minimum 68", n.MTU, s.mtu, translate.TunnelOverhead)
	}
	return decodeTags(a, &n.Tags)
}

func (s *Server) createNetwork(ctx context.Context, c *caller, a attrs) (any, error) {
	if err := a.check(networkCreateAttrs, nil); err != nil {
		return nil, err
	}
	project, err := ownerProject(c, a)
	if err != nil {
		return nil, err
	}
	tmpl := translate.Network{
		ID: newID(), ProjectID: project, TenantID: project, AdminStateUp: true, PortSecurityEnabled: true,
		MTU: s.mtu, Status: "ACTIVE", Subnets: []string{}, Tags: []string{}, NetworkType: "vxlan", RevisionNumber: 1,
	}
	if err := s.networkAttrs(c, a, &tmpl); err != nil {
		return nil, err
	}
	if err := providerAttrs(c, a, &tmpl); err != nil {
		return nil, err
	}
	var n translate.Network
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		n = tmpl
		n.CreatedAt, n.UpdatedAt = s.now(), s.now()
		if n.PhysicalNetwork != nil {
			owner, err := tx.Get(store.PrefixIndex + translate.PhysNetIndex(*n.PhysicalNetwork))
			if err != nil {
				return err
			}
			if owner != nil {
				return conflict("FlatNetworkInUse", "Unable to create the flat network. Physical network %s is in use (by network %s).", *n.PhysicalNetwork, owner)
			}
		}
		k, err := allocTunnelKey(tx)
		if err != nil {
			return err
		}
		n.SegmentationID = k
		if err := tx.PutJSON(store.APIKey("networks", n.ID), &n); err != nil {
			return err
		}
		if err := writeIndexes(tx, nil, translate.NetworkIndexes(&n), n.ID); err != nil {
			return err
		}
		return putTopo(tx, topology.KindBridge, n.ID, translate.Bridge(&n))
	})
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func (s *Server) updateNetwork(ctx context.Context, c *caller, id string, a attrs) (any, error) {
	if err := a.check(networkUpdateAttrs, networkReadOnly); err != nil {
		return nil, err
	}
	var n *translate.Network
	_, err := s.st.Update(ctx, func(tx *store.Tx) (err error) {
		if n, err = changeableNetwork(tx, c, id); err != nil {
			return err
		}
		wasShared, wasExternal := n.Shared, n.External
		if err := s.networkAttrs(c, a, n); err != nil {
			return err
		}
		if n.External != wasExternal {
			return invalidInput("router:external", "router:external cannot change after creation (it goes with provider:network_type flat)")
		}
		if wasShared && !n.Shared {
			if err := checkNoForeignPorts(tx, n); err != nil {
				return err
			}
		}
		n.UpdatedAt = s.now()
		n.RevisionNumber++
		if err := tx.PutJSON(store.APIKey("networks", n.ID), n); err != nil {
			return err
		}
		return putTopo(tx, topology.KindBridge, n.ID, translate.Bridge(n))
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// deleteNetwork refuses a network with ports (409) and deletes its
// subnets with it, as Neutron does.
func (s *Server) deleteNetwork(ctx context.Context, c *caller, id string) error {
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		n, err := changeableNetwork(tx, c, id)
		if err != nil {
			return err
		}
		ports, err := tx.List(store.PrefixIndex + translate.NetworkPortPrefix(id))
		if err != nil {
			return err
		}
		if len(ports) > 0 {
			return conflict("NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network (%d ports).", id, len(ports))
		}
		for _, sid := range n.Subnets {
			sn, err := getObj[translate.Subnet](tx, "subnets", sid)
			if err != nil {
				return err
			}
			if sn == nil {
				continue
			}
			deleteSubnetKeys(tx, sn)
		}
		// Anything left under the network's address index (there should
		// be nothing once its subnets and ports are gone) goes too.
		left, err := tx.List(store.PrefixIndex + translate.IPIndexPrefix(id))
		if err != nil {
			return err
		}
		for _, kv := range left {
			if fip, err := getObj[translate.FloatingIP](tx, "floatingips", string(kv.Value)); err != nil {
				return err
			} else if fip != nil {
				return conflict("NetworkInUse", "Unable to complete operation on network %s. There are one or more floating IPs on the network (%s).", id, fip.FloatingIPAddress)
			}
			tx.Delete(kv.Key)
		}
		tx.Delete(store.APIKey("networks", id))
		tx.Delete(store.TopoKey(topology.KindBridge, id))
		return writeIndexes(tx, translate.NetworkIndexes(n), nil, "")
	})
	return err
}

// checkNoForeignPorts refuses to unshare a network other projects have
// ports on, as Neutron does.
func checkNoForeignPorts(tx *store.Tx, n *translate.Network) error {
	kvs, err := tx.List(store.PrefixIndex + translate.NetworkPortPrefix(n.ID))
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		p, err := getObj[translate.Port](tx, "ports", string(kv.Value))
		if err != nil {
			return err
		}
		if p != nil && p.ProjectID != n.ProjectID {
			return conflict("InvalidSharedSetting", "Unable to reconfigure sharing settings for network %s. Multiple tenants are using it (shared).", n.ID)
		}
	}
	return nil
}

// providerAttrs decodes provider:network_type (vxlan, the default, or
// flat) and provider:physical_network (flat only, required there). Only
// an admin sets them. hivenet reaches a flat network only through
// gateway hosts' uplinks, so flat networks are external and external
// networks flat.
func providerAttrs(c *caller, a attrs, n *translate.Network) error {
	for _, k := range []string{"provider:network_type", "provider:physical_network"} {
		if a.has(k) && !c.Admin {
			return forbidden("(rule:create_network:%s) is disallowed by policy: only an admin may set %s", k, k)
		}
	}
	if err := a.str("provider:network_type", &n.NetworkType, 0); err != nil {
		return err
	}
	var phys string
	if err := a.str("provider:physical_network", &phys, maxPhysNetLen); err != nil {
		return err
	}
	switch n.NetworkType {
	case "vxlan":
		if phys != "" {
			return invalidInput("provider:physical_network", "a vxlan network has no physical network")
		}
		if n.External {
			return invalidInput("router:external", "an external network must be flat (provider:network_type flat with a provider:physical_network)")
		}
	case "flat":
		if phys == "" {
			return invalidInput("provider:physical_network", "a flat network requires provider:physical_network")
		}
		if strings.ContainsAny(phys, "/ \t\n") {
			return invalidInput("provider:physical_network", "'%s' contains '/' or spaces", clip([]byte(phys)))
		}
		if !n.External {
			return invalidInput("router:external", "a flat network must be external (router:external true): only gateway hosts reach it")
		}
		n.PhysicalNetwork = &phys
	default:
		return invalidInput("provider:network_type", "network type '%s' is not supported, only vxlan and flat are", n.NetworkType)
	}
	return nil
}
