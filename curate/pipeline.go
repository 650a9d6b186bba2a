package curate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// Pipeline is a parsed curation config:
//
//	problem_field: problem        # optional; default problem, else question
//	solution_field: generation    # optional; default generation, else generated_solution
//	code_tags: llm-code           # or fences (```python / ```output)
//	steps:
//	  - aggregate: {min_agreement: 0.5}
//	  - filter: correct           # correct, no_answer, multi_boxed, answer_before_code, broken_code, code_errors
//	  - filter: {field: solution, min_chars: 200}
//	  - filter: {field: solution, max_tokens: 1024}
//	  - trim
//	  - where: 'num_generated_tokens < 2000 && finish_reason == "stop"'
//	  - dedup: {method: exact, field: solution, scope: problem}
//	  - dedup: {method: minhash, field: solution, scope: global, threshold: 0.8}
//	  - decontaminate: {method: ngram, benchmarks: [gsm8k, math, math500], n: 13, max_matches: 10}
//	  - decontaminate: {method: llm, benchmarks: [math500], top_k: 5, both_ways: true}
//	  - downsample: {n: 100000, per_problem: 4, prefer_code: true}
type Pipeline struct {
	ProblemField  string `yaml:"problem_field"`
	SolutionField string `yaml:"solution_field"`
	CodeTags      string `yaml:"code_tags"`
	Steps         []Step `yaml:"-"`

	// memo keeps what a step builds once per run (benchmark indexes) when
	// the step runs over many partitions.
	memo map[int]any
}

// memoized returns step i's value, building it on first use.
func memoized[T any](p *Pipeline, i int, build func() (T, error)) (T, error) {
	if v, ok := p.memo[i].(T); ok {
		return v, nil
	}
	v, err := build()
	if err != nil {
		return v, err
	}
	if p.memo == nil {
		p.memo = map[int]any{}
	}
	p.memo[i] = v
	return v, nil
}

// Step is one configured step.
type Step struct {
	Kind string         // aggregate, filter, trim, where, dedup, decontaminate, downsample
	Name string         // filter name
	Args map[string]any // its settings
	Line int            // line in the config, for errors
}

// Env supplies what some steps need.
type Env struct {
	// Tokens counts tokens (filters with min_tokens/max_tokens).
	Tokens func(string) int
	// Backend answers the LLM decontamination questions.
	Backend backend.Backend
	// Embedder, when set, retrieves candidates for the LLM check;
	// otherwise a TF-IDF character n-gram index does.
	Embedder Embedder
	// DataDir holds named benchmarks (see package data).
	DataDir string
	// CacheDir keeps LLM verdicts between runs.
	CacheDir    string
	Concurrency int
	Grade       grade.Options
}

// ParsePipeline reads a config; every error names the line.
func ParsePipeline(data []byte) (*Pipeline, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("curate config: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("curate config: want a mapping with `steps`")
	}
	p := &Pipeline{}
	root := doc.Content[0]
	var stepsNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "problem_field":
			p.ProblemField = v.Value
		case "solution_field":
			p.SolutionField = v.Value
		case "code_tags":
			p.CodeTags = v.Value
		case "steps":
			stepsNode = v
		default:
			return nil, fmt.Errorf("curate config line %d: unknown key %q", k.Line, k.Value)
		}
	}
	if _, err := prompt.ParseCodeTags(p.CodeTags); err != nil {
		return nil, fmt.Errorf("curate config: %w", err)
	}
	if stepsNode == nil || stepsNode.Kind != yaml.SequenceNode || len(stepsNode.Content) == 0 {
		return nil, errors.New("curate config: `steps` must be a non-empty list")
	}
	for _, n := range stepsNode.Content {
		s, err := parseStep(n)
		if err != nil {
			return nil, fmt.Errorf("curate config line %d: %w", n.Line, err)
		}
		p.Steps = append(p.Steps, s)
	}
	return p, nil
}

var filterNames = []string{"correct", "no_answer", "multi_boxed", "answer_before_code", "broken_code", "code_errors"}

func parseStep(n *yaml.Node) (Step, error) {
	s := Step{Line: n.Line, Args: map[string]any{}}
	switch n.Kind {
	case yaml.ScalarNode:
		s.Kind = n.Value
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return s, errors.New("a step is one key (its kind) with its settings")
		}
		s.Kind = n.Content[0].Value
		v := n.Content[1]
		switch v.Kind {
		case yaml.ScalarNode:
			s.Name = v.Value
		case yaml.MappingNode:
			if err := v.Decode(&s.Args); err != nil {
				return s, err
			}
		default:
			return s, fmt.Errorf("step %s: settings must be a name or a mapping", s.Kind)
		}
	default:
		return s, errors.New("a step is a name or a one-key mapping")
	}
	allowed := map[string][]string{
		"aggregate":     {"min_agreement", "overwrite"},
		"filter":        {"field", "min_chars", "max_chars", "min_tokens", "max_tokens"},
		"trim":          {},
		"where":         {},
		"dedup":         {"method", "field", "scope", "threshold", "shingle", "bands", "rows"},
		"decontaminate": {"method", "benchmarks", "n", "fields", "max_matches", "top_k", "both_ways"},
		"downsample":    {"n", "per_problem", "prefer_code", "any_code", "seed"},
	}
	keys, ok := allowed[s.Kind]
	if !ok {
		return s, fmt.Errorf("unknown step %q (have aggregate, filter, trim, where, dedup, decontaminate, downsample)", s.Kind)
	}
	for k := range s.Args {
		if !contains(keys, k) {
			return s, fmt.Errorf("step %s: unknown setting %q (have %s)", s.Kind, k, strings.Join(keys, ", "))
		}
	}
	switch s.Kind {
	case "filter":
		if s.Name == "" && len(s.Args) == 0 {
			return s, fmt.Errorf("filter: name one of %s, or give length bounds", strings.Join(filterNames, ", "))
		}
		if s.Name != "" && !contains(filterNames, s.Name) {
			return s, fmt.Errorf("unknown filter %q (have %s)", s.Name, strings.Join(filterNames, ", "))
		}
	case "where":
		if s.Name == "" {
			return s, errors.New("where: give an expression")
		}
		if _, err := expr.Compile(s.Name, expr.AllowUndefinedVariables(), expr.AsBool()); err != nil {
			return s, fmt.Errorf("where %q: %w", s.Name, err)
		}
	}
	return s, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func argInt(a map[string]any, k string, def int) int {
	switch v := a[k].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return def
}

func argFloat(a map[string]any, k string, def float64) float64 {
	switch v := a[k].(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	return def
}

func argBool(a map[string]any, k string, def bool) bool {
	if v, ok := a[k].(bool); ok {
		return v
	}
	return def
}

func argString(a map[string]any, k, def string) string {
	if v, ok := a[k].(string); ok {
		return v
	}
	return def
}

func argStrings(a map[string]any, k string) []string {
	var out []string
	switch v := a[k].(type) {
	case []any:
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
	case string:
		out = strings.Split(v, ",")
	}
	return out
}

// Run applies the steps in order, recording the funnel.
func (p *Pipeline) Run(ctx context.Context, d *Dataset, env Env) error {
	p.memo = nil
	p.setFields(d)
	for i := range p.Steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := p.runOne(ctx, d, env, i)
		if err != nil {
			return err
		}
		d.Funnel = append(d.Funnel, f)
	}
	return nil
}

// setFields applies the configured text fields to d.
func (p *Pipeline) setFields(d *Dataset) {
	if p.ProblemField != "" {
		d.ProblemField = p.ProblemField
	}
	if p.SolutionField != "" {
		d.SolutionField = p.SolutionField
	}
}

// runOne runs step i over d and returns its funnel line.
func (p *Pipeline) runOne(ctx context.Context, d *Dataset, env Env, i int) (FunnelStep, error) {
	tags, _ := prompt.ParseCodeTags(p.CodeTags) // checked by ParsePipeline
	s := p.Steps[i]
	in := len(d.Rows)
	changed, name, err := p.runStep(ctx, d, env, s, tags, i)
	if err != nil {
		return FunnelStep{}, stepError(i, name, s, err)
	}
	return FunnelStep{Step: name, In: in, Removed: in - len(d.Rows), Out: len(d.Rows), Changed: changed}, nil
}

func stepError(i int, name string, s Step, err error) error {
	return fmt.Errorf("step %d (%s, config line %d): %w", i+1, name, s.Line, err)
}

func (p *Pipeline) runStep(ctx context.Context, d *Dataset, env Env, s Step, tags prompt.CodeTags, i int) (changed int, name string, err error) {
	a := s.Args
	switch s.Kind {
	case "aggregate":
		return Aggregate(d, AggregateOptions{MinAgreement: argFloat(a, "min_agreement", 0), Overwrite: argBool(a, "overwrite", false), Grade: env.Grade}), "aggregate", nil
	case "trim":
		return Trim(d), "trim", nil
	case "filter":
		var f Filter
		switch s.Name {
		case "correct":
			f = CorrectOnly()
		case "no_answer":
			f = HasAnswer()
		case "multi_boxed":
			f = SingleBoxed()
		case "answer_before_code":
			f = AnswerAfterCode(tags)
		case "broken_code":
			f = BalancedCode(tags)
		case "code_errors":
			f = NoCodeErrors(tags)
		default:
			field := argString(a, "field", "solution")
			if lo, hi := argInt(a, "min_tokens", 0), argInt(a, "max_tokens", 0); lo > 0 || hi > 0 {
				if env.Tokens == nil {
					return 0, "filter", errors.New("token length filters need a tokenizer (--tokenizer DIR)")
				}
				f = Length(fmt.Sprintf("%s_tokens", field), field, lo, hi, env.Tokens, "tokens")
			} else {
				f = Length(fmt.Sprintf("%s_chars", field), field, argInt(a, "min_chars", 0), argInt(a, "max_chars", 0), Chars, "characters")
			}
		}
		f.Apply(d)
		return 0, f.Name, nil
	case "where":
		return 0, "where", where(d, s.Name)
	case "dedup":
		method, field, scope, err := dedupArgs(a)
		if err != nil {
			return 0, "dedup", err
		}
		switch method {
		case "exact":
			ExactDedup(d, field, scope)
			return 0, "dedup_exact", nil
		case "minhash":
			MinHashDedup(d, minhashArgs(a, field, scope))
			return 0, "dedup_minhash", nil
		}
		return 0, "dedup", fmt.Errorf("method %q: want exact or minhash", method)
	case "decontaminate":
		switch argString(a, "method", "ngram") {
		case "ngram":
			ix, err := p.ngramIndex(ctx, env, i)
			if err != nil {
				return 0, "decontaminate_ngram", err
			}
			NgramDecontaminate(d, ix, ngramArgs(a))
			return 0, "decontaminate_ngram", nil
		case "llm":
			if env.Backend == nil {
				return 0, "decontaminate_llm", errors.New("the llm method needs a model (--base-url or --model)")
			}
			type llmSetup struct {
				problems []Reference
				ret      Retriever
			}
			setup, err := memoized(p, i, func() (llmSetup, error) {
				refs, err := References(ctx, argStrings(a, "benchmarks"), env.DataDir)
				if err != nil {
					return llmSetup{}, err
				}
				problems := make([]Reference, 0, len(refs))
				texts := make([]string, 0, len(refs))
				for _, r := range refs {
					if strings.HasSuffix(r.Source, ":problem") {
						problems = append(problems, r)
						texts = append(texts, r.Text)
					}
				}
				if env.Embedder != nil {
					er, err := NewEmbeddingRetriever(ctx, env.Embedder, texts, 256)
					return llmSetup{problems, er}, err
				}
				return llmSetup{problems, NewLexicalRetriever(texts)}, nil
			})
			if err != nil {
				return 0, "decontaminate_llm", err
			}
			problems, ret := setup.problems, setup.ret
			cache := ""
			if env.CacheDir != "" {
				cache = filepath.Join(env.CacheDir, fmt.Sprintf("llm-decontamination-step%d.jsonl", i+1))
			}
			_, err = LLMDecontaminate(ctx, d, LLMCheckOptions{
				Refs: problems, Retriever: ret, TopK: argInt(a, "top_k", 5), BothWays: argBool(a, "both_ways", true),
				Backend: env.Backend, Concurrency: env.Concurrency, CachePath: cache,
				Params: backend.Request{Temperature: 0, MaxTokens: 16},
			})
			return 0, "decontaminate_llm", err
		}
		return 0, "decontaminate", fmt.Errorf("method %q: want ngram or llm", argString(a, "method", ""))
	case "downsample":
		Downsample(d, downsampleArgs(a, tags))
		return 0, "downsample", nil
	}
	return 0, s.Kind, fmt.Errorf("unknown step %q", s.Kind)
}

func dedupArgs(a map[string]any) (method, field string, scope Scope, err error) {
	method = argString(a, "method", "exact")
	scope = Scope(argString(a, "scope", "global"))
	if scope != ScopeGlobal && scope != ScopeProblem {
		return method, "", scope, fmt.Errorf("scope %q: want problem or global", scope)
	}
	if method != "exact" && method != "minhash" {
		return method, "", scope, fmt.Errorf("method %q: want exact or minhash", method)
	}
	return method, argString(a, "field", "solution"), scope, nil
}

func minhashArgs(a map[string]any, field string, scope Scope) MinHashOptions {
	o := DefaultMinHash()
	o.Field, o.Scope = field, scope
	o.Threshold = argFloat(a, "threshold", o.Threshold)
	o.Shingle = argInt(a, "shingle", o.Shingle)
	o.Bands = argInt(a, "bands", o.Bands)
	o.Rows = argInt(a, "rows", o.Rows)
	return o
}

func ngramArgs(a map[string]any) NgramOptions {
	return NgramOptions{Fields: argStrings(a, "fields"), MaxMatches: argInt(a, "max_matches", 10)}
}

func downsampleArgs(a map[string]any, tags prompt.CodeTags) DownsampleOptions {
	return DownsampleOptions{
		N: argInt(a, "n", 0), PerProblem: argInt(a, "per_problem", 0), PreferCode: argBool(a, "prefer_code", false),
		CodeOnlyWhenAny: argBool(a, "any_code", false), Seed: uint64(argInt(a, "seed", 0)), CodeTag: tags.CodeBegin,
	}
}

// ngramIndex loads step i's benchmarks and indexes them, once per run.
func (p *Pipeline) ngramIndex(ctx context.Context, env Env, i int) (*NgramIndex, error) {
	a := p.Steps[i].Args
	return memoized(p, i, func() (*NgramIndex, error) {
		refs, err := References(ctx, argStrings(a, "benchmarks"), env.DataDir)
		if err != nil {
			return nil, err
		}
		return NewNgramIndex(refs, argInt(a, "n", 13)), nil
	})
}

// where keeps the rows for which a boolean expression (expr-lang syntax,
// https://expr-lang.org) over the row's fields is true. A row on which the
// expression fails is removed with the error as its reason.
func where(d *Dataset, src string) error {
	prog, err := expr.Compile(src, expr.AllowUndefinedVariables(), expr.AsBool())
	if err != nil {
		return fmt.Errorf("where %q: %w", src, err)
	}
	var machine vm.VM
	d.Keep("where", func(r *record.Row) (bool, string) {
		env := map[string]any{}
		if err := json.Unmarshal(r.AppendJSON(nil), &env); err != nil {
			return false, err.Error()
		}
		out, err := machine.Run(prog, env)
		if err != nil {
			return false, fmt.Sprintf("where %q: %v", src, err)
		}
		if ok, _ := out.(bool); !ok {
			return false, fmt.Sprintf("where %q is false", src)
		}
		return true, ""
	})
	return nil
}

// References loads benchmark texts to decontaminate against: each name is
// a benchmark known to package data (gsm8k, math, math500, ...) or a JSONL
// file. Both the problems (source "NAME:problem") and the reference
// solutions (source "NAME:solution", from `solution` or GSM8K's `answer`)
// are returned, so leaked solutions are caught as well as problems.
func References(ctx context.Context, names []string, dataDir string) ([]Reference, error) {
	if len(names) == 0 {
		return nil, errors.New("no benchmarks given")
	}
	if dataDir == "" {
		dataDir = data.DefaultDir()
	}
	var refs []Reference
	for _, name := range names {
		name = strings.TrimSpace(name)
		path := name
		if b, ok := data.Lookup(name); ok {
			p, err := data.Get(ctx, nil, b, dataDir)
			if err != nil {
				return nil, err
			}
			path = p
		}
		in, err := record.Open(path)
		if err != nil {
			return nil, fmt.Errorf("benchmark %q: %w", name, err)
		}
		line := 0
		for in.Next() {
			line++
			r := in.Row()
			if err := data.Prepare(r); err != nil {
				f, l := in.Pos()
				in.Close()
				return nil, fmt.Errorf("%s:%d: %w", f, l, err)
			}
			id, ok := r.String("unique_id")
			if !ok {
				id = fmt.Sprintf("line %d", line)
			}
			p, _ := r.String("problem")
			refs = append(refs, Reference{Source: name + ":problem", ID: id, Text: p})
			sol, ok := r.String("solution")
			if !ok {
				if a, ok2 := r.String("answer"); ok2 && strings.Contains(a, "####") {
					sol, ok = a, true
				}
			}
			if ok && sol != "" {
				refs = append(refs, Reference{Source: name + ":solution", ID: id, Text: sol})
			}
		}
		in.Close()
		if err := in.Err(); err != nil {
			return nil, err
		}
	}
	return refs, nil
}
