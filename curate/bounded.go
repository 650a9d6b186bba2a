package curate

import (
	"bufio"
	"context"
	"fmt"
	"os"
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
	// Index is the step's number in the config (1 for the first step), 0
	// for the work around the steps.
	Index   int
	Step    string
	Rows    int
	Elapsed time.Duration
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

// runBounded curates o.Input into o.Output: the jobs of a sharded curation
// (see PrepareShards) run one after the other in this process, with as
// many partitions as the memory limit needs.
func runBounded(ctx context.Context, p *Pipeline, o *FileOptions) (*Report, int, error) {
	limit := o.MemoryLimit
	if limit <= 0 {
		limit = DefaultMemoryLimit()
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	work := workDir(o)
	os.RemoveAll(work) // a bounded run does not resume
	defer os.RemoveAll(work)
	sh, err := PrepareShards(ctx, p, *o, partitionsFor(inputSize(o.Input), limit))
	if err != nil {
		return nil, 0, err
	}
	sh.sequential = true
	for _, j := range sh.Jobs {
		bar := progress.New(fmt.Sprintf("curate %s (tasks of %d partitions)", j.Name, sh.plan.Parts), int64(j.Tasks))
		for t := range j.Tasks {
			if err := sh.RunTask(ctx, j.Name, t); err != nil {
				bar.Finish()
				return nil, 0, err
			}
			bar.Add(1)
		}
		bar.Finish()
	}
	return sh.report, sh.written, nil
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
