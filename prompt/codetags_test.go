package prompt

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseCodeTags(t *testing.T) {
	for _, tc := range []struct {
		name string
		want CodeTags
		err  bool
	}{
		{"", LLMCodeTags, false},
		{"llm-code", LLMCodeTags, false},
		{"omi1", LLMCodeTags, false}, // the old CLI spelling
		{"fences", FenceTags, false},
		{"fence", FenceTags, false}, // the old curate YAML spelling
		{"qwen", CodeTags{}, true},
	} {
		got, err := ParseCodeTags(tc.name)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseCodeTags(%q) = %+v, %v", tc.name, got, err)
		}
	}
	if got := FenceTags.Trimmed(); got.CodeBegin != "```python" || got.CodeEnd != "```" || got.CodeOutputBegin != "```output" {
		t.Errorf("Trimmed = %+v", got)
	}
}

func TestCodeTagsYAML(t *testing.T) {
	var c struct {
		Tags *CodeTags `yaml:"code_tags"`
	}
	if err := yaml.Unmarshal([]byte("code_tags: fences\n"), &c); err != nil || *c.Tags != FenceTags {
		t.Fatalf("preset: %+v %v", c.Tags, err)
	}
	if err := yaml.Unmarshal([]byte("code_tags:\n  code_begin: '<c>'\n  code_end: '</c>'\n"), &c); err != nil || c.Tags.CodeBegin != "<c>" || c.Tags.CodeEnd != "</c>" {
		t.Fatalf("mapping: %+v %v", c.Tags, err)
	}
	if err := yaml.Unmarshal([]byte("x: 1\ncode_tags: nope\n"), &c); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad preset: %v", err)
	}
}
