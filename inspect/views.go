package inspect

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/record"
)

// pageData is what every template gets.
type pageData struct {
	Title   string
	Crumbs  []link
	Poll    string // status URL of a live run, polled by app.js
	Version string
	Body    any
}

type link struct{ Text, Href string }

func u(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Add(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func (s *Server) page(title string, body any, crumbs ...link) *pageData {
	return &pageData{Title: title, Body: body, Crumbs: crumbs, Version: s.o.Version}
}

// ---- home and run overview

type rootView struct {
	Ref string
	Run *Run
	Err string
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if len(s.roots) == 1 {
		http.Redirect(w, r, u("/run", "f", "0:"), http.StatusSeeOther)
		return
	}
	var views []rootView
	for i, rt := range s.roots {
		v := rootView{Ref: strconv.Itoa(i) + ":"}
		run, err := LoadRun(rt.path)
		if err != nil {
			v.Err = err.Error()
			v.Run = &Run{Name: rt.path}
		} else {
			v.Run = run
		}
		views = append(views, v)
	}
	s.render(w, "home", s.page("Crucible inspect", views))
}

type stageView struct {
	*Stage
	Rows, Eval, Curate, Pairs, Log, Removed, Solution string
}

type runView struct {
	Ref       string
	Run       *Run
	Stages    []stageView
	EvalAll   string // compare every graded stage
	ConfigYML string
}

func (s *Server) loadRunView(ref string) (*runView, error) {
	p, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	run, err := LoadRun(p)
	if err != nil {
		return nil, err
	}
	v := &runView{Ref: ref, Run: run}
	if run.Manifest != nil {
		v.ConfigYML = run.Manifest.Config
	}
	var graded []string
	for _, st := range run.Stages {
		sv := stageView{Stage: st}
		if st.Bytes > 0 {
			if t, err := s.table(st.Output); err == nil && t.refresh() == nil {
				st.Lines = t.ix.Len()
			}
		}
		out := s.ref(st.Output)
		if out != "" && st.Bytes > 0 {
			sv.Rows = u("/rows", "f", out)
			sv.Solution = u("/row", "f", out, "n", "0")
			switch st.Kind {
			case "eval", "graded":
				sv.Eval = u("/eval", "f", out)
				graded = append(graded, out)
			case "curate":
				sv.Curate = u("/curate", "f", out)
			case "pairs":
				sv.Pairs = u("/pairs", "f", out)
			}
		}
		if st.Removed != "" {
			if rr := s.ref(st.Removed); rr != "" {
				sv.Removed = u("/rows", "f", rr)
			}
		}
		if lp := filepath.Join(filepath.Dir(st.Output), "stage.log"); run.Manifest != nil && exists(lp) {
			if lr := s.ref(lp); lr != "" {
				sv.Log = u("/log", "f", lr)
			}
		}
		v.Stages = append(v.Stages, sv)
	}
	if len(graded) > 1 {
		q := url.Values{"f": graded}
		v.EvalAll = "/eval?" + q.Encode()
	}
	return v, nil
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("f")
	v, err := s.loadRunView(ref)
	if err != nil {
		s.fail(w, err)
		return
	}
	pd := s.page(v.Run.Name, v, link{"runs", "/"})
	if v.Run.Live() {
		pd.Poll = u("/api/status", "f", ref)
	}
	s.render(w, "run", pd)
}

// status is the live view's JSON: each stage's state and output size.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	v, err := s.loadRunView(r.URL.Query().Get("f"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	type st struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Lines   int    `json:"lines"`
		Rows    int    `json:"rows"`
		Seconds string `json:"seconds"`
		Bytes   string `json:"bytes"`
		Errors  int    `json:"errors"`
	}
	out := struct {
		Live    bool   `json:"live"`
		Updated string `json:"updated"`
		Stages  []st   `json:"stages"`
	}{Live: v.Run.Live(), Updated: time.Now().Format("15:04:05")}
	for _, sv := range v.Stages {
		out.Stages = append(out.Stages, st{sv.Name, sv.Status, sv.Lines, sv.Stage.Rows, funcs["secs"].(func(float64) string)(sv.Seconds), humanBytes(sv.Bytes), sv.Errors})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

func (s *Server) log(w http.ResponseWriter, r *http.Request) {
	p, err := s.resolve(r.URL.Query().Get("f"))
	if err != nil {
		s.fail(w, err)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	const tail = 256 << 10
	if fi.Size() > tail {
		f.Seek(fi.Size()-tail, 0)
	}
	b := make([]byte, tail)
	n, _ := f.Read(b)
	s.render(w, "log", s.page(filepath.Base(filepath.Dir(p))+" log", string(b[:n]), link{"runs", "/"}))
}

// ---- rows browser

type cell struct {
	Text  string
	Class string
}

type rowsView struct {
	Ref, File        string
	Q                Query
	Limit            int
	Cols             []string
	Rows             []rowLine
	Page             *Page
	Prev, Next       string
	Err              string
	Fields           []string // the fields of the first page, for the field filter
	From, To         int
	RunRef, RunLink  string
	Eval, EvalSelect string
}

type rowLine struct {
	N     int
	Link  string
	Group string
	Cells []cell
}

var preferredCols = []string{"id", "sample", "problem", "question", "prompt", "generation", "predicted_answer", "expected_answer",
	"is_correct", "finish_reason", "num_generated_tokens", "chosen_reward", "rejected_reward", "reward", "removed_by", "removed_reason", "error"}

func queryOf(r *http.Request) (Query, int, int) {
	qv := r.URL.Query()
	q := Query{Text: qv.Get("q"), Field: qv.Get("field"), Value: qv.Get("value"), Where: qv.Get("where"),
		Sort: qv.Get("sort"), Desc: qv.Get("desc") == "1"}
	off, _ := strconv.Atoi(qv.Get("o"))
	limit, _ := strconv.Atoi(qv.Get("limit"))
	if limit <= 0 {
		limit = 50
	}
	return q, max(off, 0), min(limit, 500)
}

func (v *rowsView) params(off int) string {
	return u("/rows", "f", v.Ref, "q", v.Q.Text, "field", v.Q.Field, "value", v.Q.Value, "where", v.Q.Where,
		"sort", v.Q.Sort, "desc", map[bool]string{true: "1"}[v.Q.Desc], "o", strconv.Itoa(off), "limit", strconv.Itoa(v.Limit))
}

func (s *Server) rows(w http.ResponseWriter, r *http.Request) {
	ref, p, t, err := s.requestTable(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	q, off, limit := queryOf(r)
	v := &rowsView{Ref: ref, File: filepath.Base(p), Q: q, Limit: limit}
	page, err := t.Page(r.Context(), q, off, limit)
	if err != nil {
		v.Err = err.Error()
		page = &Page{Rows: t.ix.Len()}
	}
	v.Page = page
	v.From, v.To = off+1, off+len(page.Items)
	seen := map[string]bool{}
	for _, it := range page.Items {
		for _, k := range it.Row.Keys() {
			if !seen[k] {
				seen[k] = true
				v.Fields = append(v.Fields, k)
			}
		}
	}
	for _, c := range preferredCols {
		if seen[c] {
			v.Cols = append(v.Cols, c)
		}
	}
	for _, k := range v.Fields {
		if len(v.Cols) >= 4 {
			break
		}
		if !contains(v.Cols, k) {
			v.Cols = append(v.Cols, k)
		}
	}
	for _, it := range page.Items {
		rl := rowLine{N: it.N, Link: u("/row", "f", ref, "n", strconv.Itoa(it.N))}
		if it.Row.Has("sample") || it.Row.Has("id") {
			rl.Group = u("/group", "f", ref, "id", it.Row.ID())
		}
		for _, c := range v.Cols {
			rl.Cells = append(rl.Cells, cellOf(it.Row, c))
		}
		v.Rows = append(v.Rows, rl)
	}
	if off > 0 {
		v.Prev = v.params(max(off-limit, 0))
	}
	if page.More {
		v.Next = v.params(off + limit)
	}
	if seen["is_correct"] {
		v.Eval = u("/eval", "f", ref)
	}
	s.render(w, "rows", s.page(v.File, v, link{"runs", "/"}))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func cellOf(row *record.Row, k string) cell {
	t, ok := row.Text(k)
	if !ok {
		return cell{}
	}
	c := cell{Text: clip(strings.Join(strings.Fields(t), " "), 160)}
	switch {
	case k == "is_correct" && t == "True":
		c.Class = "ok"
	case k == "is_correct" && t == "False", k == "error", k == "removed_by":
		c.Class = "bad"
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		c.Class += " num"
	}
	return c
}

// ---- solution view

const maxField = 20000 // characters of a field shown before "show all"

type fieldView struct {
	Key       string
	Text      string
	Truncated bool
}

type solutionView struct {
	Ref, File              string
	N                      int
	ID                     string
	Sample                 string
	Problem                template.HTML
	Generation             template.HTML
	GenTruncated           bool
	Reasoning              template.HTML
	HasVerdict, Correct    bool
	Predicted, Expected    string
	HasPredicted           bool
	Meta                   []fieldView
	Removal                []fieldView
	Other                  []fieldView
	Prev, Next, Group, All string
	Messages               []msgView
	Error                  string
}

type msgView struct {
	Role    string
	Content template.HTML
}

func (s *Server) row(w http.ResponseWriter, r *http.Request) {
	ref, p, t, err := s.requestTable(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	row, err := t.Row(n)
	if err != nil {
		s.fail(w, fmt.Errorf("%w: %v", os.ErrNotExist, err))
		return
	}
	full := r.URL.Query().Get("full") == "1"
	v := solutionView{Ref: ref, File: filepath.Base(p), N: n, ID: row.ID()}
	if n > 0 {
		v.Prev = u("/row", "f", ref, "n", strconv.Itoa(n-1))
	}
	if n+1 < t.ix.Len() {
		v.Next = u("/row", "f", ref, "n", strconv.Itoa(n+1))
	}
	v.Group = u("/group", "f", ref, "id", row.ID())
	v.All = u("/row", "f", ref, "n", strconv.Itoa(n), "full", "1")
	shown := map[string]bool{}
	text := func(k string) (string, bool) {
		shown[k] = true
		return row.Text(k)
	}
	for _, k := range []string{"problem", "question"} {
		if s, ok := text(k); ok && v.Problem == "" {
			v.Problem = Markdown(s)
		}
	}
	for _, k := range []string{"generation", "generated_solution", "solution", "output"} {
		if g, ok := text(k); ok && v.Generation == "" {
			if !full && len(g) > maxField {
				g, v.GenTruncated = g[:maxField], true
			}
			v.Generation = Markdown(g)
		}
	}
	if rs, ok := text("reasoning"); ok {
		if !full && len(rs) > maxField {
			rs = rs[:maxField] + "\n\n…"
		}
		v.Reasoning = Markdown(rs)
	}
	var msgs []struct {
		Role    string `json:"role"`
		Content any    `json:"content"`
	}
	if row.Decode("messages", &msgs) == nil {
		shown["messages"] = true
		for _, m := range msgs {
			c, ok := m.Content.(string)
			if !ok {
				b, _ := json.Marshal(m.Content)
				c = string(b)
			}
			v.Messages = append(v.Messages, msgView{m.Role, Markdown(c)})
		}
	}
	v.Predicted, v.HasPredicted = text("predicted_answer")
	v.Expected, _ = text("expected_answer")
	v.Correct, v.HasVerdict = row.Bool("is_correct")
	shown["is_correct"] = true
	if e, ok := text("error"); ok {
		v.Error = e
	}
	for _, k := range []string{"id", "sample", "finish_reason", "num_generated_tokens", "num_input_tokens", "code_executions", "code_errors",
		"grade_policy", "subject", "level", "problem_source", "reward", "chosen_reward", "rejected_reward"} {
		if t, ok := text(k); ok {
			v.Meta = append(v.Meta, fieldView{Key: k, Text: t})
		}
	}
	for _, k := range []string{"removed_by", "removed_reason", "contaminated_with", "duplicate_of", "kept_twin", "contamination_check_error"} {
		if t, ok := text(k); ok {
			v.Removal = append(v.Removal, fieldView{Key: k, Text: t})
		}
	}
	for _, k := range row.Keys() {
		if shown[k] {
			continue
		}
		t, _ := row.Text(k)
		fv := fieldView{Key: k, Text: t}
		if !full && len(t) > maxField {
			fv.Text, fv.Truncated = t[:maxField], true
		}
		v.Other = append(v.Other, fv)
	}
	s.render(w, "row", s.page(fmt.Sprintf("%s row %d", v.File, n), v, link{"runs", "/"}, link{v.File, u("/rows", "f", ref)}))
}

// ---- the samples of one problem side by side

type groupView struct {
	Ref, File, ID string
	Problem       template.HTML
	Expected      string
	Samples       []sampleCard
	Correct       int
	More          bool
}

type sampleCard struct {
	N, Sample           string
	Link                string
	HasVerdict, Correct bool
	Predicted           string
	Generation          template.HTML
	Truncated           bool
	Finish, Removed     string
}

func (s *Server) group(w http.ResponseWriter, r *http.Request) {
	ref, p, t, err := s.requestTable(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	id := r.URL.Query().Get("id")
	q := Query{Field: "id", Value: id}
	page, err := t.Page(r.Context(), q, 0, 64)
	if err != nil {
		s.fail(w, err)
		return
	}
	v := &groupView{Ref: ref, File: filepath.Base(p), ID: id, More: page.More}
	items := page.Items
	sort.SliceStable(items, func(i, j int) bool {
		a, _ := items[i].Row.Int("sample")
		b, _ := items[j].Row.Int("sample")
		return a < b
	})
	for _, it := range items {
		row := it.Row
		if row.ID() != id {
			continue
		}
		if v.Problem == "" {
			for _, k := range []string{"problem", "question", "prompt"} {
				if s, ok := row.Text(k); ok {
					v.Problem = Markdown(s)
					break
				}
			}
			v.Expected, _ = row.Text("expected_answer")
		}
		c := sampleCard{N: strconv.Itoa(it.N), Link: u("/row", "f", ref, "n", strconv.Itoa(it.N))}
		c.Sample, _ = row.Text("sample")
		c.Correct, c.HasVerdict = row.Bool("is_correct")
		if c.Correct {
			v.Correct++
		}
		c.Predicted, _ = row.Text("predicted_answer")
		g, _ := row.Text("generation")
		if len(g) > 4000 {
			g, c.Truncated = g[:4000], true
		}
		c.Generation = Markdown(g)
		c.Finish, _ = row.Text("finish_reason")
		c.Removed, _ = row.Text("removed_by")
		v.Samples = append(v.Samples, c)
	}
	s.render(w, "group", s.page("problem "+id, v, link{"runs", "/"}, link{v.File, u("/rows", "f", ref)}))
}
