package curate

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/crucible-ml/crucible/record"
)

// Reference is one benchmark text that training data must not contain.
type Reference struct {
	Source string // e.g. "gsm8k:test", "math500"
	ID     string // the benchmark row's id
	Text   string
}

// NgramIndex finds training rows that share a word n-gram with benchmark
// texts, the GPT-3 / NeMo-Curator task-decontamination method: texts are
// lower-cased and stripped of punctuation; a reference of fewer than 8 words
// is skipped, one of 8 to N-1 words is matched as a whole, and longer ones
// contribute every N-word window.
//
// Window hashes are polynomial hashes over word hashes, so every window of
// a text costs O(1) from its prefix hashes; a 1 MiB bit set in front of the
// hash map answers most misses from cache.
type NgramIndex struct {
	n     int
	refs  []Reference
	grams map[uint64]int32 // n-gram hash -> first reference holding it
	bits  []uint64         // bit set over mixed n-gram hashes
	// Short references: their first 8 words' hash, and full hash by length.
	shortPrefix map[uint64][]int // 8-gram hash -> lengths of short refs starting so
	short       map[uint64]int32 // full hash -> reference
}

// MinNgramWords is the length below which a reference is not indexed.
const MinNgramWords = 8

const (
	polyBase  = 0x9e3779b97f4a7c15 | 1
	bitsWords = 1 << 17 // 2^23 bits = 1 MiB
)

// NewNgramIndex indexes refs with n-word grams (13 by default).
func NewNgramIndex(refs []Reference, n int) *NgramIndex {
	if n <= 0 {
		n = 13
	}
	ix := &NgramIndex{n: n, refs: refs, grams: map[uint64]int32{}, bits: make([]uint64, bitsWords),
		shortPrefix: map[uint64][]int{}, short: map[uint64]int32{}}
	var words []uint64
	var pre []uint64
	for i, r := range refs {
		words = wordHashes(r.Text, words[:0])
		pre = prefixHashes(words, pre[:0])
		switch {
		case len(words) < MinNgramWords:
		case len(words) < n:
			h := window(pre, 0, len(words))
			if _, ok := ix.short[h]; !ok {
				ix.short[h] = int32(i)
				p := window(pre, 0, MinNgramWords)
				if !slices.Contains(ix.shortPrefix[p], len(words)) {
					ix.shortPrefix[p] = append(ix.shortPrefix[p], len(words))
				}
			}
		default:
			for j := 0; j+n <= len(words); j++ {
				h := window(pre, j, n)
				if _, ok := ix.grams[h]; !ok {
					ix.grams[h] = int32(i)
					b := mix64(h) >> (64 - 23)
					ix.bits[b/64] |= 1 << (b % 64)
				}
			}
		}
	}
	return ix
}

// Len returns the number of indexed n-grams.
func (ix *NgramIndex) Len() int { return len(ix.grams) + len(ix.short) }

// powers[k] = polyBase^k.
var powers = func() []uint64 {
	p := make([]uint64, 64)
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * polyBase
	}
	return p
}()

// prefixHashes returns P with P[0] = 0 and P[i+1] = P[i]*B + w[i].
func prefixHashes(words, dst []uint64) []uint64 {
	dst = append(dst, 0)
	var h uint64
	for _, w := range words {
		h = h*polyBase + w
		dst = append(dst, h)
	}
	return dst
}

// window returns the hash of words [j, j+l) from prefix hashes.
func window(pre []uint64, j, l int) uint64 {
	return pre[j+l] - pre[j]*powers[l]
}

// hit is one matched n-gram.
type hit struct {
	gram uint64
	ref  int32
}

// matches appends every indexed n-gram of text (and whole short
// references) to dst.
func (ix *NgramIndex) matches(text string, words, pre []uint64, dst []hit) ([]hit, []uint64, []uint64) {
	words = wordHashes(text, words[:0])
	pre = prefixHashes(words, pre[:0])
	for j := 0; j+ix.n <= len(words); j++ {
		h := window(pre, j, ix.n)
		b := mix64(h) >> (64 - 23)
		if ix.bits[b/64]&(1<<(b%64)) == 0 {
			continue
		}
		if i, ok := ix.grams[h]; ok {
			dst = append(dst, hit{h, i})
		}
	}
	if len(ix.shortPrefix) > 0 {
		for j := 0; j+MinNgramWords <= len(words); j++ {
			lens, ok := ix.shortPrefix[window(pre, j, MinNgramWords)]
			if !ok {
				continue
			}
			for _, l := range lens {
				if j+l <= len(words) {
					h := window(pre, j, l)
					if i, ok := ix.short[h]; ok {
						dst = append(dst, hit{h, i})
					}
				}
			}
		}
	}
	return dst, words, pre
}

// Match returns the first reference that text overlaps, if any.
func (ix *NgramIndex) Match(text string) *Reference {
	hits, _, _ := ix.matches(text, nil, nil, nil)
	if len(hits) == 0 {
		return nil
	}
	return &ix.refs[hits[0].ref]
}

// wordHashes splits text into lower-cased words of letters and digits
// (punctuation removed) and hashes each.
func wordHashes(text string, dst []uint64) []uint64 {
	var h uint64
	in := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		var r rune
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
				r = rune(c)
			case 'A' <= c && c <= 'Z':
				r = rune(c + 'a' - 'A')
			default:
				r = -1
			}
		} else {
			var size int
			r, size = utf8.DecodeRuneInString(text[i:])
			i += size - 1
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				r = unicode.ToLower(r)
			} else {
				r = -1
			}
		}
		if r >= 0 {
			if !in {
				h = 14695981039346656037
				in = true
			}
			h ^= uint64(r)
			h *= 1099511628211
			continue
		}
		if in {
			dst = append(dst, mix64(h))
			in = false
		}
	}
	if in {
		dst = append(dst, mix64(h))
	}
	return dst
}

// NgramOptions configure NgramDecontaminate.
type NgramOptions struct {
	// Fields are the row fields checked (default problem and solution).
	Fields []string
	// MaxMatches ignores an n-gram found in more than this many distinct
	// problems (row ids) of the data: such an n-gram is boilerplate (a
	// common phrase, Asymptote preamble), not a leak. NeMo-Curator's
	// default is 10; 0 disables the rule.
	MaxMatches int
}

// NgramDecontaminate removes rows whose fields share an n-gram with the
// index; each removed row records the benchmark text it matched. Rows are
// checked in parallel.
func NgramDecontaminate(d *Dataset, ix *NgramIndex, o NgramOptions) int {
	hits := ix.rowHits(d, d.Rows, o.Fields)
	// How many distinct problems each matched n-gram appears in.
	var common map[uint64]bool
	if o.MaxMatches > 0 {
		ids := map[uint64]map[string]struct{}{}
		for i, hs := range hits {
			countHits(ids, hs, d.Rows[i].ID())
		}
		common = commonGrams(ids, o.MaxMatches)
	}
	i := 0
	return d.Keep("decontaminate_ngram", func(r *record.Row) (bool, string) {
		hs := hits[i]
		i++
		return ix.verdict(r, hs, common)
	})
}

// fieldHit is a matched n-gram and the field it was found in.
type fieldHit struct {
	hit
	field string
}

// rowHits returns the n-grams each row shares with the index, on all cores.
func (ix *NgramIndex) rowHits(d *Dataset, rows []*record.Row, fields []string) [][]fieldHit {
	if len(fields) == 0 {
		fields = []string{"problem", "solution"}
	}
	hits := make([][]fieldHit, len(rows))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	chunk := (len(rows) + workers - 1) / workers
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(rows))
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var words, pre []uint64
			var buf []hit
			for i := lo; i < hi; i++ {
				for _, f := range fields {
					buf, words, pre = ix.matches(fieldText(d, rows[i], f), words, pre, buf[:0])
					for _, h := range buf {
						hits[i] = append(hits[i], fieldHit{h, f})
					}
				}
			}
		}()
	}
	wg.Wait()
	return hits
}

// countHits adds the problem id to the set of each matched n-gram.
func countHits(ids map[uint64]map[string]struct{}, hs []fieldHit, id string) {
	for _, h := range hs {
		if ids[h.gram] == nil {
			ids[h.gram] = map[string]struct{}{}
		}
		ids[h.gram][id] = struct{}{}
	}
}

// commonGrams returns the n-grams found in more than max problems.
func commonGrams(ids map[uint64]map[string]struct{}, max int) map[uint64]bool {
	common := map[uint64]bool{}
	for g, s := range ids {
		if len(s) > max {
			common[g] = true
		}
	}
	return common
}

// verdict decides a row from its hits: the first hit that is not a common
// n-gram removes it and is recorded on it.
func (ix *NgramIndex) verdict(r *record.Row, hs []fieldHit, common map[uint64]bool) (bool, string) {
	for _, h := range hs {
		if common[h.gram] {
			continue
		}
		ref := &ix.refs[h.ref]
		r.Set("contaminated_with", map[string]string{"source": ref.Source, "id": ref.ID, "text": clip(ref.Text, 300), "field": fieldName(h.field)})
		return false, fmt.Sprintf("%s shares a %d-gram with %s %s", fieldName(h.field), ix.n, ref.Source, ref.ID)
	}
	return true, ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// normalizeProblem is the exact-match form of a problem: lower case,
// whitespace collapsed.
func normalizeProblem(s string) string { return strings.TrimSpace(normalizeText(s)) }
