package curate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/record"
)

// Shards is a curation cut into jobs whose tasks share a work folder
// (OUTPUT.cache/work) and may run as separate processes, on one machine or
// as Slurm array tasks:
//
//	split      (map)     read the input (a slice of it per task) into one
//	                     piece per partition; a row's partition is a hash of
//	                     its problem (row id)
//	pass-N     (reduce)  one task per partition: apply the last global step's
//	                     decisions, run the per-problem steps, collect what the
//	                     next global step needs
//	decide-N             one task: decide a global step from every
//	                     partition's records (hash-bucketed band keys, text
//	                     hashes, n-gram hits, per-problem counts)
//	write                merge the partitions into the output, the removed
//	                     rows (step by step) and the report, in input order
//
// Jobs run in order; a job's tasks are independent. A finished task leaves
// a marker, so a rerun does only the unfinished tasks. RunFile runs the
// same jobs in one process.
type Shards struct {
	// Jobs are the jobs in the order they must run.
	Jobs []ShardJob

	p       *Pipeline
	o       FileOptions
	dir     string
	plan    shardPlan
	phases  []phase
	globals []globalStep
	base    Dataset // text fields of every partition
	// sequential is set when the tasks run one after the other in this
	// process (RunFile): partitions then share the LLM verdict cache.
	sequential bool

	report  *Report
	written int
}

// ShardJob is one job: Tasks independent tasks, 0 to Tasks-1.
type ShardJob struct {
	Name  string `json:"name"`
	Tasks int    `json:"tasks"`
}

// shardPlan is fixed when a sharded curation starts (work/plan.json).
type shardPlan struct {
	Input         string    `json:"input"`
	Parts         int       `json:"parts"`
	Splits        int       `json:"splits"`
	Buckets       int       `json:"buckets"`
	BucketBudget  int       `json:"bucket_budget"`
	ProblemField  string    `json:"problem_field"`
	SolutionField string    `json:"solution_field"`
	Steps         int       `json:"steps"`
	Started       time.Time `json:"started"`
}

// phase is one pass over the partitions: apply a global step's decisions,
// run per-problem steps, then collect for the next global step.
type phase struct {
	apply    int // global step applied first (-1: none)
	local    []int
	collect  int // global step collected for at the end (-1: none)
	round    int // its collection round
	readOnly bool
}

func workDir(o *FileOptions) string { return filepath.Join(o.Env.CacheDir, "work") }

// defaults fills the output paths RunFile documents.
func (o *FileOptions) defaults() {
	base := strings.TrimSuffix(strings.TrimSuffix(o.Output, ".jsonl"), ".parquet")
	if o.Removed == "" {
		o.Removed = base + ".removed.jsonl"
	}
	if o.Report == "" {
		o.Report = base + ".report.json"
	}
	if o.Env.CacheDir == "" {
		o.Env.CacheDir = o.Output + ".cache"
	}
}

// PrepareShards plans a curation of o.Input over parts partitions, or
// reads the plan an earlier run left in the work folder (the same input and
// partitions are required to resume it).
func PrepareShards(ctx context.Context, p *Pipeline, o FileOptions, parts int) (*Shards, error) {
	o.defaults()
	if p.NeedsModel() && o.Env.Backend == nil {
		return nil, errors.New("an llm decontaminate step needs a model")
	}
	s := &Shards{p: p, o: o, dir: workDir(&o)}
	if err := os.MkdirAll(filepath.Join(s.dir, "done"), 0o755); err != nil {
		return nil, err
	}
	planPath := filepath.Join(s.dir, "plan.json")
	if err := readJSON(planPath, &s.plan); err == nil {
		if s.plan.Input != o.Input || s.plan.Parts != parts || s.plan.Steps != len(p.Steps) {
			return nil, fmt.Errorf("%s holds a curation of %s in %d partitions; delete it to start over", s.dir, s.plan.Input, s.plan.Parts)
		}
	} else {
		if s.plan, err = newPlan(p, o, parts); err != nil {
			return nil, err
		}
		if err := writeJSON(planPath, s.plan); err != nil {
			return nil, err
		}
	}
	s.base = Dataset{ProblemField: s.plan.ProblemField, SolutionField: s.plan.SolutionField}
	p.memo = nil
	s.globals = make([]globalStep, len(p.Steps))
	for i := range p.Steps {
		g, err := s.newGlobal(ctx, i)
		if err != nil {
			return nil, err
		}
		s.globals[i] = g
	}
	s.phases = s.planPhases()
	s.Jobs = append(s.Jobs, ShardJob{"split", s.plan.Splits})
	for n, ph := range s.phases {
		s.Jobs = append(s.Jobs, ShardJob{fmt.Sprintf("pass-%d", n), s.plan.Parts})
		if ph.collect >= 0 {
			s.Jobs = append(s.Jobs, ShardJob{fmt.Sprintf("decide-%d", n), 1})
		}
	}
	s.Jobs = append(s.Jobs, ShardJob{"write", 1})
	return s, nil
}

func newPlan(p *Pipeline, o FileOptions, parts int) (shardPlan, error) {
	limit := o.MemoryLimit
	if limit <= 0 {
		limit = DefaultMemoryLimit()
	}
	size := inputSize(o.Input)
	pl := shardPlan{Input: o.Input, Parts: max(1, parts), Splits: 1, Steps: len(p.Steps), Started: time.Now().UTC(),
		BucketBudget: int(max(1<<20, limit/8)), Buckets: int(max(1, min(4096, 5*size/max(1, limit))))}
	if pl.Parts > 1 && splittable(o.Input) {
		pl.Splits = pl.Parts
	}
	// The text fields come from the first row, as NewDataset picks them.
	d := Dataset{ProblemField: "problem", SolutionField: "generation"}
	in, err := record.Open(o.Input)
	if err != nil {
		return pl, err
	}
	if in.Next() {
		d = *NewDataset([]*record.Row{in.Row()})
	}
	in.Close()
	if err := in.Err(); err != nil {
		return pl, err
	}
	p.setFields(&d)
	pl.ProblemField, pl.SolutionField = d.ProblemField, d.SolutionField
	return pl, nil
}

// splittable reports whether the input is one plain JSONL file, which map
// tasks can read by byte ranges.
func splittable(spec string) bool {
	if strings.ContainsAny(spec, ",*?[") || spec == "-" || strings.HasSuffix(spec, ".gz") || strings.HasSuffix(spec, ".parquet") {
		return false
	}
	st, err := os.Stat(spec)
	return err == nil && st.Mode().IsRegular()
}

func (s *Shards) planPhases() []phase {
	var out []phase
	cur := phase{apply: -1, collect: -1}
	for i := range s.p.Steps {
		g := s.globals[i]
		if g == nil {
			cur.local = append(cur.local, i)
			continue
		}
		cur.collect, cur.round = i, 1
		out = append(out, cur)
		for r := 2; r <= g.rounds(); r++ {
			out = append(out, phase{apply: -1, collect: i, round: r, readOnly: true})
		}
		cur = phase{apply: i, collect: -1}
	}
	return append(out, cur)
}

// Done reports whether task t of a job has finished.
func (s *Shards) Done(job string, t int) bool {
	_, err := os.Stat(s.donePath(job, t))
	return err == nil
}

func (s *Shards) donePath(job string, t int) string {
	return filepath.Join(s.dir, "done", fmt.Sprintf("%s-%d", job, t))
}

// RunTask runs task t of a job unless it is done. The jobs before it must
// be done.
func (s *Shards) RunTask(ctx context.Context, job string, t int) error {
	if s.Done(job, t) {
		return nil
	}
	var err error
	switch name, n, _ := strings.Cut(job, "-"); name {
	case "split":
		err = s.split(ctx, t)
	case "pass":
		err = s.pass(ctx, atoiPhase(n), t)
	case "decide":
		ph := s.phases[atoiPhase(n)]
		g := s.globals[ph.collect]
		t0 := time.Now()
		if err = g.decide(ctx, ph.round); err != nil {
			err = stepError(ph.collect, g.name(), s.p.Steps[ph.collect], err)
		}
		s.observe(ph.collect, g.name()+" decide", 0, t0)
	case "write":
		err = s.write(ctx)
	default:
		err = fmt.Errorf("unknown job %q", job)
	}
	if err != nil {
		return err
	}
	if job == "write" {
		return os.RemoveAll(s.dir) // the output's manifest says it is done
	}
	if err := os.WriteFile(s.donePath(job, t), nil, 0o644); err != nil {
		return err
	}
	if name, n, _ := strings.Cut(job, "-"); name == "pass" && !s.phases[atoiPhase(n)].readOnly {
		// The partition's previous generation is no longer needed.
		for _, f := range s.partFiles(atoiPhase(n), t) {
			os.Remove(f)
		}
	}
	return nil
}

func atoiPhase(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// observe reports a timing when the caller asked for them.
func (s *Shards) observe(i int, step string, rows int, since time.Time) {
	if s.o.Observe != nil {
		s.o.Observe(StepTiming{Index: i + 1, Step: step, Rows: rows, Elapsed: time.Since(since)})
	}
}

func (s *Shards) splitPath(i, k int) string {
	return filepath.Join(s.dir, "split", fmt.Sprintf("from-%04d-part-%04d.rows", i, k))
}

func (s *Shards) genPath(n, k int) string {
	return filepath.Join(s.dir, fmt.Sprintf("pass-%d", n), fmt.Sprintf("part-%04d.rows", k))
}

func (s *Shards) removedPath(step, k int) string {
	return filepath.Join(s.dir, "removed", fmt.Sprintf("step%02d-part-%04d.rows", step+1, k))
}

func (s *Shards) funnelPath(n, k int) string {
	return filepath.Join(s.dir, "funnel", fmt.Sprintf("pass-%d-part-%04d.json", n, k))
}

// partFiles are the files holding partition k before pass n.
func (s *Shards) partFiles(n, k int) []string {
	for q := n - 1; q >= 0; q-- {
		if !s.phases[q].readOnly {
			return []string{s.genPath(q, k)}
		}
	}
	files := make([]string, s.plan.Splits)
	for i := range files {
		files[i] = s.splitPath(i, k)
	}
	return files
}

// split reads slice t of the input into one piece per partition. A row's
// place is its line's byte offset when the input is cut by bytes, else its
// row number.
func (s *Shards) split(ctx context.Context, t int) error {
	start := time.Now()
	if err := os.MkdirAll(filepath.Join(s.dir, "split"), 0o755); err != nil {
		return err
	}
	ws := make([]*runWriter, s.plan.Parts)
	defer func() {
		for _, w := range ws {
			if w != nil {
				w.close()
			}
		}
	}()
	for k := range ws {
		var err error
		if ws[k], err = createRun(s.splitPath(t, k)); err != nil {
			return err
		}
	}
	rows := 0
	emit := func(idx int64, r *record.Row) error {
		if rows%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rows++
		k := 0
		if s.plan.Parts > 1 {
			k = int(hashBytes(r.ID(), 3) % uint64(s.plan.Parts))
		}
		return ws[k].write(idx, r)
	}
	var err error
	if s.plan.Splits > 1 {
		err = splitRange(s.plan.Input, t, s.plan.Splits, emit)
	} else {
		err = splitAll(s.plan.Input, emit)
	}
	if err != nil {
		return err
	}
	for k, w := range ws {
		ws[k] = nil
		if err := w.close(); err != nil {
			return err
		}
	}
	s.observe(-1, "split", rows, start)
	return nil
}

func splitAll(spec string, emit func(int64, *record.Row) error) error {
	in, err := record.Open(spec)
	if err != nil {
		return err
	}
	defer in.Close()
	bar := progress.New("read "+spec, record.CountRows(spec))
	defer bar.Finish()
	for n := int64(0); in.Next(); n++ {
		if err := emit(n, in.Row()); err != nil {
			return err
		}
		bar.Add(1)
	}
	return in.Err()
}

// splitRange reads the lines that start in slice t of n of a JSONL file.
func splitRange(path string, t, n int, emit func(int64, *record.Row) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	lo, hi := st.Size()*int64(t)/int64(n), st.Size()*int64(t+1)/int64(n)
	// A line belongs to the slice its first byte is in: start after the
	// first newline at or after lo-1.
	pos := int64(0)
	if lo > 0 {
		pos = lo - 1
	}
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if lo > 0 {
		skip, err := br.ReadBytes('\n')
		pos += int64(len(skip))
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	for pos < hi {
		line, err := br.ReadBytes('\n')
		at := pos
		pos += int64(len(line))
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		if err != nil && err != io.EOF {
			return err
		}
		body := strings.TrimRight(string(line), "\r\n")
		if strings.TrimSpace(body) != "" {
			r, perr := record.ParseRow([]byte(body))
			if perr != nil {
				return fmt.Errorf("%s: byte %d: %w", path, at, perr)
			}
			if err := emit(at, r); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
	}
	return nil
}

// readPart loads a partition with each row's place in the input.
func (s *Shards) readPart(files []string) (*Dataset, map[*record.Row]int64, error) {
	d := &Dataset{ProblemField: s.base.ProblemField, SolutionField: s.base.SolutionField}
	idx := map[*record.Row]int64{}
	for _, path := range files {
		r, err := openRun(path)
		if err != nil {
			return nil, nil, err
		}
		for r.next() {
			d.Rows = append(d.Rows, r.row)
			idx[r.row] = r.idx
		}
		r.close()
		if r.err != nil {
			return nil, nil, r.err
		}
	}
	return d, idx, nil
}

// writeRows writes rows with their places to path atomically.
func writeRows(path string, rows []*record.Row, idx map[*record.Row]int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	w, err := createRun(tmp)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := w.write(idx[r], r); err != nil {
			w.close()
			return err
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// pass runs pass n over partition k.
func (s *Shards) pass(ctx context.Context, n, k int) error {
	ph := s.phases[n]
	t0 := time.Now()
	d, idx, err := s.readPart(s.partFiles(n, k))
	if err != nil {
		return err
	}
	s.observe(-1, "io", len(d.Rows), t0)
	funnel := map[int]FunnelStep{}
	removed := func(i int) error {
		if len(d.Removed) > 0 {
			if err := writeRows(s.removedPath(i, k), d.Removed, idx); err != nil {
				return err
			}
		}
		for _, r := range d.Removed {
			delete(idx, r)
		}
		d.Removed = nil
		return nil
	}
	if ph.apply >= 0 {
		t0, in := time.Now(), len(d.Rows)
		g := s.globals[ph.apply]
		if err := g.apply(d, k, idx); err != nil {
			return stepError(ph.apply, g.name(), s.p.Steps[ph.apply], err)
		}
		funnel[ph.apply] = FunnelStep{Step: g.name(), In: in, Removed: in - len(d.Rows), Out: len(d.Rows)}
		if err := removed(ph.apply); err != nil {
			return err
		}
		s.observe(ph.apply, g.name(), in, t0)
	}
	env := s.o.Env
	if !s.sequential && s.plan.Parts > 1 {
		env.CacheDir = filepath.Join(env.CacheDir, fmt.Sprintf("part-%04d", k))
		if err := os.MkdirAll(env.CacheDir, 0o755); err != nil {
			return err
		}
	}
	for _, i := range ph.local {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		f, err := s.p.runOne(ctx, d, env, i)
		if err != nil {
			return err
		}
		funnel[i] = f
		if err := removed(i); err != nil {
			return err
		}
		s.observe(i, f.Step, f.In, t0)
	}
	if ph.collect >= 0 {
		t0 := time.Now()
		g := s.globals[ph.collect]
		if err := g.collect(ctx, ph.round, d, k, idx); err != nil {
			return stepError(ph.collect, g.name(), s.p.Steps[ph.collect], err)
		}
		s.observe(ph.collect, g.name()+" collect", len(d.Rows), t0)
	}
	if !ph.readOnly {
		t0 := time.Now()
		if err := writeRows(s.genPath(n, k), d.Rows, idx); err != nil {
			return err
		}
		s.observe(-1, "io", len(d.Rows), t0)
	}
	if err := os.MkdirAll(filepath.Dir(s.funnelPath(n, k)), 0o755); err != nil {
		return err
	}
	return writeJSON(s.funnelPath(n, k), funnel)
}

// write merges the partitions into the output, the removed rows and the
// report, then writes the manifest and removes the work folder.
func (s *Shards) write(ctx context.Context) error {
	t0 := time.Now()
	funnel := make([]FunnelStep, len(s.p.Steps))
	for n := range s.phases {
		for k := range s.plan.Parts {
			var f map[int]FunnelStep
			if err := readJSON(s.funnelPath(n, k), &f); err != nil {
				return err
			}
			for i, x := range f {
				t := &funnel[i]
				t.Step = x.Step
				t.In += x.In
				t.Removed += x.Removed
				t.Out += x.Out
				t.Changed += x.Changed
			}
		}
	}
	rep := newReportBuilder(&s.base)
	out, err := createExport(s.o.Output)
	if err != nil {
		return err
	}
	defer out.abort()
	last := len(s.phases)
	parts := make([]string, s.plan.Parts)
	for k := range parts {
		parts[k] = s.partFiles(last, k)[0]
	}
	rows := 0
	err = mergeRuns(parts, func(_ int64, r *record.Row) error {
		if rows++; rows%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rep.kept(r)
		return out.write(&s.base, r, s.o.Export)
	})
	if err != nil {
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	var sink *jsonlSink
	var rf *os.File
	if s.o.Removed != "-" {
		if rf, err = os.Create(s.o.Removed); err != nil {
			return err
		}
		defer rf.Close()
		sink = newJSONLSink(rf)
	}
	for i := range s.p.Steps {
		for k := range parts {
			parts[k] = s.removedPath(i, k)
		}
		err := mergeRuns(parts, func(_ int64, r *record.Row) error {
			rows++
			rep.removed(r)
			if sink != nil {
				return sink.write(r)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if sink != nil {
		if err := sink.close(); err != nil {
			return err
		}
		if err := rf.Close(); err != nil {
			return err
		}
	}
	s.report, s.written = rep.report(funnel), out.n
	s.observe(-1, "write", rows, t0)
	return s.finish()
}

// finish writes the report, the funnel table and the manifest.
func (s *Shards) finish() error {
	rep, o := s.report, s.o
	if o.Report != "-" {
		jb, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.Report, append(jb, '\n'), 0o644); err != nil {
			return err
		}
		md := strings.TrimSuffix(o.Report, filepath.Ext(o.Report)) + ".md"
		if err := os.WriteFile(md, []byte(rep.Markdown()), 0o644); err != nil {
			return err
		}
	}
	if o.Funnel != nil {
		io.WriteString(o.Funnel, rep.FunnelTable())
	}
	return record.WriteManifest(&record.Manifest{
		Output: o.Output, Command: "curate", Version: o.Version, Rows: s.written, Written: s.written,
		Counts: map[string]int{"rows_in": rep.RowsIn, "removed": rep.RowsIn - rep.RowsOut}, Config: o.Config,
		Started: s.plan.Started, Finished: time.Now().UTC(), WallSeconds: time.Since(s.plan.Started).Seconds(),
	})
}

// ShardJobStatus is a job and its unfinished tasks.
type ShardJobStatus struct {
	ShardJob
	Todo []int `json:"todo"`
}

// Status lists every job with its unfinished tasks.
func (s *Shards) Status() []ShardJobStatus {
	out := make([]ShardJobStatus, len(s.Jobs))
	for i, j := range s.Jobs {
		out[i] = ShardJobStatus{ShardJob: j, Todo: []int{}}
		for t := range j.Tasks {
			if !s.Done(j.Name, t) {
				out[i].Todo = append(out[i].Todo, t)
			}
		}
	}
	return out
}
