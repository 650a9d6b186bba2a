package curate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/record"
)

func TestRunFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"a","sample":0,"problem":"p","generation":"x","is_correct":true}
{"id":"a","sample":1,"problem":"p","generation":"y","is_correct":false}
{"id":"b","sample":0,"problem":"q","generation":"x","is_correct":true}
`), 0o644)
	cfg := filepath.Join(dir, "steps.yaml")
	os.WriteFile(cfg, []byte("steps:\n  - filter: correct\n"), 0o644)
	p, err := LoadPipeline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.NeedsModel() {
		t.Fatal("a correctness filter needs no model")
	}
	out := filepath.Join(dir, "sft.jsonl")
	var funnel bytes.Buffer
	rep, err := RunFile(context.Background(), p, FileOptions{Input: in, Output: out, Version: "test", Funnel: &funnel})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RowsIn != 3 || rep.RowsOut != 2 || !strings.Contains(funnel.String(), "correct") {
		t.Fatalf("report %+v, funnel %q", rep, funnel.String())
	}
	for _, f := range []string{"sft.jsonl", "sft.removed.jsonl", "sft.report.json", "sft.report.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if n := record.CountRows(filepath.Join(dir, "sft.removed.jsonl")); n != 1 {
		t.Errorf("removed rows = %d", n)
	}
	m, _, err := record.ReadManifest(out)
	if err != nil || m == nil || m.Command != "curate" || m.Rows != 2 || m.Counts["removed"] != 1 {
		t.Fatalf("manifest %+v %v", m, err)
	}
	// A bad config names the file and the line; an llm step without a model is refused.
	os.WriteFile(cfg, []byte("steps:\n  - filter: nope\n"), 0o644)
	if _, err := LoadPipeline(cfg); err == nil || !strings.Contains(err.Error(), "steps.yaml") {
		t.Fatalf("bad config: %v", err)
	}
	os.WriteFile(cfg, []byte("steps:\n  - decontaminate: {method: llm, benchmarks: [math500]}\n"), 0o644)
	if p, err = LoadPipeline(cfg); err != nil || !p.NeedsModel() {
		t.Fatalf("llm step: %v", err)
	}
	if _, err := RunFile(context.Background(), p, FileOptions{Input: in, Output: out}); err == nil {
		t.Fatal("llm step ran without a model")
	}
}

func TestLoadChatTemplate(t *testing.T) {
	dir := "../../shared/fixtures/real/qwen2.5"
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ct, err := LoadChatTemplate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ct.EndOfTurn() != "<|im_end|>\n" {
		t.Fatalf("end of turn %q", ct.EndOfTurn())
	}
	s, err := ct.Render([]backend.Message{{Role: "user", Content: "2+3?"}}, true)
	if err != nil || !strings.HasSuffix(s, "<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n") {
		t.Fatalf("render %q %v", s, err)
	}
}
