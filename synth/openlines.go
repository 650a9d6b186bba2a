package synth

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// Prompt kinds of GeneratePrompts.
var PromptKinds = []string{"open-qa", "writing", "closed-qa", "math", "coding"}

// PromptsOptions configure GeneratePrompts.
type PromptsOptions struct {
	Common
	// Input holds topics (rows with `topic`, e.g. the output of Topics) or,
	// for closed-qa, documents (DocumentField).
	Input  string
	Output string
	// Kind is one of PromptKinds.
	Kind string
	// N is how many prompts to ask for per topic or document (default 5).
	N int
	// Revisions is how many detailed rewrites to ask for per prompt in the
	// revise-for-detail step of open-qa and writing (default 0: none). Only
	// the revisions are kept, as in Nemotron-4.
	Revisions int
	// DocTypes are the kinds of text writing tasks ask for (default Essay,
	// Poem, Blog post, Newsletter); every topic is paired with each.
	DocTypes []string
	// Level is who math and coding problems are for (default "beginners who
	// have just learnt the topic").
	Level string
	// Language is the programming language of coding problems (default
	// Python).
	Language string
	// DocumentField names the document field of closed-qa input rows
	// (default "document", else "text").
	DocumentField string
	// Join builds a closed-qa prompt from `document` and `instruction`
	// (default "{document}\n\n{instruction}").
	Join string
	// Constraints adds this many IFEval-style verifiable instructions to
	// each prompt (default 0).
	Constraints int
	// ConstraintStyle is "append" (default: the instructions follow the
	// prompt) or "all-turns" (Nemotron-4's multi-turn variant: they precede
	// it between [BEGIN OF INSTRUCTION] and [END OF INSTRUCTION] and hold for
	// every assistant turn of a dialogue; instruction_scope is "all_turns").
	ConstraintStyle string
	// Prompt, RevisePrompt and ConvertPrompt replace the built-ins.
	Prompt, RevisePrompt, ConvertPrompt *prompt.Prompt
}

// GeneratePrompts writes one row per synthetic prompt: id, prompt, kind,
// openline (the prompt before revision, when revised), the fields of the
// topic or document row it came from, *_count_mismatch when the model
// listed a different number of items than asked, and with Constraints
// base_prompt, instruction_id_list and kwargs (IFEval's field names; `synth
// judge --mode instructions` checks responses against them). A prompt that
// repeats another (case and spacing aside) is kept once, under the smallest
// id, and counted as duplicate_prompts.
func GeneratePrompts(ctx context.Context, o PromptsOptions) (*Report, error) {
	start := time.Now()
	if o.Backend == nil {
		return nil, errNoBackend
	}
	if o.Input == "" || o.Output == "" {
		return nil, fmt.Errorf("prompts: input and output are required")
	}
	valid := false
	for _, k := range PromptKinds {
		valid = valid || k == o.Kind
	}
	if !valid {
		return nil, fmt.Errorf("prompts: kind %q: want one of %s", o.Kind, strings.Join(PromptKinds, ", "))
	}
	if o.N <= 0 {
		o.N = 5
	}
	if o.Level == "" {
		o.Level = "beginners who have just learnt the topic"
	}
	if o.Language == "" {
		o.Language = "Python"
	}
	if len(o.DocTypes) == 0 {
		o.DocTypes = []string{"Essay", "Poem", "Blog post", "Newsletter"}
	}
	if o.Join == "" {
		o.Join = "{document}\n\n{instruction}"
	}
	if o.ConstraintStyle != "" && o.ConstraintStyle != "append" && o.ConstraintStyle != "all-turns" {
		return nil, fmt.Errorf("prompts: constraint style %q: want append or all-turns", o.ConstraintStyle)
	}
	join, err := prompt.Compile(o.Join)
	if err != nil {
		return nil, fmt.Errorf("prompts: join template: %w", err)
	}
	revise := o.Revisions > 0 && (o.Kind == "open-qa" || o.Kind == "writing")
	wd, err := o.workDir(o.Output)
	if err != nil {
		return nil, err
	}
	rep := newReport(o.Output)
	l := &Lister{Backend: o.Backend, Convert: o.ConvertPrompt}

	input := o.Input
	if o.Kind == "writing" {
		// Every topic with every document type.
		input = filepath.Join(wd, "00-topic-doctypes.jsonl")
		err := derive(ctx, rep, "topic-doctypes", o.Input, input, func(r *record.Row) []*record.Row {
			var out []*record.Row
			for _, dt := range o.DocTypes {
				c := r.Clone()
				c.Set("id", r.ID()+"-"+slug(dt))
				c.Set("text_material_type", dt)
				out = append(out, c)
			}
			return out
		})
		if err != nil {
			return rep, err
		}
	}
	docField := o.DocumentField
	openGen := filepath.Join(wd, "01-openlines.jsonl")
	err = o.run(ctx, rep, genStep{
		name: "openlines", input: input, output: openGen,
		prompt: orDefault(o.Prompt, "prompts/"+o.Kind),
		prepare: func(r *record.Row) error {
			r.Set("n_openlines", o.N)
			switch o.Kind {
			case "math":
				r.Set("level", o.Level)
			case "coding":
				r.Set("level", o.Level)
				r.Set("language", o.Language)
			case "closed-qa":
				if !r.Has("document") {
					f := docField
					if f == "" {
						f = "text"
					}
					d, ok := r.Text(f)
					if !ok {
						return fmt.Errorf("closed-qa row has no `document` or `%s` field", f)
					}
					r.Set("document", d)
				}
			}
			return nil
		},
		generate: o.listHook(l, "openlines", func(*record.Row) int { return o.N }),
	})
	if err != nil {
		return rep, err
	}
	// One row per openline.
	openRows := filepath.Join(wd, "02-openline-rows.jsonl")
	err = derive(ctx, rep, "openline-rows", openGen, openRows, func(r *record.Row) []*record.Row {
		countList(rep, "openlines", r)
		var out []*record.Row
		for i, t := range items(r, "openlines") {
			c := inherit(r, childID(r, i), "openlines", "n_openlines", "level", "language")
			c.Set("openline", t)
			if m, ok := r.String("count_mismatch"); ok {
				c.Set("openlines_count_mismatch", m)
			}
			out = append(out, c)
		}
		return out
	})
	if err != nil {
		return rep, err
	}
	last := openRows
	if revise {
		revGen := filepath.Join(wd, "03-revisions.jsonl")
		err = o.run(ctx, rep, genStep{
			name: "revisions", input: openRows, output: revGen, whole: true,
			prompt:   orDefault(o.RevisePrompt, "prompts/"+o.Kind+"-revise"),
			prepare:  func(r *record.Row) error { r.Set("n_revisions", o.Revisions); return nil },
			generate: o.listHook(l, "revisions", func(*record.Row) int { return o.Revisions }),
		})
		if err != nil {
			return rep, err
		}
		last = revGen
	}
	final := func(r *record.Row) []*record.Row {
		if !revise {
			c := inherit(r, r.ID())
			o.finishPrompt(c, join)
			return []*record.Row{c}
		}
		var out []*record.Row
		for i, t := range items(r, "revisions") {
			c := inherit(r, childID(r, i), "revisions", "n_revisions")
			if m, ok := r.String("count_mismatch"); ok {
				c.Set("revisions_count_mismatch", m)
			}
			c.Set("revision", t)
			o.finishPrompt(c, join)
			out = append(out, c)
		}
		return out
	}
	// A prompt that occurs more than once (case and spacing aside) is kept
	// under its smallest id.
	owner := map[string]string{}
	promptKey := func(c *record.Row) string {
		if b, ok := c.Text("base_prompt"); ok {
			return normSpace(b)
		}
		return normSpace(textOf(c, "prompt"))
	}
	err = eachRow(last, func(r *record.Row) error {
		for _, c := range final(r) {
			if prev, ok := owner[promptKey(c)]; !ok || c.ID() < prev {
				owner[promptKey(c)] = c.ID()
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	err = derive(ctx, rep, "prompts", last, o.Output, func(r *record.Row) []*record.Row {
		if revise {
			countList(rep, "revisions", r)
		}
		var out []*record.Row
		for _, c := range final(r) {
			if owner[promptKey(c)] != c.ID() {
				rep.count("duplicate_prompts")
				continue
			}
			out = append(out, c)
		}
		return out
	})
	if err != nil {
		return rep, err
	}
	return rep, o.finish(rep, start, rep.lastStage())
}

// finishPrompt sets prompt and kind on a final row (and the instructions).
func (o *PromptsOptions) finishPrompt(c *record.Row, join *prompt.Template) {
	text, _ := c.Text("openline")
	if rev, ok := c.Text("revision"); ok {
		text = rev
		c.Delete("revision")
	}
	if o.Kind == "closed-qa" {
		c.Set("instruction", text)
		if s, err := join.Render(c, nil); err == nil {
			text = s
		}
	}
	c.Set("prompt", text)
	c.Set("kind", o.Kind)
	if o.Constraints > 0 {
		seed := record.Seed(c.ID(), 0, o.Seed)
		r := rand.New(rand.NewPCG(uint64(seed), 0x1f))
		ids, kw := SampleInstructions(r, o.Constraints, text)
		var desc []string
		for i, id := range ids {
			d, _ := DescribeInstruction(id, kw[i])
			desc = append(desc, d)
		}
		c.Set("base_prompt", text)
		if o.ConstraintStyle == "all-turns" {
			c.Set("prompt", "[BEGIN OF INSTRUCTION] "+strings.Join(desc, " ")+" [END OF INSTRUCTION]\n\n"+text)
			c.Set("instruction_scope", "all_turns")
		} else {
			c.Set("prompt", text+"\n\n"+strings.Join(desc, " "))
		}
		c.Set("instruction_id_list", ids)
		c.Set("kwargs", kw)
	}
}
