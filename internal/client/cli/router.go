package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
)

var routerColumns = []column{
	{header: "ID", field: "id"},
	{header: "Name", field: "name"},
	{header: "Status", field: "status"},
	{header: "State", field: "admin_state_up", format: formatUpDown},
	{header: "Project", field: "project_id"},
	{header: "External Gateway", field: "external_gateway_info", format: formatGateway},
}

// formatGateway shows a gateway as "NETWORK (ADDR, ...)" with "SNAT off"
// when disabled.
func formatGateway(v any, present bool) string {
	gi, ok := v.(map[string]any)
	if !present || !ok {
		return ""
	}
	s := formatValue(gi["network_id"])
	var addrs []string
	if l, ok := gi["external_fixed_ips"].([]any); ok {
		for _, f := range l {
			if m, ok := f.(map[string]any); ok {
				addrs = append(addrs, formatValue(m["ip_address"]))
			}
		}
	}
	if len(addrs) > 0 {
		s += " (" + strings.Join(addrs, ", ") + ")"
	}
	if snat, ok := gi["enable_snat"].(bool); ok && !snat {
		s += " SNAT off"
	}
	return s
}

func routerCommand() *cobra.Command {
	g := &globals{}
	cmd := resourceCommand(g, "router", "Manage virtual routers (interfaces, external gateway, static routes)")
	cmd.AddCommand(
		routerCreateCommand(g),
		listCommand(g, client.Routers, routerColumns, func(cmd *cobra.Command, lf *listFilters) {
			lf.add(cmd, "name", "name", "only routers with this name", nil)
			lf.add(cmd, "project", "project_id", "only routers of this project (ID)", nil)
		}),
		showCommand(g, client.Routers),
		routerUpdateCommand(g),
		routerSetCommand(g),
		routerUnsetCommand(g),
		routerInterfaceCommand(g, "add", "add_router_interface", "Attach a subnet or port to a router"),
		routerInterfaceCommand(g, "remove", "remove_router_interface", "Detach a subnet or port from a router"),
		deleteCommand(g, client.Routers),
	)
	return cmd
}

// gatewayFlags build external_gateway_info.
type gatewayFlags struct {
	cmd      *cobra.Command
	network  string
	fixedIPs []string
	snat     func(client.Object)
}

func addGatewayFlags(cmd *cobra.Command) *gatewayFlags {
	f := &gatewayFlags{cmd: cmd}
	cmd.Flags().StringVar(&f.network, "external-gateway", "", "external network of the router's gateway (name or ID)")
	cmd.Flags().StringArrayVar(&f.fixedIPs, "fixed-ip", nil, "gateway address, as subnet=SUBNET,ip-address=IP (repeatable; admin only for ip-address)")
	f.snat = boolPair(cmd, "enable-snat", "disable-snat", "enable_snat", "translate the sources of outgoing traffic to the gateway address (default)", "route external traffic without SNAT")
	return f
}

// gateway returns the external_gateway_info the flags describe, or nil
// when --external-gateway was not given (the other gateway flags then are
// an error).
func (f *gatewayFlags) gateway(ctx context.Context, c *client.Client) (client.Object, error) {
	changed := f.cmd.Flags().Changed
	if !changed("external-gateway") {
		if changed("fixed-ip") || changed("enable-snat") || changed("disable-snat") {
			return nil, fmt.Errorf("--fixed-ip, --enable-snat and --disable-snat need --external-gateway")
		}
		return nil, nil
	}
	var fixed []map[string]string
	for _, s := range f.fixedIPs {
		kv, err := parseKV("fixed-ip", s, []string{"subnet", "ip-address"}, nil)
		if err != nil {
			return nil, err
		}
		if a, ok := kv["ip-address"]; ok {
			if err := checkIP("fixed-ip ip-address", a); err != nil {
				return nil, err
			}
		}
		fixed = append(fixed, kv)
	}
	netID, err := c.Resolve(ctx, client.Networks, f.network)
	if err != nil {
		return nil, fmt.Errorf("--external-gateway: %w", err)
	}
	gi := client.Object{"network_id": netID}
	f.snat(gi)
	if len(fixed) > 0 {
		ips := []map[string]string{}
		for _, kv := range fixed {
			ip := map[string]string{}
			if a, ok := kv["ip-address"]; ok {
				ip["ip_address"] = a
			}
			if sub, ok := kv["subnet"]; ok {
				id, err := c.ResolveIn(ctx, client.Subnets, sub, url.Values{"network_id": {netID}})
				if err != nil {
					return nil, fmt.Errorf("--fixed-ip subnet: %w", err)
				}
				ip["subnet_id"] = id
			}
			ips = append(ips, ip)
		}
		gi["external_fixed_ips"] = ips
	}
	return gi, nil
}

func routerCreateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet router create r1 --external-gateway public --disable-snat"}
	gf := addGatewayFlags(cmd)
	adminUp := boolPair(cmd, "enable", "disable", "admin_state_up", "enable the router (default)", "disable the router")
	var project, description string
	cmd.Flags().StringVar(&project, "project", "", "owning project ID (admin only)")
	cmd.Flags().StringVar(&description, "description", "", "description")
	return createCommand(g, client.Routers, cmd, func(ctx context.Context, c *client.Client, name string) (client.Object, error) {
		body := client.Object{"name": name}
		if project != "" {
			body["project_id"] = project
		}
		if cmd.Flags().Changed("description") {
			body["description"] = description
		}
		adminUp(body)
		gi, err := gf.gateway(ctx, c)
		if err != nil {
			return nil, err
		}
		if gi != nil {
			body["external_gateway_info"] = gi
		}
		return body, nil
	})
}

func routerUpdateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet router update r1 --name edge --disable"}
	adminUp := boolPair(cmd, "enable", "disable", "admin_state_up", "enable the router", "disable the router")
	var name, description string
	cmd.Flags().StringVar(&name, "name", "", "new name")
	cmd.Flags().StringVar(&description, "description", "", "new description")
	return updateCommand(g, client.Routers, cmd, func(context.Context, *client.Client, func() (client.Object, error)) (client.Object, error) {
		body := client.Object{}
		if cmd.Flags().Changed("name") {
			body["name"] = name
		}
		if cmd.Flags().Changed("description") {
			body["description"] = description
		}
		adminUp(body)
		return body, nil
	})
}

// parseRoute parses --route destination=CIDR,gateway=IP.
func parseRoute(s string) (map[string]string, error) {
	kv, err := parseKV("route", s, []string{"destination", "gateway"}, []string{"destination", "gateway"})
	if err != nil {
		return nil, err
	}
	if err := checkCIDR("route destination", kv["destination"]); err != nil {
		return nil, err
	}
	if err := checkIP("route gateway", kv["gateway"]); err != nil {
		return nil, err
	}
	return map[string]string{"destination": kv["destination"], "nexthop": kv["gateway"]}, nil
}

// currentRoutes returns the routes of the router obj.
func currentRoutes(obj client.Object) []map[string]string {
	var out []map[string]string
	l, _ := obj["routes"].([]any)
	for _, r := range l {
		if m, ok := r.(map[string]any); ok {
			d, _ := m["destination"].(string)
			n, _ := m["nexthop"].(string)
			out = append(out, map[string]string{"destination": d, "nexthop": n})
		}
	}
	return out
}

// routerSetCommand is "router set ROUTER": gateway and routes (added to
// the router's, as openstack router set does).
func routerSetCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet router set r1 --external-gateway public --disable-snat\n" +
		"  hivenet router set r1 --route destination=192.168.0.0/16,gateway=10.0.0.254"}
	gf := addGatewayFlags(cmd)
	var routes []string
	var noRoute bool
	cmd.Flags().StringArrayVar(&routes, "route", nil, "add a static route, as destination=CIDR,gateway=IP (repeatable)")
	cmd.Flags().BoolVar(&noRoute, "no-route", false, "clear the static routes (before adding those of --route)")
	u := updateCommand(g, client.Routers, cmd, func(ctx context.Context, c *client.Client, target func() (client.Object, error)) (client.Object, error) {
		body := client.Object{}
		var add []map[string]string
		for _, s := range routes {
			r, err := parseRoute(s)
			if err != nil {
				return nil, err
			}
			add = append(add, r)
		}
		gi, err := gf.gateway(ctx, c)
		if err != nil {
			return nil, err
		}
		if gi != nil {
			body["external_gateway_info"] = gi
		}
		if len(add) > 0 || noRoute {
			rs := []map[string]string{}
			if !noRoute {
				obj, err := target()
				if err != nil {
					return nil, err
				}
				rs = currentRoutes(obj)
			}
			for _, r := range add {
				if !slices.ContainsFunc(rs, func(x map[string]string) bool {
					return x["destination"] == r["destination"] && x["nexthop"] == r["nexthop"]
				}) {
					rs = append(rs, r)
				}
			}
			body["routes"] = rs
		}
		return body, nil
	})
	u.Use = "set ROUTER"
	u.Short = "Set a router's external gateway or add static routes"
	return u
}

// routerUnsetCommand is "router unset ROUTER": remove the gateway or some
// routes.
func routerUnsetCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet router unset r1 --external-gateway\n" +
		"  hivenet router unset r1 --route destination=192.168.0.0/16,gateway=10.0.0.254"}
	var gateway bool
	var routes []string
	cmd.Flags().BoolVar(&gateway, "external-gateway", false, "remove the external gateway")
	cmd.Flags().StringArrayVar(&routes, "route", nil, "remove a static route, as destination=CIDR,gateway=IP (repeatable)")
	u := updateCommand(g, client.Routers, cmd, func(ctx context.Context, c *client.Client, target func() (client.Object, error)) (client.Object, error) {
		body := client.Object{}
		var del []map[string]string
		for _, s := range routes {
			r, err := parseRoute(s)
			if err != nil {
				return nil, err
			}
			del = append(del, r)
		}
		if gateway {
			body["external_gateway_info"] = client.Object{}
		}
		if len(del) > 0 {
			obj, err := target()
			if err != nil {
				return nil, err
			}
			rs := currentRoutes(obj)
			for _, d := range del {
				i := slices.IndexFunc(rs, func(x map[string]string) bool {
					return x["destination"] == d["destination"] && x["nexthop"] == d["nexthop"]
				})
				if i < 0 {
					return nil, fmt.Errorf("--route: router has no route to %s via %s", d["destination"], d["nexthop"])
				}
				rs = slices.Delete(rs, i, i+1)
			}
			if rs == nil {
				rs = []map[string]string{}
			}
			body["routes"] = rs
		}
		return body, nil
	})
	u.Use = "unset ROUTER"
	u.Short = "Remove a router's external gateway or static routes"
	return u
}

// routerInterfaceCommand is "router add|remove subnet|port ROUTER X".
func routerInterfaceCommand(g *globals, verb, action, short string) *cobra.Command {
	cmd := &cobra.Command{Use: verb, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	for _, kind := range []struct {
		name  string
		res   client.Resource
		field string
	}{{"subnet", client.Subnets, "subnet_id"}, {"port", client.Ports, "port_id"}} {
		cmd.AddCommand(&cobra.Command{
			Use:     kind.name + " ROUTER " + strings.ToUpper(kind.name),
			Short:   short + " (by " + kind.name + ")",
			Example: "  hivenet router " + verb + " " + kind.name + " r1 blue-v4",
			Args:    cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return err
				}
				rid, err := c.Resolve(cmd.Context(), client.Routers, args[0])
				if err != nil {
					return err
				}
				id, err := c.Resolve(cmd.Context(), kind.res, args[1])
				if err != nil {
					return err
				}
				var out client.Object
				path := client.Routers.Path + "/" + url.PathEscape(rid) + "/" + action
				if err := c.Do(cmd.Context(), http.MethodPut, path, nil, client.Object{kind.field: id}, &out); err != nil {
					return err
				}
				return printObject(cmd.OutOrStdout(), g.output, out)
			},
		})
	}
	return cmd
}
