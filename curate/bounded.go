package curate

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/record"
)

// A file curation runs in memory bounded by FileOptions.MemoryLimit, not by
// the input's size. The input is split once into partitions by problem (row
// id), each small enough to curate in memory; a partition file keeps every
// row's place in the input. Steps that only look at one problem's rows run
// partition by partition with the same code as an in-memory Dataset. Steps
// that compare rows across problems (global exact and MinHash dedup, n-gram
// decontamination with max_matches, downsampling) collect compact records
// from every partition (hash-partitioned into bucket files when they do not
// fit), decide once, and apply their decisions to each partition on the
// next pass. Removed rows go to one run file per step and partition; the
// output, the removed rows (step by step) and the report are merged from
// those files in input order, so the result is the same row for row and
// byte for byte whatever the limit. With a limit above the input's needs
// there is one partition and nothing is spilled.

// DefaultMemoryLimit is the memory a curation aims to stay within when
// FileOptions.MemoryLimit is 0: a sixteenth of physical memory, at least
// 256 MiB.
func DefaultMemoryLimit() int64 {
	return max(256<<20, physicalMemory()/16)
}

// physicalMemory reads MemTotal from /proc/meminfo (8 GiB where it cannot).
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 8 << 30
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil && kb > 0 {
				return kb << 10
			}
		}
	}
	return 8 << 30
}

// rowMemory is how many bytes of memory a partition may take per byte of
// its JSON: the rows parsed (about 1.5x) and what the steps build over them.
const rowMemory = 6

// StepTiming is one measured piece of a file curation, reported through
// FileOptions.Observe: a step over one partition, a global step's decision,
// or reading, splitting and writing rows ("split", "io", "write").
type StepTiming struct {
	Step    string
	Rows    int
	Elapsed time.Duration
}

// bounded runs a pipeline over partition files.
type bounded struct {
	p       *Pipeline
	env     Env
	o       *FileOptions
	dir     string // work folder under the cache folder
	parts   int
	limit   int64
	rows    int64
	base    Dataset // text fields of every partition
	funnel  []FunnelStep
	globals []globalStep // per step; nil for a per-problem step
	rep     *reportBuilder
	removed int
}

// observe reports a timing when the caller asked for them.
func (b *bounded) observe(step string, rows int, since time.Time) {
	if b.o.Observe != nil {
		b.o.Observe(StepTiming{Step: step, Rows: rows, Elapsed: time.Since(since)})
	}
}

func (b *bounded) partPath(k int) string {
	return filepath.Join(b.dir, fmt.Sprintf("part-%04d.rows", k))
}

func (b *bounded) removedPath(step, k int) string {
	return filepath.Join(b.dir, fmt.Sprintf("removed-step%02d-part-%04d.rows", step+1, k))
}

// partitionsFor picks the number of partitions for an input of the given
// size in bytes (0: unknown, as for standard input).
func partitionsFor(size, limit int64) int {
	if size <= 0 {
		return 64
	}
	per := max(1, limit/rowMemory)
	return int(min(4096, max(1, (size+per-1)/per)))
}

// inputSize sums the sizes of the input files (Parquet counted four times,
// for its compression); 0 when one is standard input.
func inputSize(spec string) int64 {
	in, err := record.Open(spec)
	if err != nil {
		return 0
	}
	defer in.Close()
	var n int64
	for _, p := range in.Paths() {
		st, err := os.Stat(p)
		if p == "-" || err != nil {
			return 0
		}
		if strings.HasSuffix(p, ".parquet") {
			n += 4 * st.Size()
		} else {
			n += st.Size()
		}
	}
	return n
}

// split reads the input once into the partition files.
func (b *bounded) split(ctx context.Context, spec string) error {
	start := time.Now()
	in, err := record.Open(spec)
	if err != nil {
		return err
	}
	defer in.Close()
	ws := make([]*runWriter, b.parts)
	defer func() {
		for _, w := range ws {
			if w != nil {
				w.close()
			}
		}
	}()
	for k := range ws {
		if ws[k], err = createRun(b.partPath(k)); err != nil {
			return err
		}
	}
	bar := progress.New("read "+spec, record.CountRows(spec))
	defer bar.Finish()
	for in.Next() {
		r := in.Row()
		if b.rows == 0 {
			b.base = *NewDataset([]*record.Row{r})
			b.base.Rows = nil
			b.p.setFields(&b.base)
		}
		if b.rows%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		k := 0
		if b.parts > 1 {
			k = int(hashBytes(r.ID(), 3) % uint64(b.parts))
		}
		if err := ws[k].write(b.rows, r); err != nil {
			return err
		}
		b.rows++
		bar.Add(1)
	}
	if err := in.Err(); err != nil {
		return err
	}
	for k, w := range ws {
		ws[k] = nil
		if err := w.close(); err != nil {
			return err
		}
	}
	b.observe("split", int(b.rows), start)
	return nil
}

// readPart loads partition k with each row's input position.
func (b *bounded) readPart(k int) (*Dataset, map[*record.Row]int64, error) {
	d := &Dataset{ProblemField: b.base.ProblemField, SolutionField: b.base.SolutionField}
	idx := map[*record.Row]int64{}
	r, err := openRun(b.partPath(k))
	if err != nil {
		return nil, nil, err
	}
	defer r.close()
	for r.next() {
		d.Rows = append(d.Rows, r.row)
		idx[r.row] = r.idx
	}
	return d, idx, r.err
}

// writePart replaces partition k with the rows left.
func (b *bounded) writePart(k int, d *Dataset, idx map[*record.Row]int64) error {
	tmp := b.partPath(k) + ".tmp"
	w, err := createRun(tmp)
	if err != nil {
		return err
	}
	for _, r := range d.Rows {
		if err := w.write(idx[r], r); err != nil {
			w.close()
			return err
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	return os.Rename(tmp, b.partPath(k))
}

// flushRemoved moves the rows step i removed from partition k to its run
// file and counts them for the report.
func (b *bounded) flushRemoved(i, k int, d *Dataset, idx map[*record.Row]int64) error {
	if len(d.Removed) == 0 {
		return nil
	}
	w, err := createRun(b.removedPath(i, k))
	if err != nil {
		return err
	}
	for _, r := range d.Removed {
		if err := w.write(idx[r], r); err != nil {
			w.close()
			return err
		}
		b.rep.removed(r)
		delete(idx, r)
	}
	b.removed += len(d.Removed)
	d.Removed = nil
	return w.close()
}

func (b *bounded) count(i int, f FunnelStep) {
	t := &b.funnel[i]
	t.Step = f.Step
	t.In += f.In
	t.Removed += f.Removed
	t.Out += f.Out
	t.Changed += f.Changed
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

func (b *bounded) plan() []phase {
	var out []phase
	cur := phase{apply: -1, collect: -1}
	for i := range b.p.Steps {
		g := b.globals[i]
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

func (b *bounded) runPhase(ctx context.Context, n, of int, ph phase) error {
	bar := progress.New(fmt.Sprintf("curate pass %d/%d", n, of), b.rows)
	defer bar.Finish()
	for k := range b.parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := time.Now()
		d, idx, err := b.readPart(k)
		if err != nil {
			return err
		}
		rows := len(d.Rows)
		b.observe("io", rows, t)
		if ph.apply >= 0 {
			t, in := time.Now(), len(d.Rows)
			name, err := b.globals[ph.apply].apply(d, k, idx)
			if err != nil {
				return stepError(ph.apply, name, b.p.Steps[ph.apply], err)
			}
			b.count(ph.apply, FunnelStep{Step: name, In: in, Removed: in - len(d.Rows), Out: len(d.Rows)})
			if err := b.flushRemoved(ph.apply, k, d, idx); err != nil {
				return err
			}
			b.observe(name, in, t)
		}
		for _, i := range ph.local {
			t := time.Now()
			f, err := b.p.runOne(ctx, d, b.env, i)
			if err != nil {
				return err
			}
			b.count(i, f)
			if err := b.flushRemoved(i, k, d, idx); err != nil {
				return err
			}
			b.observe(f.Step, f.In, t)
		}
		if ph.collect >= 0 {
			t := time.Now()
			g := b.globals[ph.collect]
			if err := g.collect(ctx, ph.round, d, k, idx); err != nil {
				return stepError(ph.collect, g.name(), b.p.Steps[ph.collect], err)
			}
			b.observe(g.name()+" collect", len(d.Rows), t)
		}
		if !ph.readOnly {
			t := time.Now()
			if err := b.writePart(k, d, idx); err != nil {
				return err
			}
			b.observe("io", len(d.Rows), t)
		}
		bar.Add(int64(rows))
	}
	if ph.collect >= 0 {
		t := time.Now()
		g := b.globals[ph.collect]
		if err := g.decide(ctx, ph.round); err != nil {
			return stepError(ph.collect, g.name(), b.p.Steps[ph.collect], err)
		}
		b.observe(g.name()+" decide", 0, t)
	}
	return nil
}

// runBounded curates o.Input into o.Output through partition files.
func runBounded(ctx context.Context, p *Pipeline, o *FileOptions) (*Report, int, error) {
	b := &bounded{p: p, env: o.Env, o: o, dir: filepath.Join(o.Env.CacheDir, "work"), limit: o.MemoryLimit}
	if b.limit <= 0 {
		b.limit = DefaultMemoryLimit()
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(b.limit))
	p.memo = nil
	os.RemoveAll(b.dir)
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(b.dir)
	b.parts = partitionsFor(inputSize(o.Input), b.limit)
	b.base = Dataset{ProblemField: "problem", SolutionField: "generation"}
	p.setFields(&b.base)
	b.funnel = make([]FunnelStep, len(p.Steps))
	b.globals = make([]globalStep, len(p.Steps))
	for i := range p.Steps {
		g, err := b.newGlobal(ctx, i)
		if err != nil {
			return nil, 0, err
		}
		b.globals[i] = g
	}
	if err := b.split(ctx, o.Input); err != nil {
		return nil, 0, err
	}
	b.rep = newReportBuilder(&b.base)
	phases := b.plan()
	for n, ph := range phases {
		if err := b.runPhase(ctx, n+1, len(phases), ph); err != nil {
			return nil, 0, err
		}
	}
	t := time.Now()
	n, err := b.writeOutputs()
	if err != nil {
		return nil, 0, err
	}
	b.observe("write", n+b.removed, t)
	return b.rep.report(b.funnel), n, nil
}

// writeOutputs merges the kept rows into the output and the removed rows,
// step by step, into the removed file.
func (b *bounded) writeOutputs() (int, error) {
	out, err := createExport(b.o.Output)
	if err != nil {
		return 0, err
	}
	defer out.abort()
	parts := make([]string, b.parts)
	for k := range parts {
		parts[k] = b.partPath(k)
	}
	err = mergeRuns(parts, func(_ int64, r *record.Row) error {
		b.rep.kept(r)
		return out.write(&b.base, r, b.o.Export)
	})
	if err != nil {
		return 0, err
	}
	if err := out.commit(); err != nil {
		return 0, err
	}
	if b.o.Removed == "-" {
		return out.n, nil
	}
	f, err := os.Create(b.o.Removed)
	if err != nil {
		return 0, err
	}
	sink := newJSONLSink(f)
	for i := range b.p.Steps {
		for k := range parts {
			parts[k] = b.removedPath(i, k)
		}
		if err := mergeRuns(parts, func(_ int64, r *record.Row) error { return sink.write(r) }); err != nil {
			f.Close()
			return 0, err
		}
	}
	err = sink.close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return out.n, err
}

// ParseSize reads a byte count: a number with an optional unit K, M, G or T
// (powers of 1024; "B", "iB" suffixes allowed), e.g. 2G, 1536M, 512MiB.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mul := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mul = 1 << 10
		case 'M':
			mul = 1 << 20
		case 'G':
			mul = 1 << 30
		case 'T':
			mul = 1 << 40
		}
		if mul > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional K, M, G or T", s)
	}
	return int64(v * float64(mul)), nil
}
