package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The constructs below behave in the Rust tokenizers library (which
// transformers runs) in ways the JS port that made the golden files does
// not implement, so their expectations are worked out by hand from the
// Rust sources.

// tiny builds a tokenizer.json around a model and the given top-level
// parts (raw JSON, "null" when empty).
func tiny(t *testing.T, model, added, normalizer, pre, post, decoder string) *Tokenizer {
	t.Helper()
	or := func(s string) string {
		if s == "" {
			return "null"
		}
		return s
	}
	if added == "" {
		added = "[]"
	}
	js := `{"added_tokens": ` + added + `, "normalizer": ` + or(normalizer) + `, "pre_tokenizer": ` + or(pre) +
		`, "post_processor": ` + or(post) + `, "decoder": ` + or(decoder) + `, "model": ` + model + `}`
	tok, err := Parse([]byte(js))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, js)
	}
	return tok
}

func TestPreTokenizerSteps(t *testing.T) {
	tests := []struct {
		name string
		step preStep
		in   string
		want []string
	}{
		{"digits individual", digitsStep{true}, "ab123c4½ ٣", []string{"ab", "1", "2", "3", "c", "4", "½", " ", "٣"}},
		{"digits contiguous", digitsStep{false}, "ab123c4½ ٣", []string{"ab", "123", "c", "4½", " ", "٣"}},
		{"digits only", digitsStep{false}, "42", []string{"42"}},
		{"metaspace split", metaspaceStep{"▁", prependAlways, true}, "a  bc d", []string{"▁a", "▁", "▁bc", "▁d"}},
		{"metaspace no split", metaspaceStep{"▁", prependAlways, false}, "a  bc", []string{"▁a▁▁bc"}},
		{"metaspace never", metaspaceStep{"▁", prependNever, true}, "ab c ", []string{"ab", "▁c", "▁"}},
		{"metaspace first, first piece", metaspaceStep{"▁", prependFirst, false}, "ab", []string{"▁ab"}},
		{"metaspace leading space kept", metaspaceStep{"▁", prependAlways, true}, " x", []string{"▁x"}},
		{"bytelevel prefix", byteLevelStep{prefixSpace: true, useRegex: true}, "hi there", []string{" hi", " there"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range tc.step.apply(nil, piece{tc.in, true}) {
				got = append(got, p.s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%q -> %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	// "first" prepends only to the piece that starts the input.
	got := metaspaceStep{"▁", prependFirst, false}.apply(nil, piece{"ab", false})
	if got[0].s != "ab" {
		t.Errorf("first scheme on a later piece: %q", got[0].s)
	}
}

func TestMetaspaceEncode(t *testing.T) {
	model := `{"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "▁": 1, "a": 2, "b": 3, "▁a": 4, "▁b": 5, "a▁": 6, "<s>": 7},
		"merges": ["a ▁", "▁ a", "▁ b"]}`
	added := `[{"id": 7, "content": "<s>", "special": true, "normalized": false}]`
	ms := func(scheme string, split bool) string {
		s := "false"
		if split {
			s = "true"
		}
		return `{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "` + scheme + `", "split": ` + s + `}`
	}
	tests := []struct {
		pre, text string
		want      []int
	}{
		{ms("always", true), "a b", []int{4, 5}},
		{ms("always", false), "a b", []int{1, 6, 3}}, // no split: "a▁" merges first
		{ms("never", true), "a b", []int{2, 5}},
		{ms("first", true), "a b", []int{4, 5}},
		{ms("first", true), "<s>a b", []int{7, 2, 5}}, // not at the start of the input
		{ms("always", true), "<s>a b", []int{7, 4, 5}},
		{`{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false}`, "a b", []int{2, 5}}, // legacy key
		{`{"type": "Metaspace", "replacement": "▁", "add_prefix_space": true}`, "a b", []int{4, 5}},
	}
	for _, tc := range tests {
		tok := tiny(t, model, added, "", tc.pre, "", "")
		if got := tok.Encode(tc.text, false); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", tc.pre, tc.text, got, tc.want)
		}
	}
}

func TestMetaspaceDecode(t *testing.T) {
	model := `{"type": "BPE", "vocab": {"▁": 0, "▁▁": 1, "a": 2, "▁a": 3}, "merges": ["▁ ▁", "▁ a"]}`
	tests := []struct {
		dec  string
		ids  []int
		want string
	}{
		// Rust drops every replacement character of the first token.
		{`{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"}`, []int{1, 3}, " a"},
		{`{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"}`, []int{3, 3}, "a a"},
		{`{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"}`, []int{3, 3}, " a a"},
	}
	for _, tc := range tests {
		tok := tiny(t, model, "", "", "", "", tc.dec)
		if got := tok.Decode(tc.ids, false); got != tc.want {
			t.Errorf("%s: Decode(%v) = %q, want %q", tc.dec, tc.ids, got, tc.want)
		}
	}
}

func TestSingleWord(t *testing.T) {
	model := `{"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1, "b": 2, " ": 3, "x": 4}, "merges": []}`
	added := `[{"id": 5, "content": "ab", "single_word": true, "special": false, "normalized": false}]`
	tok := tiny(t, model, added, "", "", "", "")
	// "ab" alone matches; after "x" and before "_" (word characters) not.
	got := tok.Encode("ab xab ab_", false)
	want := []int{5, 3, 4, 1, 2, 3, 1, 2, 0}
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
}

func TestSubwordPrefixSuffix(t *testing.T) {
	prefix := tiny(t, `{"type": "BPE", "unk_token": "<unk>", "continuing_subword_prefix": "##",
		"vocab": {"<unk>": 0, "h": 1, "##e": 2, "##y": 3, "he": 4, "hey": 5}, "merges": ["h ##e", "he ##y"]}`, "", "", "", "", "")
	suffix := tiny(t, `{"type": "BPE", "unk_token": "<unk>", "end_of_word_suffix": "</w>",
		"vocab": {"<unk>": 0, "h": 1, "e</w>": 2, "e": 3, "he</w>": 4}, "merges": ["h e</w>"]}`, "", "", "", "",
		`{"type": "BPEDecoder", "suffix": "</w>"}`)
	tests := []struct {
		tok  *Tokenizer
		text string
		want []int
	}{
		{prefix, "hey", []int{5}},
		{prefix, "hy", []int{1, 3}},
		{prefix, "ye", []int{0, 2}}, // "y" is only in the vocabulary as "##y"
		{suffix, "he", []int{4}},
		{suffix, "eh", []int{3, 0}}, // "h</w>" is unknown
	}
	for _, tc := range tests {
		if got := tc.tok.Encode(tc.text, false); !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	if got := suffix.Decode([]int{4, 4}, false); got != "he he" {
		t.Errorf("BPEDecoder: %q, want %q", got, "he he")
	}
}

func TestUnknownCharacters(t *testing.T) {
	model := func(unk string, fuse bool) string {
		f := "false"
		if fuse {
			f = "true"
		}
		return `{"type": "BPE", ` + unk + ` "fuse_unk": ` + f + `, "vocab": {"<unk>": 0, "x": 1}, "merges": []}`
	}
	tests := []struct {
		model string
		want  []int
	}{
		{model(`"unk_token": "<unk>",`, true), []int{1, 0, 1}},
		{model(`"unk_token": "<unk>",`, false), []int{1, 0, 0, 1}},
		{model(``, false), []int{1, 1}}, // no unk token: dropped
	}
	for _, tc := range tests {
		tok := tiny(t, tc.model, "", "", "", "", "")
		if got := tok.Encode("xq?x", false); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Encode = %v, want %v", tc.model, got, tc.want)
		}
	}
}

func TestByteFallbackDecode(t *testing.T) {
	tok, err := Load("testdata/tinyllama")
	if err != nil {
		t.Fatal(err)
	}
	b := func(x byte) int {
		id, _ := tok.TokenID(string([]byte{'<', '0', 'x', "0123456789ABCDEF"[x>>4], "0123456789ABCDEF"[x&15], '>'}))
		return id
	}
	// 𝔘 is not in the vocabulary: four byte tokens.
	ids := tok.Encode("𝔘", false)
	if len(ids) != 5 || ids[1] != b(0xF0) {
		t.Fatalf("Encode(𝔘) = %v, want ▁ and four byte tokens", ids)
	}
	// An incomplete character is one U+FFFD per byte, as HF's ByteFallback.
	if got := tok.Decode([]int{b(0xF0), b(0x9D)}, false); got != "\uFFFD\uFFFD" {
		t.Errorf("Decode(partial) = %q", got)
	}
	// Streaming holds the bytes back until the character is complete.
	st := tok.NewStream(false)
	var outs []string
	for _, id := range ids {
		outs = append(outs, st.Add(id))
	}
	outs = append(outs, st.Flush())
	if want := []string{"", "", "", "", "𝔘", ""}; !slices.Equal(outs, want) {
		t.Errorf("stream = %q, want %q", outs, want)
	}
	if got := string(tok.TokenBytes(b(0x0A))); got != "\n" {
		t.Errorf("TokenBytes(<0x0A>) = %q", got)
	}
	if id, _ := tok.TokenID("▁the"); string(tok.TokenBytes(id)) != " the" {
		t.Errorf("TokenBytes(▁the) = %q", tok.TokenBytes(id))
	}
}

// TestAddBOSToken: tokenizer_config.json's add_bos_token / add_eos_token
// decide what Encode(…, true) adds, over tokenizer.json's template.
func TestAddBOSToken(t *testing.T) {
	src, err := os.ReadFile("testdata/tinyllama/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		config string
		want   []int // around the ids of "x"
		prefix int
	}{
		{``, []int{1}, 1}, // no config: the template's <s>
		{`{"add_bos_token": true, "bos_token": "<s>"}`, []int{1}, 1},
		{`{"add_bos_token": false, "bos_token": "<s>"}`, nil, 0},
		{`{"add_bos_token": true, "add_eos_token": true, "bos_token": "<s>", "eos_token": "</s>"}`, []int{1, 2}, 1},
		{`{"add_bos_token": false, "add_eos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "</s>"}`, []int{2}, 0},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		if tc.config != "" {
			if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		plain := tok.Encode("x", false)
		got := tok.Encode("x", true)
		special := append(got[:tc.prefix:tc.prefix], got[tc.prefix+len(plain):]...)
		if len(got) != len(plain)+len(tc.want) || !slices.Equal(got[tc.prefix:tc.prefix+len(plain)], plain) || !slices.Equal(special, tc.want) {
			t.Errorf("config %s: Encode(x, true) = %v (plain %v), want special ids %v", tc.config, got, plain, tc.want)
		}
	}
}

// TestUnsupportedNamesKey: a construct this package lacks is an
// ErrUnsupported error naming the tokenizer.json key and type.
func TestUnsupportedNamesKey(t *testing.T) {
	model := `{"type": "BPE", "vocab": {"a": 0}, "merges": []}`
	tests := []struct {
		json, want string
	}{
		{`{"model": {"type": "Unigram", "vocab": []}}`, `model type "Unigram"`},
		{`{"model": ` + model + `, "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}}`, `normalizer type "Precompiled"`},
		{`{"model": ` + model + `, "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Nmt"}]}}`, `normalizer type "Nmt"`},
		{`{"model": ` + model + `, "pre_tokenizer": {"type": "Whitespace"}}`, `pre_tokenizer type "Whitespace"`},
		{`{"model": ` + model + `, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed"}}`, `pre_tokenizer Split with behavior "Removed"`},
		{`{"model": ` + model + `, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"}}`, `prepend_scheme "sometimes"`},
		{`{"model": ` + model + `, "post_processor": {"type": "Magic"}}`, `post_processor type "Magic"`},
		{`{"model": ` + model + `, "decoder": {"type": "Sequence", "decoders": [{"type": "CTC"}]}}`, `decoder type "CTC"`},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.json))
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want ErrUnsupported naming %s", tc.json, err, tc.want)
		}
	}
}

func TestNormalizers(t *testing.T) {
	tests := []struct {
		json, in, want string
	}{
		{`{"type": "Prepend", "prepend": "▁"}`, "ab", "▁ab"},
		{`{"type": "Prepend", "prepend": "▁"}`, "", ""},
		{`{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}`, "a b  c", "a▁b▁▁c"},
		{`{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "$ "}`, "a b  c", "a b$ c"},
		{`{"type": "Strip", "strip_left": true, "strip_right": false}`, " \ta b\n", "a b\n"},
		{`{"type": "Strip", "strip_left": true, "strip_right": true}`, " \ta b\n", "a b"},
		{`{"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}, {"type": "Lowercase"}]}`, "Crème Brûlée", "creme brulee"},
		{`{"type": "NFKC"}`, "ﬁ ²", "fi 2"},
	}
	for _, tc := range tests {
		f, err := parseNormalizer([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if got := f(tc.in); got != tc.want {
			t.Errorf("%s: %q -> %q, want %q", tc.json, tc.in, got, tc.want)
		}
	}
}

// TestFastPathsMatchGeneral: the one-pass encoders (a byte-level scanner,
// Digits+ByteLevel, cutting SentencePiece text before ▁ runs) give what the
// general pre-tokenizer pipeline gives.
func TestFastPathsMatchGeneral(t *testing.T) {
	dirs := map[string]string{"bpe_llama3": "testdata/bpe_llama3", "bpe_gpt2": "testdata/bpe_gpt2",
		"smollm2": "testdata/smollm2", "tinyllama": "testdata/tinyllama"}
	if _, err := os.Stat(filepath.Join(realDir, "mistral")); err == nil {
		dirs["mistral"] = filepath.Join(realDir, "mistral")
	}
	var texts []string
	for _, dir := range []string{"testdata/smollm2", "testdata/bpe_llama3"} {
		for _, tc := range loadCases(t, dir).Encode {
			texts = append(texts, tc.Text)
		}
	}
	texts = append(texts, strings.Join(texts, " \n"))
	for name, dir := range dirs {
		fast, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fast.fast == nil && fast.digitsFast == nil && !fast.cutAtMeta {
			t.Errorf("%s: no one-pass encoder chosen", name)
		}
		slow, _ := Load(dir)
		slow.fast, slow.digitsFast, slow.cutAtMeta, slow.prefixSpace = nil, nil, false, false
		for _, text := range texts {
			if a, b := fast.Encode(text, false), slow.Encode(text, false); !slices.Equal(a, b) {
				t.Errorf("%s: Encode(%.40q): one-pass %v, pipeline %v", name, text, a, b)
			}
		}
	}
}
