package curate

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"unicode"

	"github.com/crucible-ml/crucible/record"
)

// Scope says among which rows duplicates are looked for.
type Scope string

// Scopes: within the solutions of one problem (rows sharing an id), or
// across all rows.
const (
	ScopeProblem Scope = "problem"
	ScopeGlobal  Scope = "global"
)

// normalizeText lower-cases and collapses whitespace, so that exact
// duplicates differing only in case or spacing collide.
func normalizeText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

var seed = maphash.MakeSeed()

// fieldText returns the text a dedup step compares.
func fieldText(d *Dataset, r *record.Row, field string) string {
	switch field {
	case "", "solution":
		return d.Solution(r)
	case "problem":
		return d.Problem(r)
	}
	s, _ := r.Text(field)
	return s
}

// ExactDedup removes rows whose normalized field text was already seen in
// the scope. Deduplicating the `problem` field globally keeps every row of
// the first problem (id) with that text and removes the other problems.
func ExactDedup(d *Dataset, field string, scope Scope) int {
	type owner struct {
		id  string
		idx int
	}
	first := map[uint64]owner{}
	return d.Keep("dedup_exact", func(r *record.Row) (bool, string) {
		text := normalizeText(fieldText(d, r, field))
		var h maphash.Hash
		h.SetSeed(seed)
		if scope == ScopeProblem {
			h.WriteString(r.ID())
			h.WriteByte(0)
		}
		h.WriteString(text)
		k := h.Sum64()
		id := r.ID()
		if o, ok := first[k]; ok {
			if field == "problem" && o.id == id {
				return true, "" // the same problem's other solutions
			}
			return false, fmt.Sprintf("same %s as row %q", fieldName(field), o.id)
		}
		first[k] = owner{id: id}
		return true, ""
	})
}

func fieldName(f string) string {
	if f == "" {
		return "solution"
	}
	return f
}

// MinHashOptions configure near-duplicate detection. The defaults are
// NeMo-Curator's: 24-character shingles, 20 bands of 13 rows (260 hashes,
// an S-curve threshold near 0.79) and a Jaccard check at 0.8.
type MinHashOptions struct {
	Field     string
	Scope     Scope
	Shingle   int     // characters per shingle
	Bands     int     // LSH bands
	Rows      int     // hashes per band
	Threshold float64 // estimated Jaccard at or above which a candidate is a duplicate
	Seed      uint64
}

// DefaultMinHash returns NeMo-Curator's parameters.
func DefaultMinHash() MinHashOptions {
	return MinHashOptions{Field: "solution", Scope: ScopeGlobal, Shingle: 24, Bands: 20, Rows: 13, Threshold: 0.8, Seed: 42}
}

// maxShingle bounds the shingle size.
const maxShingle = 64

// MinHasher computes MinHash signatures by one-permutation hashing with
// optimal densification (Shrivastava 2017): each shingle is hashed once and
// falls in one of K bins, whose minimum is kept; empty bins borrow from a
// pseudo-randomly chosen filled bin. This costs O(shingles + K) per text
// instead of O(shingles × K), with the same collision probability (the
// Jaccard similarity) as K independent permutations.
type MinHasher struct {
	o      MinHashOptions
	k      int
	sig    []uint64
	filled []bool
}

// NewMinHasher returns a hasher for o.
func NewMinHasher(o MinHashOptions) *MinHasher {
	o.Shingle = max(1, min(o.Shingle, maxShingle))
	k := o.Bands * o.Rows
	return &MinHasher{o: o, k: k, sig: make([]uint64, k), filled: make([]bool, k)}
}

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Signature returns the signature of text (valid until the next call).
func (m *MinHasher) Signature(text string) []uint64 {
	sig := m.sig
	for i := range sig {
		sig[i] = math.MaxUint64
	}
	n := m.o.Shingle
	k := uint64(m.k)
	// A polynomial rolling hash over each n-byte window of the text with
	// runs of whitespace read as one space (no copy of the text is made).
	const base = 0x100000001b3
	pow := uint64(1)
	for range n {
		pow *= base
	}
	var ring [maxShingle]byte
	var h uint64
	count, pos := 0, 0
	prevSpace := true // also drops leading whitespace
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			if prevSpace {
				continue
			}
			c, prevSpace = ' ', true
		} else {
			prevSpace = false
		}
		h = h*base + uint64(c) + 1
		if count >= n {
			h -= pow * (uint64(ring[pos]) + 1)
		}
		ring[pos] = c
		if pos++; pos == n {
			pos = 0
		}
		count++
		if count >= n {
			m.add(h^m.o.Seed, k)
		}
	}
	if count < n {
		m.add(h^m.o.Seed, k) // a text shorter than one shingle
	}
	// Densify: an empty bin copies the value of the first originally filled
	// bin met by a probe sequence that depends only on the bin and the
	// attempt, so equal shingle sets densify equally.
	for i := range sig {
		m.filled[i] = sig[i] != math.MaxUint64
	}
	for i := range sig {
		if m.filled[i] {
			continue
		}
		for attempt := uint64(1); attempt < 64*k; attempt++ {
			j, _ := bits.Mul64(mix64(uint64(i)<<32|attempt), k)
			if m.filled[j] {
				sig[i] = sig[j]
				break
			}
		}
	}
	return sig
}

// add puts a shingle's rolling hash in its bin. One multiply-xorshift
// round spreads the polynomial hash's bits (its low bits are weak); the bin
// comes from the high bits, the kept value from the whole word.
func (m *MinHasher) add(h, k uint64) {
	x := (h ^ h>>31) * 0xd6e8feb86659fd93
	x ^= x >> 32
	bin, _ := bits.Mul64(x, k)
	v := x * 0x9e3779b97f4a7c15
	if v < m.sig[bin] {
		m.sig[bin] = v
	}
}

func hashBytes(s string, seed uint64) uint64 {
	h := uint64(14695981039346656037) ^ seed
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// Jaccard estimates the Jaccard similarity of two signatures.
func Jaccard(a, b []uint64) float64 {
	eq := 0
	for i := range a {
		if a[i] == b[i] {
			eq++
		}
	}
	return float64(eq) / float64(len(a))
}

// compact keeps 16 bits of each signature value: enough to compare kept
// rows (a false match has probability 2^-16 per position) at an eighth of
// the memory.
func compact(sig []uint64, dst []uint16) []uint16 {
	for _, v := range sig {
		dst = append(dst, uint16(v>>48))
	}
	return dst
}

func jaccard16(a []uint64, b []uint16) float64 {
	eq := 0
	for i := range a {
		if uint16(a[i]>>48) == b[i] {
			eq++
		}
	}
	return float64(eq) / float64(len(a))
}

// bandKeys sets keys[b] to the LSH key of band b of sig; scope separates
// problems (0 for the global scope).
func bandKeys(sig []uint64, o MinHashOptions, scope uint64, keys []uint64) {
	for b := range o.Bands {
		h := scope ^ uint64(b)*0x9e3779b97f4a7c15
		for _, v := range sig[b*o.Rows : (b+1)*o.Rows] {
			h = (h ^ v) * 0xbf58476d1ce4e5b9
		}
		keys[b] = mix64(h)
	}
}

// normMinHash fills unset parameters with the defaults.
func normMinHash(o MinHashOptions) MinHashOptions {
	if o.Bands <= 0 || o.Rows <= 0 || o.Shingle <= 0 {
		o = DefaultMinHash()
	}
	o.Shingle = min(o.Shingle, maxShingle)
	return o
}

// jaccardCompact estimates the Jaccard similarity of two compacted
// signatures (as jaccard16 does for a full and a compacted one).
func jaccardCompact(a, b []uint16) float64 {
	eq := 0
	for i := range a {
		if a[i] == b[i] {
			eq++
		}
	}
	return float64(eq) / float64(len(a))
}

// MinHashDedup removes near-duplicates: rows whose signature shares an LSH
// band with an earlier kept row and whose estimated Jaccard similarity with
// it reaches the threshold. The earlier row is kept.
func MinHashDedup(d *Dataset, o MinHashOptions) int {
	o = normMinHash(o)
	mh := NewMinHasher(o)
	bands := make([]map[uint64]int32, o.Bands)
	for i := range bands {
		bands[i] = make(map[uint64]int32, len(d.Rows))
	}
	k := o.Bands * o.Rows
	var kept []uint16 // compacted signatures of kept rows, k values each
	var keptIDs []string
	keys := make([]uint64, o.Bands)
	return d.Keep("dedup_minhash", func(r *record.Row) (bool, string) {
		sig := mh.Signature(fieldText(d, r, o.Field))
		var scope uint64
		if o.Scope == ScopeProblem {
			scope = hashBytes(r.ID(), 7)
		}
		best, bestJ := -1, 0.0
		bandKeys(sig, o, scope, keys)
		for b, h := range keys {
			if j, ok := bands[b][h]; ok {
				if jac := jaccard16(sig, kept[int(j)*k:int(j+1)*k]); jac >= o.Threshold && jac > bestJ {
					best, bestJ = int(j), jac
				}
			}
		}
		if best >= 0 {
			return false, fmt.Sprintf("near-duplicate of row %q (estimated Jaccard %.2f)", keptIDs[best], bestJ)
		}
		idx := int32(len(keptIDs))
		kept = compact(sig, kept)
		keptIDs = append(keptIDs, r.ID())
		for b, h := range keys {
			if _, ok := bands[b][h]; !ok {
				bands[b][h] = idx
			}
		}
		return true, ""
	})
}
