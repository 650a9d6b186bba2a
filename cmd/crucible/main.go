// Command crucible makes and checks reasoning training data with language
// models, and runs the models that do it. Each sub-command lives in its own
// file of this package and only parses flags before calling a library package.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/sandbox"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// commands holds the constructors of the top-level sub-commands; each command
// file appends to it from an init function, so that adding a command touches
// one file only.
var commands []func() *cobra.Command

// benchCommands holds the constructors of the `crucible bench ...` sub-commands.
var benchCommands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "crucible",
		Short:         "Make and check reasoning training data with language models",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		lvl, _ := cmd.Flags().GetString("log-level")
		return setupLogging(lvl)
	}
	bench := &cobra.Command{
		Use:   "bench",
		Short: "Measure the speed of a part of Crucible",
	}
	for _, c := range benchCommands {
		bench.AddCommand(c())
	}
	root.AddCommand(bench)
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

func main() {
	if sandbox.MaybeRunChild() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			if ex.msg != "" {
				fmt.Fprintln(os.Stderr, ex.msg)
			}
			os.Exit(ex.code)
		}
		fmt.Fprintln(os.Stderr, "crucible:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a given status and an optional message,
// for commands whose exit status carries a result (e.g. `grade check`).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }
