package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/data"
)

func init() { commands = append(commands, newDataCmd) }

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "data", Short: "Download and list benchmark data"}
	var dataDir string
	get := &cobra.Command{
		Use:   "get NAME...",
		Short: "Download benchmarks (pinned by sha256) into the data folder",
		Long: `Get downloads each benchmark into the data folder and checks its sha256. MATH and
MATH train are converted from the per-problem files of the MATH release into JSONL;
the converted file must match its pinned sha256. A file already there is kept only
when it is the pinned one: otherwise get says why and changes nothing.`,
		Example: "  crucible data get gsm8k math500 math",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range args {
				b, ok := data.Lookup(name)
				if !ok {
					return fmt.Errorf("no benchmark %q (have %s)", name, strings.Join(data.Names(), ", "))
				}
				p, err := data.Get(cmd.Context(), nil, b, dataDir)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return nil
		},
	}
	get.Flags().StringVar(&dataDir, "data-dir", data.DefaultDir(), "folder of downloaded benchmarks")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the benchmarks, where each is expected and whether it is there",
		Long: `List prints, for each benchmark, whether the data folder holds it (present, missing, or
not accepted: a file that is not the pinned one, with the reason), its path and its source.
Eval and get accept a file by the same rule.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			for _, b := range data.Benchmarks {
				st := b.Status(dataDir)
				fmt.Fprintf(out, "%-12s %-12s %s\n", b.Name, st.State, st.Path)
				fmt.Fprintf(out, "%-12s %-12s %s\n", "", "", b.Source)
				if !st.OK && st.State != "missing" {
					fmt.Fprintf(out, "%-12s %-12s %s\n", "", "", st.Reason)
				}
			}
			return nil
		},
	}
	list.Flags().StringVar(&dataDir, "data-dir", data.DefaultDir(), "folder of downloaded benchmarks")
	cmd.AddCommand(get, list)
	return cmd
}
