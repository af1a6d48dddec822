package cli

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
)

var portColumns = []column{
	{header: "ID", field: "id"},
	{header: "Name", field: "name"},
	{header: "MAC Address", field: "mac_address"},
	{header: "Fixed IP Addresses", field: "fixed_ips"},
	{header: "Host", field: "binding:host_id"},
	{header: "Status", field: "status"},
}

func portCommand() *cobra.Command {
	g := &globals{}
	cmd := resourceCommand(g, "port", "Manage ports of networks (VM interfaces)")
	cmd.AddCommand(
		portCreateCommand(g),
		listCommand(g, client.Ports, portColumns, func(cmd *cobra.Command, lf *listFilters) {
			lf.add(cmd, "network", "network_id", "only ports of this network (name or ID)", &client.Networks)
			lf.add(cmd, "host", "binding:host_id", "only ports bound to this host", nil)
			lf.add(cmd, "name", "name", "only ports with this name", nil)
			lf.add(cmd, "mac-address", "mac_address", "only the port with this MAC address", nil)
			lf.add(cmd, "device-owner", "device_owner", "only ports with this device owner", nil)
			lf.add(cmd, "device-id", "device_id", "only ports of this device", nil)
			lf.add(cmd, "project", "project_id", "only ports of this project (ID)", nil)
		}),
		showCommand(g, client.Ports),
		portUpdateCommand(g),
		deleteCommand(g, client.Ports),
	)
	return cmd
}

// portFlags are the settings shared by port create and update.
type portFlags struct {
	cmd          *cobra.Command
	fixedIPs     []string
	noFixedIP    bool
	mac          string
	host         string
	ifName       string
	allowed      []string
	noAllowed    bool
	deviceOwner  string
	deviceID     string
	adminUp      func(client.Object)
	portSecurity func(client.Object)
	noInterface  bool                // update only
	parsed       []map[string]string // --fixed-ip values, parsed by fill
	groups       []string
	noGroups     bool
}

func addPortFlags(cmd *cobra.Command, forUpdate bool) *portFlags {
	f := &portFlags{cmd: cmd}
	fl := cmd.Flags()
	replace := ""
	if forUpdate {
		replace = "; replaces the list"
	}
	fl.StringArrayVar(&f.fixedIPs, "fixed-ip", nil, "address of the port, as subnet=SUBNET,ip-address=IP; either part may be left out (repeatable"+replace+")")
	fl.BoolVar(&f.noFixedIP, "no-fixed-ip", false, "give the port no address")
	fl.StringVar(&f.mac, "mac-address", "", "MAC address (default: allocated)")
	fl.StringVar(&f.host, "host", "", "host to bind the port on (binding:host_id)")
	fl.StringVar(&f.ifName, "interface-name", "", "host interface to bind the port to (binding:profile interface_name; default tap + the first 11 characters of the port ID)")
	fl.StringArrayVar(&f.allowed, "allowed-address", nil, "extra source address the port may use, as ip-address=IP|CIDR[,mac-address=MAC] (repeatable"+replace+")")
	fl.BoolVar(&f.noAllowed, "no-allowed-address", false, "clear the allowed address pairs")
	fl.StringVar(&f.deviceOwner, "device-owner", "", "device owner, such as compute:nova")
	fl.StringVar(&f.deviceID, "device-id", "", "device (VM) ID")
	f.adminUp = boolPair(cmd, "enable", "disable", "admin_state_up", "enable the port (default)", "disable the port")
	f.portSecurity = boolPair(cmd, "enable-port-security", "disable-port-security", "port_security_enabled",
		"only let the port send from its own MAC and addresses (default)", "let the port send from any address")
	fl.StringArrayVar(&f.groups, "security-group", nil, "security group of the port, name or ID (repeatable"+replace+"; default: the project's default group)")
	fl.BoolVar(&f.noGroups, "no-security-group", false, "put the port in no security group (with port security on, it then sends and receives nothing)")
	cmd.MarkFlagsMutuallyExclusive("security-group", "no-security-group")
	cmd.MarkFlagsMutuallyExclusive("fixed-ip", "no-fixed-ip")
	cmd.MarkFlagsMutuallyExclusive("allowed-address", "no-allowed-address")
	if forUpdate {
		fl.BoolVar(&f.noInterface, "no-interface-name", false, "bind to the default interface name again")
		cmd.MarkFlagsMutuallyExclusive("interface-name", "no-interface-name")
	}
	return f
}

// fill validates the flags given and sets the matching fields of body,
// all but fixed_ips, which need resolveFixedIPs.
func (f *portFlags) fill(body client.Object) error {
	changed := f.cmd.Flags().Changed
	if changed("mac-address") {
		if err := checkMAC("mac-address", f.mac); err != nil {
			return err
		}
		body["mac_address"] = f.mac
	}
	if changed("host") {
		body["binding:host_id"] = f.host
	}
	if changed("interface-name") {
		if f.ifName == "" {
			return fmt.Errorf("--interface-name: empty name")
		}
		body["binding:profile"] = map[string]string{"interface_name": f.ifName}
	}
	if f.noInterface {
		body["binding:profile"] = map[string]string{}
	}
	if changed("device-owner") {
		body["device_owner"] = f.deviceOwner
	}
	if changed("device-id") {
		body["device_id"] = f.deviceID
	}
	if changed("allowed-address") {
		pairs := []map[string]string{}
		for _, s := range f.allowed {
			kv, err := parseKV("allowed-address", s, []string{"ip-address", "mac-address"}, []string{"ip-address"})
			if err != nil {
				return err
			}
			if _, err := netip.ParsePrefix(kv["ip-address"]); err != nil {
				if err := checkIP("allowed-address ip-address", kv["ip-address"]); err != nil {
					return err
				}
			}
			pair := map[string]string{"ip_address": kv["ip-address"]}
			if m, ok := kv["mac-address"]; ok {
				if err := checkMAC("allowed-address mac-address", m); err != nil {
					return err
				}
				pair["mac_address"] = m
			}
			pairs = append(pairs, pair)
		}
		body["allowed_address_pairs"] = pairs
	}
	if f.noAllowed {
		body["allowed_address_pairs"] = []map[string]string{}
	}
	if changed("fixed-ip") {
		f.parsed = f.parsed[:0]
		for _, s := range f.fixedIPs {
			kv, err := parseKV("fixed-ip", s, []string{"subnet", "ip-address"}, nil)
			if err != nil {
				return err
			}
			if a, ok := kv["ip-address"]; ok {
				if err := checkIP("fixed-ip ip-address", a); err != nil {
					return err
				}
			}
			f.parsed = append(f.parsed, kv)
		}
	}
	if f.noFixedIP {
		body["fixed_ips"] = []map[string]string{}
	}
	f.adminUp(body)
	f.portSecurity(body)
	return nil
}

// resolveGroups sets body's security_groups from --security-group or
// --no-security-group, resolving group names.
func (f *portFlags) resolveGroups(ctx context.Context, c *client.Client, body client.Object) error {
	if f.noGroups {
		body["security_groups"] = []string{}
	}
	if !f.cmd.Flags().Changed("security-group") {
		return nil
	}
	ids := []string{}
	for _, g := range f.groups {
		id, err := c.Resolve(ctx, client.SecurityGroups, g)
		if err != nil {
			return fmt.Errorf("--security-group: %w", err)
		}
		ids = append(ids, id)
	}
	body["security_groups"] = ids
	return nil
}

// needSubnets reports whether resolveFixedIPs will look up subnet names.
func (f *portFlags) needSubnets() bool {
	for _, kv := range f.parsed {
		if _, ok := kv["subnet"]; ok {
			return true
		}
	}
	return false
}

// resolveFixedIPs sets body's fixed_ips from --fixed-ip, resolving subnet
// names or IDs among the subnets of network networkID.
func (f *portFlags) resolveFixedIPs(ctx context.Context, c *client.Client, body client.Object, networkID string) error {
	if !f.cmd.Flags().Changed("fixed-ip") {
		return nil
	}
	ips := []map[string]string{}
	for _, kv := range f.parsed {
		ip := map[string]string{}
		if a, ok := kv["ip-address"]; ok {
			ip["ip_address"] = a
		}
		if sub, ok := kv["subnet"]; ok {
			id, err := c.ResolveIn(ctx, client.Subnets, sub, url.Values{"network_id": {networkID}})
			if err != nil {
				return fmt.Errorf("--fixed-ip subnet: %w", err)
			}
			ip["subnet_id"] = id
		}
		ips = append(ips, ip)
	}
	body["fixed_ips"] = ips
	return nil
}

func portCreateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet port create vm1 --network blue --fixed-ip subnet=blue-v4,ip-address=10.0.0.5 \\\n" +
		"      --host host-1 --interface-name vm1-eth0"}
	f := addPortFlags(cmd, false)
	var network, project string
	cmd.Flags().StringVar(&network, "network", "", "network of the port (name or ID)")
	cmd.Flags().StringVar(&project, "project", "", "owning project ID (admin only)")
	_ = cmd.MarkFlagRequired("network")
	return createCommand(g, client.Ports, cmd, func(ctx context.Context, c *client.Client, name string) (client.Object, error) {
		body := client.Object{"name": name}
		if project != "" {
			body["project_id"] = project
		}
		if err := f.fill(body); err != nil {
			return nil, err
		}
		netID, err := c.Resolve(ctx, client.Networks, network)
		if err != nil {
			return nil, fmt.Errorf("--network: %w", err)
		}
		body["network_id"] = netID
		if err := f.resolveFixedIPs(ctx, c, body, netID); err != nil {
			return nil, err
		}
		if err := f.resolveGroups(ctx, c, body); err != nil {
			return nil, err
		}
		return body, nil
	})
}

func portUpdateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet port update vm1 --host host-2 --disable-port-security --no-allowed-address"}
	f := addPortFlags(cmd, true)
	var name string
	cmd.Flags().StringVar(&name, "name", "", "new name")
	return updateCommand(g, client.Ports, cmd, func(ctx context.Context, c *client.Client, target func() (client.Object, error)) (client.Object, error) {
		body := client.Object{}
		if cmd.Flags().Changed("name") {
			body["name"] = name
		}
		if err := f.fill(body); err != nil {
			return nil, err
		}
		netID := ""
		if f.needSubnets() {
			port, err := target()
			if err != nil {
				return nil, err
			}
			netID, _ = port["network_id"].(string)
		}
		if err := f.resolveFixedIPs(ctx, c, body, netID); err != nil {
			return nil, err
		}
		if err := f.resolveGroups(ctx, c, body); err != nil {
			return nil, err
		}
		return body, nil
	})
}
