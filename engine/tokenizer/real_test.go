package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// realDir holds genuine tokenizer files of real models with reference
// encodings (../shared/fixtures/real/README.md).
const realDir = "../../../shared/fixtures/real"

// sharedOrSkip skips a test whose shared fixture is absent, except in CI.
func sharedOrSkip(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared fixture missing in CI: %v", err)
		}
		t.Skipf("shared fixture absent: %v", err)
	}
}

// realCases is the format of <dir>/cases.json in the real fixtures and of
// the golden files under testdata/golden.
type realCases struct {
	Reference        string `json:"reference"`
	Tokenizer        string `json:"tokenizer"`
	AddSpecialTokens bool   `json:"add_special_tokens"`
	Encode           []struct {
		Text    string  `json:"text"`
		IDs     []int   `json:"ids"`
		Decoded *string `json:"decoded"`
	} `json:"encode"`
}

func readRealCases(t *testing.T, path string) *realCases {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c realCases
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &c
}

// TestRealTokenizers: every real tokenizer loads and encodes every
// reference string exactly as Hugging Face's implementation does.
func TestRealTokenizers(t *testing.T) {
	sharedOrSkip(t, realDir)
	m, _ := filepath.Glob(filepath.Join(realDir, "*", "cases.json"))
	if len(m) == 0 {
		t.Fatalf("no cases.json under %s", realDir)
	}
	for _, path := range m {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tok, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			c := readRealCases(t, path)
			ok := 0
			for _, tc := range c.Encode {
				got := tok.Encode(tc.Text, c.AddSpecialTokens)
				if equalInts(got, tc.IDs) {
					ok++
				} else {
					t.Errorf("Encode(%q) = %v, want %v", tc.Text, got, tc.IDs)
				}
			}
			t.Logf("%d/%d reference encodings match", ok, len(c.Encode))
		})
	}
}

// TestRealGolden checks the real tokenizers on the committed golden cases
// (testdata/golden, made by testdata/gen/refs.mjs): math, LaTeX, code,
// CJK, emoji, whitespace runs and special tokens in text; decoding and
// streaming too.
func TestRealGolden(t *testing.T) {
	sharedOrSkip(t, realDir)
	m, _ := filepath.Glob("testdata/golden/*.json")
	if len(m) == 0 {
		t.Fatal("no golden files in testdata/golden")
	}
	for _, path := range m {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			tok, err := Load(filepath.Join(realDir, name))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var c cases
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			checkCases(t, tok, &c)
		})
	}
}
