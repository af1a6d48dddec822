package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"hivenet/internal/client"
)

// Commands returns new top-level commands for the CLI: network, subnet,
// port, router, floatingip, security-group, security-group-rule and
// trace.
func Commands() []*cobra.Command {
	return []*cobra.Command{
		networkCommand(),
		subnetCommand(),
		portCommand(),
		routerCommand(),
		floatingIPCommand(),
		securityGroupCommand(),
		securityGroupRuleCommand(),
		traceCommand(),
	}
}

// AgentCommands returns new agent verbs (list, show, update, delete), to
// be added under the "agent" command, which itself runs the host agent.
// Each verb carries the global flags itself, so the agent daemon's own
// flags and these never mix.
func AgentCommands() []*cobra.Command {
	return agentCommands()
}

// globals are the flags every CLI command has.
type globals struct {
	url, token, output string
}

// register adds the global flags to a top-level command, persistently so
// its subcommands have them too. They are not put on the root command:
// the server, agent and lab commands have flags of their own.
func (g *globals) register(cmd *cobra.Command) { g.registerOn(cmd.PersistentFlags()) }

func (g *globals) registerOn(f *pflag.FlagSet) {
	f.StringVar(&g.url, "url", "", "API endpoint (default $HIVENET_URL, $OS_ENDPOINT, $OS_URL or "+client.DefaultEndpoint+")")
	f.StringVar(&g.token, "token", "", "auth token sent as X-Auth-Token (default $HIVENET_TOKEN, $HIVENET_ADMIN_TOKEN or $OS_TOKEN)")
	f.StringVarP(&g.output, "output", "o", formatTable, "output format: table or json")
}

// client checks the output format and returns an API client configured
// from the flags, falling back on the environment.
func (g *globals) client() (*client.Client, error) {
	if g.output != formatTable && g.output != formatJSON {
		return nil, fmt.Errorf("-o %q: want table or json", g.output)
	}
	cfg := client.ConfigFromEnv(os.Getenv)
	if g.url != "" {
		cfg.Endpoint = g.url
	}
	if g.token != "" {
		cfg.Token = g.token
	}
	cfg.UserAgent = "hivenet-cli"
	return client.New(cfg)
}

// resourceCommand returns the parent command of a resource's verbs.
func resourceCommand(g *globals, use, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	g.register(cmd)
	return cmd
}

// showCommand is "<res> show NAME|ID".
func showCommand(g *globals, res client.Resource) *cobra.Command {
	return &cobra.Command{
		Use:   "show " + strings.ToUpper(res.Singular),
		Short: "Show the details of " + withArticle(res.String()),
		Args:  cobra.ExactArgs(1),

		ValidArgsFunction: completeNames(g, res),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			obj, err := c.Find(cmd.Context(), res, args[0])
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), g.output, obj)
		},
	}
}

// deleteCommand is "<res> delete NAME|ID...". It tries every argument and
// fails if any failed, as the OpenStack client does.
func deleteCommand(g *globals, res client.Resource) *cobra.Command {
	return &cobra.Command{
		Use:   "delete " + strings.ToUpper(res.Singular) + " [" + strings.ToUpper(res.Singular) + "...]",
		Short: "Delete " + res.Plural,
		Args:  cobra.MinimumNArgs(1),

		ValidArgsFunction: completeNames(g, res),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				if err := deleteOne(cmd.Context(), c, res, ref); err != nil {
					errs = append(errs, fmt.Errorf("deleting %s %q: %w", res, ref, err))
				}
			}
			if len(errs) > 1 {
				errs = append(errs, fmt.Errorf("%d of %d %s not deleted", len(errs), len(args), res.Plural))
			}
			return errors.Join(errs...)
		},
	}
}

func deleteOne(ctx context.Context, c *client.Client, res client.Resource, ref string) error {
	id, err := c.Resolve(ctx, res, ref)
	if err != nil {
		return err
	}
	return c.Delete(ctx, res, id)
}

// listFilters collects the filter flags of a list command. Each filter
// flag maps to one API field; a resolver, when set, turns a name into an
// ID first (--network NAME → network_id=ID).
type listFilters struct {
	flags   []filterFlag
	generic []string // --filter key=value
}

type filterFlag struct {
	flag, field string
	value       *string
	resolve     *client.Resource
}

func (lf *listFilters) add(cmd *cobra.Command, flag, field, usage string, resolve *client.Resource) {
	v := new(string)
	cmd.Flags().StringVar(v, flag, "", usage)
	lf.flags = append(lf.flags, filterFlag{flag: flag, field: field, value: v, resolve: resolve})
}

func (lf *listFilters) addGeneric(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&lf.generic, "filter", nil, "filter on any field, as FIELD=VALUE (repeatable)")
}

func (lf *listFilters) query(ctx context.Context, c *client.Client, cmd *cobra.Command) (url.Values, error) {
	q := url.Values{}
	for _, f := range lf.flags {
		if !cmd.Flags().Changed(f.flag) {
			continue
		}
		v := *f.value
		if f.resolve != nil {
			id, err := c.Resolve(ctx, *f.resolve, v)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", f.flag, err)
			}
			v = id
		}
		q.Add(f.field, v)
	}
	for _, kv := range lf.generic {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--filter %q: want FIELD=VALUE", kv)
		}
		q.Add(k, v)
	}
	return q, nil
}

// listCommand is "<res> list [filters]". setup adds resource-specific
// filter flags.
func listCommand(g *globals, res client.Resource, cols []column, setup func(*cobra.Command, *listFilters)) *cobra.Command {
	lf := &listFilters{}
	var fields []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List " + res.Plural,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q, err := lf.query(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			shown := cols
			if len(fields) > 0 {
				shown = make([]column, len(fields))
				for i, f := range fields {
					q.Add("fields", f)
					shown[i] = column{header: f, field: f}
				}
			}
			objs, err := c.List(cmd.Context(), res, q)
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), g.output, shown, objs)
		},
	}
	if setup != nil {
		setup(cmd, lf)
	}
	lf.addGeneric(cmd)
	cmd.Flags().StringArrayVarP(&fields, "field", "c", nil, "show only this field, as a column (repeatable; sent as fields=)")
	return cmd
}

// boolPair registers --on and --off flags for one boolean field and
// returns a function that sets the field in a body when either was given.
func boolPair(cmd *cobra.Command, on, off, field, onUsage, offUsage string) func(client.Object) {
	cmd.Flags().Bool(on, false, onUsage)
	cmd.Flags().Bool(off, false, offUsage)
	cmd.MarkFlagsMutuallyExclusive(on, off)
	return func(body client.Object) {
		switch {
		case cmd.Flags().Changed(on):
			body[field] = flagBool(cmd, on)
		case cmd.Flags().Changed(off):
			body[field] = !flagBool(cmd, off)
		}
	}
}

func flagBool(cmd *cobra.Command, name string) bool {
	b, _ := cmd.Flags().GetBool(name)
	return b
}

// errNothingToUpdate is returned by an update with no change flags.
var errNothingToUpdate = errors.New("nothing to update: give at least one option (see --help)")

// updateCommand is "<res> update NAME|ID [flags]": body builds the changed
// fields from the flags given. target returns the object being updated;
// it is looked up once, on first use, so flag errors cost no request.
func updateCommand(g *globals, res client.Resource, cmd *cobra.Command, body func(ctx context.Context, c *client.Client, target func() (client.Object, error)) (client.Object, error)) *cobra.Command {
	cmd.Use = "update " + strings.ToUpper(res.Singular)
	cmd.Short = "Change the settings of " + withArticle(res.String())
	cmd.Args = cobra.ExactArgs(1)
	cmd.ValidArgsFunction = completeNames(g, res)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		var obj client.Object
		target := func() (client.Object, error) {
			if obj != nil {
				return obj, nil
			}
			o, err := c.Find(cmd.Context(), res, args[0])
			if err != nil {
				return nil, err
			}
			obj = o
			return obj, nil
		}
		fields, err := body(cmd.Context(), c, target)
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			return errNothingToUpdate
		}
		t, err := target()
		if err != nil {
			return err
		}
		id, _ := t["id"].(string)
		updated, err := c.Update(cmd.Context(), res, id, fields)
		if err != nil {
			return err
		}
		return printObject(cmd.OutOrStdout(), g.output, updated)
	}
	return cmd
}

// createCommand is "<res> create NAME [flags]".
func createCommand(g *globals, res client.Resource, cmd *cobra.Command, body func(context.Context, *client.Client, string) (client.Object, error)) *cobra.Command {
	cmd.Use = "create NAME"
	cmd.Short = "Create " + withArticle(res.String())
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		fields, err := body(cmd.Context(), c, args[0])
		if err != nil {
			return err
		}
		obj, err := c.Create(cmd.Context(), res, fields)
		if err != nil {
			return err
		}
		return printObject(cmd.OutOrStdout(), g.output, obj)
	}
	return cmd
}

// withArticle returns "a network", "an agent".
func withArticle(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// completeNames completes a NAME|ID argument with the names (or, for
// resources without names, the IDs) of existing objects whose name starts
// with what was typed. It asks the API with fields= so the answer stays
// small, and completes nothing when the API cannot be reached.
func completeNames(g *globals, res client.Resource) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 && !strings.HasPrefix(cmd.Use, "delete") {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := g.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
		}
		field := res.NameField
		if field == "" {
			field = "id"
		}
		objs, err := c.List(cmd.Context(), res, url.Values{"fields": {"id", field}})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
		}
		var out []cobra.Completion
		seen := map[string]bool{}
		for _, o := range objs {
			v, _ := o[field].(string)
			if v == "" {
				v, _ = o["id"].(string)
			}
			if v != "" && strings.HasPrefix(v, toComplete) && !seen[v] && !slices.Contains(args, v) {
				seen[v] = true
				out = append(out, v)
			}
		}
		slices.Sort(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
