package grade

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// math500Answers reads MATH-500 answers from ../shared/data/math/math500.jsonl.
func math500Answers(tb testing.TB) []string {
	p := casesPath()
	if p == "" {
		tb.Skip("no repository root")
	}
	path := filepath.Join(filepath.Dir(filepath.Dir(p)), "data", "math", "math500.jsonl")
	f, err := os.Open(path)
	if err != nil {
		tb.Skipf("MATH-500 absent: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var row struct {
			Answer string `json:"answer"`
		}
		if json.Unmarshal(sc.Bytes(), &row) == nil && row.Answer != "" {
			out = append(out, row.Answer)
		}
	}
	return out
}

// math500Pairs makes (answer, variant) pairs of the MATH-500 answers.
func math500Pairs(tb testing.TB) [][2]string {
	var pairs [][2]string
	for _, a := range math500Answers(tb) {
		for _, v := range Variants(a) {
			pairs = append(pairs, [2]string{strings.TrimSpace(a), v.Answer})
		}
	}
	return pairs
}

func BenchmarkEqualMATH500(b *testing.B) {
	pairs := math500Pairs(b)
	opts := DefaultOptions()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := pairs[i%len(pairs)]
		Equal(p[0], p[1], opts)
	}
}

func TestVariants(t *testing.T) {
	// Every variant of a MATH-500 answer gets the verdict it was made for.
	n := 0
	for _, a := range math500Answers(t) {
		for _, v := range Variants(a) {
			n++
			gold := strings.TrimSpace(a)
			if got := Equal(gold, v.Answer, DefaultOptions()); got.Equal != v.Equal {
				t.Errorf("Equal(%q, %q) = %v (%s), want %v", gold, v.Answer, got.Equal, got.Rule, v.Equal)
			}
		}
	}
	if n == 0 {
		t.Fatal("no variants")
	}
	for _, c := range []struct {
		answer string
		want   []Variant
	}{
		{"", nil},
		{"  ", nil},
		{"1,2", []Variant{{"1,2", true}, {`\boxed{1,2}`, true}}},
		{" 1/2 ", []Variant{{"1/2", true}, {`\boxed{1/2}`, true}, {"x = 1/2", true}, {"(1/2) + 0", true},
			{"(1/2) + 1", false}, {"2(1/2)", false}, {"1/2", true}, {`\frac{1}{2}`, true},
			{"0.500000000000", true}, {"3/2", false}, {"0.505000000000", false}}},
	} {
		if got := Variants(c.answer); !slices.Equal(got, c.want) {
			t.Errorf("Variants(%q) = %+v, want %+v", c.answer, got, c.want)
		}
	}
}
