package local

import (
	"os"
	"testing"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// TestSplitReasoning with a real reasoning model's tokenizer (Qwen3's,
// which has <think> and </think>) and one without them.
func TestSplitReasoning(t *testing.T) {
	dir := "../../../shared/fixtures/real/qwen3"
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("no shared fixtures")
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{tok: tok}
	opened := tok.Encode("<|im_start|>assistant\n<think>\n", false)
	plain := tok.Encode("<|im_start|>assistant\n", false)
	for _, c := range []struct {
		name           string
		prompt         []int
		text           string
		reasoning, ans string
	}{
		{"model opens", plain, "<think>\nadd them\n</think>\n\nThe answer is 5.", "add them", "The answer is 5."},
		{"template opens", opened, "add them\n</think>\n\nThe answer is 5.", "add them", "The answer is 5."},
		{"cut inside the reasoning", opened, "add them, then", "add them, then", ""},
		{"model opens, cut", plain, "<think>\nadd", "add", ""},
		{"no thinking", plain, "The answer is 5.", "", "The answer is 5."},
		{"empty think block", plain, "<think>\n\n</think>\n\n5", "", "5"},
	} {
		r, a := b.SplitReasoning(c.prompt, c.text)
		if r != c.reasoning || a != c.ans {
			t.Errorf("%s: (%q, %q), want (%q, %q)", c.name, r, a, c.reasoning, c.ans)
		}
	}
	// A model without <think> tokens: all answer.
	other, err := tokenizer.Load("../../engine/tokenizer/testdata/bpe_qwen2")
	if err != nil {
		t.Fatal(err)
	}
	if r, a := (&Backend{tok: other}).SplitReasoning(nil, "<think>x</think>y"); r != "" || a != "<think>x</think>y" {
		t.Errorf("no think tokens: (%q, %q)", r, a)
	}
}
