package prompt

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// CodeTags are the delimiters of executable code and its output in a
// code-interpreter solution. Generation stops at CodeEnd; the block's
// output goes between CodeOutputBegin and CodeOutputEnd.
type CodeTags struct {
	CodeBegin       string `yaml:"code_begin" json:"code_begin"`
	CodeEnd         string `yaml:"code_end" json:"code_end"`
	CodeOutputBegin string `yaml:"code_output_begin" json:"code_output_begin"`
	CodeOutputEnd   string `yaml:"code_output_end" json:"code_output_end"`
}

// The code-tag presets, by the name every command and config uses.
var (
	// LLMCodeTags ("llm-code") are OpenMathInstruct-1's <llm-code> tags.
	LLMCodeTags = CodeTags{CodeBegin: "<llm-code>", CodeEnd: "</llm-code>",
		CodeOutputBegin: "<llm-code-output>", CodeOutputEnd: "</llm-code-output>"}
	// FenceTags ("fences") are Markdown fences, ```python and ```output
	// (NeMo-Skills' "qwen" tags).
	FenceTags = CodeTags{CodeBegin: "```python\n", CodeEnd: "```\n",
		CodeOutputBegin: "```output\n", CodeOutputEnd: "```\n"}
)

// CodeTagNames lists the preset names ParseCodeTags accepts, default first.
var CodeTagNames = []string{"llm-code", "fences"}

// ParseCodeTags returns the preset of that name: llm-code (also omi1, the
// default) or fences (also fence).
func ParseCodeTags(name string) (CodeTags, error) {
	switch strings.TrimSpace(name) {
	case "llm-code", "omi1", "":
		return LLMCodeTags, nil
	case "fences", "fence":
		return FenceTags, nil
	}
	return CodeTags{}, fmt.Errorf("code tags %q: want %s", name, strings.Join(CodeTagNames, " or "))
}

// Trimmed returns the tags without their surrounding white space, the
// form in which they are searched for in a finished solution (a fence
// may end the text without a newline).
func (t CodeTags) Trimmed() CodeTags {
	return CodeTags{strings.TrimSpace(t.CodeBegin), strings.TrimSpace(t.CodeEnd),
		strings.TrimSpace(t.CodeOutputBegin), strings.TrimSpace(t.CodeOutputEnd)}
}

// UnmarshalYAML reads a preset name or the mapping of the four delimiters.
func (t *CodeTags) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		c, err := ParseCodeTags(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		*t = c
		return nil
	}
	type plain CodeTags
	return n.Decode((*plain)(t))
}
