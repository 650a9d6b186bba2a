package inspect

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// ReportOptions configure WriteReport.
type ReportOptions struct {
	// CacheDir keeps row indexes, as in Options ("-" for none).
	CacheDir string
	Version  string
}

type reportStage struct {
	*Stage
	Eval   *evalView
	Curate *curateView
	Pairs  *pairsView
	Err    string
}

type reportData struct {
	Run     *Run
	Stages  []reportStage
	CSS     template.CSS
	Made    string
	Version string
}

// WriteReport writes the overview, eval charts, curation funnel and
// preference margins of a run folder (or output folder, or rows file) as
// one HTML page with its style and SVG charts inline: no script, no link
// to anything outside the file, so it opens offline and can be attached to
// a pull request.
func WriteReport(ctx context.Context, w io.Writer, path string, o ReportOptions) error {
	s, err := New(Options{Roots: []string{path}, CacheDir: o.CacheDir, Version: o.Version})
	if err != nil {
		return err
	}
	rv, err := s.loadRunView("0:")
	if err != nil {
		return err
	}
	css, err := files.ReadFile("assets/style.css")
	if err != nil {
		return err
	}
	d := reportData{Run: rv.Run, CSS: template.CSS(css), Made: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Version: o.Version}
	for _, sv := range rv.Stages {
		st := sv.Stage
		rs := reportStage{Stage: st}
		if st.Bytes > 0 {
			var err error
			switch st.Kind {
			case "eval", "graded":
				rs.Eval, err = s.evalReport(ctx, []string{st.Output}, []string{st.Name}, false)
			case "curate":
				rs.Curate, err = s.curateReport(ctx, st.Output, false)
			case "pairs":
				var t *Table
				if t, err = s.table(st.Output); err == nil {
					rs.Pairs, err = s.pairsReport(ctx, t, "", st.Output, nil)
				}
			}
			if err != nil {
				rs.Err = err.Error()
			}
		}
		d.Stages = append(d.Stages, rs)
	}
	t, err := template.New("report").Funcs(funcs).ParseFS(files, "templates/report.tmpl")
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "report", d); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = io.WriteString(w, b.String())
	return err
}
