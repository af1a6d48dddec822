// Command hivenet is the single binary of hivenet: the API server, the
// host agent, the CLI over the API and the namespace lab. Each subcommand
// lives in its own file and registers itself with root in an init func;
// this package only maps flags onto the Configs of internal packages.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

var root = &cobra.Command{
	Use:           "hivenet",
	Short:         "hivenet: distributed network virtualization for IaaS clouds",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hivenet:", err)
		os.Exit(1)
	}
}
