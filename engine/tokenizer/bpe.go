package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// merge is a BPE merge: its rank (lower merges first) and the merged id.
type merge struct{ rank, id int }

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// parseMerges reads model.merges into t.merges.
func (t *Tokenizer) parseMerges(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	// Merges are "a b" strings (older files) or ["a", "b"] pairs.
	var pairs [][2]string
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		for _, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return fmt.Errorf("tokenizer.json: merge %q is not two tokens", s)
			}
			pairs = append(pairs, [2]string{a, b})
		}
	} else if err := json.Unmarshal(raw, &pairs); err != nil {
		return fmt.Errorf("tokenizer.json: merges: %w", err)
	}
	for rank, p := range pairs {
		a, okA := t.vocab[p[0]]
		b, okB := t.vocab[p[1]]
		// With a continuing_subword_prefix, "a" + "##b" merges into "ab".
		right := p[1]
		if t.subwordPrefix != "" && len(right) >= len(t.subwordPrefix) {
			right = right[len(t.subwordPrefix):]
		}
		m, okM := t.vocab[p[0]+right]
		if !okA || !okB || !okM {
			return fmt.Errorf("tokenizer.json: merge %q + %q: token not in the vocabulary", p[0], p[1])
		}
		// A repeated pair takes its last rank, as HF's map does.
		t.merges[pairKey(a, b)] = merge{rank: rank, id: m}
	}
	return nil
}

// maxCache bounds the per-tokenizer cache of pre-token encodings.
const maxCache = 1 << 16

// cachedPiece is the longest pre-token whose encoding is cached.
const cachedPiece = 63

// cached returns the cached encoding of a pre-token.
func (t *Tokenizer) cached(piece string) ([]int, bool) {
	if len(piece) > cachedPiece {
		return nil, false
	}
	t.mu.Lock()
	ids, ok := t.cache[piece]
	t.mu.Unlock()
	return ids, ok
}

// remember caches a short pre-token's encoding (a copy of ids), emptying
// the cache when it is full.
func (t *Tokenizer) remember(piece string, ids []int) {
	if len(piece) > cachedPiece {
		return
	}
	out := append([]int(nil), ids...)
	t.mu.Lock()
	if len(t.cache) >= maxCache {
		clear(t.cache)
	}
	t.cache[piece] = out
	t.mu.Unlock()
}

// bpe appends the BPE encoding of one pre-token (raw bytes; the ByteLevel
// mapping is implicit in byteToID).
func (t *Tokenizer) bpe(piece string, ids, sym []int) ([]int, []int) {
	if cached, ok := t.cached(piece); ok {
		return append(ids, cached...), sym
	}
	sym = sym[:0]
	for i := 0; i < len(piece); i++ {
		sym = append(sym, t.byteToID[piece[i]])
	}
	if t.ignoreMerges && len(piece) > 1 {
		if id, ok := t.vocab[byteLevel(piece)]; ok {
			sym = append(sym[:0], id)
		}
	}
	sym = t.mergeAll(sym)
	start := len(ids)
	for _, id := range sym {
		if id >= 0 { // a byte absent from the vocabulary is dropped, as HF does without unk
			ids = append(ids, id)
		}
	}
	t.remember(piece, ids[start:])
	return ids, sym
}

// mergeAll applies the merges to a symbol sequence, lowest rank first,
// leftmost among equal ranks (HF's Word::merge_all).
func (t *Tokenizer) mergeAll(sym []int) []int {
	if len(sym) > 64 {
		return t.mergeLong(sym)
	}
	for len(sym) > 1 {
		best, bestRank, bestID := -1, int(^uint(0)>>1), 0
		for i := 0; i+1 < len(sym); i++ {
			if m, ok := t.merges[pairKey(sym[i], sym[i+1])]; ok && m.rank < bestRank {
				best, bestRank, bestID = i, m.rank, m.id
			}
		}
		if best < 0 {
			break
		}
		sym[best] = bestID
		sym = append(sym[:best+1], sym[best+2:]...)
	}
	return sym
}

// bpeWord appends the BPE encoding of one pre-token for the general model:
// one symbol per character (per byte's ByteLevel character when
// byteLevel), continuing_subword_prefix before all but the first,
// end_of_word_suffix after the last; a character not in the vocabulary
// becomes its <0xNN> tokens (byte_fallback) or unk (fused with a preceding
// unk under fuse_unk) or is dropped without an unk token, as HF's
// BPE::merge_word.
func (t *Tokenizer) bpeWord(piece string, ids, sym []int) ([]int, []int) {
	if cached, ok := t.cached(piece); ok {
		return append(ids, cached...), sym
	}
	w := piece
	if t.byteLevel {
		w = byteLevel(piece)
	}
	start := len(ids)
	if id, ok := t.vocab[w]; ok && t.ignoreMerges {
		ids = append(ids, id)
	} else {
		sym = sym[:0]
		pendingUnk := false
		var buf []byte
		for i, r := range w {
			n := len(string(r))
			if r == utf8.RuneError {
				_, n = utf8.DecodeRuneInString(w[i:])
			}
			buf = append(buf[:0], w[i:i+n]...)
			if i > 0 && t.subwordPrefix != "" {
				buf = append([]byte(t.subwordPrefix), buf...)
			}
			if i+n == len(w) {
				buf = append(buf, t.wordSuffix...)
			}
			if id, ok := t.vocab[string(buf)]; ok {
				if pendingUnk {
					sym = append(sym, t.unkID)
					pendingUnk = false
				}
				sym = append(sym, id)
				continue
			}
			if t.byteFallback && t.hasByteTokens(buf) {
				// As HF, a pending unk is not flushed here.
				for _, b := range buf {
					sym = append(sym, t.byteTokID[b])
				}
				continue
			}
			if t.unkID >= 0 {
				if pendingUnk && !t.fuseUnk {
					sym = append(sym, t.unkID)
				}
				pendingUnk = true
			}
		}
		if pendingUnk {
			sym = append(sym, t.unkID)
		}
		sym = t.mergeAll(sym)
		ids = append(ids, sym...)
	}
	t.remember(piece, ids[start:])
	return ids, sym
}

func (t *Tokenizer) hasByteTokens(b []byte) bool {
	for _, c := range b {
		if t.byteTokID[c] < 0 {
			return false
		}
	}
	return true
}

// byteLevel maps raw bytes to their ByteLevel characters.
func byteLevel(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		sb.WriteRune(byteToRune[s[i]])
	}
	return sb.String()
}

// mergeLong applies BPE merges to a long symbol sequence in O(n log n):
// a heap of candidate pairs ordered by (rank, position), as HF's
// Word::merge_all, instead of rescanning the sequence after each merge.
func (t *Tokenizer) mergeLong(sym []int) []int {
	n := len(sym)
	next := make([]int, n)
	prev := make([]int, n)
	alive := make([]bool, n)
	for i := range sym {
		next[i], prev[i], alive[i] = i+1, i-1, true
	}
	next[n-1] = -1
	h := &pairHeap{}
	push := func(i int) {
		if i < 0 || next[i] < 0 {
			return
		}
		if m, ok := t.merges[pairKey(sym[i], sym[next[i]])]; ok {
			h.push(pairItem{rank: m.rank, pos: i, left: sym[i], right: sym[next[i]]})
		}
	}
	for i := 0; i+1 < n; i++ {
		push(i)
	}
	for h.len() > 0 {
		it := h.pop()
		i := it.pos
		if !alive[i] || next[i] < 0 || sym[i] != it.left || sym[next[i]] != it.right {
			continue // stale
		}
		j := next[i]
		sym[i] = t.merges[pairKey(it.left, it.right)].id
		alive[j] = false
		next[i] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = i
		}
		push(prev[i])
		push(i)
	}
	out := sym[:0]
	for i := 0; i >= 0 && i < n; i = next[i] {
		out = append(out, sym[i])
	}
	return out
}

type pairItem struct{ rank, pos, left, right int }

// pairHeap is a binary min-heap of merge candidates by (rank, pos).
type pairHeap struct{ items []pairItem }

func (h *pairHeap) len() int { return len(h.items) }

func (h *pairHeap) less(a, b int) bool {
	x, y := h.items[a], h.items[b]
	return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos)
}

func (h *pairHeap) push(it pairItem) {
	h.items = append(h.items, it)
	for i := len(h.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *pairHeap) pop() pairItem {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.less(l, m) {
			m = l
		}
		if r < last && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}

// TokenBytes returns the bytes a token stands for: the ByteLevel-decoded
