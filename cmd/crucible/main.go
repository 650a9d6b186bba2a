// Command crucible makes and checks reasoning training data with language
// models, and runs the models that do it. Each sub-command lives in its own
// file of this package and only parses flags before calling a library package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	ctx, stop := interruptContext()
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// Exit statuses: 0 success (or "equal"), 1 a negative verdict (grade check's
// "not equal", model check's mismatch), 2 a usage or runtime error, 130 a
// run stopped by an interrupt.
const (
	exitVerdict     = 1
	exitFailure     = 2
	exitInterrupted = 130 // 128 + SIGINT, as shells report it
)

// exitCode prints err and returns the process's exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "crucible: interrupted; rerun the same command to resume")
		return exitInterrupted
	}
	var ex exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(stderr, ex.msg)
		}
		return ex.code
	}
	fmt.Fprintln(stderr, "crucible:", err)
	return exitFailure
}

// interruptContext is cancelled by the first SIGINT or SIGTERM, so that a
// command stops cleanly (rows in flight are written, the output stays
// resumable); a second one exits at once.
func interruptContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
		case <-done:
			return
		}
		fmt.Fprintln(os.Stderr, "crucible: stopping (interrupt again to exit at once)")
		cancel()
		select {
		case <-sig:
			fmt.Fprintln(os.Stderr, "crucible: interrupted")
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(sig); close(done); cancel() }
}

// exitError ends the process with a given status and an optional message,
// for commands whose exit status carries a result (e.g. `grade check`).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }
