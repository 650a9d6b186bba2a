package prompt

import (
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/record"
)

func TestTemplatePythonFormatSemantics(t *testing.T) {
	row, _ := record.ParseRow([]byte(`{"problem":"2+{x}","n":3,"b":true,"z":null}`))
	cases := []struct{ src, want, err string }{
		{`Solve: {problem}`, `Solve: 2+{x}`, ""},
		{`\boxed{{}} {{problem}} {{{problem}}}`, `\boxed{} {problem} {2+{x}}`, ""},
		{`{n} {b} {z}`, `3 True None`, ""},
		{`{missing}`, "", `missing field "missing"`},
		{`a } b`, "", "single '}'"},
		{`a { b`, "", "expected '}'"},
		{`{}`, "", "positional"},
		{`{0}`, "", "positional"},
		{`{problem!r}`, "", "conversions"},
		{`{problem:>5}`, "", "conversions"},
		{`{a.b}`, "", "attribute"},
	}
	for _, c := range cases {
		tpl, err := Compile(c.src)
		var got string
		if err == nil {
			got, err = tpl.Render(row, nil)
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want %q", c.src, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.src, got, err, c.want)
		}
	}
}

func TestFewShotAndRender(t *testing.T) {
	sep := "\n--\n"
	p, err := New("t", Config{
		System:           "sys {level}",
		User:             "{examples}Q: {problem}",
		Examples:         []map[string]string{{"q": "1+1", "a": "2"}, {"q": "2+2", "a": "4"}},
		ExampleTemplate:  "Q: {q}\nA: {a}",
		ExampleSeparator: &sep,
		ExamplesSuffix:   "\n\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	row, _ := record.ParseRow([]byte(`{"problem":"3+3","level":"L1"}`))
	msgs, err := p.Messages(row)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Content != "sys L1" || msgs[1].Content != "Q: 1+1\nA: 2\n--\nQ: 2+2\nA: 4\n\nQ: 3+3" {
		t.Fatalf("messages %q", msgs)
	}
	text, _ := p.Text(row)
	if text != "sys L1\n\nQ: 1+1\nA: 2\n--\nQ: 2+2\nA: 4\n\nQ: 3+3" {
		t.Fatalf("text %q", text)
	}
	if got := strings.Join(p.Fieldnames(), ","); got != "level,problem" {
		t.Fatalf("fieldnames %s", got)
	}
	bad, _ := record.ParseRow([]byte(`{"level":"L1"}`))
	if _, err := p.Messages(bad); err == nil {
		t.Fatal("missing field accepted")
	} else if f, ok := IsMissingField(err); !ok || f != "problem" {
		t.Fatalf("err %v", err)
	}
}

func TestBuiltins(t *testing.T) {
	want := []string{"generic/chat", "gsm8k/cot-fewshot", "math/code", "math/cot"}
	if got := Builtins(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("builtins %v", got)
	}
	row, _ := record.ParseRow([]byte(`{"problem":"What is $1+1$?"}`))
	for _, name := range want[1:] {
		p, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		text, err := p.Text(row)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "What is $1+1$?") || !strings.Contains(text, `\boxed{}`) {
			t.Errorf("%s renders %q", name, text)
		}
		if strings.Contains(text, "{examples}") || strings.Contains(text, "{{") {
			t.Errorf("%s leaves template syntax: %q", name, text)
		}
	}
	chat, _ := Load("generic/chat")
	if m, err := chat.Messages(mustRow(`{"prompt":"Write a haiku about {braces}."}`)); err != nil || m[0].Content != "Write a haiku about {braces}." {
		t.Fatalf("generic/chat: %v %v", m, err)
	}
	code, _ := Load("math/code")
	if code.Config.CodeTags == nil || code.Config.CodeTags.CodeEnd != "</llm-code>" {
		t.Fatal("math/code has no code tags")
	}
	if _, err := Load("no/such"); err == nil || !strings.Contains(err.Error(), "math/cot") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseRejectsUnknownKeys(t *testing.T) {
	if _, err := Parse("x.yaml", []byte("user: hi\nsytem: typo\n")); err == nil || !strings.Contains(err.Error(), "sytem") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse("x.yaml", []byte("system: hi\n")); err == nil {
		t.Fatal("empty user accepted")
	}
}

func mustRow(s string) *record.Row {
	r, err := record.ParseRow([]byte(s))
	if err != nil {
		panic(err)
	}
	return r
}
