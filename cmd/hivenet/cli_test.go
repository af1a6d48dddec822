package main

import "testing"

// The host agent ("hivenet agent --host ...") and the CLI's agent verbs
// ("hivenet agent list") share one command; registration must not create
// two "agent" commands, whatever file registers first.
func TestAgentCommandIsShared(t *testing.T) {
	var agents int
	for _, c := range root.Commands() {
		if c.Name() == "agent" {
			agents++
		}
	}
	if agents != 1 {
		t.Fatalf("root has %d agent commands, want 1", agents)
	}
	agent := findCommand(root, "agent")
	for _, verb := range []string{"list", "show", "update", "delete"} {
		if findCommand(agent, verb) == nil {
			t.Errorf("hivenet agent %s is missing", verb)
		}
	}
	if agent.RunE == nil || agent.Flags().Lookup("tunnel-ip") == nil {
		t.Errorf("hivenet agent lost the host agent's run or --tunnel-ip flag")
	}
	if agent.PersistentFlags().Lookup("output") != nil {
		t.Errorf("the CLI's -o leaked onto the host agent")
	}
}

func TestCLICommandsRegistered(t *testing.T) {
	for _, name := range []string{"network", "subnet", "port", "trace"} {
		if findCommand(root, name) == nil {
			t.Errorf("hivenet %s is missing", name)
		}
	}
}
