package synth

import (
	"embed"

	"github.com/crucible-ml/crucible/prompt"
)

//go:embed prompts
var promptFS embed.FS

// library holds the built-in synthesis prompts.
var library = prompt.NewLibrary(promptFS, "prompts", "synth prompt")

// Prompt returns a synthesis prompt: a built-in one by name (see BuiltinPrompts,
// e.g. "augment/math") or, when name is a .yaml/.yml path or an existing
// file, the prompt config in that file. Every built-in prompt can be
// replaced by a file with the same fields.
func Prompt(name string) (*prompt.Prompt, error) { return library.Load(name) }

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

// BuiltinPrompts lists the names of the built-in synthesis prompts.
func BuiltinPrompts() []string { return library.Names() }

// PromptSource returns the YAML text of a built-in prompt, a starting point
// for a file that replaces it.
func PromptSource(name string) ([]byte, error) { return library.Source(name) }
