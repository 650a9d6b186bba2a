package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/inspect"
)

func init() { commands = append(commands, newInspectCmd, newReportCmd) }

func newInspectCmd() *cobra.Command {
	var addr, apiKeyEnv, cacheDir string
	cmd := &cobra.Command{
		Use:   "inspect [RUN_DIR | FILE ...]",
		Short: "Browse run folders and rows files in a web page (overview, rows, solutions, eval, funnel)",
		Long: `Serves a read-only web viewer over run folders (runs/NAME with manifest.json), output folders
and JSONL/Parquet rows files: the run's stages and their status (live while it runs), a rows
browser (paged through an index, filters by field, an expr-lang --where as in curate, full-text
search, sort, a problem's samples side by side), solutions with Markdown, math and code outputs,
eval charts, the curation funnel and preference pairs. Everything is embedded; nothing is
fetched from the network. It listens on 127.0.0.1 unless --addr says otherwise, and any other
address needs --api-key-env.`,
		Example: `  crucible inspect runs/omi2
  crucible inspect runs/m500/output.jsonl --addr 127.0.0.1:9000
  KEY=secret crucible inspect runs/omi2 --addr 0.0.0.0:8080 --api-key-env KEY   # open http://HOST:8080/?key=secret`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var key string
			if apiKeyEnv != "" {
				k, err := openai.KeyFromEnv(apiKeyEnv)
				if err != nil {
					return err
				}
				key = k
			}
			if !inspect.Loopback(addr) && key == "" {
				return fmt.Errorf("--addr %s is reachable from other machines: add --api-key-env VAR (or bind 127.0.0.1)", addr)
			}
			srv, err := inspect.New(inspect.Options{Roots: args, CacheDir: cacheDir, APIKey: key, Version: version})
			if err != nil {
				return err
			}
			return srv.ListenAndServe(cmd.Context(), addr, func(a string) {
				fmt.Fprintf(cmd.OutOrStdout(), "crucible inspect: http://%s/\n", a)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address (a non-loopback one needs --api-key-env)")
	f.StringVar(&apiKeyEnv, "api-key-env", "", "require the API key held by this environment variable")
	f.StringVar(&cacheDir, "cache-dir", "", `where row indexes are kept (default: the user cache folder's crucible/inspect; "-": none)`)
	return cmd
}

func newReportCmd() *cobra.Command {
	var output, cacheDir string
	cmd := &cobra.Command{
		Use:   "report RUN_DIR --output report.html",
		Short: "Write a run's overview, eval charts and curation funnel as one self-contained HTML file",
		Long: `Writes the charts and tables of crucible inspect for one run folder (or output folder, or rows
file) as a single HTML file: styles and SVG charts inline, no script and no external reference,
so it opens offline and can be attached to a pull request.`,
		Example: `  crucible report runs/omi2 --output omi2.html`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				output = filepath.Join(args[0], "report.html")
				if fi, err := os.Stat(args[0]); err == nil && !fi.IsDir() {
					output = args[0] + ".report.html"
				}
			}
			tmp := output + ".tmp"
			f, err := os.Create(tmp)
			if err != nil {
				return err
			}
			err = inspect.WriteReport(cmd.Context(), f, args[0], inspect.ReportOptions{CacheDir: cacheDir, Version: version})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(tmp)
				return err
			}
			if err := os.Rename(tmp, output); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), output)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "the HTML file (default RUN_DIR/report.html)")
	f.StringVar(&cacheDir, "cache-dir", "", `where row indexes are kept (default: the user cache folder's crucible/inspect; "-": none)`)
	return cmd
}
