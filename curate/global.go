package curate

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// globalStep is a step that compares rows across problems, run over
// partitions: collect from every partition (one or more rounds, each
// followed by decide), then apply the decisions to every partition. All
// state between these calls lives in files under the step's folder, so
// each call may run in another process.
type globalStep interface {
	name() string
	rounds() int
	collect(ctx context.Context, round int, d *Dataset, part int, idx map[*record.Row]int64) error
	decide(ctx context.Context, round int) error
	apply(d *Dataset, part int, idx map[*record.Row]int64) error
}

// stepDir is where step i keeps its state.
func (s *Shards) stepDir(i int) string { return filepath.Join(s.dir, fmt.Sprintf("step%02d", i+1)) }

// fromDirs are the bucket folders every partition wrote under dir.
func (s *Shards) fromDirs(dir string) []string {
	out := make([]string, s.plan.Parts)
	for k := range out {
		out[k] = filepath.Join(dir, fmt.Sprintf("from-%04d", k))
	}
	return out
}

func partFile(dir, name string, k int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%04d.json", name, k))
}

// newGlobal returns the global form of step i, or nil when the step looks
// at one problem at a time.
func (s *Shards) newGlobal(ctx context.Context, i int) (globalStep, error) {
	st := s.p.Steps[i]
	a := st.Args
	dir := s.stepDir(i)
	switch st.Kind {
	case "dedup":
		method, field, scope, err := dedupArgs(a)
		if err != nil {
			return nil, stepError(i, "dedup", st, err)
		}
		if scope != ScopeGlobal {
			return nil, nil
		}
		if method == "exact" {
			return &exactGlobal{s: s, dir: dir, field: field}, nil
		}
		return &minhashGlobal{s: s, dir: dir, o: normMinHash(minhashArgs(a, field, scope))}, nil
	case "decontaminate":
		if argString(a, "method", "ngram") != "ngram" {
			return nil, nil
		}
		o := ngramArgs(a)
		if o.MaxMatches <= 0 {
			return nil, nil
		}
		ix, err := s.p.ngramIndex(ctx, s.o.Env, i)
		if err != nil {
			return nil, stepError(i, "decontaminate_ngram", st, err)
		}
		return &ngramGlobal{s: s, dir: dir, ix: ix, o: o}, nil
	case "downsample":
		tags, _ := prompt.ParseCodeTags(s.p.CodeTags)
		return &downsampleGlobal{s: s, dir: dir, o: downsampleArgs(a, tags)}, nil
	}
	return nil, nil
}

// removal is one decided removal: a row's place and the reason.
type removal struct {
	I int64  `json:"i"`
	R string `json:"r"`
}

// writeRemovals writes each partition's removals.
func (s *Shards) writeRemovals(dir string, byPart [][]removal) error {
	for k, rs := range byPart {
		if err := writeJSON(partFile(dir, "removed", k), rs); err != nil {
			return err
		}
	}
	return nil
}

// keepUnless removes the rows of d listed in partition k's removals.
func keepUnless(d *Dataset, step, dir string, k int, idx map[*record.Row]int64) error {
	var rs []removal
	if err := readJSON(partFile(dir, "removed", k), &rs); err != nil {
		return err
	}
	why := make(map[int64]string, len(rs))
	for _, r := range rs {
		why[r.I] = r.R
	}
	d.Keep(step, func(r *record.Row) (bool, string) {
		if w, ok := why[idx[r]]; ok {
			return false, w
		}
		return true, ""
	})
	return nil
}

// exactGlobal is ExactDedup over all rows: records (text hash, place,
// partition, id) meet in hash buckets; the first row of each hash owns it.
type exactGlobal struct {
	s     *Shards
	dir   string
	field string
}

func (g *exactGlobal) name() string { return "dedup_exact" }
func (g *exactGlobal) rounds() int  { return 1 }

func (g *exactGlobal) collect(_ context.Context, _ int, d *Dataset, k int, idx map[*record.Row]int64) error {
	bw, err := newBucketWriter(g.s.fromDirs(g.dir)[k], g.s.plan.Buckets, g.s.plan.BucketBudget)
	if err != nil {
		return err
	}
	var buf []byte
	for _, r := range d.Rows {
		key := hashBytes(normalizeText(fieldText(d, r, g.field)), 11)
		buf = binary.LittleEndian.AppendUint64(buf[:0], key)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(idx[r]))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(k))
		buf = append(buf, r.ID()...)
		if err := bw.add(key, buf); err != nil {
			return err
		}
	}
	return bw.flush()
}

func (g *exactGlobal) decide(ctx context.Context, _ int) error {
	type rec struct {
		key  uint64
		idx  int64
		part uint32
		id   []byte
	}
	byPart := make([][]removal, g.s.plan.Parts)
	err := readBuckets(g.s.fromDirs(g.dir), g.s.plan.Buckets, func(raw [][]byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs := make([]rec, len(raw))
		for i, b := range raw {
			recs[i] = rec{binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:])), binary.LittleEndian.Uint32(b[16:]), b[20:]}
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
				byPart[recs[j].part] = append(byPart[recs[j].part], removal{recs[j].idx, fmt.Sprintf("same %s as row %q", fieldName(g.field), recs[i].id)})
			}
			i = j
		}
		return nil
	})
	if err != nil {
		return err
	}
	return g.s.writeRemovals(g.dir, byPart)
}

func (g *exactGlobal) apply(d *Dataset, k int, idx map[*record.Row]int64) error {
	return keepUnless(d, "dedup_exact", g.dir, k, idx)
}

// minhashGlobal is MinHashDedup over all rows. Round 1 writes every row's
// band keys to hash buckets; deciding finds the keys shared by two or more
// rows (candidate groups) and asks each partition for the signatures of its
// rows in a group. Round 2 writes those compacted signatures; deciding then
// walks the grouped rows in input order as MinHashDedup does: a row is a
// duplicate of the first kept row of one of its groups when their estimated
// Jaccard similarity reaches the threshold.
type minhashGlobal struct {
	s   *Shards
	dir string
	o   MinHashOptions
}

// mhMember is a row in a candidate group.
type mhMember struct {
	idx   int64
	part  uint32
	band  uint16
	group int32
}

const mhMemberSize = 8 + 4 + 2 + 4

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

func (g *minhashGlobal) sigPath(k int) string {
	return filepath.Join(g.dir, fmt.Sprintf("sigs-%04d.bin", k))
}

func (g *minhashGlobal) collect(ctx context.Context, round int, d *Dataset, k int, idx map[*record.Row]int64) error {
	if round == 2 {
		return g.collectSigs(d, k, idx)
	}
	bw, err := newBucketWriter(g.s.fromDirs(g.dir)[k], g.s.plan.Buckets, g.s.plan.BucketBudget)
	if err != nil {
		return err
	}
	keys := make([]uint64, g.o.Bands)
	var buf []byte
	err = g.signatures(d, d.Rows, func(i int, sig []uint64) error {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		bandKeys(sig, g.o, 0, keys)
		for b, h := range keys {
			buf = binary.LittleEndian.AppendUint64(buf[:0], h)
			buf = binary.LittleEndian.AppendUint16(buf, uint16(b))
			buf = binary.LittleEndian.AppendUint64(buf, uint64(idx[d.Rows[i]]))
			buf = binary.LittleEndian.AppendUint32(buf, uint32(k))
			if err := bw.add(mix64(h+uint64(b)), buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return bw.flush()
}

// collectSigs writes the compacted signatures (and ids) of partition k's
// rows that are in a candidate group.
func (g *minhashGlobal) collectSigs(d *Dataset, k int, idx map[*record.Row]int64) error {
	var need []int64
	if err := readJSON(partFile(g.dir, "need", k), &need); err != nil {
		return err
	}
	want := make(map[int64]bool, len(need))
	for _, i := range need {
		want[i] = true
	}
	var rows []*record.Row
	for _, r := range d.Rows {
		if want[idx[r]] {
			rows = append(rows, r)
		}
	}
	f, err := os.Create(g.sigPath(k) + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	var buf []byte
	err = g.signatures(d, rows, func(i int, sig []uint64) error {
		id := rows[i].ID()
		buf = binary.LittleEndian.AppendUint64(buf[:0], uint64(idx[rows[i]]))
		buf = binary.AppendUvarint(buf, uint64(len(id)))
		buf = append(buf, id...)
		for _, v := range sig {
			buf = binary.LittleEndian.AppendUint16(buf, uint16(v>>48))
		}
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(g.sigPath(k)+".tmp", g.sigPath(k))
}

func (g *minhashGlobal) decide(ctx context.Context, round int) error {
	if round == 1 {
		return g.findGroups(ctx)
	}
	return g.resolve(ctx)
}

// findGroups writes the members of every band key shared by two or more
// rows, in input order, and each partition's rows among them.
func (g *minhashGlobal) findGroups(ctx context.Context) error {
	type rec struct {
		key  uint64
		band uint16
		idx  int64
		part uint32
	}
	var members []mhMember
	groups := int32(0)
	err := readBuckets(g.s.fromDirs(g.dir), g.s.plan.Buckets, func(raw [][]byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs := make([]rec, len(raw))
		for i, b := range raw {
			recs[i] = rec{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint16(b[8:]), int64(binary.LittleEndian.Uint64(b[10:])), binary.LittleEndian.Uint32(b[18:])}
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
					members = append(members, mhMember{r.idx, r.part, r.band, groups})
				}
				groups++
			}
			i = j
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(members, func(a, b mhMember) int {
		return cmp.Or(cmp.Compare(a.idx, b.idx), cmp.Compare(a.band, b.band))
	})
	need := make([][]int64, g.s.plan.Parts)
	buf := binary.LittleEndian.AppendUint32(nil, uint32(groups))
	for i, m := range members {
		if i == 0 || members[i-1].idx != m.idx {
			need[m.part] = append(need[m.part], m.idx)
		}
		buf = binary.LittleEndian.AppendUint64(buf, uint64(m.idx))
		buf = binary.LittleEndian.AppendUint32(buf, m.part)
		buf = binary.LittleEndian.AppendUint16(buf, m.band)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(m.group))
	}
	for k, n := range need {
		if err := writeJSON(partFile(g.dir, "need", k), n); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(g.dir, "members.bin"), buf)
}

func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// resolve decides the grouped rows in input order.
func (g *minhashGlobal) resolve(ctx context.Context) error {
	buf, err := os.ReadFile(filepath.Join(g.dir, "members.bin"))
	if err != nil {
		return err
	}
	if len(buf) < 4 || (len(buf)-4)%mhMemberSize != 0 {
		return errors.New("members.bin: truncated")
	}
	groups := int(binary.LittleEndian.Uint32(buf))
	members := make([]mhMember, (len(buf)-4)/mhMemberSize)
	for i := range members {
		b := buf[4+i*mhMemberSize:]
		members[i] = mhMember{int64(binary.LittleEndian.Uint64(b)), binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint16(b[12:]), int32(binary.LittleEndian.Uint32(b[14:]))}
	}
	k := g.o.Bands * g.o.Rows
	sigs, ids := map[int64][]uint16{}, map[int64]string{}
	for part := range g.s.plan.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := readSigs(g.sigPath(part), k, sigs, ids); err != nil {
			return err
		}
	}
	first := make([]int64, groups) // first kept row of each group
	for i := range first {
		first[i] = -1
	}
	byPart := make([][]removal, g.s.plan.Parts)
	for i := 0; i < len(members); {
		j := i
		row := members[i].idx
		for j < len(members) && members[j].idx == row {
			j++
		}
		sig := sigs[row]
		best, bestJ := int64(-1), 0.0
		for _, m := range members[i:j] {
			if f := first[m.group]; f >= 0 {
				if jac := jaccardCompact(sig, sigs[f]); jac >= g.o.Threshold && jac > bestJ {
					best, bestJ = f, jac
				}
			}
		}
		if best >= 0 {
			p := members[i].part
			byPart[p] = append(byPart[p], removal{row, fmt.Sprintf("near-duplicate of row %q (estimated Jaccard %.2f)", ids[best], bestJ)})
		} else {
			for _, m := range members[i:j] {
				if first[m.group] < 0 {
					first[m.group] = row
				}
			}
		}
		i = j
	}
	return g.s.writeRemovals(g.dir, byPart)
}

func readSigs(path string, k int, sigs map[int64][]uint16, ids map[int64]string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		idx := int64(binary.LittleEndian.Uint64(b[:]))
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		body := make([]byte, int(n)+2*k)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		ids[idx] = string(body[:n])
		sig := make([]uint16, k)
		for i := range sig {
			sig[i] = binary.LittleEndian.Uint16(body[int(n)+2*i:])
		}
		sigs[idx] = sig
	}
}

func (g *minhashGlobal) apply(d *Dataset, k int, idx map[*record.Row]int64) error {
	return keepUnless(d, "dedup_minhash", g.dir, k, idx)
}

// ngramGlobal is NgramDecontaminate with max_matches: each partition writes
// the hits of its rows that have any; the n-grams found in too many
// problems are known once all partitions are read.
type ngramGlobal struct {
	s   *Shards
	dir string
	ix  *NgramIndex
	o   NgramOptions
}

type rowHits struct {
	I    int64      `json:"i"`
	ID   string     `json:"id"`
	Hits [][3]int64 `json:"h"` // n-gram hash (as int64), reference, field
}

func (g *ngramGlobal) name() string { return "decontaminate_ngram" }
func (g *ngramGlobal) rounds() int  { return 1 }

func (g *ngramGlobal) fields() []string {
	if len(g.o.Fields) == 0 {
		return []string{"problem", "solution"}
	}
	return g.o.Fields
}

func (g *ngramGlobal) collect(_ context.Context, _ int, d *Dataset, k int, idx map[*record.Row]int64) error {
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return err
	}
	fields := g.fields()
	var out []rowHits
	for i, hs := range g.ix.rowHits(d, d.Rows, fields) {
		if len(hs) == 0 {
			continue
		}
		rh := rowHits{I: idx[d.Rows[i]], ID: d.Rows[i].ID()}
		for _, h := range hs {
			rh.Hits = append(rh.Hits, [3]int64{int64(h.gram), int64(h.ref), int64(slices.Index(fields, h.field))})
		}
		out = append(out, rh)
	}
	return writeJSON(partFile(g.dir, "hits", k), out)
}

func (g *ngramGlobal) readHits(k int) ([]rowHits, error) {
	var hs []rowHits
	return hs, readJSON(partFile(g.dir, "hits", k), &hs)
}

func (g *ngramGlobal) decide(context.Context, int) error {
	ids := map[uint64]map[string]struct{}{}
	for k := range g.s.plan.Parts {
		hs, err := g.readHits(k)
		if err != nil {
			return err
		}
		for _, rh := range hs {
			countHits(ids, g.toHits(rh), rh.ID)
		}
	}
	var common []uint64
	for gram := range commonGrams(ids, g.o.MaxMatches) {
		common = append(common, gram)
	}
	slices.Sort(common)
	return writeJSON(filepath.Join(g.dir, "common.json"), common)
}

func (g *ngramGlobal) toHits(rh rowHits) []fieldHit {
	fields := g.fields()
	out := make([]fieldHit, len(rh.Hits))
	for i, h := range rh.Hits {
		out[i] = fieldHit{hit{uint64(h[0]), int32(h[1])}, fields[h[2]]}
	}
	return out
}

func (g *ngramGlobal) apply(d *Dataset, k int, idx map[*record.Row]int64) error {
	var list []uint64
	if err := readJSON(filepath.Join(g.dir, "common.json"), &list); err != nil {
		return err
	}
	common := make(map[uint64]bool, len(list))
	for _, c := range list {
		common[c] = true
	}
	hs, err := g.readHits(k)
	if err != nil {
		return err
	}
	hits := make(map[int64][]fieldHit, len(hs))
	for _, rh := range hs {
		hits[rh.I] = g.toHits(rh)
	}
	d.Keep("decontaminate_ngram", func(r *record.Row) (bool, string) {
		return g.ix.verdict(r, hits[idx[r]], common)
	})
	return nil
}

// downsampleGlobal is Downsample over all rows: each partition writes its
// problems' first places and queue lengths; the fair round-robin is
// decided from those counts, and each partition keeps its share.
type downsampleGlobal struct {
	s   *Shards
	dir string
	o   DownsampleOptions
}

func (g *downsampleGlobal) name() string { return "downsample" }
func (g *downsampleGlobal) rounds() int  { return 1 }

func (g *downsampleGlobal) collect(_ context.Context, _ int, d *Dataset, k int, idx map[*record.Row]int64) error {
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return err
	}
	order, byID := d.groups()
	reason := make([]string, len(d.Rows))
	ps := make([][2]int64, len(order)) // first place, queue length
	for j, id := range order {
		rows := byID[id]
		ps[j] = [2]int64{idx[d.Rows[rows[0]]], int64(len(dsQueue(d, g.o, rows, 0, reason)))}
	}
	return writeJSON(partFile(g.dir, "problems", k), ps)
}

func (g *downsampleGlobal) decide(context.Context, int) error {
	type prob struct{ k, j int }
	parts := make([][][2]int64, g.s.plan.Parts)
	var all []prob
	for k := range parts {
		if err := readJSON(partFile(g.dir, "problems", k), &parts[k]); err != nil {
			return err
		}
		for j := range parts[k] {
			all = append(all, prob{k, j})
		}
	}
	slices.SortFunc(all, func(a, b prob) int { return cmp.Compare(parts[a.k][a.j][0], parts[b.k][b.j][0]) })
	lens := make([]int, len(all))
	for gi, p := range all {
		lens[gi] = int(parts[p.k][p.j][1])
	}
	for gi, n := range fairCounts(lens, g.o.N) {
		p := all[gi]
		parts[p.k][p.j] = [2]int64{int64(gi), int64(n)} // place among problems, rows kept
	}
	for k := range parts {
		if err := writeJSON(partFile(g.dir, "keep", k), parts[k]); err != nil {
			return err
		}
	}
	return nil
}

func (g *downsampleGlobal) apply(d *Dataset, k int, _ map[*record.Row]int64) error {
	var ps [][2]int64
	if err := readJSON(partFile(g.dir, "keep", k), &ps); err != nil {
		return err
	}
	order, byID := d.groups()
	if len(ps) != len(order) {
		return fmt.Errorf("partition %d changed between passes (%d problems, had %d)", k, len(order), len(ps))
	}
	reason := make([]string, len(d.Rows))
	queues := make([][]int, len(order))
	counts := make([]int, len(order))
	for j, id := range order {
		queues[j] = dsQueue(d, g.o, byID[id], int(ps[j][0]), reason)
		counts[j] = int(ps[j][1])
	}
	dsApply(d, g.o, queues, counts, reason)
	return nil
}
