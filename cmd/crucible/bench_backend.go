package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/solve"
)

func init() { benchCommands = append(benchCommands, newBenchBackendCmd) }

func newBenchBackendCmd() *cobra.Command {
	var requests, concurrency int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "backend",
		Short: "Requests/s of the full generate path against an in-process zero-latency server, next to a bare HTTP loop",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "crucible-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			res, err := solve.BenchBackend(cmd.Context(), requests, concurrency, dir)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "requests %d, concurrency %d, GOMAXPROCS %d\nbare HTTP loop  %10.0f requests/s\ngenerate path   %10.0f requests/s\nratio           %10.2f\n",
				res.Requests, res.Concurrency, res.GOMAXPROCS, res.BareRPS, res.FullRPS, res.Ratio)
			return nil
		},
	}
	cmd.Flags().IntVar(&requests, "requests", 100000, "requests per measurement")
	cmd.Flags().IntVar(&concurrency, "concurrency", 256, "requests in flight")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
