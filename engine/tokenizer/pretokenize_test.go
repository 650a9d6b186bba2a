package tokenizer

import (
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// The hand-written scanners must cut text exactly where the regexes do:
// checked against regexp2 on tricky strings and by fuzzing.
var splitCases = []string{
	"", " ", "  ", "\n", "\n\n\n", "\t", "Hello world", "hello  world", " leading", "trailing ", "a  \n  b",
	"don't I'M we'll they'VE 'sam 's", "12345678901234567890", "3.14159 and -42", "x^2 + 2x + 1 = 0",
	"\\frac{1}{2} \\boxed{42}", "naïve café résumé", "日本語のテキスト 123", "emoji 😀😀 ok", "tab\tseparated\tvalues",
	"line1\r\nline2\r\n\r\n", "   \n\t  x", "ſ's 'ſ 'K", "a\u00a0b\u2003c", "x  ", "\u0085\u2028y", "!!!\n\n", " ?!\r\n",
	"٣٤٥ ½ ⅷ", "'", "''", "'re'll", "a'b", "\n 'll",
}

func refSplit(t *testing.T, pattern, s string) []string {
	re := regexp2.MustCompile(pattern, regexp2.None)
	sp := regexSplitter{re}
	var out []string
	for _, p := range sp.split(s, nil) {
		out = append(out, s[p[0]:p[1]])
	}
	return out
}

func scanSplit(sp splitter, s string) []string {
	var out []string
	for _, p := range sp.split(s, nil) {
		out = append(out, s[p[0]:p[1]])
	}
	return out
}

func TestScannersMatchRegex(t *testing.T) {
	for _, pat := range []string{PatternGPT2, PatternLlama3, PatternQwen2} {
		sp, _ := newSplitter(pat)
		for _, s := range splitCases {
			want := refSplit(t, pat, s)
			if got := scanSplit(sp, s); !slices.Equal(got, want) {
				t.Errorf("%T split %q = %q, regex gives %q", sp, s, got, want)
			}
		}
	}
}

func FuzzScanners(f *testing.F) {
	for _, s := range splitCases {
		f.Add(s)
	}
	res := map[string]*regexp2.Regexp{}
	for _, p := range []string{PatternGPT2, PatternLlama3, PatternQwen2} {
		res[p] = regexp2.MustCompile(p, regexp2.None)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8Valid(s) {
			return // HF works on str (valid UTF-8)
		}
		for p, re := range res {
			sp, _ := newSplitter(p)
			want := scanSplit(regexSplitter{re}, s)
			if got := scanSplit(sp, s); !slices.Equal(got, want) {
				t.Fatalf("%T split %q = %q, regex gives %q", sp, s, got, want)
			}
		}
	})
}
func utf8Valid(s string) bool { return utf8.ValidString(s) }

// TestRegexFallback: a pattern without a hand-written scanner (Mistral's
// Tekken split, used by 131k-vocabulary tokenizers) goes through regexp2.
func TestRegexFallback(t *testing.T) {
	const tekken = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	sp, err := newSplitter(tekken)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sp.(regexSplitter); !ok {
		t.Fatalf("got %T", sp)
	}
	got := scanSplit(sp, "HelloWorld  it's 42 naïve\n\n  x")
	want := []string{"Hello", "World", " ", " it", "'s", " ", "4", "2", " naïve", "\n\n", " ", " x"}
	if !slices.Equal(got, want) {
		t.Errorf("split = %q, want %q", got, want)
	}
}
