package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
)

var subnetColumns = []column{
	{header: "ID", field: "id"},
	{header: "Name", field: "name"},
	{header: "Network", field: "network_id"},
	{header: "Subnet", field: "cidr"},
	{header: "Gateway", field: "gateway_ip"},
}

func subnetCommand() *cobra.Command {
	g := &globals{}
	cmd := resourceCommand(g, "subnet", "Manage IPv4 subnets of networks")
	cmd.AddCommand(
		subnetCreateCommand(g),
		listCommand(g, client.Subnets, subnetColumns, func(cmd *cobra.Command, lf *listFilters) {
			lf.add(cmd, "network", "network_id", "only subnets of this network (name or ID)", &client.Networks)
			lf.add(cmd, "name", "name", "only subnets with this name", nil)
			lf.add(cmd, "subnet-range", "cidr", "only subnets with this CIDR", nil)
			lf.add(cmd, "project", "project_id", "only subnets of this project (ID)", nil)
		}),
		showCommand(g, client.Subnets),
		subnetUpdateCommand(g),
		deleteCommand(g, client.Subnets),
	)
	return cmd
}

// subnetFlags are the settings shared by subnet create and update.
type subnetFlags struct {
	cmd       *cobra.Command
	gateway   string
	dns       []string
	pools     []string
	routes    []string
	dhcp      func(client.Object)
	noDNS     bool // update only
	noRoutes  bool // update only
	noPools   bool // update only
	forUpdate bool
}

func addSubnetFlags(cmd *cobra.Command, forUpdate bool) *subnetFlags {
	f := &subnetFlags{cmd: cmd, forUpdate: forUpdate}
	fl := cmd.Flags()
	fl.StringVar(&f.gateway, "gateway", "", "gateway IP, or none for no gateway, or auto for the first address (default auto)")
	replace := ""
	if forUpdate {
		replace = "; replaces the list"
	}
	fl.StringArrayVar(&f.dns, "dns-nameserver", nil, "DNS server handed out by DHCP (repeatable"+replace+")")
	fl.StringArrayVar(&f.pools, "allocation-pool", nil, "addresses to allocate from, as start=IP,end=IP (repeatable"+replace+")")
	fl.StringArrayVar(&f.routes, "host-route", nil, "route handed out by DHCP, as destination=CIDR,gateway=IP (repeatable"+replace+")")
	f.dhcp = boolPair(cmd, "dhcp", "no-dhcp", "enable_dhcp", "serve DHCP on the subnet (default)", "do not serve DHCP on the subnet")
	if forUpdate {
		fl.BoolVar(&f.noDNS, "no-dns-nameservers", false, "clear the DNS servers")
		fl.BoolVar(&f.noRoutes, "no-host-route", false, "clear the host routes")
		fl.BoolVar(&f.noPools, "no-allocation-pool", false, "clear the allocation pools")
		cmd.MarkFlagsMutuallyExclusive("dns-nameserver", "no-dns-nameservers")
		cmd.MarkFlagsMutuallyExclusive("host-route", "no-host-route")
		cmd.MarkFlagsMutuallyExclusive("allocation-pool", "no-allocation-pool")
	}
	return f
}

// fill validates the flags given and sets the matching fields of body.
func (f *subnetFlags) fill(body client.Object) error {
	changed := f.cmd.Flags().Changed
	if changed("gateway") {
		switch strings.ToLower(f.gateway) {
		case "none":
			body["gateway_ip"] = nil
		case "auto":
			if f.forUpdate {
				return fmt.Errorf("--gateway auto: only for create; give an IP or none")
			}
		default:
			if err := checkIP("gateway", f.gateway); err != nil {
				return err
			}
			body["gateway_ip"] = f.gateway
		}
	}
	if changed("dns-nameserver") {
		for _, s := range f.dns {
			if err := checkIP("dns-nameserver", s); err != nil {
				return err
			}
		}
		body["dns_nameservers"] = f.dns
	}
	if f.noDNS {
		body["dns_nameservers"] = []string{}
	}
	if changed("allocation-pool") {
		pools := []map[string]string{}
		for _, s := range f.pools {
			kv, err := parseKV("allocation-pool", s, []string{"start", "end"}, []string{"start", "end"})
			if err != nil {
				return err
			}
			if err := checkIP("allocation-pool start", kv["start"]); err != nil {
				return err
			}
			if err := checkIP("allocation-pool end", kv["end"]); err != nil {
				return err
			}
			pools = append(pools, kv)
		}
		body["allocation_pools"] = pools
	}
	if f.noPools {
		body["allocation_pools"] = []map[string]string{}
	}
	if changed("host-route") {
		routes := []map[string]string{}
		for _, s := range f.routes {
			kv, err := parseKV("host-route", s, []string{"destination", "gateway"}, []string{"destination", "gateway"})
			if err != nil {
				return err
			}
			if err := checkCIDR("host-route destination", kv["destination"]); err != nil {
				return err
			}
			if err := checkIP("host-route gateway", kv["gateway"]); err != nil {
				return err
			}
			routes = append(routes, map[string]string{"destination": kv["destination"], "nexthop": kv["gateway"]})
		}
		body["host_routes"] = routes
	}
	if f.noRoutes {
		body["host_routes"] = []map[string]string{}
	}
	f.dhcp(body)
	return nil
}

func subnetCreateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet subnet create blue-v4 --network blue --subnet-range 10.0.0.0/24 \\\n" +
		"      --dns-nameserver 10.0.0.2 --allocation-pool start=10.0.0.10,end=10.0.0.99 \\\n" +
		"      --host-route destination=192.168.0.0/16,gateway=10.0.0.254"}
	f := addSubnetFlags(cmd, false)
	var network, cidr, project string
	var ipVersion int
	cmd.Flags().StringVar(&network, "network", "", "network the subnet belongs to (name or ID)")
	cmd.Flags().StringVar(&cidr, "subnet-range", "", "the subnet, in CIDR notation")
	cmd.Flags().IntVar(&ipVersion, "ip-version", 4, "IP version (4)")
	cmd.Flags().StringVar(&project, "project", "", "owning project ID (admin only)")
	_ = cmd.MarkFlagRequired("network")
	_ = cmd.MarkFlagRequired("subnet-range")
	return createCommand(g, client.Subnets, cmd, func(ctx context.Context, c *client.Client, name string) (client.Object, error) {
		if err := checkCIDR("subnet-range", cidr); err != nil {
			return nil, err
		}
		body := client.Object{"name": name, "cidr": cidr, "ip_version": ipVersion}
		if err := f.fill(body); err != nil {
			return nil, err
		}
		if project != "" {
			body["project_id"] = project
		}
		netID, err := c.Resolve(ctx, client.Networks, network)
		if err != nil {
			return nil, fmt.Errorf("--network: %w", err)
		}
		body["network_id"] = netID
		return body, nil
	})
}

func subnetUpdateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet subnet update blue-v4 --gateway none --dns-nameserver 10.0.0.3"}
	f := addSubnetFlags(cmd, true)
	var name string
	cmd.Flags().StringVar(&name, "name", "", "new name")
	return updateCommand(g, client.Subnets, cmd, func(context.Context, *client.Client, func() (client.Object, error)) (client.Object, error) {
		body := client.Object{}
		if cmd.Flags().Changed("name") {
			body["name"] = name
		}
		return body, f.fill(body)
	})
}
