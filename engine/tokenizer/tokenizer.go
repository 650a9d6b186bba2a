// Package tokenizer implements Hugging Face BPE tokenizers from
// tokenizer.json: byte-level ones (GPT-2, GPT-NeoX, Llama-3, Qwen2, SmolLM,
// Nemotron) and SentencePiece-style ones with byte fallback (Llama-2,
// TinyLlama, Mistral). Added and special tokens are matched first (lstrip,
// rstrip, single_word, normalized), then the normalizers (NFC/NFKC/NFD/NFKD,
// Lowercase, StripAccents, Prepend, Replace, Strip), the pre-tokenizers
// (Split with hand-written scanners for the common patterns, ByteLevel,
// Digits, Metaspace), BPE merges (ignore_merges, byte_fallback, unk with
// fuse_unk, continuing_subword_prefix, end_of_word_suffix) and the
// post-processor (TemplateProcessing, Roberta/BertProcessing, or BOS/EOS as
// tokenizer_config.json's add_bos_token/add_eos_token say). Decoding runs
// the decoders (ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace,
// BPEDecoder) and streams text whose characters are split across tokens.
// A construct this package does not implement is an ErrUnsupported error
// that names the JSON key and type.
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
	"strings"
	"sync"
)

// ErrUnsupported marks a tokenizer.json feature this package does not
// implement.
var ErrUnsupported = errors.New("tokenizer: unsupported")

// Tokenizer is a loaded BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocab    map[string]int
	idToTok  []string // model vocabulary by id ("" for holes)
	merges   map[uint64]merge
	byteToID [256]int // id of each single byte's ByteLevel character, -1 if none

	// The BPE model.
	byteLevel     bool // a ByteLevel pre-tokenizer: BPE sees one character per byte
	ignoreMerges  bool // a pre-token found whole in the vocabulary is one token (Llama-3)
	byteFallback  bool // a character not in the vocabulary becomes its <0xNN> byte tokens
	byteTokID     [256]int
	unkID         int // -1: unknown characters are dropped
	fuseUnk       bool
	subwordPrefix string // continuing_subword_prefix
	wordSuffix    string // end_of_word_suffix
	simpleBytes   bool   // byte-level without the options above: the fast bpe

	added     []AddedToken
	addedByID map[int]*AddedToken
	rawAdded  *addedMatcher // tokens matched in the raw text
	normAdded *addedMatcher // tokens matched in the normalized text

	normalizer  func(string) string
	pre         []preStep
	fast        stepper     // non-nil: pre is one byte-level scanner pass
	prefixSpace bool        // with fast: ByteLevel add_prefix_space
	digitsFast  *digitsStep // pre is Digits then ByteLevel(use_regex) (SmolLM2)
	// cutAtMeta: no pre-tokenizer and no vocabulary token has ▁ after
	// another character, so the text can be cut before each run of ▁
	// without changing the merges (SentencePiece files: Llama-2, Mistral).
	cutAtMeta bool

	prefix, suffix []int // post-processor: special ids around the text

	decoders   []decodeStep // flattened decoder Sequence
	byteDecode bool         // the decoder is ByteLevel alone: decode bytes directly

	mu    sync.Mutex
	cache map[string][]int // BPE result per pre-token

	// Config is tokenizer_config.json (nil when absent).
	Config *Config
}

// Load reads dir/tokenizer.json and, when present, dir/tokenizer_config.json
// and dir/chat_template.jinja. add_bos_token and add_eos_token in the
// config decide whether Encode(…, true) adds BOS and EOS.
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
	t.applyConfig()
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
		Vocab        json.RawMessage `json:"vocab"` // an object for BPE, decoded after the type check
		Merges       json.RawMessage `json:"merges"`
		Dropout      *float64        `json:"dropout"`
		UnkToken     *string         `json:"unk_token"`
		FuseUnk      bool            `json:"fuse_unk"`
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
	if f.Model.Dropout != nil && *f.Model.Dropout > 0 {
		return nil, fmt.Errorf("%w: model dropout %g (BPE dropout is for training)", ErrUnsupported, *f.Model.Dropout)
	}
	t := &Tokenizer{vocab: map[string]int{}, merges: map[uint64]merge{}, addedByID: map[int]*AddedToken{},
		cache: map[string][]int{}, unkID: -1}
	if len(f.Model.Vocab) > 0 && string(f.Model.Vocab) != "null" {
		if err := json.Unmarshal(f.Model.Vocab, &t.vocab); err != nil {
			return nil, fmt.Errorf("tokenizer.json: model.vocab: %w", err)
		}
	}
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
		t.byteTokID[i] = -1
		if id, ok := t.vocab[fmt.Sprintf("<0x%02X>", i)]; ok {
			t.byteTokID[i] = id
		}
	}
	m := &f.Model
	t.ignoreMerges, t.byteFallback, t.fuseUnk = m.IgnoreMerges, m.ByteFallback, m.FuseUnk
	if m.Prefix != nil {
		t.subwordPrefix = *m.Prefix
	}
	if m.Suffix != nil {
		t.wordSuffix = *m.Suffix
	}
	if m.UnkToken != nil {
		// HF fails at encode time on an unk token missing from the
		// vocabulary; fail at load instead.
		id, ok := t.vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("tokenizer.json: model.unk_token %q is not in the vocabulary", *m.UnkToken)
		}
		t.unkID = id
	}
	if err := t.parseMerges(m.Merges); err != nil {
		return nil, err
	}
	var err error
	if t.normalizer, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := t.parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	t.simpleBytes = t.byteLevel && !t.byteFallback && t.subwordPrefix == "" && t.wordSuffix == ""
	if t.simpleBytes {
		t.fast = t.fastSplit()
		if bl, ok := t.pre[0].(byteLevelStep); ok && t.fast != nil {
			t.prefixSpace = bl.prefixSpace
		}
	}
	if t.simpleBytes && len(t.pre) == 2 {
		d, ok1 := t.pre[0].(digitsStep)
		bl, ok2 := t.pre[1].(byteLevelStep)
		if ok1 && ok2 && bl.useRegex && !bl.prefixSpace {
			t.digitsFast = &d
		}
	}
	t.cutAtMeta = t.canCutAtMeta()
	t.added = f.AddedTokens
	var raw, normed []addedPattern
	for i := range t.added {
		a := &t.added[i]
		if a.Content == "" {
			continue
		}
		t.addedByID[a.ID] = a
		if a.normalized() && t.normalizer != nil {
			normed = append(normed, addedPattern{t.normalizer(a.Content), a})
		} else {
			raw = append(raw, addedPattern{a.Content, a})
		}
	}
	t.rawAdded, t.normAdded = newAddedMatcher(raw), newAddedMatcher(normed)
	if err := t.parsePostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	if err := t.parseDecoder(f.Decoder); err != nil {
		return nil, err
	}
	// No decoder: HF joins the tokens with spaces; a byte-level file without
	// one still means bytes.
	t.byteDecode = (len(t.decoders) == 0 && t.byteLevel) || (len(t.decoders) == 1 && t.decoders[0].byteLevel)
	return t, nil
}

// component holds the fields of every normalizer, pre-tokenizer,
// post-processor and decoder object that this package reads.
type component struct {
	Type string `json:"type"`
	// Sequence
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	Decoders      []json.RawMessage `json:"decoders"`
	// Split, Replace
	Pattern  pattern `json:"pattern"`
	Behavior string  `json:"behavior"`
	Invert   bool    `json:"invert"`
	Content  string  `json:"content"`
	// ByteLevel, Metaspace
	AddPrefixSpace *bool `json:"add_prefix_space"`
	UseRegex       *bool `json:"use_regex"`
	// Metaspace
	Replacement   *string `json:"replacement"`
	PrependScheme string  `json:"prepend_scheme"`
	Split         *bool   `json:"split"`
	// Digits
	IndividualDigits bool `json:"individual_digits"`
	// Prepend
	Prepend *string `json:"prepend"`
	// Strip normalizer
	StripLeft  bool `json:"strip_left"`
	StripRight bool `json:"strip_right"`
	// Strip decoder
	Start int `json:"start"`
	Stop  int `json:"stop"`
	// BPEDecoder
	Suffix *string `json:"suffix"`
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
	// RobertaProcessing, BertProcessing: [token, id]
	Cls []json.RawMessage `json:"cls"`
	Sep []json.RawMessage `json:"sep"`
}

// parseComponent decodes one object of tokenizer.json's key what (nil for
// an absent or null one).
func parseComponent(raw json.RawMessage, what string) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %s: %w", what, err)
	}
	if c.Type == "" {
		return nil, fmt.Errorf("tokenizer.json: %s without a type", what)
	}
	return &c, nil
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
	e := encoder{t: t}
	if addSpecial {
		e.ids = append(e.ids, t.prefix...)
	}
	t.rawAdded.split(text, e.segment, e.token)
	if addSpecial {
		e.ids = append(e.ids, t.suffix...)
	}
	return e.ids
}

// encoder holds one Encode call's output and scratch buffers.
type encoder struct {
	t            *Tokenizer
	ids, sym     []int
	pieces, next []piece
}

func (e *encoder) token(a *AddedToken) { e.ids = append(e.ids, a.ID) }

// segment encodes raw text between added tokens; off is its offset in the
// input.
func (e *encoder) segment(s string, off int) {
	t := e.t
	if t.normalizer != nil {
		s = t.normalizer(s)
	}
	if s == "" {
		return
	}
	if t.normAdded.n > 0 {
		t.normAdded.split(s, func(sub string, o int) { e.text(sub, off == 0 && o == 0) }, e.token)
		return
	}
	e.text(s, off == 0)
}

// text pre-tokenizes normalized text and runs the model on each piece;
// first marks text at the start of the input.
func (e *encoder) text(s string, first bool) {
	t := e.t
	if cap(e.ids)-len(e.ids) < len(s)/3 {
		e.ids = append(make([]int, 0, len(e.ids)+len(s)/3+16), e.ids...)
	}
	if t.fast != nil {
		if t.prefixSpace && !strings.HasPrefix(s, " ") {
			s = " " + s
		}
		for i := 0; i < len(s); {
			end := t.fast.next(s, i)
			e.ids, e.sym = t.bpe(s[i:end], e.ids, e.sym)
			i = end
		}
		return
	}
	switch {
	case t.digitsFast != nil:
		e.digitsByteLevel(s)
		return
	case t.cutAtMeta:
		start := 0
		for i := 1; i < len(s); i++ {
			if s[i] == metaLead && strings.HasPrefix(s[i:], meta) && !strings.HasSuffix(s[:i], meta) {
				e.ids, e.sym = t.bpeWord(s[start:i], e.ids, e.sym)
				start = i
			}
		}
		e.ids, e.sym = t.bpeWord(s[start:], e.ids, e.sym)
		return
	}
	e.pieces = append(e.pieces[:0], piece{s, first})
	for _, st := range t.pre {
		e.next = e.next[:0]
		for _, p := range e.pieces {
			e.next = st.apply(e.next, p)
		}
		e.pieces, e.next = e.next, e.pieces
	}
	for _, p := range e.pieces {
		if p.s == "" {
			continue
		}
		if t.simpleBytes {
			e.ids, e.sym = t.bpe(p.s, e.ids, e.sym)
		} else {
			e.ids, e.sym = t.bpeWord(p.s, e.ids, e.sym)
		}
	}
}

// meta is SentencePiece's space; metaLead its first UTF-8 byte.
const (
	meta     = "▁"
	metaLead = 0xE2
)

// canCutAtMeta reports whether the text may be cut before each run of ▁
// for a model without a pre-tokenizer: no merge can then join the two
// sides, so each side merges as it would in the whole text.
func (t *Tokenizer) canCutAtMeta() bool {
	if len(t.pre) > 0 || t.byteLevel || t.subwordPrefix != "" || t.wordSuffix != "" {
		return false
	}
	if _, ok := t.vocab[meta]; !ok {
		return false
	}
	for tok := range t.vocab {
		if strings.Contains(strings.TrimLeft(tok, meta), meta) {
			return false
		}
	}
	return true
}

// digitsByteLevel is Digits then ByteLevel(use_regex) in one pass: the
// GPT-2 scanner runs inside each digit-free run, digits are their own
// pieces.
func (e *encoder) digitsByteLevel(s string) {
	t := e.t
	for i := 0; i < len(s); {
		r, n := runeAt(s, i)
		if isN(r) {
			end := i + n
			if !t.digitsFast.individual {
				end = spanWhile(s, end, isN)
			}
			e.ids, e.sym = t.bpe(s[i:end], e.ids, e.sym)
			i = end
			continue
		}
		j := spanWhile(s, i, func(r rune) bool { return !isN(r) })
		run := s[:j]
		for i < j {
			end := scanGPT2{}.next(run, i)
			e.ids, e.sym = t.bpe(run[i:end], e.ids, e.sym)
			i = end
		}
	}
}
