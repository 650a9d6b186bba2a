// Package prompt turns rows into what a model receives.
//
// A prompt config is YAML with a `system` and a `user` template in Python
// str.format syntax (`{problem}`; `{{ }}` for literal braces, as NeMo-Skills
// prompt files use), and optional few-shot examples: `examples` (a list of
// field maps) rendered with `example_template`, joined by
// `example_separator`, wrapped in `examples_prefix`/`examples_suffix`, and
// placed where the user template says `{examples}`. A prompt renders as chat
// messages (Messages) or as one completion string (Text).
//
//	p, err := prompt.Load("math/cot") // a built-in name or a .yaml path
//	msgs, err := p.Messages(row)
//
// Built-in prompts live in builtin/ and are listed by Builtins.
package prompt

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/crucible-ml/crucible/backend"
)

//go:embed builtin
var builtinFS embed.FS

// Config is the YAML form of a prompt.
type Config struct {
	System           string              `yaml:"system"`
	User             string              `yaml:"user"`
	Examples         []map[string]string `yaml:"examples"`
	ExampleTemplate  string              `yaml:"example_template"`
	ExampleSeparator *string             `yaml:"example_separator"`
	ExamplesPrefix   string              `yaml:"examples_prefix"`
	ExamplesSuffix   string              `yaml:"examples_suffix"`
	// Stop lists stop strings that suit this prompt (e.g. the few-shot
	// separator for base models); generate adds them to --stop.
	Stop []string `yaml:"stop"`
	// CodeTags names the delimiters of code blocks and their outputs for
	// code-interpreter prompts: a preset name (llm-code, fences) or the
	// four delimiters.
	CodeTags *CodeTags `yaml:"code_tags"`
	// Description says what the prompt is for.
	Description string `yaml:"description"`
}

// Prompt is a compiled prompt config.
type Prompt struct {
	Name     string
	Config   Config
	system   *Template
	user     *Template
	examples string // rendered few-shot block
}

// Library is a set of built-in prompts: YAML files under a folder of a file
// system (usually embedded), addressed by their path without ".yaml".
type Library struct {
	fsys fs.FS
	root string
	kind string // how errors name the library, e.g. "prompt"
}

// NewLibrary returns the library of the YAML files under root in fsys.
func NewLibrary(fsys fs.FS, root, kind string) *Library {
	return &Library{fsys: fsys, root: root, kind: kind}
}

// builtins are the generation prompts of package prompt.
var builtins = NewLibrary(builtinFS, "builtin", "prompt")

// Names lists the library's prompts.
func (l *Library) Names() []string {
	var names []string
	fs.WalkDir(l.fsys, l.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(p, l.root+"/"), ".yaml"))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// Source returns the YAML text of a prompt (a starting point for a file
// that replaces it).
func (l *Library) Source(name string) ([]byte, error) {
	b, err := fs.ReadFile(l.fsys, path.Join(l.root, name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("%s %q: no such built-in prompt (have %s)", l.kind, name, strings.Join(l.Names(), ", "))
	}
	return b, nil
}

// Load returns the prompt called name, or reads a YAML file when name is a
// path ending in .yaml or .yml, or any existing file: every built-in prompt
// can be replaced by a file with the same fields.
func (l *Library) Load(name string) (*Prompt, error) {
	if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || fileExists(name) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.kind, err)
		}
		return Parse(name, b)
	}
	b, err := l.Source(name)
	if err != nil {
		return nil, fmt.Errorf("%w and no such file", err)
	}
	return Parse(name, b)
}

// Load returns a built-in generation prompt by name (e.g. "math/cot") or
// reads a YAML file.
func Load(name string) (*Prompt, error) { return builtins.Load(name) }

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Builtins lists the names of the built-in generation prompts.
func Builtins() []string { return builtins.Names() }

// Parse compiles a prompt config; name is used in errors.
func Parse(name string, data []byte) (*Prompt, error) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("prompt %s: %w", name, err)
	}
	return New(name, c)
}

// New compiles a Config.
func New(name string, c Config) (*Prompt, error) {
	p := &Prompt{Name: name, Config: c}
	if strings.TrimSpace(c.User) == "" {
		return nil, fmt.Errorf("prompt %s: `user` template is empty", name)
	}
	var err error
	if p.system, err = Compile(c.System); err != nil {
		return nil, fmt.Errorf("prompt %s: system: %w", name, err)
	}
	if p.user, err = Compile(c.User); err != nil {
		return nil, fmt.Errorf("prompt %s: user: %w", name, err)
	}
	if len(c.Examples) > 0 {
		if c.ExampleTemplate == "" {
			return nil, fmt.Errorf("prompt %s: `examples` given without `example_template`", name)
		}
		et, err := Compile(c.ExampleTemplate)
		if err != nil {
			return nil, fmt.Errorf("prompt %s: example_template: %w", name, err)
		}
		sep := "\n\n"
		if c.ExampleSeparator != nil {
			sep = *c.ExampleSeparator
		}
		parts := make([]string, len(c.Examples))
		for i, ex := range c.Examples {
			s, err := et.Render(mapFields(ex), nil)
			if err != nil {
				return nil, fmt.Errorf("prompt %s: example %d: %w", name, i+1, err)
			}
			parts[i] = s
		}
		p.examples = c.ExamplesPrefix + strings.Join(parts, sep) + c.ExamplesSuffix
	}
	return p, nil
}

type mapFields map[string]string

func (m mapFields) Text(k string) (string, bool) { v, ok := m[k]; return v, ok }

// Fieldnames returns the row fields the prompt needs.
func (p *Prompt) Fieldnames() []string {
	var out []string
	for _, f := range append(p.system.Fieldnames(), p.user.Fieldnames()...) {
		if f != "examples" {
			out = append(out, f)
		}
	}
	return out
}

func (p *Prompt) extra() map[string]string { return map[string]string{"examples": p.examples} }

// Messages renders the prompt for a chat endpoint: an optional system
// message and one user message. A missing field is a *MissingFieldError.
func (p *Prompt) Messages(row Fields) ([]backend.Message, error) {
	sys, user, err := p.render(row)
	if err != nil {
		return nil, err
	}
	msgs := make([]backend.Message, 0, 2)
	if sys != "" {
		msgs = append(msgs, backend.Message{Role: "system", Content: sys})
	}
	return append(msgs, backend.Message{Role: "user", Content: user}), nil
}

// Text renders the prompt as one completion string: the system text, a blank
// line, then the user text (just the user text when there is no system).
func (p *Prompt) Text(row Fields) (string, error) {
	sys, user, err := p.render(row)
	if err != nil {
		return "", err
	}
	if sys == "" {
		return user, nil
	}
	return sys + "\n\n" + user, nil
}

func (p *Prompt) render(row Fields) (sys, user string, err error) {
	ex := p.extra()
	if sys, err = p.system.Render(row, ex); err != nil {
		return "", "", err
	}
	if user, err = p.user.Render(row, ex); err != nil {
		return "", "", err
	}
	return sys, user, nil
}

// IsMissingField reports whether err is a missing-field error, and which.
func IsMissingField(err error) (string, bool) {
	var m *MissingFieldError
	if errors.As(err, &m) {
		return m.Field, true
	}
	return "", false
}
