package curate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

func ids(rows []*record.Row) string {
	var s []string
	for _, r := range rows {
		g, _ := r.String("generation")
		s = append(s, r.ID()+":"+g)
	}
	return strings.Join(s, " ")
}

func TestAggregateMajorityByEquivalence(t *testing.T) {
	rows := []*record.Row{
		row(t, "id", "a", "generation", `so \boxed{1/2}`),
		row(t, "id", "a", "generation", `so \boxed{0.5}`),
		row(t, "id", "a", "generation", `so \boxed{\frac{1}{2}}`),
		row(t, "id", "a", "generation", `so \boxed{3}`),
		row(t, "id", "a", "generation", `no idea`),
		row(t, "id", "b", "generation", `\boxed{1}`),
		row(t, "id", "b", "generation", `\boxed{2}`),
		row(t, "id", "b", "generation", `\boxed{3}`),
		row(t, "id", "c", "generation", `\boxed{7}`, "expected_answer", "8"),
	}
	d := NewDataset(rows)
	Aggregate(d, AggregateOptions{MinAgreement: 0.5, Grade: grade.DefaultOptions()})
	if len(d.Rows) != 6 || len(d.Removed) != 3 {
		t.Fatalf("kept %s", ids(d.Rows))
	}
	for _, r := range d.Rows[:5] {
		if a, _ := r.String("expected_answer"); a != "1/2" {
			t.Errorf("expected_answer %q", a)
		}
		if v, _ := r.Int("majority_votes"); v != 3 {
			t.Errorf("votes %d", v)
		}
		if v, _ := r.Int("total_votes"); v != 4 {
			t.Errorf("total %d", v)
		}
	}
	if c, _ := d.Rows[1].Bool("is_correct"); !c {
		t.Error("0.5 not graded correct against 1/2")
	}
	if c, _ := d.Rows[3].Bool("is_correct"); c {
		t.Error("3 graded correct")
	}
	if a, _ := d.Rows[5].String("expected_answer"); a != "8" {
		t.Error("a reference answer was overwritten")
	}
	if why, _ := d.Removed[0].String("removed_reason"); !strings.Contains(why, "1 of 3 votes") {
		t.Errorf("reason %q", why)
	}
}

func TestFiltersAndTrim(t *testing.T) {
	code := func(s string) *record.Row { return row(t, "id", s, "generation", s) }
	cases := []struct {
		f    Filter
		keep []string
		drop []string
	}{
		{BalancedCode(prompt.LLMCodeTags),
			[]string{"a <llm-code>x</llm-code><llm-code-output>1</llm-code-output> b", "plain", "<llm-code>x</llm-code>"},
			[]string{"<llm-code>x", "<llm-code>x</llm-code><llm-code-output>1", "</llm-code>", "<llm-code-output>1</llm-code-output>"}},
		{BalancedCode(prompt.FenceTags),
			[]string{"```python\nx\n```\n```output\n1\n```\nok"},
			[]string{"```python\nx\n```output\n1\n```"}},
		{AnswerAfterCode(prompt.LLMCodeTags),
			[]string{`<llm-code>x</llm-code> \boxed{1}`, `\boxed{1}`},
			[]string{`\boxed{1} <llm-code>x</llm-code>`}},
		{NoCodeErrors(prompt.LLMCodeTags),
			[]string{"<llm-code-output>\n3\n</llm-code-output>"},
			[]string{"<llm-code-output>\nTraceback (most recent call last):\n</llm-code-output>", "<llm-code-output>1<output cut></llm-code-output>"}},
		{SingleBoxed(), []string{`\boxed{1}`}, []string{`\boxed{1} \boxed{2}`}},
	}
	for i, c := range cases {
		var rows []*record.Row
		for _, s := range append(c.keep, c.drop...) {
			rows = append(rows, code(s))
		}
		d := NewDataset(rows)
		c.f.Apply(d)
		if len(d.Rows) != len(c.keep) || len(d.Removed) != len(c.drop) {
			t.Errorf("case %d (%s): kept %q", i, c.f.Name, ids(d.Rows))
		}
	}
	trims := map[string]string{
		"a\nso \\boxed{1}.\nmore\nstuff":      "a\nso \\boxed{1}.",
		"\\[\nx = \\boxed{1}\n\\]\nand more":  "\\[\nx = \\boxed{1}\n\\]",
		"no answer\nhere":                     "no answer\nhere",
		"last line \\boxed{2}":                "last line \\boxed{2}",
		"\\boxed{3}\n\\end{align*}\nrambling": "\\boxed{3}\n\\end{align*}",
	}
	for in, want := range trims {
		if got := trimAfterAnswer(in); got != want {
			t.Errorf("trim(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWhere(t *testing.T) {
	d := NewDataset([]*record.Row{
		row(t, "id", "a", "num_generated_tokens", 10, "finish_reason", "stop"),
		row(t, "id", "b", "num_generated_tokens", 5000, "finish_reason", "stop"),
		row(t, "id", "c", "num_generated_tokens", 10, "finish_reason", "length"),
		row(t, "id", "d"),
	})
	if err := where(d, `num_generated_tokens < 2000 && finish_reason == "stop"`); err != nil {
		t.Fatal(err)
	}
	if len(d.Rows) != 1 || d.Rows[0].ID() != "a" {
		t.Fatalf("kept %s", ids(d.Rows))
	}
	if _, err := ParsePipeline([]byte("steps:\n  - where: 'x <'\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad expression: %v", err)
	}
}

func TestParsePipelineErrors(t *testing.T) {
	for cfg, want := range map[string]string{
		"steps: []":                                "non-empty",
		"stepz:\n  - trim":                         `line 1: unknown key "stepz"`,
		"steps:\n  - trim\n  - filterr: correct":   `line 3: unknown step "filterr"`,
		"steps:\n  - filter: correctt":             `unknown filter "correctt"`,
		"steps:\n  - dedup: {method: exact, x: 1}": `unknown setting "x"`,
	} {
		if _, err := ParsePipeline([]byte(cfg)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", cfg, err, want)
		}
	}
}

func TestDownsampleFair(t *testing.T) {
	var rows []*record.Row
	// a: 5 solutions (2 code), b: 1, c: 3
	for _, spec := range []string{"a0", "a1c", "a2", "a3c", "a4", "b0", "c0", "c1", "c2"} {
		gen := spec
		if strings.HasSuffix(spec, "c") {
			gen = "<llm-code>" + spec
		}
		rows = append(rows, row(t, "id", spec[:1], "generation", gen))
	}
	d := NewDataset(rows)
	Downsample(d, DownsampleOptions{N: 5})
	if got := ids(d.Rows); got != "a:a0 a:<llm-code>a1c b:b0 c:c0 c:c1" {
		t.Fatalf("fair: %s", got)
	}
	d = NewDataset(rows)
	Downsample(d, DownsampleOptions{PerProblem: 2, PreferCode: true})
	if got := ids(d.Rows); got != "a:<llm-code>a1c a:<llm-code>a3c b:b0 c:c0 c:c1" {
		t.Fatalf("prefer code: %s", got)
	}
	d = NewDataset(rows)
	Downsample(d, DownsampleOptions{CodeOnlyWhenAny: true})
	if got := ids(d.Rows); got != "a:<llm-code>a1c a:<llm-code>a3c b:b0 c:c0 c:c1 c:c2" {
		t.Fatalf("any code: %s", got)
	}
}

type fakeTemplate struct{}

func (fakeTemplate) Render(m []backend.Message, gen bool) (string, error) {
	s := ""
	for _, x := range m {
		s += "<" + x.Role + ">" + x.Content + "</end>"
	}
	if gen {
		s += "<assistant>"
	}
	return s, nil
}
func (fakeTemplate) EndOfTurn() string { return "</end>" }

func TestExportFormats(t *testing.T) {
	rows := []*record.Row{
		row(t, "id", "a", "problem", "1+1?", "generation", `\boxed{2}`, "expected_answer", "2", "problem_source", "augmented_math", "is_correct", true),
		row(t, "id", "b", "problem", "2+2?", "generation", `\boxed{4}`, "expected_answer", "4", "problem_source", "math", "is_correct", true),
	}
	d := NewDataset(rows)
	dir := t.TempDir()
	for format, want := range map[string]string{
		FormatMessages: `{"messages":[{"role":"user","content":"1+1?"},{"role":"assistant","content":"\\boxed{2}"}]}`,
		FormatOMI2:     `{"problem":"1+1?","generated_solution":"\\boxed{2}","expected_answer":"2","problem_source":"augmented_math"}`,
		FormatNeMo:     `{"input":"<user>1+1?</end><assistant>","output":"\\boxed{2}</end>","expected_answer":"2"}`,
	} {
		p := filepath.Join(dir, format+".jsonl")
		if _, err := d.Export(p, ExportOptions{Format: format, Template: fakeTemplate{}}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if first := strings.SplitN(string(b), "\n", 2)[0]; first != want {
			t.Errorf("%s: %s\nwant %s", format, first, want)
		}
	}
	if _, err := d.Export(filepath.Join(dir, "x.jsonl"), ExportOptions{Format: FormatPreference}); err == nil {
		t.Error("preference export of solution rows accepted")
	}
	// Parquet: typed columns and messages as a list of structs.
	for _, format := range []string{FormatOMI2, FormatMessages, FormatRows} {
		p := filepath.Join(dir, format+".parquet")
		if n, err := d.Export(p, ExportOptions{Format: format}); err != nil || n != 2 {
			t.Fatalf("%s: %d %v", format, n, err)
		}
		back := readRows(t, p, 0)
		if len(back) != 2 {
			t.Fatalf("%s: read back %d rows", format, len(back))
		}
		x, _ := d.ExportRow(rows[1], ExportOptions{Format: format})
		got, want := string(back[1].AppendJSON(nil)), string(x.AppendJSON(nil))
		if format == FormatRows {
			want = strings.Replace(want, `"is_correct":true`, `"is_correct":true`, 1)
		}
		if got != want {
			t.Errorf("%s parquet round trip:\n got %s\nwant %s", format, got, want)
		}
	}
	_ = parquet.Write[struct{}]
	_ = fmt.Sprint
}
