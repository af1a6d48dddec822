package cli

import (
	"context"

	"github.com/spf13/cobra"

	"hivenet/internal/client"
)

var agentColumns = []column{
	{header: "ID", field: "id"},
	{header: "Agent Type", field: "agent_type"},
	{header: "Host", field: "host"},
	{header: "Alive", field: "alive", format: formatAlive},
	{header: "State", field: "admin_state_up", format: formatUpDown},
	{header: "Binary", field: "binary"},
}

// agentCommands are the verbs on agents, one per live host. There is no
// create: an agent appears when "hivenet agent" registers its host (in
// OpenStack too, agents are never created through the API).
func agentCommands() []*cobra.Command {
	g := &globals{}
	cmds := []*cobra.Command{
		listCommand(g, client.Agents, agentColumns, func(cmd *cobra.Command, lf *listFilters) {
			lf.add(cmd, "host", "host", "only the agent of this host", nil)
			lf.add(cmd, "agent-type", "agent_type", "only agents of this type", nil)
		}),
		showCommand(g, client.Agents),
		agentUpdateCommand(g),
		deleteCommand(g, client.Agents),
	}
	for _, c := range cmds {
		g.registerOn(c.Flags())
	}
	return cmds
}

func agentUpdateCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Example: "  hivenet agent update host-1 --disable"}
	adminUp := boolPair(cmd, "enable", "disable", "admin_state_up", "enable the agent", "disable the agent")
	var description string
	cmd.Flags().StringVar(&description, "description", "", "new description")
	return updateCommand(g, client.Agents, cmd, func(context.Context, *client.Client, func() (client.Object, error)) (client.Object, error) {
		body := client.Object{}
		if cmd.Flags().Changed("description") {
			body["description"] = description
		}
		adminUp(body)
		return body, nil
	})
}
