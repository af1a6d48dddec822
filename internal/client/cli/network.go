package cli

import (
	"context"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
)

var networkColumns = []column{
	{header: "ID", field: "id"},
	{header: "Name", field: "name"},
	{header: "Status", field: "status"},
	{header: "MTU", field: "mtu"},
	{header: "Subnets", field: "subnets"},
}

func networkCommand() *cobra.Command {
	g := &globals{}
	cmd := resourceCommand(g, "network", "Manage virtual L2 networks")
	cmd.AddCommand(
		networkCreateCommand(g),
		listCommand(g, client.Networks, networkColumns, func(cmd *cobra.Command, lf *listFilters) {
			lf.add(cmd, "name", "name", "only networks with this name", nil)
			lf.add(cmd, "project", "project_id", "only networks of this project (ID)", nil)
		}),
		showCommand(g, client.Networks),
		networkUpdateCommand(g),
		deleteCommand(g, client.Networks),
	)
	return cmd
}

// networkFlags are the settings shared by network create and update.
type networkFlags struct {
	cmd     *cobra.Command
	mtu     int
	adminUp func(client.Object)
	shared  func(client.Object)
}

func addNetworkFlags(cmd *cobra.Command) *networkFlags {
	f := &networkFlags{cmd: cmd}
	cmd.Flags().IntVar(&f.mtu, "mtu", 0, "MTU of the network (default: the underlay MTU less the VXLAN overhead)")
	f.adminUp = boolPair(cmd, "enable", "disable", "admin_state_up", "enable the network (default)", "disable the network")
	f.shared = boolPair(cmd, "share", "no-share", "shared", "share the network with all projects", "do not share the network (default)")
	return f
}

func (f *networkFlags) fill(body client.Object) {
	if f.cmd.Flags().Changed("mtu") {
		body["mtu"] = f.mtu
	}
	f.adminUp(body)
	f.shared(body)
}

func networkCreateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet network create blue --mtu 1400"}
	f := addNetworkFlags(cmd)
	var project, netType, physNet string
	var ext bool
	cmd.Flags().StringVar(&project, "project", "", "owning project ID (admin only)")
	cmd.Flags().BoolVar(&ext, "external", false, "an external network (router:external; admin only): routers' gateways and floating IPs")
	cmd.Flags().StringVar(&netType, "provider-network-type", "", "vxlan (default) or flat (admin only; flat networks are external)")
	cmd.Flags().StringVar(&physNet, "provider-physical-network", "", "physical network of a flat network, as agents map it with --bridge-mappings (admin only)")
	cmd.Example += "\n  hivenet network create public --external --provider-network-type flat --provider-physical-network physnet1"
	return createCommand(g, client.Networks, cmd, func(_ context.Context, _ *client.Client, name string) (client.Object, error) {
		body := client.Object{"name": name}
		f.fill(body)
		if project != "" {
			body["project_id"] = project
		}
		if ext {
			body["router:external"] = true
		}
		if cmd.Flags().Changed("provider-network-type") {
			body["provider:network_type"] = netType
		}
		if cmd.Flags().Changed("provider-physical-network") {
			body["provider:physical_network"] = physNet
		}
		return body, nil
	})
}

func networkUpdateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet network update blue --name green --disable"}
	f := addNetworkFlags(cmd)
	var name string
	cmd.Flags().StringVar(&name, "name", "", "new name")
	return updateCommand(g, client.Networks, cmd, func(context.Context, *client.Client, func() (client.Object, error)) (client.Object, error) {
		body := client.Object{}
		if cmd.Flags().Changed("name") {
			body["name"] = name
		}
		f.fill(body)
		return body, nil
	})
}
