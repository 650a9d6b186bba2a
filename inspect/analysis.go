package inspect

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/crucible-ml/crucible/curate"
)

// cachedEval keeps a file's statistics until the file changes.
type cachedEval struct {
	gen int
	st  *EvalStats
}

func (s *Server) evalStats(ctx context.Context, path string) (*EvalStats, error) {
	t, err := s.table(path)
	if err != nil {
		return nil, err
	}
	if err := t.refresh(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	c, ok := s.evals[path]
	s.mu.Unlock()
	if ok && c.gen == t.ix.Gen() {
		return c.st, nil
	}
	st, err := ComputeEval(ctx, t)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.evals[path] = cachedEval{t.ix.Gen(), st}
	s.mu.Unlock()
	return st, nil
}

// ---- eval

type evalRun struct {
	Name    string
	Ref     string
	Stats   *EvalStats
	Metrics map[string]any // metrics.json, when there is one
	Lengths template.HTML
}

type metricRow struct {
	Name   string
	Values []string
}

type evalView struct {
	Runs      []evalRun
	Table     []metricRow
	PassChart template.HTML
	Subject   template.HTML
	Level     template.HTML
}

// evalReport builds the eval view of graded files; link makes chart
// elements links (nil in the static report).
func (s *Server) evalReport(ctx context.Context, paths []string, names []string, links bool) (*evalView, error) {
	v := &evalView{}
	for i, p := range paths {
		st, err := s.evalStats(ctx, p)
		if err != nil {
			return nil, err
		}
		er := evalRun{Name: names[i], Ref: s.ref(p), Stats: st}
		if mp := filepath.Join(filepath.Dir(p), "metrics.json"); exists(mp) {
			er.Metrics, _ = ReadMetrics(mp)
		}
		v.Runs = append(v.Runs, er)
	}
	// The metrics table: metrics.json's values where there is one, else
	// those computed from the rows.
	var names2 []string
	seen := map[string]bool{}
	vals := make([]map[string]string, len(v.Runs))
	for i, er := range v.Runs {
		vals[i] = map[string]string{}
		add := func(k, val string) {
			if !seen[k] {
				seen[k] = true
				names2 = append(names2, k)
			}
			vals[i][k] = val
		}
		st := er.Stats
		add("rows", strconv.Itoa(st.Rows))
		add("problems", strconv.Itoa(st.Problems))
		add("samples per problem", strconv.Itoa(st.Samples))
		for j, k := range st.Ks {
			add(fmt.Sprintf("pass@%d", k), pct(st.Pass[j]))
			add(fmt.Sprintf("majority@%d", k), pct(st.Majority[j]))
		}
		add("accuracy (all samples)", pct(st.Accuracy))
		add("no_answer", pct(st.NoAnswer))
		add("errors", strconv.Itoa(st.Errors))
		if er.Metrics != nil {
			var keys []string
			for k, val := range er.Metrics {
				if _, ok := val.(float64); ok {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				f := er.Metrics[k].(float64)
				txt := strconv.FormatFloat(f, 'f', -1, 64)
				if f <= 1 && k != "errors" && k != "samples" && k != "num_problems" {
					txt = pct(f)
				}
				add("metrics.json "+k, txt)
			}
		}
	}
	for _, k := range names2 {
		mr := metricRow{Name: k}
		for i := range v.Runs {
			mr.Values = append(mr.Values, vals[i][k])
		}
		v.Table = append(v.Table, mr)
	}
	// pass@k and majority@k vs k, one line per run and metric.
	var xs []string
	var series []Series
	for _, er := range v.Runs {
		if len(er.Stats.Ks) > len(xs) {
			xs = xs[:0]
			for _, k := range er.Stats.Ks {
				xs = append(xs, strconv.Itoa(k))
			}
		}
	}
	for _, er := range v.Runs {
		prefix := ""
		if len(v.Runs) > 1 {
			prefix = er.Name + " "
		}
		series = append(series, Series{prefix + "pass@k", er.Stats.Pass}, Series{prefix + "majority@k", er.Stats.Majority})
	}
	v.PassChart = LineChart("pass@k and majority@k vs k", xs, series, 1)
	v.Subject = groupChart("accuracy by subject", v.Runs, func(st *EvalStats) []GroupScore { return st.BySubject }, links,
		func(name string) string { return fmt.Sprintf("subject == %q", name) })
	v.Level = groupChart("accuracy by level", v.Runs, func(st *EvalStats) []GroupScore { return st.ByLevel }, links,
		func(name string) string {
			return fmt.Sprintf("level == %s || level == %q || level == %q", name, name, "Level "+name)
		})
	for i := range v.Runs {
		er := &v.Runs[i]
		st := er.Stats
		var labels []string
		for _, b := range st.Buckets {
			labels = append(labels, fmt.Sprintf("%s–%s", fnum(b.Lo), fnum(b.Hi)))
		}
		cs, ws := make([]float64, len(st.Correct)), make([]float64, len(st.Wrong))
		for j := range cs {
			cs[j], ws[j] = float64(st.Correct[j]), float64(st.Wrong[j])
		}
		var lf func(si, j int) string
		if links && er.Ref != "" {
			lf = func(si, j int) string {
				b := st.Buckets[j]
				length := "num_generated_tokens"
				if st.LengthOf != "num_generated_tokens" {
					length = "len(generation)"
				}
				where := fmt.Sprintf("is_correct == %t && %s >= %s && %s < %s", si == 0, length, fnum(b.Lo), length, fnum(b.Hi))
				return u("/rows", "f", er.Ref, "where", where)
			}
		}
		title := "length (" + st.LengthOf + "): correct vs wrong"
		if len(v.Runs) > 1 {
			title = er.Name + ": " + title
		}
		er.Lengths = BarChart(title, labels, []Series{{"correct", cs}, {"wrong", ws}}, 0, lf)
	}
	return v, nil
}

func groupChart(title string, runs []evalRun, get func(*EvalStats) []GroupScore, links bool, where func(string) string) template.HTML {
	var labels []string
	seen := map[string]bool{}
	for _, er := range runs {
		for _, g := range get(er.Stats) {
			if !seen[g.Name] {
				seen[g.Name] = true
				labels = append(labels, g.Name)
			}
		}
	}
	if len(labels) == 0 {
		return ""
	}
	var series []Series
	for _, er := range runs {
		vals := make([]float64, len(labels))
		for _, g := range get(er.Stats) {
			for i, l := range labels {
				if l == g.Name {
					vals[i] = g.Accuracy
				}
			}
		}
		name := ""
		if len(runs) > 1 {
			name = er.Name
		}
		series = append(series, Series{name, vals})
	}
	var lf func(si, i int) string
	if links {
		lf = func(si, i int) string {
			if runs[si].Ref == "" {
				return ""
			}
			return u("/rows", "f", runs[si].Ref, "where", where(labels[i]))
		}
	}
	return BarChart(title, labels, series, 1, lf)
}

func (s *Server) eval(w http.ResponseWriter, r *http.Request) {
	refs := r.URL.Query()["f"]
	if len(refs) == 0 {
		s.fail(w, fmt.Errorf("%w: no file", errBadRequest))
		return
	}
	var paths, names []string
	for _, ref := range refs {
		p, err := s.resolve(ref)
		if err != nil {
			s.fail(w, err)
			return
		}
		paths = append(paths, p)
		names = append(names, stageName(p))
	}
	v, err := s.evalReport(r.Context(), paths, names, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, "eval", s.page("eval: "+strings.Join(names, ", "), v, link{"runs", "/"}))
}

// stageName names an output by its stage folder (runs/NAME/STAGE/output.jsonl)
// or its file name.
func stageName(p string) string {
	if b := filepath.Base(p); b == "output.jsonl" || b == "output.parquet" {
		return filepath.Base(filepath.Dir(p))
	}
	return filepath.Base(p)
}

// ---- curation

type removedStep struct {
	Step    string
	Removed int
	Link    string
	Samples []sampleCard
}

type curateView struct {
	Ref, File  string
	Report     *curate.Report
	Funnel     template.HTML
	Sources    template.HTML
	Lengths    template.HTML
	Steps      []removedStep
	RemovedRef string
	Err        string
}

func (s *Server) curateReport(ctx context.Context, path string, links bool) (*curateView, error) {
	v := &curateView{Ref: s.ref(path), File: filepath.Base(path)}
	base := strings.TrimSuffix(strings.TrimSuffix(path, ".jsonl"), ".parquet")
	rep, err := ReadCurateReport(base + ".report.json")
	if err != nil {
		return nil, fmt.Errorf("no curation report beside %s: %w", filepath.Base(path), err)
	}
	v.Report = rep
	removed := base + ".removed.jsonl"
	if exists(removed) {
		v.RemovedRef = s.ref(removed)
	}
	var steps []FunnelStep
	steps = append(steps, FunnelStep{Label: "input", Out: rep.RowsIn})
	for _, f := range rep.Funnel {
		fs := FunnelStep{Label: f.Step, Out: f.Out, Removed: f.Removed}
		if links && v.RemovedRef != "" {
			fs.Link = u("/rows", "f", v.RemovedRef, "field", "removed_by", "value", f.Step)
		}
		steps = append(steps, fs)
	}
	v.Funnel = FunnelChart("curation funnel (rows after each step)", steps)
	// Per source: in and out.
	var srcs []string
	for k := range rep.BySource {
		srcs = append(srcs, k)
	}
	sort.Strings(srcs)
	if len(srcs) > 0 {
		in, out := make([]float64, len(srcs)), make([]float64, len(srcs))
		for i, k := range srcs {
			in[i], out[i] = float64(rep.BySource[k].In), float64(rep.BySource[k].Out)
		}
		v.Sources = BarChart("rows per source, before and after", srcs, []Series{{"in", in}, {"out", out}}, 0, nil)
	}
	// Lengths before (kept + removed) and after (kept), from the report's
	// power-of-two buckets and the removed rows.
	if hist := rep.Histogram["solution_chars"]; len(hist) > 0 {
		after := make([]float64, len(hist))
		before := make([]float64, len(hist))
		var labels []string
		for i, b := range hist {
			after[i], before[i] = float64(b.Count), float64(b.Count)
			labels = append(labels, fmt.Sprintf("<%d", b.Hi))
		}
		if v.RemovedRef != "" {
			if t, err := s.table(removed); err == nil {
				if ls, err := LengthsOf(ctx, t, "generation", "generated_solution", "solution", "output"); err == nil {
					for _, l := range ls {
						i := len(hist) - 1
						for j, b := range hist {
							if int(l) < b.Hi {
								i = j
								break
							}
						}
						before[i]++
					}
				}
			}
		}
		v.Lengths = BarChart("solution length (characters), before and after", labels, []Series{{"before", before}, {"after", after}}, 0, nil)
	}
	// A few removed rows per step.
	if v.RemovedRef != "" {
		t, err := s.table(removed)
		if err == nil {
			for _, f := range rep.Funnel {
				if f.Removed == 0 {
					continue
				}
				rs := removedStep{Step: f.Step, Removed: f.Removed}
				if links {
					rs.Link = u("/rows", "f", v.RemovedRef, "field", "removed_by", "value", f.Step)
				}
				page, err := t.Page(ctx, Query{Field: "removed_by", Value: f.Step}, 0, 3)
				if err == nil {
					for _, it := range page.Items {
						c := sampleCard{N: strconv.Itoa(it.N)}
						if links {
							c.Link = u("/row", "f", v.RemovedRef, "n", strconv.Itoa(it.N))
						}
						c.Sample, _ = it.Row.Text("id")
						c.Removed, _ = it.Row.Text("removed_reason")
						g, _ := it.Row.Text("generation")
						c.Generation = template.HTML(template.HTMLEscapeString(clip(g, 300)))
						rs.Samples = append(rs.Samples, c)
					}
				}
				v.Steps = append(v.Steps, rs)
			}
		}
	}
	return v, nil
}

func (s *Server) curate(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("f")
	p, err := s.resolve(ref)
	if err != nil {
		s.fail(w, err)
		return
	}
	v, err := s.curateReport(r.Context(), p, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, "curate", s.page("curation: "+stageName(p), v, link{"runs", "/"}))
}

// ---- preference pairs

type pairCard struct {
	N                string
	Link             string
	Prompt           template.HTML
	Chosen, Rejected template.HTML
	CR, RR, Margin   string
}

type pairsView struct {
	Ref, File  string
	Margins    template.HTML
	Pairs      []pairCard
	Prev, Next string
	Rows       int
}

func (s *Server) pairs(w http.ResponseWriter, r *http.Request) {
	ref, p, t, err := s.requestTable(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	v, err := s.pairsReport(r.Context(), t, ref, p, r)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, "pairs", s.page("pairs: "+stageName(p), v, link{"runs", "/"}))
}

func (s *Server) pairsReport(ctx context.Context, t *Table, ref, p string, r *http.Request) (*pairsView, error) {
	v := &pairsView{Ref: ref, File: filepath.Base(p)}
	ps, err := ComputePairs(ctx, t)
	if err != nil {
		return nil, err
	}
	v.Rows = ps.Rows
	if bs, counts := Histogram(ps.Margins, 12); len(bs) > 0 {
		var labels []string
		vals := make([]float64, len(counts))
		for i, b := range bs {
			labels = append(labels, strconv.FormatFloat(b.Lo, 'g', 3, 64))
			vals[i] = float64(counts[i])
		}
		v.Margins = BarChart("reward margin (chosen − rejected)", labels, []Series{{"pairs", vals}}, 0, nil)
	}
	if r == nil {
		return v, nil
	}
	off, _ := strconv.Atoi(r.URL.Query().Get("o"))
	off = max(off, 0)
	page, err := t.Page(ctx, Query{}, off, 10)
	if err != nil {
		return nil, err
	}
	for _, it := range page.Items {
		row := it.Row
		c := pairCard{N: strconv.Itoa(it.N), Link: u("/row", "f", ref, "n", strconv.Itoa(it.N))}
		pr, _ := row.Text("prompt")
		c.Prompt = Markdown(clip(pr, 3000))
		ch, _ := row.Text("chosen")
		rj, _ := row.Text("rejected")
		c.Chosen, c.Rejected = Markdown(clip(ch, 6000)), Markdown(clip(rj, 6000))
		cr, ok1 := floatField(row, "chosen_reward")
		rr, ok2 := floatField(row, "rejected_reward")
		if ok1 {
			c.CR = strconv.FormatFloat(cr, 'g', 4, 64)
		}
		if ok2 {
			c.RR = strconv.FormatFloat(rr, 'g', 4, 64)
		}
		if ok1 && ok2 {
			c.Margin = strconv.FormatFloat(cr-rr, 'g', 4, 64)
		}
		v.Pairs = append(v.Pairs, c)
	}
	if off > 0 {
		v.Prev = u("/pairs", "f", ref, "o", strconv.Itoa(max(off-10, 0)))
	}
	if page.More {
		v.Next = u("/pairs", "f", ref, "o", strconv.Itoa(off+10))
	}
	return v, nil
}
