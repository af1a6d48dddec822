package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"slices"

	"hivenet/internal/store"
	"hivenet/internal/topology"
	"hivenet/internal/translate"
)

// Routers. A router's ports (interfaces and gateway) are ordinary ports
// with device_owner network:router_interface / network:router_gateway and
// device_id the router; each owns routerport/<router>/<port> (and, for an
// interface, subnetrouter/<subnet>/<port>) index keys, so the router's
// ports and a subnet's routers are one guarded range read away. The
// topology Router is rewritten with every change of its gateway or
// routes.

// maxRoutes is Neutron's default max_routes.
const maxRoutes = 30

var (
	routerCreateAttrs = []string{"name", "description", "admin_state_up", "project_id", "tenant_id", "external_gateway_info", "distributed", "tags", "routes"}
	routerUpdateAttrs = []string{"name", "description", "admin_state_up", "external_gateway_info", "routes", "distributed", "tags"}
	routerReadOnly    = []string{"id", "project_id", "tenant_id", "status", "created_at", "updated_at", "revision_number", "hivenet:gateway_port_id"}
)

func (s *Server) routersResource() *resource {
	return visibleResource[translate.Router](&resource{
		singular: "router", plural: "routers",
		attrs:  attrNames(translate.Router{}),
		create: s.createRouter,
		update: s.updateRouter,
		delete: s.deleteRouter,
	}, s.st, "routers", "Router")
}

func visibleRouter(tx *store.Tx, c *caller, id string) (*translate.Router, error) {
	return visibleObj[translate.Router](tx, c, "routers", "Router", id)
}

// gatewayRequest is a decoded external_gateway_info: nil info clears the
// gateway.
type gatewayRequest struct {
	info       *translate.GatewayInfo
	fixedGiven bool
}

func decodeGateway(c *caller, a attrs) (*gatewayRequest, error) {
	if !a.has("external_gateway_info") {
		return nil, nil
	}
	raw := bytes.TrimSpace(a["external_gateway_info"])
	if string(raw) == "null" || string(raw) == "{}" {
		return &gatewayRequest{}, nil
	}
	var in struct {
		NetworkID        *string                     `json:"network_id"`
		EnableSNAT       *bool                       `json:"enable_snat"`
		ExternalFixedIPs []translate.ExternalFixedIP `json:"external_fixed_ips"`
		QoSPolicyID      *string                     `json:"qos_policy_id"`
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil {
		return nil, invalidInput("external_gateway_info", "'%s' is not valid: %v", clip(raw), err)
	}
	if in.NetworkID == nil || *in.NetworkID == "" {
		return nil, invalidInput("external_gateway_info", "network_id is required")
	}
	if in.QoSPolicyID != nil {
		return nil, invalidInput("external_gateway_info", "qos_policy_id is not supported")
	}
	if len(in.ExternalFixedIPs) > maxFixedIPs {
		return nil, invalidInput("external_gateway_info", "%d external_fixed_ips exceed the maximum of %d", len(in.ExternalFixedIPs), maxFixedIPs)
	}
	for _, f := range in.ExternalFixedIPs {
		if f.IPAddress != "" && !c.Admin {
			return nil, forbidden("(rule:create_router:external_gateway_info:external_fixed_ips) is disallowed by policy: only an admin may choose the gateway address (external_gateway_info)")
		}
	}
	gi := &translate.GatewayInfo{NetworkID: *in.NetworkID, EnableSNAT: true, ExternalFixedIPs: in.ExternalFixedIPs}
	if in.EnableSNAT != nil {
		gi.EnableSNAT = *in.EnableSNAT
	}
	return &gatewayRequest{info: gi, fixedGiven: len(in.ExternalFixedIPs) > 0}, nil
}

// decodeRoutes checks the form of routes; checkRoutes their next hops.
func decodeRoutes(a attrs) ([]translate.RouterRoute, error) {
	if !a.has("routes") {
		return nil, nil
	}
	var rs []translate.RouterRoute
	if a.isNull("routes") {
		return []translate.RouterRoute{}, nil
	}
	if err := a.list("routes", &rs); err != nil {
		return nil, err
	}
	if len(rs) > maxRoutes {
		return nil, Errorf(http.StatusBadRequest, "RoutesExhausted", "Unable to complete operation for %d routes: exceeds the maximum of %d (routes).", len(rs), maxRoutes)
	}
	for i, r := range rs {
		d, err := netip.ParsePrefix(r.Destination)
		if err != nil || !d.Addr().Is4() || d.Masked() != d {
			return nil, Errorf(http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: destination '%s' is not a valid IPv4 CIDR (routes).", clip([]byte(r.Destination)))
		}
		nh, err := netip.ParseAddr(r.NextHop)
		if err != nil || !nh.Is4() {
			return nil, Errorf(http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: nexthop '%s' is not a valid IPv4 address (routes).", clip([]byte(r.NextHop)))
		}
		rs[i] = translate.RouterRoute{Destination: d.String(), NextHop: nh.String()}
		for _, o := range rs[:i] {
			if o == rs[i] {
				return nil, Errorf(http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: duplicate route %s via %s (routes).", o.Destination, o.NextHop)
			}
		}
	}
	if rs == nil {
		rs = []translate.RouterRoute{}
	}
	return rs, nil
}

// routerPorts reads a router's ports (guarded: a port added or changed
// meanwhile makes the transaction retry).
func routerPorts(tx *store.Tx, routerID string) ([]*translate.Port, error) {
	kvs, err := tx.List(store.PrefixIndex + translate.RouterPortPrefix(routerID))
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = store.APIKey("ports", string(kv.Value))
	}
	if err := tx.Prefetch(keys...); err != nil {
		return nil, err
	}
	var out []*translate.Port
	for _, kv := range kvs {
		p, err := getObj[translate.Port](tx, "ports", string(kv.Value))
		if err != nil {
			return nil, err
		}
		if p != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// connectedSubnets returns the subnets of ports' addresses, with the
// addresses the router itself has.
func connectedSubnets(tx *store.Tx, ports []*translate.Port) ([]*translate.Subnet, []string, error) {
	var subs []*translate.Subnet
	var own []string
	for _, p := range ports {
		for _, f := range p.FixedIPs {
			own = append(own, f.IPAddress)
			if slices.ContainsFunc(subs, func(s *translate.Subnet) bool { return s.ID == f.SubnetID }) {
				continue
			}
			sn, err := getObj[translate.Subnet](tx, "subnets", f.SubnetID)
			if err != nil {
				return nil, nil, err
			}
			if sn != nil {
				subs = append(subs, sn)
			}
		}
	}
	return subs, own, nil
}

// checkRoutes checks every next hop is on a connected subnet and is not
// one of the router's own addresses, as Neutron does.
func checkRoutes(routes []translate.RouterRoute, subs []*translate.Subnet, own []string) error {
	for _, r := range routes {
		nh := netip.MustParseAddr(r.NextHop)
		if slices.Contains(own, r.NextHop) {
			return Errorf(http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: %s via %s, the nexthop is used by the router (routes).", r.Destination, r.NextHop)
		}
		if !slices.ContainsFunc(subs, func(s *translate.Subnet) bool {
			p, err := netip.ParsePrefix(s.CIDR)
			return err == nil && p.Contains(nh)
		}) {
			return Errorf(http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: %s via %s, the nexthop is not connected with router (routes).", r.Destination, r.NextHop)
		}
	}
	return nil
}

// writeRouter stores r and its translation. gw is its gateway port (nil:
// read it, if any).
func writeRouter(tx *store.Tx, r *translate.Router, gw *translate.Port) error {
	if err := tx.PutJSON(store.APIKey("routers", r.ID), r); err != nil {
		return err
	}
	var ext *translate.Subnet
	if r.GatewayPortID != "" {
		if gw == nil {
			var err error
			if gw, err = getObj[translate.Port](tx, "ports", r.GatewayPortID); err != nil {
				return err
			}
		}
		if gw != nil && len(gw.FixedIPs) > 0 {
			var err error
			if ext, err = getObj[translate.Subnet](tx, "subnets", gw.FixedIPs[0].SubnetID); err != nil {
				return err
			}
		}
	} else {
		gw = nil
	}
	tr, err := translate.TopoRouter(r, gw, ext)
	if err != nil {
		return err
	}
	return putTopo(tx, topology.KindRouter, r.ID, tr)
}

// newRouterPort makes a router's port on network n (owner: interface or
// gateway) with the requested addresses (or one default address).
func (s *Server) newRouterPort(tx *store.Tx, n *translate.Network, r *translate.Router, owner string, req []translate.FixedIP, given bool) (*translate.Port, error) {
	project := r.ProjectID
	if owner == translate.OwnerRouterGateway {
		project = "" // as Neutron: the tenant does not own its gateway port
	}
	p := &translate.Port{
		ID: newID(), NetworkID: n.ID, ProjectID: project, TenantID: project, AdminStateUp: true, Status: statusDown,
		DeviceOwner: owner, DeviceID: r.ID, SecurityGroups: []string{}, AllowedAddressPairs: []translate.AddressPair{},
		Profile: map[string]any{}, VNICType: "normal", Tags: []string{}, RevisionNumber: 1,
		CreatedAt: s.now(), UpdatedAt: s.now(),
	}
	var err error
	if p.FixedIPs, err = resolveFixedIPs(tx, n, p.ID, owner, req, given); err != nil {
		return nil, err
	}
	if len(p.FixedIPs) == 0 {
		return nil, invalidInput("external_gateway_info", "network %s has no subnet to take an address from", n.ID)
	}
	if p.MACAddress, err = s.chooseMAC(tx, n.ID, p.ID, ""); err != nil {
		return nil, err
	}
	if err := finishPort(p); err != nil {
		return nil, err
	}
	if p.TunnelKey, err = allocTunnelKey(tx); err != nil {
		return nil, err
	}
	return p, writePort(tx, nil, p)
}

// setGateway gives r a gateway on req's network (r has none now).
func (s *Server) setGateway(tx *store.Tx, c *caller, r *translate.Router, req *gatewayRequest) (*translate.Port, error) {
	n, err := visibleNetwork(tx, c, req.info.NetworkID)
	if err != nil {
		return nil, err
	}
	if !n.External {
		return nil, invalidInput("external_gateway_info", "network %s is not an external network (router:external)", n.ID)
	}
	var fixed []translate.FixedIP
	for _, f := range req.info.ExternalFixedIPs {
		fixed = append(fixed, translate.FixedIP(f))
	}
	gw, err := s.newRouterPort(tx, n, r, translate.OwnerRouterGateway, fixed, req.fixedGiven)
	if err != nil {
		return nil, err
	}
	r.GatewayPortID = gw.ID
	info := *req.info
	info.ExternalFixedIPs = nil
	for _, f := range gw.FixedIPs {
		info.ExternalFixedIPs = append(info.ExternalFixedIPs, translate.ExternalFixedIP(f))
	}
	r.GatewayInfo = &info
	return gw, nil
}

// clearGateway removes r's gateway port, refused while floating IPs use
// the router.
func clearGateway(tx *store.Tx, r *translate.Router) error {
	if r.GatewayPortID == "" {
		return nil
	}
	fips, err := tx.List(store.PrefixIndex + translate.RouterFIPPrefix(r.ID))
	if err != nil {
		return err
	}
	if len(fips) > 0 {
		return conflict("RouterExternalGatewayInUseByFloatingIp", "Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs (%s).", r.ID, r.GatewayInfo.NetworkID, fips[0].Value)
	}
	gw, err := getObj[translate.Port](tx, "ports", r.GatewayPortID)
	if err != nil {
		return err
	}
	if gw != nil {
		if err := removePort(tx, gw); err != nil {
			return err
		}
	}
	r.GatewayPortID, r.GatewayInfo = "", nil
	return nil
}

func routerAttrs(c *caller, a attrs, r *translate.Router) error {
	if err := a.str("name", &r.Name, maxNameLen); err != nil {
		return err
	}
	if err := a.str("description", &r.Description, maxDescLen); err != nil {
		return err
	}
	if err := a.boolean("admin_state_up", &r.AdminStateUp); err != nil {
		return err
	}
	if a.has("distributed") {
		if !c.Admin {
			return forbidden("(rule:create_router:distributed) is disallowed by policy: only an admin may set distributed")
		}
		d := true
		if err := a.boolean("distributed", &d); err != nil {
			return err
		}
		if !d {
			return invalidInput("distributed", "hivenet routers are always distributed")
		}
	}
	return decodeTags(a, &r.Tags)
}

func (s *Server) createRouter(ctx context.Context, c *caller, a attrs) (any, error) {
	if err := a.check(routerCreateAttrs, nil); err != nil {
		return nil, err
	}
	project, err := ownerProject(c, a)
	if err != nil {
		return nil, err
	}
	tmpl := translate.Router{ID: newID(), ProjectID: project, TenantID: project, AdminStateUp: true, Status: statusActive,
		Routes: []translate.RouterRoute{}, Distributed: true, Tags: []string{}, RevisionNumber: 1}
	if err := routerAttrs(c, a, &tmpl); err != nil {
		return nil, err
	}
	routes, err := decodeRoutes(a)
	if err != nil {
		return nil, err
	}
	if len(routes) > 0 {
		// A new router has no interface: no next hop is connected yet.
		return nil, Errorf(http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: %s via %s, the nexthop is not connected with router (routes).", routes[0].Destination, routes[0].NextHop)
	}
	gwReq, err := decodeGateway(c, a)
	if err != nil {
		return nil, err
	}
	var r translate.Router
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		r = tmpl
		r.CreatedAt, r.UpdatedAt = s.now(), s.now()
		var gw *translate.Port
		if gwReq != nil && gwReq.info != nil {
			var err error
			if gw, err = s.setGateway(tx, c, &r, gwReq); err != nil {
				return err
			}
		}
		return writeRouter(tx, &r, gw)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Server) updateRouter(ctx context.Context, c *caller, id string, a attrs) (any, error) {
	if err := a.check(routerUpdateAttrs, routerReadOnly); err != nil {
		return nil, err
	}
	routes, err := decodeRoutes(a)
	if err != nil {
		return nil, err
	}
	gwReq, err := decodeGateway(c, a)
	if err != nil {
		return nil, err
	}
	var r *translate.Router
	_, err = s.st.Update(ctx, func(tx *store.Tx) error {
		old, err := visibleRouter(tx, c, id)
		if err != nil {
			return err
		}
		if !c.canChange(old.ProjectID) {
			return notFound("Router", id)
		}
		cp := *old
		cp.Routes = slices.Clone(old.Routes)
		cp.Tags = slices.Clone(old.Tags)
		r = &cp
		if err := routerAttrs(c, a, r); err != nil {
			return err
		}
		var gw *translate.Port
		if gwReq != nil {
			switch {
			case gwReq.info == nil:
				if err := clearGateway(tx, r); err != nil {
					return err
				}
			case old.GatewayInfo != nil && old.GatewayInfo.NetworkID == gwReq.info.NetworkID && !gwReq.fixedGiven:
				info := *old.GatewayInfo
				info.EnableSNAT = gwReq.info.EnableSNAT
				r.GatewayInfo = &info
			default:
				if err := clearGateway(tx, r); err != nil {
					return err
				}
				if gw, err = s.setGateway(tx, c, r, gwReq); err != nil {
					return err
				}
			}
		}
		if routes != nil {
			r.Routes = routes
		}
		if len(r.Routes) > 0 && (routes != nil || gwReq != nil) {
			ports, err := routerPorts(tx, r.ID)
			if err != nil {
				return err
			}
			// The ports read are those committed; a gateway changed in
			// this transaction counts as it will be.
			ports = slices.DeleteFunc(ports, func(p *translate.Port) bool { return p.DeviceOwner == translate.OwnerRouterGateway })
			if gw == nil && r.GatewayPortID != "" {
				if gw, err = getObj[translate.Port](tx, "ports", r.GatewayPortID); err != nil {
					return err
				}
			}
			if gw != nil {
				ports = append(ports, gw)
			}
			subs, own, err := connectedSubnets(tx, ports)
			if err != nil {
				return err
			}
			if err := checkRoutes(r.Routes, subs, own); err != nil {
				return err
			}
		}
		r.UpdatedAt = s.now()
		r.RevisionNumber++
		return writeRouter(tx, r, gw)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Server) deleteRouter(ctx context.Context, c *caller, id string) error {
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		r, err := visibleRouter(tx, c, id)
		if err != nil {
			return err
		}
		if !c.canChange(r.ProjectID) {
			return notFound("Router", id)
		}
		ports, err := routerPorts(tx, id)
		if err != nil {
			return err
		}
		for _, p := range ports {
			if p.DeviceOwner == translate.OwnerRouterInterface {
				return conflict("RouterInUse", "Router %s still has ports (interface port %s).", id, p.ID)
			}
		}
		if err := clearGateway(tx, r); err != nil {
			return err
		}
		tx.Delete(store.APIKey("routers", id))
		tx.Delete(store.TopoKey(topology.KindRouter, id))
		return nil
	})
	return err
}

// serveRouterAction handles PUT /v2.0/routers/<id>/add_router_interface
// and remove_router_interface.
func (s *Server) serveRouterAction(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller, id, action string) error {
	if r.Method != http.MethodPut {
		return methodNotAllowed(r)
	}
	if action != "add_router_interface" && action != "remove_router_interface" {
		return Errorf(http.StatusNotFound, "HTTPNotFound", "The resource %s could not be found.", r.URL.Path)
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var a attrs
	if err := strictUnmarshal(body, &a); err != nil || a == nil {
		return badRequest("Malformed request body: %s", jsonReason(err))
	}
	if err := a.check([]string{"subnet_id", "port_id"}, nil); err != nil {
		return err
	}
	var subnetID, portID string
	if err := a.str("subnet_id", &subnetID, 64); err != nil {
		return err
	}
	if err := a.str("port_id", &portID, 64); err != nil {
		return err
	}
	var out *translate.RouterInterface
	if action == "add_router_interface" {
		if (subnetID == "") == (portID == "") {
			return badRequest("Bad router request: Either subnet_id or port_id must be specified (and not both).")
		}
		out, err = s.addInterface(ctx, c, id, subnetID, portID)
	} else {
		if subnetID == "" && portID == "" {
			return badRequest("Bad router request: Either subnet_id or port_id must be specified.")
		}
		out, err = s.removeInterface(ctx, c, id, subnetID, portID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func interfaceInfo(r *translate.Router, p *translate.Port) *translate.RouterInterface {
	ri := &translate.RouterInterface{ID: r.ID, PortID: p.ID, TenantID: r.ProjectID, ProjectID: r.ProjectID, NetworkID: p.NetworkID, SubnetIDs: []string{}}
	for _, f := range p.FixedIPs {
		if !slices.Contains(ri.SubnetIDs, f.SubnetID) {
			ri.SubnetIDs = append(ri.SubnetIDs, f.SubnetID)
		}
	}
	if len(ri.SubnetIDs) > 0 {
		ri.SubnetID = ri.SubnetIDs[0]
	}
	return ri
}

// checkOverlap refuses subnets overlapping those of the router's other
// interfaces (or the same subnet twice).
func checkOverlap(tx *store.Tx, routerID string, subs []*translate.Subnet) error {
	ports, err := routerPorts(tx, routerID)
	if err != nil {
		return err
	}
	ports = slices.DeleteFunc(ports, func(p *translate.Port) bool { return p.DeviceOwner != translate.OwnerRouterInterface })
	have, _, err := connectedSubnets(tx, ports)
	if err != nil {
		return err
	}
	for _, sn := range subs {
		c, err := netip.ParsePrefix(sn.CIDR)
		if err != nil {
			return err
		}
		for _, o := range have {
			oc, err := netip.ParsePrefix(o.CIDR)
			if err == nil && oc.Overlaps(c) {
				if o.ID == sn.ID {
					return badRequest("Bad router request: Router already has a port on subnet %s (subnet_id).", sn.ID)
				}
				return badRequest("Bad router request: Cidr %s of subnet %s overlaps with cidr %s of subnet %s.", sn.CIDR, sn.ID, o.CIDR, o.ID)
			}
		}
	}
	return nil
}

func (s *Server) addInterface(ctx context.Context, c *caller, routerID, subnetID, portID string) (*translate.RouterInterface, error) {
	var out *translate.RouterInterface
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		r, err := visibleRouter(tx, c, routerID)
		if err != nil {
			return err
		}
		if !c.canChange(r.ProjectID) {
			return notFound("Router", routerID)
		}
		if subnetID != "" {
			sn, err := visibleSubnet(tx, c, subnetID)
			if err != nil {
				return err
			}
			n, err := getObj[translate.Network](tx, "networks", sn.NetworkID)
			if err != nil {
				return err
			}
			if n == nil {
				return notFound("Network", sn.NetworkID)
			}
			if n.External {
				return badRequest("Bad router request: subnet %s is on external network %s; set it as external_gateway_info instead (subnet_id).", sn.ID, n.ID)
			}
			if !c.canChange(sn.ProjectID) && !n.Shared {
				return notFound("Subnet", subnetID)
			}
			if sn.GatewayIP == nil {
				return badRequest("Bad router request: Subnet for router interface must have a gateway IP (subnet_id %s).", sn.ID)
			}
			if err := checkOverlap(tx, r.ID, []*translate.Subnet{sn}); err != nil {
				return err
			}
			p, err := s.newRouterPort(tx, n, r, translate.OwnerRouterInterface, []translate.FixedIP{{SubnetID: sn.ID, IPAddress: *sn.GatewayIP}}, true)
			if err != nil {
				return err
			}
			out = interfaceInfo(r, p)
			return nil
		}
		old, err := visiblePort(tx, c, portID)
		if err != nil {
			return err
		}
		if !c.canChange(old.ProjectID) {
			return notFound("Port", portID)
		}
		if old.DeviceID != "" || translate.IsRouterPort(old) {
			return conflict("PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.", old.ID, old.NetworkID, old.DeviceID)
		}
		if old.HostID != "" {
			return conflict("PortInUse", "Unable to complete operation on port %s: it is bound to host %s (binding:host_id).", old.ID, old.HostID)
		}
		if len(old.FixedIPs) == 0 {
			return badRequest("Bad router request: Router port must have at least one fixed IP (port_id %s).", old.ID)
		}
		n, err := getObj[translate.Network](tx, "networks", old.NetworkID)
		if err != nil {
			return err
		}
		if n == nil || n.External {
			return badRequest("Bad router request: port %s is on an external network (port_id).", old.ID)
		}
		var subs []*translate.Subnet
		for _, f := range old.FixedIPs {
			sn, err := getObj[translate.Subnet](tx, "subnets", f.SubnetID)
			if err != nil {
				return err
			}
			if sn != nil {
				subs = append(subs, sn)
			}
		}
		if err := checkOverlap(tx, r.ID, subs); err != nil {
			return err
		}
		if err := s.disassociatePort(tx, old.ID); err != nil {
			return err
		}
		p := *old
		p.DeviceOwner, p.DeviceID = translate.OwnerRouterInterface, r.ID
		p.PortSecurityEnabled = false
		p.SecurityGroups = []string{}
		p.AllowedAddressPairs = []translate.AddressPair{}
		p.RevisionNumber++
		p.UpdatedAt = s.now()
		if err := finishPort(&p); err != nil {
			return err
		}
		if err := writePort(tx, old, &p); err != nil {
			return err
		}
		if err := syncPortSecurity(tx, old, &p, nil); err != nil {
			return err
		}
		out = interfaceInfo(r, &p)
		return nil
	})
	return out, err
}

func (s *Server) removeInterface(ctx context.Context, c *caller, routerID, subnetID, portID string) (*translate.RouterInterface, error) {
	var out *translate.RouterInterface
	_, err := s.st.Update(ctx, func(tx *store.Tx) error {
		r, err := visibleRouter(tx, c, routerID)
		if err != nil {
			return err
		}
		if !c.canChange(r.ProjectID) {
			return notFound("Router", routerID)
		}
		ports, err := routerPorts(tx, r.ID)
		if err != nil {
			return err
		}
		var p *translate.Port
		for _, q := range ports {
			if q.DeviceOwner != translate.OwnerRouterInterface || (portID != "" && q.ID != portID) {
				continue
			}
			if subnetID != "" && !slices.ContainsFunc(q.FixedIPs, func(f translate.FixedIP) bool { return f.SubnetID == subnetID }) {
				continue
			}
			p = q
			break
		}
		if p == nil {
			if portID != "" {
				return Errorf(http.StatusNotFound, "RouterInterfaceNotFound", "Router %s does not have an interface with id %s.", r.ID, portID)
			}
			return Errorf(http.StatusNotFound, "RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s.", r.ID, subnetID)
		}
		subs, _, err := connectedSubnets(tx, []*translate.Port{p})
		if err != nil {
			return err
		}
		for _, rt := range r.Routes {
			nh := netip.MustParseAddr(rt.NextHop)
			for _, sn := range subs {
				if c, err := netip.ParsePrefix(sn.CIDR); err == nil && c.Contains(nh) {
					return conflict("RouterInterfaceInUseByRoute", "Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more routes (%s via %s).", sn.ID, r.ID, rt.Destination, rt.NextHop)
				}
			}
		}
		fips, err := tx.List(store.PrefixIndex + translate.RouterFIPPrefix(r.ID))
		if err != nil {
			return err
		}
		for _, kv := range fips {
			f, err := getObj[translate.FloatingIP](tx, "floatingips", string(kv.Value))
			if err != nil {
				return err
			}
			if f == nil || f.FixedIPAddress == nil {
				continue
			}
			a := netip.MustParseAddr(*f.FixedIPAddress)
			for _, sn := range subs {
				if c, err := netip.ParsePrefix(sn.CIDR); err == nil && c.Contains(a) {
					return conflict("RouterInterfaceInUseByFloatingIP", "Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs (%s).", sn.ID, r.ID, f.FloatingIPAddress)
				}
			}
		}
		out = interfaceInfo(r, p)
		return removePort(tx, p)
	})
	return out, err
}

// readBody reads a request body of at most MaxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, badRequest("reading the request body: %v", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, Errorf(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "request body larger than %d bytes", MaxBodyBytes)
	}
	return body, nil
}
