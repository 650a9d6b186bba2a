package curate

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// globalStep is a step that compares rows across problems, run over
// partitions: collect from every partition (one or more rounds, each
// followed by decide), then apply the decisions to every partition.
type globalStep interface {
	name() string
	rounds() int
	collect(ctx context.Context, round int, d *Dataset, part int, idx map[*record.Row]int64) error
	decide(ctx context.Context, round int) error
	apply(d *Dataset, part int, idx map[*record.Row]int64) (string, error)
}

// newGlobal returns the global form of step i, or nil when the step looks
// at one problem at a time.
func (b *bounded) newGlobal(ctx context.Context, i int) (globalStep, error) {
	s := b.p.Steps[i]
	a := s.Args
	bucketBudget := int(max(1<<20, b.limit/8))
	buckets := func() int { return int(max(1, b.limit/int64(bucketBudget))) }
	switch s.Kind {
	case "dedup":
		method, field, scope, err := dedupArgs(a)
		if err != nil {
			return nil, stepError(i, "dedup", s, err)
		}
		if scope != ScopeGlobal {
			return nil, nil
		}
		dir := filepath.Join(b.dir, fmt.Sprintf("step%02d", i+1))
		if method == "exact" {
			bk, err := newBuckets(dir, buckets(), bucketBudget)
			if err != nil {
				return nil, err
			}
			return &exactGlobal{field: field, bk: bk, removed: map[int64]string{}}, nil
		}
		bk, err := newBuckets(dir, buckets(), bucketBudget)
		if err != nil {
			return nil, err
		}
		return &minhashGlobal{o: normMinHash(minhashArgs(a, field, scope)), bk: bk, removed: map[int64]string{}}, nil
	case "decontaminate":
		if argString(a, "method", "ngram") != "ngram" {
			return nil, nil
		}
		o := ngramArgs(a)
		if o.MaxMatches <= 0 {
			return nil, nil
		}
		ix, err := b.p.ngramIndex(ctx, b.env, i)
		if err != nil {
			return nil, stepError(i, "decontaminate_ngram", s, err)
		}
		return &ngramGlobal{ix: ix, o: o, hits: map[int64][]fieldHit{}, ids: map[uint64]map[string]struct{}{}}, nil
	case "downsample":
		tags, _ := prompt.ParseCodeTags(b.p.CodeTags)
		return &downsampleGlobal{o: downsampleArgs(a, tags), probs: make([][]dsProblem, b.parts)}, nil
	}
	return nil, nil
}

// exactGlobal is ExactDedup over all rows: records (text hash, position,
// id) meet in hash buckets; the first row of each hash owns it.
type exactGlobal struct {
	field   string
	bk      *buckets
	removed map[int64]string // position -> reason
	buf     []byte
}

func (g *exactGlobal) name() string { return "dedup_exact" }
func (g *exactGlobal) rounds() int  { return 1 }

func (g *exactGlobal) collect(_ context.Context, _ int, d *Dataset, _ int, idx map[*record.Row]int64) error {
	for _, r := range d.Rows {
		key := hashBytes(normalizeText(fieldText(d, r, g.field)), 11)
		g.buf = binary.LittleEndian.AppendUint64(g.buf[:0], key)
		g.buf = binary.LittleEndian.AppendUint64(g.buf, uint64(idx[r]))
		g.buf = append(g.buf, r.ID()...)
		if err := g.bk.add(key, g.buf); err != nil {
			return err
		}
	}
	return nil
}

func (g *exactGlobal) decide(ctx context.Context, _ int) error {
	type rec struct {
		key uint64
		idx int64
		id  []byte
	}
	return g.bk.each(func(raw [][]byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs := make([]rec, len(raw))
		for i, b := range raw {
			recs[i] = rec{binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:])), b[16:]}
		}
		slices.SortFunc(recs, func(a, b rec) int {
			return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.idx, b.idx))
		})
		for i := 0; i < len(recs); {
			j := i + 1
			for ; j < len(recs) && recs[j].key == recs[i].key; j++ {
				if g.field == "problem" && string(recs[j].id) == string(recs[i].id) {
					continue // the same problem's other solutions
				}
				g.removed[recs[j].idx] = fmt.Sprintf("same %s as row %q", fieldName(g.field), recs[i].id)
			}
			i = j
		}
		return nil
	})
}

func (g *exactGlobal) apply(d *Dataset, _ int, idx map[*record.Row]int64) (string, error) {
	d.Keep("dedup_exact", func(r *record.Row) (bool, string) {
		if why, ok := g.removed[idx[r]]; ok {
			return false, why
		}
		return true, ""
	})
	return g.name(), nil
}

// minhashGlobal is MinHashDedup over all rows. Round 1 writes every row's
// band keys to hash buckets; deciding finds the keys shared by two or more
// rows (the candidate groups). Round 2 keeps the compacted signatures of
// the rows in some group; deciding then walks those rows in input order as
// MinHashDedup does: a row is a duplicate of the first kept row of one of
// its groups when their estimated Jaccard similarity reaches the threshold.
type minhashGlobal struct {
	o       MinHashOptions
	bk      *buckets
	members []mhMember
	groups  int
	need    map[int64]bool
	sigs    map[int64][]uint16
	ids     map[int64]string
	removed map[int64]string
}

type mhMember struct {
	idx   int64
	band  uint16
	group int32
}

func (g *minhashGlobal) name() string { return "dedup_minhash" }
func (g *minhashGlobal) rounds() int  { return 2 }

// signatures computes the rows' signatures on all cores and calls fn with
// each, in row order.
func (g *minhashGlobal) signatures(d *Dataset, rows []*record.Row, fn func(i int, sig []uint64) error) error {
	const chunk = 1024
	workers := runtime.GOMAXPROCS(0)
	k := g.o.Bands * g.o.Rows
	for lo := 0; lo < len(rows); lo += chunk * workers {
		hi := min(len(rows), lo+chunk*workers)
		sigs := make([]uint64, (hi-lo)*k)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mh := NewMinHasher(g.o)
				for i := lo + w; i < hi; i += workers {
					copy(sigs[(i-lo)*k:], mh.Signature(fieldText(d, rows[i], g.o.Field)))
				}
			}()
		}
		wg.Wait()
		for i := lo; i < hi; i++ {
			if err := fn(i, sigs[(i-lo)*k:(i-lo+1)*k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *minhashGlobal) collect(ctx context.Context, round int, d *Dataset, _ int, idx map[*record.Row]int64) error {
	if round == 2 {
		var rows []*record.Row
		for _, r := range d.Rows {
			if g.need[idx[r]] {
				rows = append(rows, r)
			}
		}
		k := g.o.Bands * g.o.Rows
		return g.signatures(d, rows, func(i int, sig []uint64) error {
			g.sigs[idx[rows[i]]] = compact(sig, make([]uint16, 0, k))
			g.ids[idx[rows[i]]] = rows[i].ID()
			return nil
		})
	}
	keys := make([]uint64, g.o.Bands)
	var buf []byte
	return g.signatures(d, d.Rows, func(i int, sig []uint64) error {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		bandKeys(sig, g.o, 0, keys)
		for b, h := range keys {
			buf = binary.LittleEndian.AppendUint64(buf[:0], h)
			buf = binary.LittleEndian.AppendUint16(buf, uint16(b))
			buf = binary.LittleEndian.AppendUint64(buf, uint64(idx[d.Rows[i]]))
			if err := g.bk.add(mix64(h+uint64(b)), buf); err != nil {
				return err
			}
		}
		return nil
	})
}

func (g *minhashGlobal) decide(ctx context.Context, round int) error {
	if round == 1 {
		type rec struct {
			key  uint64
			band uint16
			idx  int64
		}
		err := g.bk.each(func(raw [][]byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			recs := make([]rec, len(raw))
			for i, b := range raw {
				recs[i] = rec{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint16(b[8:]), int64(binary.LittleEndian.Uint64(b[10:]))}
			}
			slices.SortFunc(recs, func(a, b rec) int {
				return cmp.Or(cmp.Compare(a.band, b.band), cmp.Compare(a.key, b.key), cmp.Compare(a.idx, b.idx))
			})
			for i := 0; i < len(recs); {
				j := i + 1
				for j < len(recs) && recs[j].key == recs[i].key && recs[j].band == recs[i].band {
					j++
				}
				if j-i > 1 {
					for _, r := range recs[i:j] {
						g.members = append(g.members, mhMember{r.idx, r.band, int32(g.groups)})
					}
					g.groups++
				}
				i = j
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(g.members, func(a, b mhMember) int {
			return cmp.Or(cmp.Compare(a.idx, b.idx), cmp.Compare(a.band, b.band))
		})
		g.need = map[int64]bool{}
		for _, m := range g.members {
			g.need[m.idx] = true
		}
		g.sigs, g.ids = map[int64][]uint16{}, map[int64]string{}
		return nil
	}
	first := make([]int64, g.groups) // first kept row of each group
	for i := range first {
		first[i] = -1
	}
	for i := 0; i < len(g.members); {
		j := i
		row := g.members[i].idx
		for j < len(g.members) && g.members[j].idx == row {
			j++
		}
		sig := g.sigs[row]
		best, bestJ := int64(-1), 0.0
		for _, m := range g.members[i:j] {
			if k := first[m.group]; k >= 0 {
				if jac := jaccardCompact(sig, g.sigs[k]); jac >= g.o.Threshold && jac > bestJ {
					best, bestJ = k, jac
				}
			}
		}
		if best >= 0 {
			g.removed[row] = fmt.Sprintf("near-duplicate of row %q (estimated Jaccard %.2f)", g.ids[best], bestJ)
		} else {
			for _, m := range g.members[i:j] {
				if first[m.group] < 0 {
					first[m.group] = row
				}
			}
		}
		i = j
	}
	g.members, g.need, g.sigs, g.ids = nil, nil, nil, nil
	return nil
}

func (g *minhashGlobal) apply(d *Dataset, _ int, idx map[*record.Row]int64) (string, error) {
	d.Keep("dedup_minhash", func(r *record.Row) (bool, string) {
		if why, ok := g.removed[idx[r]]; ok {
			return false, why
		}
		return true, ""
	})
	return g.name(), nil
}

// ngramGlobal is NgramDecontaminate with max_matches: the hits of every
// row are kept (only rows with hits take memory) and the n-grams found in
// too many problems are known once all partitions are read.
type ngramGlobal struct {
	ix     *NgramIndex
	o      NgramOptions
	hits   map[int64][]fieldHit
	ids    map[uint64]map[string]struct{}
	common map[uint64]bool
}

func (g *ngramGlobal) name() string { return "decontaminate_ngram" }
func (g *ngramGlobal) rounds() int  { return 1 }

func (g *ngramGlobal) collect(_ context.Context, _ int, d *Dataset, _ int, idx map[*record.Row]int64) error {
	for i, hs := range g.ix.rowHits(d, d.Rows, g.o.Fields) {
		if len(hs) > 0 {
			r := d.Rows[i]
			g.hits[idx[r]] = hs
			countHits(g.ids, hs, r.ID())
		}
	}
	return nil
}

func (g *ngramGlobal) decide(context.Context, int) error {
	g.common = commonGrams(g.ids, g.o.MaxMatches)
	g.ids = nil
	return nil
}

func (g *ngramGlobal) apply(d *Dataset, _ int, idx map[*record.Row]int64) (string, error) {
	d.Keep("decontaminate_ngram", func(r *record.Row) (bool, string) {
		return g.ix.verdict(r, g.hits[idx[r]], g.common)
	})
	return g.name(), nil
}

// downsampleGlobal is Downsample over all rows: each partition reports its
// problems' first positions and queue lengths; the fair round-robin is
// decided from those counts, and each partition keeps its share.
type downsampleGlobal struct {
	o     DownsampleOptions
	probs [][]dsProblem // per partition, in order of first appearance
}

type dsProblem struct {
	first int64 // position of the problem's first row
	n     int   // queue length, then the rows kept
	gi    int   // place among all problems
}

func (g *downsampleGlobal) name() string { return "downsample" }
func (g *downsampleGlobal) rounds() int  { return 1 }

func (g *downsampleGlobal) collect(_ context.Context, _ int, d *Dataset, part int, idx map[*record.Row]int64) error {
	order, byID := d.groups()
	reason := make([]string, len(d.Rows))
	ps := make([]dsProblem, len(order))
	for j, id := range order {
		rows := byID[id]
		ps[j] = dsProblem{first: idx[d.Rows[rows[0]]], n: len(dsQueue(d, g.o, rows, 0, reason))}
	}
	g.probs[part] = ps
	return nil
}

func (g *downsampleGlobal) decide(context.Context, int) error {
	var all []*dsProblem
	for k := range g.probs {
		for j := range g.probs[k] {
			all = append(all, &g.probs[k][j])
		}
	}
	slices.SortFunc(all, func(a, b *dsProblem) int { return cmp.Compare(a.first, b.first) })
	lens := make([]int, len(all))
	for gi, p := range all {
		p.gi, lens[gi] = gi, p.n
	}
	for gi, n := range fairCounts(lens, g.o.N) {
		all[gi].n = n
	}
	return nil
}

func (g *downsampleGlobal) apply(d *Dataset, part int, _ map[*record.Row]int64) (string, error) {
	order, byID := d.groups()
	ps := g.probs[part]
	if len(ps) != len(order) {
		return g.name(), fmt.Errorf("partition %d changed between passes (%d problems, had %d)", part, len(order), len(ps))
	}
	reason := make([]string, len(d.Rows))
	queues := make([][]int, len(order))
	counts := make([]int, len(order))
	for j, id := range order {
		queues[j] = dsQueue(d, g.o, byID[id], ps[j].gi, reason)
		counts[j] = ps[j].n
	}
	dsApply(d, g.o, queues, counts, reason)
	g.probs[part] = nil
	return g.name(), nil
}
