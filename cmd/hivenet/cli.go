package main

import (
	"github.com/spf13/cobra"

	"hivenet/internal/client/cli"
)

// The CLI over the REST API: network, subnet, port and trace commands, and
// the list/show/update/delete verbs under "agent" (whose own run is the
// host agent, registered in agent.go; init funcs run in file-name order,
// so it exists by now, and cli_test.go checks the two live together).
func init() {
	root.AddCommand(cli.Commands()...)
	agent := findCommand(root, "agent")
	if agent == nil {
		agent = &cobra.Command{Use: "agent", Short: "Manage host agents"}
		root.AddCommand(agent)
	}
	agent.AddCommand(cli.AgentCommands()...)
}

func findCommand(parent *cobra.Command, name string) *cobra.Command {
	for _, c := range parent.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}
