package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type cases struct {
	Encode []struct {
		Text    string `json:"text"`
		IDs     []int  `json:"ids"`
		Decoded string `json:"decoded"`
		// AddSpecialTokens encodes with the post-processor's tokens.
		AddSpecialTokens bool `json:"add_special_tokens"`
	} `json:"encode"`
	Chat []struct {
		Messages            []map[string]string `json:"messages"`
		AddGenerationPrompt bool                `json:"add_generation_prompt"`
		Text                string              `json:"text"`
		IDs                 []int               `json:"ids"`
	} `json:"chat"`
}

// tokenizerDirs lists the fixture tokenizers in testdata/ and in the shared
// fixtures (new ones dropped there are tested too).
func tokenizerDirs(t *testing.T) map[string]string {
	dirs := map[string]string{}
	for _, pat := range []string{"testdata/*/cases.json", "../../../shared/fixtures/tokenizers/*/cases.json"} {
		m, _ := filepath.Glob(pat)
		for _, c := range m {
			dirs[filepath.Base(filepath.Dir(c))] = filepath.Dir(c)
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no tokenizer fixtures")
	}
	return dirs
}

func loadCases(t *testing.T, dir string) *cases {
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c cases
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEncodeDecodeCases(t *testing.T) {
	for name, dir := range tokenizerDirs(t) {
		t.Run(name, func(t *testing.T) {
			tok, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			c := loadCases(t, dir)
			checkCases(t, tok, c)
		})
	}
}

// checkCases checks Encode, Decode and streamed decoding against the
// reference cases.
func checkCases(t *testing.T, tok *Tokenizer, c *cases) {
	t.Helper()
	{
		{
			fails := 0
			for _, tc := range c.Encode {
				got := tok.Encode(tc.Text, tc.AddSpecialTokens)
				if !equalInts(got, tc.IDs) {
					fails++
					if fails < 10 {
						t.Errorf("Encode(%q, %v) = %v, want %v", tc.Text, tc.AddSpecialTokens, got, tc.IDs)
					}
				}
				if d := tok.Decode(tc.IDs, false); d != tc.Decoded {
					fails++
					t.Errorf("Decode(%v) = %q, want %q", tc.IDs, d, tc.Decoded)
				}
				// Streaming gives the same text.
				st := tok.NewStream(false)
				var s string
				for _, id := range tc.IDs {
					s += st.Add(id)
				}
				if s += st.Flush(); s != tc.Decoded {
					t.Errorf("stream decode of %v = %q, want %q", tc.IDs, s, tc.Decoded)
				}
			}
			t.Logf("%d encode cases, %d failures", len(c.Encode), fails)
		}
	}
}

// benchText is about 1 MB of math text: the shared GSM8K/MATH training
// files when present, else the fixtures' own strings repeated.
func benchText(b *testing.B) string {
	var text []byte
	for _, p := range []string{"../../../shared/data/gsm8k/train.jsonl", "../../../shared/data/math/train.jsonl"} {
		if data, err := os.ReadFile(p); err == nil {
			text = append(text, data...)
		}
	}
	if len(text) == 0 {
		b.Logf("no shared data: benchmarking on the fixture strings")
		var c cases
		data, err := os.ReadFile("testdata/bpe_llama3/cases.json")
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(data, &c); err != nil {
			b.Fatal(err)
		}
		for len(text) < 1<<20 {
			for _, tc := range c.Encode {
				text = append(text, tc.Text...)
				text = append(text, '\n')
			}
		}
	}
	if len(text) > 4<<20 {
		text = text[:4<<20]
	}
	return string(text)
}

// BenchmarkEncode reports MB/s of Encode on one goroutine. A fresh
// tokenizer per run would measure the cold cache; this measures steady state.
func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	for _, name := range []string{"bpe_gpt2", "bpe_llama3", "bpe_qwen2", "smollm2", "tinyllama"} {
		b.Run(name, func(b *testing.B) {
			tok, err := Load(filepath.Join("testdata", name))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				tok.Encode(text, false)
			}
			// On a shared machine wall time varies with the neighbours; CPU
			// time of the process (GC included) does much less.
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(len(text))*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
			}
		})
	}
}

// FuzzEncodeDecode: BPE with byte-level or byte-fallback pieces loses
// nothing, so decoding the ids of any valid UTF-8 text without added
// tokens gives the text back, in one go or streamed.
func FuzzEncodeDecode(f *testing.F) {
	var toks []*Tokenizer
	for _, name := range []string{"bpe_llama3", "smollm2", "tinyllama"} {
		tok, err := Load(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		toks = append(toks, tok)
	}
	for _, s := range splitCases {
		f.Add(s)
	}
	f.Add("<|im_start|>user\nhi<|im_end|>")
	f.Add("𝔘 ⅓ 123 \x00 ▁x")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8Valid(s) {
			return
		}
		for _, tok := range toks {
			// SentencePiece pieces write a space as ▁, so a ▁ in the text
			// decodes as a space.
			if containsAdded(tok, s) || (!tok.byteDecode && strings.Contains(s, "▁")) {
				continue
			}
			ids := tok.Encode(s, false)
			if got := tok.Decode(ids, false); got != s {
				t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
			}
			st := tok.NewStream(false)
			var out string
			for _, id := range ids {
				out += st.Add(id)
			}
			if out += st.Flush(); out != s {
				t.Fatalf("streamed %q, want %q", out, s)
			}
		}
	})
}

// containsAdded reports whether s holds an added token of tok (which
// decodes as the token, not as the text around it).
func containsAdded(tok *Tokenizer, s string) bool {
	for _, a := range tok.added {
		if a.Content != "" && (strings.Contains(s, a.Content) || strings.Contains(s, strings.TrimSpace(a.Content))) {
			return true
		}
	}
	return false
}

// FuzzParse: a corrupt tokenizer.json is an error, never a panic.
func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/bpe_gpt2/tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
		"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+|\\w+"}, "behavior": "Isolated"}}`))
	f.Add([]byte(`{"added_tokens": [{"id": 0, "content": "<s>", "special": true, "lstrip": true, "single_word": true}],
		"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
		"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true}]},
		"decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 1}]},
		"model": {"type": "BPE", "unk_token": "<s>", "fuse_unk": true, "byte_fallback": true, "vocab": {"<s>": 0, "<0x41>": 1, "▁": 2, "a": 3, "▁a": 4}, "merges": ["▁ a"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		ids := tok.Encode("Hello wörld 123 <|im_end|>", true)
		tok.Decode(ids, true)
		tok.Decode([]int{-1, 1 << 30}, false)
	})
}
