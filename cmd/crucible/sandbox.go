package main

import (
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/sandbox"
)

func init() {
	commands = append(commands, newSandboxCmd)
}

func newSandboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run model-written Python in isolated, stateful sessions",
	}
	cmd.AddCommand(newSandboxServeCmd(), newSandboxRunCmd())
	return cmd
}

func newSandboxServeCmd() *cobra.Command {
	var f sandboxFlags
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the sandbox over HTTP (NeMo-Skills compatible API)",
		Example: `  crucible sandbox serve --addr 127.0.0.1:6000
  curl -s -H 'X-Session-ID: s1' -d '{"generated_code": "x = 6*7\nx", "timeout": 10}' 127.0.0.1:6000/execute`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pool, err := sandbox.NewPool(ctx, f.config())
			if err != nil {
				return err
			}
			defer pool.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen %s: %w", addr, err)
			}
			return sandbox.Serve(ctx, ln, pool, nil)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:6000", "address to listen on")
	f.register(cmd)
	return cmd
}

func newSandboxRunCmd() *cobra.Command {
	var f sandboxFlags
	var language string
	cmd := &cobra.Command{
		Use:   "run [file.py]",
		Short: "Run one Python file (or standard input) in a fresh sandbox and print its output",
		Example: `  echo 'import sympy; sympy.factor("x**2-1")' | crucible sandbox run
  crucible sandbox run solution.py --timeout 30s`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var code []byte
			var err error
			if len(args) == 1 && args[0] != "-" {
				code, err = os.ReadFile(args[0])
			} else {
				code, err = io.ReadAll(cmd.InOrStdin())
			}
			if err != nil {
				return fmt.Errorf("read code: %w", err)
			}
			cfg := f.config()
			cfg.WarmWorkers = -1
			ctx := cmd.Context()
			pool, err := sandbox.NewPool(ctx, cfg)
			if err != nil {
				return err
			}
			defer pool.Close()
			res, err := pool.Execute(ctx, "", string(code), sandbox.ExecOptions{Language: language, MaxOutputChars: 1 << 20})
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), res.Stdout)
			fmt.Fprint(cmd.ErrOrStderr(), res.Stderr)
			if res.Status != sandbox.StatusCompleted {
				return exitError{code: 1, msg: "sandbox: " + string(res.Status)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&language, "language", "python", "python (plain) or ipython (print the last expression)")
	f.register(cmd)
	return cmd
}
