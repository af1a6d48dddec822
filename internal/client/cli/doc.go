// Package cli holds the hivenet command-line client: the cobra commands
// network, subnet and port (create|list|show|update|delete), the agent
// verbs (list|show|update|delete; agents register themselves, there is no
// create) and trace. They talk to the REST API through package client and
// nothing else.
//
// cmd/hivenet registers them on its root command, the agent verbs under
// the "agent" command whose own run is the host agent:
//
//	root.AddCommand(cli.Commands()...)
//	agentCmd.AddCommand(cli.AgentCommands()...)
//
// Each call of Commands builds a fresh command tree, so tests can run
// commands side by side without sharing flag state.
//
// Global flags of every command here: --url (else $HIVENET_URL, $OS_ENDPOINT,
// $OS_URL, else http://127.0.0.1:9696), --token (else $HIVENET_TOKEN,
// $HIVENET_ADMIN_TOKEN, $OS_TOKEN) and -o table|json. Tables are for
// people; -o json prints the objects exactly as the server returned them
// (a list as a JSON array) for scripts. A resource may be named by ID or
// by name wherever one is referenced; an ambiguous name is an error.
package cli
