package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
)

var securityGroupColumns = []column{
	{header: "ID", field: "id"},
	{header: "Name", field: "name"},
	{header: "Description", field: "description"},
	{header: "Project", field: "project_id"},
}

var securityGroupRuleColumns = []column{
	{header: "ID", field: "id"},
	{header: "IP Protocol", field: "protocol"},
	{header: "Ethertype", field: "ethertype"},
	{header: "IP Range", field: "remote_ip_prefix"},
	{header: "Port Min (ICMP Type)", field: "port_range_min"},
	{header: "Port Max (ICMP Code)", field: "port_range_max"},
	{header: "Direction", field: "direction"},
	{header: "Remote Security Group", field: "remote_group_id"},
	{header: "Security Group", field: "security_group_id"},
}

func securityGroupCommand() *cobra.Command {
	g := &globals{}
	cmd := resourceCommand(g, "security-group", "Manage security groups (stateful filters of ports)")
	cmd.AddCommand(
		securityGroupCreateCommand(g),
		listCommand(g, client.SecurityGroups, securityGroupColumns, func(cmd *cobra.Command, lf *listFilters) {
			lf.add(cmd, "name", "name", "only groups with this name", nil)
			lf.add(cmd, "project", "project_id", "only groups of this project (ID)", nil)
		}),
		showCommand(g, client.SecurityGroups),
		securityGroupUpdateCommand(g),
		deleteCommand(g, client.SecurityGroups),
	)
	return cmd
}

func securityGroupCreateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet security-group create web --description \"http servers\""}
	var description, project string
	cmd.Flags().StringVar(&description, "description", "", "description")
	cmd.Flags().StringVar(&project, "project", "", "owning project ID (admin only)")
	return createCommand(g, client.SecurityGroups, cmd, func(_ context.Context, _ *client.Client, name string) (client.Object, error) {
		body := client.Object{"name": name}
		if cmd.Flags().Changed("description") {
			body["description"] = description
		}
		if project != "" {
			body["project_id"] = project
		}
		return body, nil
	})
}

func securityGroupUpdateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet security-group update web --name web-servers"}
	var name, description string
	cmd.Flags().StringVar(&name, "name", "", "new name")
	cmd.Flags().StringVar(&description, "description", "", "new description")
	return updateCommand(g, client.SecurityGroups, cmd, func(context.Context, *client.Client, func() (client.Object, error)) (client.Object, error) {
		body := client.Object{}
		if cmd.Flags().Changed("name") {
			body["name"] = name
		}
		if cmd.Flags().Changed("description") {
			body["description"] = description
		}
		return body, nil
	})
}

func securityGroupRuleCommand() *cobra.Command {
	g := &globals{}
	cmd := resourceCommand(g, "security-group-rule", "Manage the rules of security groups")
	list := listCommand(g, client.SecurityGroupRules, securityGroupRuleColumns, func(cmd *cobra.Command, lf *listFilters) {
		lf.add(cmd, "group", "security_group_id", "only the rules of this group (name or ID)", &client.SecurityGroups)
		lf.add(cmd, "direction", "direction", "only ingress or egress rules", nil)
		lf.add(cmd, "protocol", "protocol", "only rules of this protocol", nil)
	})
	cmd.AddCommand(
		securityGroupRuleCreateCommand(g),
		list,
		showCommand(g, client.SecurityGroupRules),
		deleteCommand(g, client.SecurityGroupRules),
	)
	return cmd
}

// parsePortRange parses --dst-port N or N:M.
func parsePortRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, ":")
	if lo, err = strconv.Atoi(a); err != nil || lo < 1 || lo > 65535 {
		return 0, 0, fmt.Errorf("--dst-port %q: want PORT or MIN:MAX, ports 1-65535", s)
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil || hi < lo || hi > 65535 {
			return 0, 0, fmt.Errorf("--dst-port %q: want PORT or MIN:MAX with MIN <= MAX <= 65535", s)
		}
	}
	return lo, hi, nil
}

func securityGroupRuleCreateCommand(g *globals) *cobra.Command {
	var ingress, egress bool
	var protocol, dstPort, remoteIP, remoteGroup, ethertype, description, project string
	var icmpType, icmpCode int
	cmd := &cobra.Command{
		Use:   "create GROUP",
		Short: "Add a rule to a security group",
		Example: "  hivenet security-group-rule create web --ingress --protocol tcp --dst-port 22 --remote-ip 192.0.2.0/24\n" +
			"  hivenet security-group-rule create web --ingress --protocol icmp --icmp-type 8",
		Args: cobra.ExactArgs(1),
	}
	fl := cmd.Flags()
	fl.BoolVar(&ingress, "ingress", false, "the rule admits traffic to the group's ports (default)")
	fl.BoolVar(&egress, "egress", false, "the rule admits traffic from the group's ports")
	fl.StringVar(&protocol, "protocol", "", "tcp, udp, icmp, icmpv6, any, or a protocol number (default any)")
	fl.StringVar(&dstPort, "dst-port", "", "destination port or range MIN:MAX (tcp, udp)")
	fl.IntVar(&icmpType, "icmp-type", 0, "ICMP type (icmp, icmpv6)")
	fl.IntVar(&icmpCode, "icmp-code", 0, "ICMP code (needs --icmp-type)")
	fl.StringVar(&remoteIP, "remote-ip", "", "remote addresses, as a CIDR")
	fl.StringVar(&remoteGroup, "remote-group", "", "remote addresses: those of this group's ports (name or ID)")
	fl.StringVar(&ethertype, "ethertype", "IPv4", "IPv4 or IPv6")
	fl.StringVar(&description, "description", "", "description")
	fl.StringVar(&project, "project", "", "owning project ID (admin only)")
	cmd.MarkFlagsMutuallyExclusive("ingress", "egress")
	cmd.MarkFlagsMutuallyExclusive("remote-ip", "remote-group")
	cmd.MarkFlagsMutuallyExclusive("dst-port", "icmp-type")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		changed := cmd.Flags().Changed
		body := client.Object{"direction": "ingress", "ethertype": ethertype}
		if egress {
			body["direction"] = "egress"
		}
		if changed("protocol") && protocol != "any" {
			body["protocol"] = protocol
		}
		if changed("dst-port") {
			lo, hi, err := parsePortRange(dstPort)
			if err != nil {
				return err
			}
			body["port_range_min"], body["port_range_max"] = lo, hi
		}
		if changed("icmp-code") && !changed("icmp-type") {
			return fmt.Errorf("--icmp-code needs --icmp-type")
		}
		if changed("icmp-type") {
			body["port_range_min"] = icmpType
			if changed("icmp-code") {
				body["port_range_max"] = icmpCode
			}
		}
		if changed("remote-ip") {
			if err := checkCIDR("remote-ip", remoteIP); err != nil {
				return err
			}
			body["remote_ip_prefix"] = remoteIP
		}
		if changed("description") {
			body["description"] = description
		}
		if project != "" {
			body["project_id"] = project
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		gid, err := c.Resolve(ctx, client.SecurityGroups, args[0])
		if err != nil {
			return err
		}
		body["security_group_id"] = gid
		if changed("remote-group") {
			rid, err := c.Resolve(ctx, client.SecurityGroups, remoteGroup)
			if err != nil {
				return fmt.Errorf("--remote-group: %w", err)
			}
			body["remote_group_id"] = rid
		}
		obj, err := c.Create(ctx, client.SecurityGroupRules, body)
		if err != nil {
			return err
		}
		return printObject(cmd.OutOrStdout(), g.output, obj)
	}
	return cmd
}
