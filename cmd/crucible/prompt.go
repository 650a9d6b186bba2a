package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

func init() { commands = append(commands, newPromptCmd) }

func newPromptCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "prompt", Short: "List and preview prompts"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the built-in prompts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range prompt.Builtins() {
				p, err := prompt.Load(name)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-20s %s\n", name, p.Config.Description)
			}
			return nil
		},
	})
	var rowJSON string
	var completion, asJSON bool
	show := &cobra.Command{
		Use:     "show NAME|FILE.yaml --row JSON",
		Short:   "Print what a model receives for one row",
		Example: `  crucible prompt show math/cot --row '{"problem": "What is $2+2$?"}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := prompt.Load(args[0])
			if err != nil {
				return err
			}
			row, err := record.ParseRow([]byte(rowJSON))
			if err != nil {
				return fmt.Errorf("--row: %w", err)
			}
			w := cmd.OutOrStdout()
			if completion {
				text, err := p.Text(row)
				if err != nil {
					return fmt.Errorf("row %q: %w", row.ID(), err)
				}
				fmt.Fprintln(w, text)
				return nil
			}
			msgs, err := p.Messages(row)
			if err != nil {
				return fmt.Errorf("row %q: %w", row.ID(), err)
			}
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				return enc.Encode(msgs)
			}
			for _, m := range msgs {
				fmt.Fprintf(w, "--- %s ---\n%s\n", m.Role, m.Content)
			}
			return nil
		},
	}
	show.Flags().StringVar(&rowJSON, "row", "{}", "the row, as a JSON object")
	show.Flags().BoolVar(&completion, "completion", false, "show the single completion string instead of chat messages")
	show.Flags().BoolVar(&asJSON, "json", false, "print the chat messages as JSON")
	cmd.AddCommand(show)
	return cmd
}
