package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
)

var floatingIPColumns = []column{
	{header: "ID", field: "id"},
	{header: "Floating IP Address", field: "floating_ip_address"},
	{header: "Fixed IP Address", field: "fixed_ip_address"},
	{header: "Port", field: "port_id"},
	{header: "Floating Network", field: "floating_network_id"},
	{header: "Status", field: "status"},
}

func floatingIPCommand() *cobra.Command {
	g := &globals{}
	cmd := resourceCommand(g, "floatingip", "Manage floating IPs (1:1 NAT of external addresses to ports)")
	cmd.AddCommand(
		floatingIPCreateCommand(g),
		listCommand(g, client.FloatingIPs, floatingIPColumns, func(cmd *cobra.Command, lf *listFilters) {
			lf.add(cmd, "network", "floating_network_id", "only floating IPs of this external network (name or ID)", &client.Networks)
			lf.add(cmd, "port", "port_id", "only the floating IPs of this port (name or ID)", &client.Ports)
			lf.add(cmd, "router", "router_id", "only floating IPs translated by this router (name or ID)", &client.Routers)
			lf.add(cmd, "status", "status", "only floating IPs with this status (ACTIVE, DOWN)", nil)
			lf.add(cmd, "project", "project_id", "only floating IPs of this project (ID)", nil)
		}),
		showCommand(g, client.FloatingIPs),
		floatingIPSetCommand(g),
		floatingIPUnsetCommand(g),
		deleteCommand(g, client.FloatingIPs),
	)
	return cmd
}

// portFlag resolves --port and --fixed-ip-address into body.
func portFields(ctx context.Context, c *client.Client, body client.Object, port, fixed string, fixedGiven bool) error {
	id, err := c.Resolve(ctx, client.Ports, port)
	if err != nil {
		return fmt.Errorf("--port: %w", err)
	}
	body["port_id"] = id
	if fixedGiven {
		if err := checkIP("fixed-ip-address", fixed); err != nil {
			return err
		}
		body["fixed_ip_address"] = fixed
	}
	return nil
}

func floatingIPCreateCommand(g *globals) *cobra.Command {
	var port, fixed, address, subnet, description, project string
	cmd := &cobra.Command{
		Use:     "create NETWORK",
		Short:   "Create a floating IP on an external network",
		Example: "  hivenet floatingip create public --port vm1",
		Args:    cobra.ExactArgs(1),
	}
	fl := cmd.Flags()
	fl.StringVar(&port, "port", "", "associate with this port (name or ID)")
	fl.StringVar(&fixed, "fixed-ip-address", "", "the port's address to translate to (default: its first)")
	fl.StringVar(&address, "floating-ip-address", "", "the floating address (admin only; default: allocated)")
	fl.StringVar(&subnet, "subnet", "", "allocate from this subnet of the external network (name or ID)")
	fl.StringVar(&description, "description", "", "description")
	fl.StringVar(&project, "project", "", "owning project ID (admin only)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		changed := cmd.Flags().Changed
		if changed("fixed-ip-address") && !changed("port") {
			return fmt.Errorf("--fixed-ip-address needs --port")
		}
		if changed("floating-ip-address") {
			if err := checkIP("floating-ip-address", address); err != nil {
				return err
			}
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		netID, err := c.Resolve(ctx, client.Networks, args[0])
		if err != nil {
			return err
		}
		body := client.Object{"floating_network_id": netID}
		if changed("floating-ip-address") {
			body["floating_ip_address"] = address
		}
		if changed("description") {
			body["description"] = description
		}
		if project != "" {
			body["project_id"] = project
		}
		if changed("subnet") {
			id, err := c.ResolveIn(ctx, client.Subnets, subnet, map[string][]string{"network_id": {netID}})
			if err != nil {
				return fmt.Errorf("--subnet: %w", err)
			}
			body["subnet_id"] = id
		}
		if changed("port") {
			if err := portFields(ctx, c, body, port, fixed, changed("fixed-ip-address")); err != nil {
				return err
			}
		}
		obj, err := c.Create(ctx, client.FloatingIPs, body)
		if err != nil {
			return err
		}
		return printObject(cmd.OutOrStdout(), g.output, obj)
	}
	return cmd
}

func floatingIPSetCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet floatingip set 203.0.113.7 --port vm2"}
	var port, fixed, description string
	cmd.Flags().StringVar(&port, "port", "", "associate with this port (name or ID), or move to it")
	cmd.Flags().StringVar(&fixed, "fixed-ip-address", "", "the port's address to translate to (default: its first)")
	cmd.Flags().StringVar(&description, "description", "", "new description")
	u := updateCommand(g, client.FloatingIPs, cmd, func(ctx context.Context, c *client.Client, _ func() (client.Object, error)) (client.Object, error) {
		changed := cmd.Flags().Changed
		if changed("fixed-ip-address") && !changed("port") {
			return nil, fmt.Errorf("--fixed-ip-address needs --port")
		}
		body := client.Object{}
		if changed("description") {
			body["description"] = description
		}
		if changed("port") {
			if err := portFields(ctx, c, body, port, fixed, changed("fixed-ip-address")); err != nil {
				return nil, err
			}
		}
		return body, nil
	})
	u.Use = "set " + strings.ToUpper(client.FloatingIPs.Singular)
	u.Short = "Associate a floating IP with a port"
	return u
}

func floatingIPUnsetCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet floatingip unset 203.0.113.7 --port"}
	var port bool
	cmd.Flags().BoolVar(&port, "port", false, "disassociate the floating IP from its port")
	u := updateCommand(g, client.FloatingIPs, cmd, func(context.Context, *client.Client, func() (client.Object, error)) (client.Object, error) {
		if !port {
			return client.Object{}, nil
		}
		return client.Object{"port_id": nil}, nil
	})
	u.Use = "unset " + strings.ToUpper(client.FloatingIPs.Singular)
	u.Short = "Disassociate a floating IP"
	return u
}
