package main

import (
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/backend/openai"
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
	var addr, apiKeyEnv string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the sandbox over HTTP (NeMo-Skills compatible API)",
		Long: `Serves isolated, stateful Python sessions over HTTP. Anyone who reaches the port runs code: an
address other than loopback needs --api-key-env (clients send the key as a Bearer token; generate
takes it with --sandbox-api-key-env), or --insecure-no-auth.`,
		Example: `  crucible sandbox serve --addr 127.0.0.1:6000
  curl -s -H 'X-Session-ID: s1' -d '{"generated_code": "x = 6*7\nx", "timeout": 10}' 127.0.0.1:6000/execute
  SANDBOX_KEY=... crucible sandbox serve --addr 0.0.0.0:6000 --api-key-env SANDBOX_KEY`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := ""
			if apiKeyEnv != "" {
				var err error
				if key, err = openai.KeyFromEnv(apiKeyEnv); err != nil {
					return err
				}
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen %s: %w", addr, err)
			}
			defer ln.Close()
			if a, ok := ln.Addr().(*net.TCPAddr); key == "" && !insecure && (!ok || !a.IP.IsLoopback()) {
				return fmt.Errorf("--addr %s is reachable from other machines, and anyone who reaches it runs code: "+
					"give --api-key-env VAR (a key clients send), or --insecure-no-auth", addr)
			}
			ctx := cmd.Context()
			pool, err := sandbox.NewPool(ctx, f.config())
			if err != nil {
				return err
			}
			defer pool.Close()
			return sandbox.Serve(ctx, ln, pool, sandbox.ServerOptions{APIKey: key})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:6000", "address to listen on")
	cmd.Flags().StringVar(&apiKeyEnv, "api-key-env", "", "require the API key held by this environment variable (Authorization: Bearer KEY)")
	cmd.Flags().BoolVar(&insecure, "insecure-no-auth", false, "serve a non-loopback --addr without an API key")
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
				return exitError{code: exitVerdict, msg: "sandbox: " + string(res.Status)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&language, "language", "python", "python (plain) or ipython (print the last expression)")
	f.register(cmd)
	return cmd
}
