// Package tokenizer implements Hugging Face byte-level BPE tokenizers from
// tokenizer.json (GPT-2, Llama-3, Qwen2 and Nemotron style): added and
// special tokens matched first, optional NFC normalization, regex split
// pre-tokenization (hand-written scanners for the common patterns),
// ByteLevel byte-to-unicode mapping, BPE merges, TemplateProcessing for
// BOS/EOS, and decoding that handles UTF-8 split across tokens.
//
//	tok, err := tokenizer.Load("models/qwen2.5-0.5b")
//	ids := tok.Encode("Hello world", false)
//	text := tok.Decode(ids, false)
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ErrUnsupported marks a tokenizer.json feature this package does not
// implement.
var ErrUnsupported = errors.New("tokenizer: unsupported")

// AddedToken is a token matched in raw text before pre-tokenization.
type AddedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
	LStrip  bool   `json:"lstrip"`
	RStrip  bool   `json:"rstrip"`
}

// Tokenizer is a loaded byte-level BPE tokenizer. It is safe for concurrent
// use.
type Tokenizer struct {
	vocab    map[string]int
	idToTok  []string // model vocabulary by id ("" for holes)
	merges   map[uint64]merge
	byteToID [256]int // id of each single byte's ByteLevel character, -1 if none

	added     []AddedToken
	addedByID map[int]*AddedToken
	firstByte [256][]*AddedToken // added tokens by first byte, longest first

	ignoreMerges bool // a pre-token found whole in the vocabulary is one token (Llama-3)

	normalizer  func(string) string
	splits      []splitter // applied in sequence
	prefixSpace bool       // ByteLevel add_prefix_space

	prefix, suffix []int // TemplateProcessing "single": special ids around the text

	mu    sync.Mutex
	cache map[string][]int // BPE result per pre-token

	// Config is tokenizer_config.json (nil when absent).
	Config *Config
}

// merge is a BPE merge: its rank (lower merges first) and the merged id.
type merge struct{ rank, id int }

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// Load reads dir/tokenizer.json and, when present, dir/tokenizer_config.json
// and dir/chat_template.jinja.
func Load(dir string) (*Tokenizer, error) {
	path := filepath.Join(dir, "tokenizer.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	t.Config, err = LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	return t, nil
}

type jsonFile struct {
	AddedTokens   []AddedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		IgnoreMerges bool            `json:"ignore_merges"`
		Prefix       *string         `json:"continuing_subword_prefix"`
		Suffix       *string         `json:"end_of_word_suffix"`
	} `json:"model"`
}

// Parse builds a tokenizer from the bytes of a tokenizer.json.
func Parse(b []byte) (*Tokenizer, error) {
	var f jsonFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	if f.Model.Type != "BPE" && f.Model.Type != "" {
		return nil, fmt.Errorf("%w: model type %q (want BPE)", ErrUnsupported, f.Model.Type)
	}
	if f.Model.ByteFallback || (f.Model.Prefix != nil && *f.Model.Prefix != "") || (f.Model.Suffix != nil && *f.Model.Suffix != "") {
		return nil, fmt.Errorf("%w: BPE with byte_fallback or subword prefixes (not byte-level)", ErrUnsupported)
	}
	t := &Tokenizer{vocab: f.Model.Vocab, merges: map[uint64]merge{}, addedByID: map[int]*AddedToken{},
		cache: map[string][]int{}}
	maxID := -1
	// Ids are dense in real vocabularies; bound them so that a corrupt file
	// cannot ask for a huge table.
	limit := len(t.vocab) + len(f.AddedTokens) + 1<<16
	for _, id := range t.vocab {
		if id < 0 || id >= limit {
			return nil, fmt.Errorf("tokenizer.json: vocabulary id %d out of range for %d tokens", id, len(t.vocab))
		}
		maxID = max(maxID, id)
	}
	t.idToTok = make([]string, maxID+1)
	for s, id := range t.vocab {
		t.idToTok[id] = s
	}
	for i := range t.byteToID {
		t.byteToID[i] = -1
		if id, ok := t.vocab[string(byteToRune[i])]; ok {
			t.byteToID[i] = id
		}
	}
	t.ignoreMerges = f.Model.IgnoreMerges
	if err := t.parseMerges(f.Model.Merges); err != nil {
		return nil, err
	}
	t.added = f.AddedTokens
	for i := range t.added {
		a := &t.added[i]
		if a.Content == "" {
			continue
		}
		t.addedByID[a.ID] = a
		t.firstByte[a.Content[0]] = append(t.firstByte[a.Content[0]], a)
	}
	for i := range t.firstByte {
		sort.SliceStable(t.firstByte[i], func(x, y int) bool {
			return len(t.firstByte[i][x].Content) > len(t.firstByte[i][y].Content)
		})
	}
	var err error
	if t.normalizer, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := t.parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := t.parsePostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}
	return t, nil
}

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
		m, okM := t.vocab[p[0]+p[1]]
		if !okA || !okB || !okM {
			return fmt.Errorf("tokenizer.json: merge %q + %q: token not in the vocabulary", p[0], p[1])
		}
		k := pairKey(a, b)
		if _, dup := t.merges[k]; !dup {
			t.merges[k] = merge{rank: rank, id: m}
		}
	}
	return nil
}

type component struct {
	Type string `json:"type"`
	// Sequence
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	Decoders      []json.RawMessage `json:"decoders"`
	// Split
	Pattern struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior string `json:"behavior"`
	Invert   bool   `json:"invert"`
	// ByteLevel
	AddPrefixSpace bool  `json:"add_prefix_space"`
	UseRegex       *bool `json:"use_regex"`
	// TemplateProcessing
	Single []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
}

func parseComponent(raw json.RawMessage) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	return &c, nil
}

func parseNormalizer(raw json.RawMessage) (func(string) string, error) {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "NFC":
		return norm.NFC.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Lowercase":
		return strings.ToLower, nil
	case "Sequence":
		var fs []func(string) string
		for _, r := range c.Normalizers {
			f, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			if f != nil {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			return nil, nil
		}
		return func(s string) string {
			for _, f := range fs {
				s = f(s)
			}
			return s
		}, nil
	}
	return nil, fmt.Errorf("%w: normalizer %q", ErrUnsupported, c.Type)
}

func (t *Tokenizer) parsePreTokenizer(raw json.RawMessage) error {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return err
	}
	switch c.Type {
	case "Sequence":
		for _, r := range c.Pretokenizers {
			if err := t.parsePreTokenizer(r); err != nil {
				return err
			}
		}
		return nil
	case "ByteLevel":
		t.prefixSpace = c.AddPrefixSpace
		if c.UseRegex == nil || *c.UseRegex {
			sp, _ := newSplitter(PatternGPT2)
			t.splits = append(t.splits, sp)
		}
		return nil
	case "Split":
		if c.Invert || (c.Behavior != "Isolated" && c.Behavior != "") {
			return fmt.Errorf("%w: Split pre-tokenizer with behavior %q, invert %v", ErrUnsupported, c.Behavior, c.Invert)
		}
		var pattern string
		switch {
		case c.Pattern.Regex != nil:
			pattern = *c.Pattern.Regex
		case c.Pattern.String != nil:
			pattern = regexpQuote(*c.Pattern.String)
		default:
			return fmt.Errorf("tokenizer.json: Split pre-tokenizer without a pattern")
		}
		sp, err := newSplitter(pattern)
		if err != nil {
			return err
		}
		t.splits = append(t.splits, sp)
		return nil
	}
	return fmt.Errorf("%w: pre-tokenizer %q", ErrUnsupported, c.Type)
}

func regexpQuote(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$#&-~ `, r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func (t *Tokenizer) parsePostProcessor(raw json.RawMessage) error {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		for _, r := range c.Processors {
			if err := t.parsePostProcessor(r); err != nil {
				return err
			}
		}
		return nil
	case "TemplateProcessing":
		seen := false
		for _, item := range c.Single {
			switch {
			case item.Sequence != nil:
				seen = true
			case item.SpecialToken != nil:
				st, ok := c.SpecialTokens[item.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("tokenizer.json: TemplateProcessing: unknown special token %q", item.SpecialToken.ID)
				}
				if seen {
					t.suffix = append(t.suffix, st.IDs...)
				} else {
					t.prefix = append(t.prefix, st.IDs...)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("%w: post-processor %q", ErrUnsupported, c.Type)
}

func checkDecoder(raw json.RawMessage) error {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		for _, r := range c.Decoders {
			if err := checkDecoder(r); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%w: decoder %q", ErrUnsupported, c.Type)
}

// VocabSize is one more than the largest token id (model or added).
func (t *Tokenizer) VocabSize() int {
	n := len(t.idToTok)
	for id := range t.addedByID {
		n = max(n, id+1)
	}
	return n
}

// TokenID returns the id of a token string (added tokens included).
func (t *Tokenizer) TokenID(tok string) (int, bool) {
	for i := range t.added {
		if t.added[i].Content == tok {
			return t.added[i].ID, true
		}
	}
	id, ok := t.vocab[tok]
	return id, ok
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.addedByID[id]
	return ok && a.Special
}

// Encode tokenizes text. Added and special tokens in the text are always
// recognized; addSpecial adds the post-processor's tokens (e.g. BOS).
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	var ids []int
	if addSpecial {
		ids = append(ids, t.prefix...)
	}
	var pieces [][2]int
	var scratch []int
	for len(text) > 0 {
		// Find the next added token (leftmost, then longest).
		at, tok := t.nextAdded(text)
		seg := text
		if tok != nil {
			seg = text[:at]
		}
		if tok != nil && tok.LStrip {
			seg = strings.TrimRightFunc(seg, isSpace)
		}
		ids, pieces, scratch = t.encodeSegment(seg, ids, pieces, scratch)
		if tok == nil {
			break
		}
		ids = append(ids, tok.ID)
		text = text[at+len(tok.Content):]
		if tok.RStrip {
			text = strings.TrimLeftFunc(text, isSpace)
		}
	}
	if addSpecial {
		ids = append(ids, t.suffix...)
	}
	return ids
}

// nextAdded finds the leftmost (then longest) added token in s.
func (t *Tokenizer) nextAdded(s string) (int, *AddedToken) {
	if len(t.added) == 0 {
		return -1, nil
	}
	for i := 0; i < len(s); i++ {
		cands := t.firstByte[s[i]]
		for _, a := range cands {
			if strings.HasPrefix(s[i:], a.Content) {
				return i, a
			}
		}
	}
	return -1, nil
}

// encodeSegment tokenizes text that holds no added token.
func (t *Tokenizer) encodeSegment(s string, ids []int, pieces [][2]int, scratch []int) ([]int, [][2]int, []int) {
	if s == "" {
		return ids, pieces, scratch
	}
	if t.normalizer != nil {
		s = t.normalizer(s)
	}
	if t.prefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if cap(ids)-len(ids) < len(s)/3 {
		ids = append(make([]int, 0, len(ids)+len(s)/3+16), ids...)
	}
	if len(t.splits) == 1 {
		if st, ok := t.splits[0].(stepper); ok {
			for i := 0; i < len(s); {
				end := st.next(s, i)
				ids, scratch = t.bpe(s[i:end], ids, scratch)
				i = end
			}
			return ids, pieces, scratch
		}
	}
	pieces = append(pieces[:0], [2]int{0, len(s)})
	for _, sp := range t.splits {
		var next [][2]int
		for _, p := range pieces {
			sub := sp.split(s[p[0]:p[1]], nil)
			for _, q := range sub {
				next = append(next, [2]int{p[0] + q[0], p[0] + q[1]})
			}
		}
		pieces = next
	}
	for _, p := range pieces {
		ids, scratch = t.bpe(s[p[0]:p[1]], ids, scratch)
	}
	return ids, pieces, scratch
}

// maxCache bounds the per-tokenizer cache of pre-token encodings.
const maxCache = 1 << 16

// bpe appends the BPE encoding of one pre-token (raw bytes; the ByteLevel
// mapping is implicit in byteToID).
func (t *Tokenizer) bpe(piece string, ids, sym []int) ([]int, []int) {
	if len(piece) < 64 {
		t.mu.Lock()
		cached, ok := t.cache[piece]
		t.mu.Unlock()
		if ok {
			return append(ids, cached...), sym
		}
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
	if len(sym) > 64 {
		sym = t.mergeLong(sym)
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
	start := len(ids)
	for _, id := range sym {
		if id >= 0 { // a byte absent from the vocabulary is dropped, as HF does without unk
			ids = append(ids, id)
		}
	}
	if len(piece) < 64 {
		out := append([]int(nil), ids[start:]...)
		t.mu.Lock()
		if len(t.cache) >= maxCache {
			clear(t.cache)
		}
		t.cache[piece] = out
		t.mu.Unlock()
	}
	return ids, sym
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
// bytes of a vocabulary token, or an added token's content.
func (t *Tokenizer) TokenBytes(id int) []byte {
	return t.appendTokenBytes(nil, id)
}

func (t *Tokenizer) appendTokenBytes(dst []byte, id int) []byte {
	var s string
	if a, ok := t.addedByID[id]; ok {
		s = a.Content
	} else if id >= 0 && id < len(t.idToTok) {
		s = t.idToTok[id]
	} else {
		return dst
	}
	// Map each character back to its byte; a token with a character outside
	// the ByteLevel alphabet is used as its raw UTF-8 (as HF does).
	start := len(dst)
	for _, r := range s {
		b, ok := runeToByte(r)
		if !ok {
			return append(dst[:start], s...)
		}
		dst = append(dst, b)
	}
	return dst
}

// Decode turns ids into text; skipSpecial drops special tokens. Invalid
// UTF-8 becomes U+FFFD, as in HF's from_utf8_lossy.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	var b []byte
	for _, id := range ids {
		if skipSpecial && t.IsSpecial(id) {
			continue
		}
		b = t.appendTokenBytes(b, id)
	}
	return lossy(b)
}

// lossy converts b to a string, replacing each maximal invalid sequence as
// Rust's String::from_utf8_lossy does.
func lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			sb.WriteRune(utf8.RuneError)
			b = b[invalidPrefixLen(b):]
			continue
		}
		sb.Write(b[:n])
		b = b[n:]
	}
	return sb.String()
}

// invalidPrefixLen is the length of the invalid sequence at the start of b
// that Rust replaces with a single U+FFFD: a truncated but otherwise valid
// prefix of a multi-byte character counts as one.
func invalidPrefixLen(b []byte) int {
	need := 0
	c := b[0]
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			return i
		}
		lo, hi = 0x80, 0xBF
	}
	return i
}

// Stream decodes tokens one at a time, holding back the bytes of a UTF-8
// character split across tokens until it is complete.
type Stream struct {
	t           *Tokenizer
	skipSpecial bool
	pending     []byte
}

// NewStream starts a streaming decode.
func (t *Tokenizer) NewStream(skipSpecial bool) *Stream {
	return &Stream{t: t, skipSpecial: skipSpecial}
}

// Add appends a token and returns the text it completes ("" while a
// character is still partial).
func (s *Stream) Add(id int) string {
	if s.skipSpecial && s.t.IsSpecial(id) {
		return ""
	}
	s.pending = s.t.appendTokenBytes(s.pending, id)
	// Keep back a trailing incomplete (but so far valid) character.
	keep := incompleteSuffix(s.pending)
	out := lossy(s.pending[:len(s.pending)-keep])
	s.pending = append(s.pending[:0], s.pending[len(s.pending)-keep:]...)
	return out
}

// Flush returns what is left (an incomplete character becomes U+FFFD).
func (s *Stream) Flush() string {
	out := lossy(s.pending)
	s.pending = s.pending[:0]
	return out
}

// incompleteSuffix returns how many trailing bytes of b form the start of a
// multi-byte character that more bytes could still complete.
func incompleteSuffix(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a lead byte
			tail := b[len(b)-k:]
			if invalidPrefixLen(tail) == len(tail) && !utf8.FullRune(tail) {
				return k
			}
			return 0
		}
	}
	return 0
}
