package curate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// SameProblemPrompt is the built-in question put to the model for each
// (problem, benchmark problem) pair; its fields are {first} and {second}.
var SameProblemPrompt = prompt.Config{
	User: `Decide whether the two math problems below are the same problem. They are the same when they ask for the same thing about the same quantities and conditions, even if the wording, names or the order of sentences differ. Changing any number, condition or what is asked makes them different problems.

Problem 1:
{first}

Problem 2:
{second}

Reply with one word: True if they are the same problem, False if not.`,
}

// LLMCheckOptions configure OpenMathInstruct-2's decontamination.
type LLMCheckOptions struct {
	Refs      []Reference
	Retriever Retriever // over Refs' texts, in the same order
	TopK      int       // candidates per problem (default 5)
	// BothWays asks each pair in both orders; either "True" marks the
	// problem contaminated.
	BothWays    bool
	Backend     backend.Backend
	Prompt      *prompt.Prompt // default SameProblemPrompt
	Params      backend.Request
	Concurrency int
	// CachePath keeps every verdict (JSONL), so a rerun asks only what it
	// has not asked yet.
	CachePath string
}

type check struct {
	key           string
	first, second string
}

type verdict struct {
	same  bool
	text  string
	err   string
	asked bool
}

// LLMDecontaminate removes rows whose problem a model judges to be the same
// as one of its TopK most similar benchmark problems. An exact match (after
// lower-casing and collapsing whitespace) decides without asking. Removed
// rows record the benchmark problem, its similarity and how it was decided;
// a pair whose question failed leaves its rows in place with a
// `contamination_check_error` field (a rerun asks again).
func LLMDecontaminate(ctx context.Context, d *Dataset, o LLMCheckOptions) (int, error) {
	if o.TopK <= 0 {
		o.TopK = 5
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Prompt == nil {
		p, err := prompt.New("same-problem", SameProblemPrompt)
		if err != nil {
			return 0, err
		}
		o.Prompt = p
	}
	if o.Params.MaxTokens == 0 {
		o.Params.MaxTokens = 16
	}
	// Unique problems.
	var problems []string
	index := map[string]int{}
	for _, r := range d.Rows {
		p := d.Problem(r)
		if _, ok := index[p]; !ok {
			index[p] = len(problems)
			problems = append(problems, p)
		}
	}
	neighbors, err := o.Retriever.TopK(ctx, problems, o.TopK)
	if err != nil {
		return 0, err
	}
	refNorm := make([]string, len(o.Refs))
	for i, r := range o.Refs {
		refNorm[i] = normalizeProblem(r.Text)
	}
	// What to ask.
	type finding struct {
		ref    int
		score  float64
		method string
	}
	found := make([]*finding, len(problems))
	failed := make([]string, len(problems))
	var checks []check
	seen := map[string]bool{}
	add := func(a, b string) string {
		k := pairKey(a, b)
		if !seen[k] {
			seen[k] = true
			checks = append(checks, check{k, a, b})
		}
		return k
	}
	for pi, p := range problems {
		np := normalizeProblem(p)
		for _, nb := range neighbors[pi] {
			if refNorm[nb.Ref] == np {
				found[pi] = &finding{nb.Ref, nb.Score, "exact"}
				break
			}
		}
		if found[pi] != nil {
			continue
		}
		for _, nb := range neighbors[pi] {
			add(p, o.Refs[nb.Ref].Text)
			if o.BothWays {
				add(o.Refs[nb.Ref].Text, p)
			}
		}
	}
	verdicts, err := o.ask(ctx, checks)
	if err != nil {
		return 0, err
	}
	for pi, p := range problems {
		if found[pi] != nil {
			continue
		}
		for _, nb := range neighbors[pi] {
			keys := []string{pairKey(p, o.Refs[nb.Ref].Text)}
			if o.BothWays {
				keys = append(keys, pairKey(o.Refs[nb.Ref].Text, p))
			}
			for _, k := range keys {
				v := verdicts[k]
				if v.err != "" && failed[pi] == "" {
					failed[pi] = v.err
				}
				if v.same && found[pi] == nil {
					found[pi] = &finding{nb.Ref, nb.Score, "llm"}
				}
			}
		}
	}
	return d.Keep("decontaminate_llm", func(r *record.Row) (bool, string) {
		pi := index[d.Problem(r)]
		f := found[pi]
		if f == nil {
			if failed[pi] != "" {
				r.Set("contamination_check_error", failed[pi])
			}
			return true, ""
		}
		ref := o.Refs[f.ref]
		r.Set("contaminated_with", map[string]any{"source": ref.Source, "id": ref.ID, "text": clip(ref.Text, 300), "similarity": round3(f.score), "method": f.method})
		if f.method == "exact" {
			return false, fmt.Sprintf("problem is %s %s", ref.Source, ref.ID)
		}
		return false, fmt.Sprintf("model judged the problem the same as %s %s (similarity %.2f)", ref.Source, ref.ID, f.score)
	}), nil
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

func pairKey(a, b string) string {
	h := sha256.New()
	h.Write([]byte(a))
	h.Write([]byte{0})
	h.Write([]byte(b))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// ask answers the checks, from the cache where it can.
func (o *LLMCheckOptions) ask(ctx context.Context, checks []check) (map[string]verdict, error) {
	out := map[string]verdict{}
	var w *record.Writer
	if o.CachePath != "" {
		if in, err := record.Open(o.CachePath); err == nil {
			for in.Next() {
				r := in.Row()
				same, _ := r.Bool("same")
				text, _ := r.String("response")
				out[r.ID()] = verdict{same: same, text: text, asked: true}
			}
			in.Close()
			if err := in.Err(); err != nil {
				return nil, fmt.Errorf("contamination cache: %w", err)
			}
		}
		var err error
		if w, err = record.Create(o.CachePath); err != nil {
			return nil, err
		}
		defer w.Close()
	}
	var todo []check
	for _, c := range checks {
		if v, ok := out[c.key]; !ok || !v.asked {
			todo = append(todo, c)
		}
	}
	var mu sync.Mutex
	jobs := make(chan check)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				msgs, err := o.Prompt.Messages(pairFields{c.first, c.second})
				var v verdict
				if err == nil {
					req := o.Params
					req.Messages = msgs
					var resp *backend.Response
					resp, err = o.Backend.Generate(ctx, &req)
					if err == nil {
						v = verdict{same: parseTrue(resp.Text), text: resp.Text, asked: true}
					}
				}
				if ctx.Err() != nil {
					continue
				}
				if err != nil {
					v = verdict{err: strings.Join(strings.Fields(err.Error()), " ")}
				}
				mu.Lock()
				out[c.key] = v
				mu.Unlock()
				if w != nil && v.asked {
					row := &record.Row{}
					row.Set("id", c.key)
					row.Set("same", v.same)
					row.Set("response", v.text)
					w.Write(row)
				}
			}
		}()
	}
	for _, c := range todo {
		select {
		case jobs <- c:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return out, ctx.Err()
}

type pairFields [2]string

func (p pairFields) Text(k string) (string, bool) {
	switch k {
	case "first":
		return p[0], true
	case "second":
		return p[1], true
	}
	return "", false
}

// parseTrue reads a True/False verdict: the first of the two words in the
// reply decides; anything else is "not the same".
func parseTrue(s string) bool {
	l := strings.ToLower(s)
	t, f := strings.Index(l, "true"), strings.Index(l, "false")
	return t >= 0 && (f < 0 || t < f)
}
