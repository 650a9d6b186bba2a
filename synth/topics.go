package synth

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// listHook returns a solve Generate hook that asks the model for a list and
// records it under key (see setList). n gives the count the row asked for.
func (c *Common) listHook(l *Lister, key string, n func(*record.Row) int) func(context.Context, *backend.Request, *record.Row) (*backend.Response, error) {
	return func(ctx context.Context, req *backend.Request, out *record.Row) (*backend.Response, error) {
		resp, err := c.Backend.Generate(ctx, req)
		if err != nil {
			return nil, err
		}
		res, err := l.Read(ctx, req, resp.Text)
		if err != nil {
			return nil, err
		}
		setList(out, key, n(out), res)
		return resp, nil
	}
}

// listFields are the fields a list step adds to its row; the rows made from
// its items do not inherit them.
var listFields = []string{"generation", "sample", "finish_reason", "num_generated_tokens", "list_format",
	"n_requested", "count_mismatch", "list_error", "list_dropped_items", "error", "id"}

// inherit returns a row with the given id followed by parent's fields,
// less the given fields and the list fields.
func inherit(parent *record.Row, id string, drop ...string) *record.Row {
	skip := map[string]bool{}
	for _, k := range append(drop, listFields...) {
		skip[k] = true
	}
	r := &record.Row{}
	r.Set("id", id)
	for _, k := range parent.Keys() {
		if !skip[k] {
			r.SetRaw(k, parent.Raw(k))
		}
	}
	return r
}

// items returns the list stored under key on a row.
func items(r *record.Row, key string) []string {
	var xs []string
	if r.Has(key) {
		_ = r.Decode(key, &xs)
	}
	return xs
}

// countList adds a list row's outcome to the report's counts.
func countList(rep *Report, step string, r *record.Row) {
	switch {
	case r.Has("error"):
		rep.count(step + "_request_errors")
	case r.Has("list_error"):
		rep.count(step + "_list_errors")
	case r.Has("count_mismatch"):
		rep.count(step + "_count_mismatches")
	}
	if f, ok := r.String("list_format"); ok && f == ListConverted {
		rep.count(step + "_converted_by_model")
	}
}

// TopicsOptions configure Topics.
type TopicsOptions struct {
	Common
	// Input, when set, holds macro topics (rows with `macro_topic` or
	// `topic`), and the macro-topic step is skipped. Limit and Shard select
	// macro topics (given or generated), so shards of one run share the
	// same macro list and split the subtopic work.
	Input  string
	Output string
	// Domain picks the built-in prompts: "general" (default), "math" or
	// "python".
	Domain string
	// SchoolLevel is the level of math topics ("high school" by default).
	SchoolLevel string
	MacroTopics int // macro topics to ask for (default 20)
	Subtopics   int // subtopics per macro topic (default 5)
	// NoMacroRows leaves the macro topics themselves out of the output (by
	// default they are topics too, as NeMo-Curator's combine_topics does).
	NoMacroRows bool
	// MacroPrompt, SubPrompt and ConvertPrompt replace the built-ins.
	MacroPrompt, SubPrompt, ConvertPrompt *prompt.Prompt
}

// Topics asks for macro topics, then for subtopics of each, and writes one
// row per distinct topic: id, topic, macro_topic, topic_level ("macro" or
// "sub"), domain, and subtopics_count_mismatch when the model listed a
// different number of subtopics than asked. Topics that repeat an earlier
// one (case and spacing aside) are kept once, under the smallest id, and
// the others counted.
func Topics(ctx context.Context, o TopicsOptions) (*Report, error) {
	start := time.Now()
	if o.Backend == nil {
		return nil, errNoBackend
	}
	if o.Output == "" {
		return nil, fmt.Errorf("topics: no output given")
	}
	if o.Domain == "" {
		o.Domain = "general"
	}
	prefix := map[string]string{"general": "topics/", "math": "topics/math-", "python": "topics/python-"}[o.Domain]
	if prefix == "" {
		return nil, fmt.Errorf("topics: domain %q: want general, math or python", o.Domain)
	}
	if o.MacroTopics <= 0 {
		o.MacroTopics = 20
	}
	if o.Subtopics <= 0 {
		o.Subtopics = 5
	}
	if o.SchoolLevel == "" {
		o.SchoolLevel = "high school"
	}
	wd, err := o.workDir(o.Output)
	if err != nil {
		return nil, err
	}
	rep := newReport(o.Output)
	l := &Lister{Backend: o.Backend, Convert: o.ConvertPrompt}
	macroRows := o.Input
	if macroRows == "" {
		seed := &record.Row{}
		seed.Set("id", "macro")
		seed.Set("domain", o.Domain)
		seed.Set("n_macro_topics", o.MacroTopics)
		seed.Set("school_level", o.SchoolLevel)
		seedPath := filepath.Join(wd, "00-seed.jsonl")
		if err := writeSeedRows(seedPath, []*record.Row{seed}); err != nil {
			return rep, err
		}
		macroGen := filepath.Join(wd, "01-macro-topics.jsonl")
		err := o.run(ctx, rep, genStep{
			name: "macro-topics", input: seedPath, output: macroGen, whole: true,
			prompt:   orDefault(o.MacroPrompt, prefix+"macro"),
			generate: o.listHook(l, "macro_topics", func(*record.Row) int { return o.MacroTopics }),
		})
		if err != nil {
			return rep, err
		}
		macroRows = filepath.Join(wd, "02-macro-rows.jsonl")
		err = derive(ctx, rep, "macro-rows", macroGen, macroRows, func(r *record.Row) []*record.Row {
			countList(rep, "macro_topics", r)
			var out []*record.Row
			for i, t := range items(r, "macro_topics") {
				c := &record.Row{}
				c.Set("id", childID(r, i))
				c.Set("macro_topic", t)
				c.Set("domain", o.Domain)
				if m, ok := r.String("count_mismatch"); ok {
					c.Set("macro_topics_count_mismatch", m)
				}
				out = append(out, c)
			}
			return out
		})
		if err != nil {
			return rep, err
		}

	}
	subGen := filepath.Join(wd, "03-subtopics.jsonl")
	err = o.run(ctx, rep, genStep{
		name: "subtopics", input: macroRows, output: subGen,
		prompt: orDefault(o.SubPrompt, prefix+"sub"),
		prepare: func(r *record.Row) error {
			if !r.Has("macro_topic") {
				t, ok := r.Text("topic")
				if !ok {
					return fmt.Errorf("row has neither `macro_topic` nor `topic`")
				}
				r.Set("macro_topic", t)
			}
			r.Set("n_subtopics", o.Subtopics)
			return nil
		},
		generate: o.listHook(l, "subtopics", func(*record.Row) int { return o.Subtopics }),
	})
	if err != nil {
		return rep, err
	}
	// A topic that occurs more than once is kept under its smallest id.
	owner := map[string]string{}
	claim := func(key, id string) {
		if prev, ok := owner[key]; !ok || id < prev {
			owner[key] = id
		}
	}
	err = eachRow(subGen, func(r *record.Row) error {
		if macro, ok := r.Text("macro_topic"); ok && !o.NoMacroRows && record.KeyOf(r).Sample == 0 {
			claim(normSpace(macro), r.ID())
		}
		for i, t := range items(r, "subtopics") {
			claim(normSpace(t), childID(r, i))
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	err = derive(ctx, rep, "topics", subGen, o.Output, func(r *record.Row) []*record.Row {
		countList(rep, "subtopics", r)
		macro, _ := r.Text("macro_topic")
		base := inherit(r, "", "subtopics", "n_subtopics", "topic", "id")
		var out []*record.Row
		add := func(id, topic, level string) {
			if owner[normSpace(topic)] != id {
				rep.count("duplicate_topics")
				return
			}
			c := &record.Row{}
			c.Set("id", id)
			c.Set("topic", topic)
			for _, k := range base.Keys() {
				if k != "id" {
					c.SetRaw(k, base.Raw(k))
				}
			}
			c.Set("topic_level", level)
			if level == "sub" {
				if m, ok := r.String("count_mismatch"); ok {
					c.Set("subtopics_count_mismatch", m)
				}
			}
			out = append(out, c)
		}
		if !o.NoMacroRows && record.KeyOf(r).Sample == 0 {
			add(r.ID(), macro, "macro")
		}
		for i, t := range items(r, "subtopics") {
			add(childID(r, i), t, "sub")
		}
		return out
	})
	if err != nil {
		return rep, err
	}
	return rep, o.finish(rep, start, rep.lastStage())
}

// slug turns a label into an id part.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
