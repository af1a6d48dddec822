package api

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"hivenet/internal/store"
	"hivenet/internal/topology"
	"hivenet/internal/translate"
)

// Security groups and their rules. A group is stored whole, rules
// included (api/security-groups/<id>); each rule has an index key naming
// its group (sgrule/<rule>), so a rule write is a read-modify-write of its
// group. The group's members are the sgport/<group>/ index keys their
// ports own. The translation, in the same transaction:
//
//   - the group's two chains (topology chain/sg-in-<group>,
//     chain/sg-out-<group>) holding its compiled rules;
//   - its IPAddrGroup (topology addrgroup/<group>): the addresses of its
//     members, for remote_group_id rules, changed incrementally (each
//     member owns sgaddr/<group>/<addr>/<port> per address it adds);
//   - each member port's inbound and outbound chains (topology
//     chain/in-<port>, chain/out-<port>): established, then a jump to
//     each of its groups' chains, then drop.
//
// Costs: a rule write rewrites its group and the group's two chains,
// O(rules of the group), whatever the number of members; a port write
// rewrites the port's two chains and, for each group whose address set
// changes, the address group (one guarded read, plus a small range read
// per address removed). Limits: maxRulesPerGroup rules per group,
// maxGroupsPerPort groups per port; an address group is one etcd value,
// about 20 bytes per member address, so a group of 50,000 members stays
// under etcd's 1.5 MiB request limit.

const (
	maxRulesPerGroup = 200
	maxGroupsPerPort = 16
)

var (
	sgCreateAttrs   = []string{"name", "description", "project_id", "tenant_id", "stateful", "tags"}
	sgUpdateAttrs   = []string{"name", "description", "stateful", "tags"}
	sgReadOnly      = []string{"id", "project_id", "tenant_id", "security_group_rules", "created_at", "updated_at", "revision_number"}
	sgrCreateAttrs  = []string{"security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id", "description", "project_id", "tenant_id"}
	sgDescriptionID = "Default security group"
)

func (s *Server) securityGroupsResource() *resource {
	return &resource{
		singular: "security_group", plural: "security_groups",
		attrs: attrNames(translate.SecurityGroup{}),
		list: func(ctx context.Context, c *caller) ([]any, error) {
			if err := s.ensureDefaultGroupOf(ctx, c.Project); err != nil {
				return nil, err
			}
			gs, err := listVisible[translate.SecurityGroup](ctx, s.st, c, "security-groups")
			return anys(gs), err
		},
		show: func(ctx context.Context, c *caller, id string) (any, error) {
			var g *translate.SecurityGroup
			_, err := s.st.View(ctx, func(tx *store.Tx) (err error) {
				g, err = visibleGroup(tx, c, id)
				return err
			})
			return g, err
		},
		create: s.createGroup,
		update: s.updateGroup,
		delete: s.deleteGroup,
	}
}

func (s *Server) securityGroupRulesResource() *resource {
	return &resource{
		singular: "security_group_rule", plural: "security_group_rules",
		attrs: attrNames(translate.SecurityGroupRule{}),
		list: func(ctx context.Context, c *caller) ([]any, error) {
			if err := s.ensureDefaultGroupOf(ctx, c.Project); err != nil {
				return nil, err
			}
			gs, err := listVisible[translate.SecurityGroup](ctx, s.st, c, "security-groups")
			if err != nil {
				return nil, err
			}
			var out []any
			for _, g := range gs {
				for i := range g.Rules {
					out = append(out, &g.Rules[i])
				}
			}
			return out, nil
		},
		show: func(ctx context.Context, c *caller, id string) (any, error) {
			var r *translate.SecurityGroupRule
			_, err := s.st.View(ctx, func(tx *store.Tx) error {
				_, i, g, err := visibleRule(tx, c, id)
				if err == nil {
					r = &g.Rules[i]
				}
				return err
			})
			return r, err
		},
		create: s.createRule,
		delete: s.deleteRule,
	}
}

func getGroup(tx *store.Tx, id string) (*translate.SecurityGroup, error) {
	if !validID(id) {
		return nil, nil
	}
	return getObj[translate.SecurityGroup](tx, "security-groups", id)
}

func visibleGroup(tx *store.Tx, c *caller, id string) (*translate.SecurityGroup, error) {
	g, err := getGroup(tx, id)
	if err != nil {
		return nil, err
	}
	if g == nil || !c.canSee(g.ProjectID, false) {
		return nil, notFound("SecurityGroup", id)
	}
	return g, nil
}

// visibleRule finds rule id: its group ID, index in the group, the group.
func visibleRule(tx *store.Tx, c *caller, id string) (string, int, *translate.SecurityGroup, error) {
	nf := Errorf(http.StatusNotFound, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
	if !validID(id) {
		return "", 0, nil, nf
	}
	gid, err := tx.Get(store.PrefixIndex + translate.SGRuleIndex(id))
	if err != nil {
		return "", 0, nil, err
	}
	if gid == nil {
		return "", 0, nil, nf
	}
	g, err := getGroup(tx, string(gid))
	if err != nil {
		return "", 0, nil, err
	}
	if g == nil || !c.canSee(g.ProjectID, false) {
		return "", 0, nil, nf
	}
	i := slices.IndexFunc(g.Rules, func(r translate.SecurityGroupRule) bool { return r.ID == id })
	if i < 0 {
		return "", 0, nil, nf
	}
	return g.ID, i, g, nil
}

// writeGroup stores g (API object, chains, address group when new, index
// keys), replacing old.
func writeGroup(tx *store.Tx, old, g *translate.SecurityGroup) error {
	if err := tx.PutJSON(store.APIKey("security-groups", g.ID), g); err != nil {
		return err
	}
	in, out, err := translate.GroupChains(g)
	if err != nil {
		return err
	}
	if err := putTopo(tx, topology.KindChain, in.ID, in); err != nil {
		return err
	}
	if err := putTopo(tx, topology.KindChain, out.ID, out); err != nil {
		return err
	}
	var oldIdx []string
	if old != nil {
		oldIdx = translate.SecurityGroupIndexes(old)
	} else {
		ag, _ := translate.AddrGroup(g.ID, nil) // no member yet
		if err := putTopo(tx, topology.KindAddrGroup, g.ID, ag); err != nil {
			return err
		}
	}
	return writeIndexes(tx, oldIdx, translate.SecurityGroupIndexes(g), g.ID)
}

// defaultGroup returns project's default group, creating it (with its
// rules and address group) in tx if it does not exist yet.
// created reports the group is new (written in tx).
func (s *Server) defaultGroup(tx *store.Tx, project string) (g *translate.SecurityGroup, created bool, err error) {
	id, err := tx.Get(store.PrefixIndex + translate.SGDefaultIndex(project))
	if err != nil {
		return nil, false, err
	}
	if id != nil {
		g, err := getGroup(tx, string(id))
		if err != nil {
			return nil, false, err
		}
		if g == nil {
			return nil, false, Errorf(http.StatusInternalServerError, "InternalServerError", "default security group %s of project %s is missing", id, project)
		}
		return g, false, nil
	}
	g = &translate.SecurityGroup{ID: newID(), Name: translate.DefaultGroupName, Description: sgDescriptionID,
		ProjectID: project, TenantID: project, Stateful: true, Tags: []string{}, RevisionNumber: 1,
		CreatedAt: s.now(), UpdatedAt: s.now()}
	g.Rules = translate.DefaultGroupRules(g, newID)
	for i := range g.Rules {
		g.Rules[i].CreatedAt, g.Rules[i].UpdatedAt = g.CreatedAt, g.CreatedAt
	}
	return g, true, writeGroup(tx, nil, g)
}

// ensureDefaultGroupOf creates project's default group if it is missing
// (on the first list, as Neutron does).
func (s *Server) ensureDefaultGroupOf(ctx context.Context, project string) error {
	var exists bool
	if _, err := s.st.View(ctx, func(tx *store.Tx) error {
		v, err := tx.Get(store.PrefixIndex + translate.SGDefaultIndex(project))
		exists = v != nil
		return err
	}); err != nil || exists {
		return err
	}
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		_, _, err := s.defaultGroup(tx, project)
		return err
	})
	return err
}

func groupAttrs(a attrs, g *translate.SecurityGroup) error {
	if err := a.str("name", &g.Name, maxNameLen); err != nil {
		return err
	}
	if err := a.str("description", &g.Description, maxDescLen); err != nil {
		return err
	}
	stateful := true
	if err := a.boolean("stateful", &stateful); err != nil {
		return err
	}
	if !stateful {
		return invalidInput("stateful", "stateless security groups are not supported")
	}
	return decodeTags(a, &g.Tags)
}

func (s *Server) createGroup(ctx context.Context, c *caller, a attrs) (any, error) {
	if err := a.check(sgCreateAttrs, nil); err != nil {
		return nil, err
	}
	project, err := ownerProject(c, a)
	if err != nil {
		return nil, err
	}
	tmpl := translate.SecurityGroup{ID: newID(), ProjectID: project, TenantID: project, Stateful: true, Tags: []string{}, RevisionNumber: 1}
	if err := groupAttrs(a, &tmpl); err != nil {
		return nil, err
	}
	if tmpl.Name == translate.DefaultGroupName {
		return nil, conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists (name 'default' is reserved).")
	}
	var g translate.SecurityGroup
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		g = tmpl
		g.CreatedAt, g.UpdatedAt = s.now(), s.now()
		if _, _, err := s.defaultGroup(tx, project); err != nil {
			return err
		}
		g.Rules = translate.NewGroupRules(&g, newID)
		for i := range g.Rules {
			g.Rules[i].CreatedAt, g.Rules[i].UpdatedAt = g.CreatedAt, g.CreatedAt
		}
		return writeGroup(tx, nil, &g)
	})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

func (s *Server) updateGroup(ctx context.Context, c *caller, id string, a attrs) (any, error) {
	if err := a.check(sgUpdateAttrs, sgReadOnly); err != nil {
		return nil, err
	}
	var g *translate.SecurityGroup
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		old, err := visibleGroup(tx, c, id)
		if err != nil {
			return err
		}
		if !c.canChange(old.ProjectID) {
			return notFound("SecurityGroup", id)
		}
		cp := *old
		cp.Tags = slices.Clone(old.Tags)
		g = &cp
		if err := groupAttrs(a, g); err != nil {
			return err
		}
		if (old.Name == translate.DefaultGroupName) != (g.Name == translate.DefaultGroupName) {
			if old.Name == translate.DefaultGroupName {
				return conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed (name).")
			}
			return conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists (name 'default' is reserved).")
		}
		g.UpdatedAt = s.now()
		g.RevisionNumber++
		return writeGroup(tx, old, g)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (s *Server) deleteGroup(ctx context.Context, c *caller, id string) error {
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		g, err := visibleGroup(tx, c, id)
		if err != nil {
			return err
		}
		if !c.canChange(g.ProjectID) {
			return notFound("SecurityGroup", id)
		}
		if g.Name == translate.DefaultGroupName && !c.Admin {
			return conflict("SecurityGroupCannotRemoveDefault", "Removing default security group not allowed.")
		}
		members, err := tx.List(store.PrefixIndex + translate.SGMemberPrefix(id))
		if err != nil {
			return err
		}
		if len(members) > 0 {
			return conflict("SecurityGroupInUse", "Security Group %s in use (by port %s and %d more).", id, members[0].Value, len(members)-1)
		}
		refs, err := tx.List(store.PrefixIndex + translate.SGRefPrefix(id))
		if err != nil {
			return err
		}
		if len(refs) > 0 {
			return conflict("SecurityGroupInUse", "Security Group %s in use: it is the remote_group_id of a rule of security group %s.", id, refs[0].Value)
		}
		tx.Delete(store.APIKey("security-groups", id))
		tx.Delete(store.TopoKey(topology.KindAddrGroup, id))
		tx.Delete(store.TopoKey(topology.KindChain, translate.GroupIngressChainID(id)))
		tx.Delete(store.TopoKey(topology.KindChain, translate.GroupEgressChainID(id)))
		return writeIndexes(tx, translate.SecurityGroupIndexes(g), nil, "")
	})
	return err
}

func optInt(a attrs, name string) (*int, error) {
	if !a.has(name) || a.isNull(name) {
		return nil, nil
	}
	var v int
	if err := a.integer(name, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func optStr(a attrs, name string) (*string, error) {
	if !a.has(name) || a.isNull(name) {
		return nil, nil
	}
	var v string
	if err := a.str(name, &v, 255); err != nil {
		return nil, err
	}
	return &v, nil
}

func (s *Server) createRule(ctx context.Context, c *caller, a attrs) (any, error) {
	if err := a.check(sgrCreateAttrs, nil); err != nil {
		return nil, err
	}
	project, err := ownerProject(c, a)
	if err != nil {
		return nil, err
	}
	r := translate.SecurityGroupRule{ID: newID(), ProjectID: project, TenantID: project, RevisionNumber: 1}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"security_group_id", &r.SecurityGroupID}, {"direction", &r.Direction}, {"ethertype", &r.EtherType}} {
		if err := a.str(f.name, f.dst, 64); err != nil {
			return nil, err
		}
	}
	if err := a.str("description", &r.Description, maxDescLen); err != nil {
		return nil, err
	}
	if r.SecurityGroupID == "" {
		return nil, invalidInput("security_group_id", "a security_group_id is required")
	}
	if a.has("protocol") && !a.isNull("protocol") {
		// A number (JSON number or string) or a name.
		var n int
		if a.integer("protocol", &n) == nil {
			p := strconv.Itoa(n)
			r.Protocol = &p
		} else if r.Protocol, err = optStr(a, "protocol"); err != nil {
			return nil, err
		}
	}
	if r.PortRangeMin, err = optInt(a, "port_range_min"); err != nil {
		return nil, err
	}
	if r.PortRangeMax, err = optInt(a, "port_range_max"); err != nil {
		return nil, err
	}
	if r.RemoteIPPrefix, err = optStr(a, "remote_ip_prefix"); err != nil {
		return nil, err
	}
	if r.RemoteGroupID, err = optStr(a, "remote_group_id"); err != nil {
		return nil, err
	}
	if err := translate.PrepareRule(&r); err != nil {
		return nil, err
	}
	var out translate.SecurityGroupRule
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		out = r
		out.CreatedAt, out.UpdatedAt = s.now(), s.now()
		old, err := visibleGroup(tx, c, r.SecurityGroupID)
		if err != nil {
			return err
		}
		if !c.canChange(old.ProjectID) {
			return notFound("SecurityGroup", r.SecurityGroupID)
		}
		if !a.has("project_id") && !a.has("tenant_id") {
			out.ProjectID, out.TenantID = old.ProjectID, old.ProjectID // an admin's rule in a project's group
		}
		if old.ProjectID != out.ProjectID && !c.Admin {
			return forbidden("A rule must belong to the project of its security group (project_id)")
		}
		if r.RemoteGroupID != nil && *r.RemoteGroupID != old.ID {
			rg, err := visibleGroup(tx, c, *r.RemoteGroupID)
			if err != nil {
				return err
			}
			if rg.ProjectID != old.ProjectID && !c.Admin {
				return notFound("SecurityGroup", *r.RemoteGroupID)
			}
		}
		key := translate.RuleKey(&out)
		for _, o := range old.Rules {
			if translate.RuleKey(&o) == key {
				return conflict("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", o.ID)
			}
		}
		if len(old.Rules) >= maxRulesPerGroup {
			return conflict("OverQuota", "Quota exceeded for resources: ['security_group_rule'] (at most %d rules per group).", maxRulesPerGroup)
		}
		g := *old
		g.Rules = append(slices.Clone(old.Rules), out)
		g.RevisionNumber++
		g.UpdatedAt = s.now()
		return writeGroup(tx, old, &g)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (s *Server) deleteRule(ctx context.Context, c *caller, id string) error {
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		_, i, old, err := visibleRule(tx, c, id)
		if err != nil {
			return err
		}
		if !c.canChange(old.ProjectID) {
			return Errorf(http.StatusNotFound, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
		}
		g := *old
		g.Rules = slices.Delete(slices.Clone(old.Rules), i, i+1)
		g.RevisionNumber++
		g.UpdatedAt = s.now()
		return writeGroup(tx, old, &g)
	})
	return err
}

// loadGroups reads the groups ids (guarded), taking those in override
// as they are; a missing group is absent from the result.
func loadGroups(tx *store.Tx, ids []string, override map[string]*translate.SecurityGroup) (map[string]*translate.SecurityGroup, error) {
	var keys []string
	for _, id := range ids {
		if override[id] == nil && validID(id) {
			keys = append(keys, store.APIKey("security-groups", id))
		}
	}
	if err := tx.Prefetch(keys...); err != nil {
		return nil, err
	}
	out := make(map[string]*translate.SecurityGroup, len(ids))
	for _, id := range ids {
		if g := override[id]; g != nil {
			out[id] = g
			continue
		}
		g, err := getGroup(tx, id)
		if err != nil {
			return nil, err
		}
		if g != nil {
			out[id] = g
		}
	}
	return out, nil
}

// writeChains stores p's two chains.
func writeChains(tx *store.Tx, p *translate.Port) error {
	in, out := translate.PortChains(p)
	if err := putTopo(tx, topology.KindChain, in.ID, in); err != nil {
		return err
	}
	return putTopo(tx, topology.KindChain, out.ID, out)
}

// syncPortSecurity writes the security translation of a port change
// (old nil: created; p nil: deleted): its chains, and the address groups
// of the groups whose address set the change alters, incrementally. The
// caller has checked the groups exist.
//
// override holds the groups created earlier in tx (reads do not see
// buffered writes; their address groups start empty).
func syncPortSecurity(tx *store.Tx, old, p *translate.Port, override map[string]*translate.SecurityGroup) error {
	switch {
	case p != nil && translate.HasChains(p):
		if err := writeChains(tx, p); err != nil {
			return err
		}
	case old != nil && translate.HasChains(old):
		tx.Delete(store.TopoKey(topology.KindChain, translate.InboundChainID(old.ID)))
		tx.Delete(store.TopoKey(topology.KindChain, translate.OutboundChainID(old.ID)))
	}
	var oldGroups, newGroups []string
	var oldAddrs, newAddrs []netip.Addr
	id := ""
	if old != nil {
		oldGroups, oldAddrs, id = old.SecurityGroups, translate.GroupAddrs(old), old.ID
	}
	if p != nil {
		newGroups, newAddrs, id = p.SecurityGroups, translate.GroupAddrs(p), p.ID
	}
	minus := func(a, b []netip.Addr) []netip.Addr {
		var out []netip.Addr
		for _, x := range a {
			if !slices.Contains(b, x) {
				out = append(out, x)
			}
		}
		return out
	}
	groups := slices.Clone(oldGroups)
	for _, g := range newGroups {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		var removed, added []netip.Addr
		switch inOld, inNew := slices.Contains(oldGroups, g), slices.Contains(newGroups, g); {
		case inOld && inNew:
			removed, added = minus(oldAddrs, newAddrs), minus(newAddrs, oldAddrs)
		case inOld:
			removed = oldAddrs
		default:
			added = newAddrs
		}
		if len(removed) == 0 && len(added) == 0 {
			continue
		}
		if err := updateAddrGroup(tx, g, id, removed, added, override[g] != nil); err != nil {
			return err
		}
	}
	return nil
}

// updateAddrGroup adds and removes port portID's addresses to and from
// group g's address group. An address leaves only when no other member
// contributes it (one guarded range read of its SGAddrIndex keys). The
// address group is read guarded: concurrent changes of the group's
// membership make the transaction retry. created: g was created earlier
// in tx (its address group is empty).
func updateAddrGroup(tx *store.Tx, g, portID string, removed, added []netip.Addr, created bool) error {
	cur := topology.IPAddrGroup{ID: g}
	if !created {
		found, err := tx.GetJSON(store.TopoKey(topology.KindAddrGroup, g), &cur)
		if err != nil {
			return err
		}
		if !found {
			return nil // the group is gone: nothing to translate
		}
	}
	set := make(map[netip.Addr]bool, len(cur.Addrs)+len(added))
	for _, a := range cur.Addrs {
		set[a] = true
	}
	for _, a := range removed {
		kvs, err := tx.List(store.PrefixIndex + translate.SGAddrPrefix(g, a))
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(kvs, func(kv store.KV) bool { return string(kv.Value) != portID }) {
			delete(set, a)
		}
	}
	for _, a := range added {
		set[a] = true
	}
	ag := &topology.IPAddrGroup{ID: g, Addrs: make([]netip.Addr, 0, len(set))}
	for a := range set {
		ag.Addrs = append(ag.Addrs, a)
	}
	slices.SortFunc(ag.Addrs, netip.Addr.Compare)
	return putTopo(tx, topology.KindAddrGroup, g, ag)
}
