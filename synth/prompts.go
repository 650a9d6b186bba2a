package synth

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/crucible-ml/crucible/prompt"
)

//go:embed prompts
var promptFS embed.FS

// Prompt returns a synthesis prompt: a built-in one by name (see BuiltinPrompts,
// e.g. "augment/math") or, when name is a .yaml/.yml path or an existing
// file, the prompt config in that file. Every built-in prompt can be
// replaced by a file with the same fields.
func Prompt(name string) (*prompt.Prompt, error) {
	if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || isFile(name) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("synth prompt: %w", err)
		}
		return prompt.Parse(name, b)
	}
	b, err := promptFS.ReadFile(path.Join("prompts", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("synth prompt %q: no such built-in prompt (have %s) and no such file", name, strings.Join(BuiltinPrompts(), ", "))
	}
	return prompt.Parse("synth/"+name, b)
}

// mustPrompt loads a built-in prompt; the built-ins are tested to parse.
func mustPrompt(name string) *prompt.Prompt {
	p, err := Prompt(name)
	if err != nil {
		panic(err)
	}
	return p
}

// orDefault returns p, or the built-in prompt name when p is nil.
func orDefault(p *prompt.Prompt, name string) *prompt.Prompt {
	if p != nil {
		return p
	}
	return mustPrompt(name)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// BuiltinPrompts lists the names of the built-in synthesis prompts.
func BuiltinPrompts() []string {
	var names []string
	fs.WalkDir(promptFS, "prompts", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(p, "prompts/"), ".yaml"))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// PromptSource returns the YAML text of a built-in prompt, a starting point
// for a file that replaces it.
func PromptSource(name string) ([]byte, error) {
	b, err := promptFS.ReadFile(path.Join("prompts", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("synth prompt %q: no such built-in prompt (have %s)", name, strings.Join(BuiltinPrompts(), ", "))
	}
	return b, nil
}
