package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// CheckTolerance is the largest relative logit error Check accepts:
// max|Δ| / max(1, max|ref|).
const CheckTolerance = 1e-4

// CheckResult compares a model with reference logits and greedy tokens.
type CheckResult struct {
	PromptTokens    int
	GenTokens       int
	PrefillMaxErr   float64 // max |Δ| over prefill_logits
	GenMaxErr       float64 // max |Δ| over gen_logits
	RefMaxAbs       float64 // max |ref| over both
	RelErr          float64 // max(PrefillMaxErr, GenMaxErr) / max(1, RefMaxAbs)
	IDMismatches    int     // greedy ids that differ from gen_ids
	FirstMismatchAt int     // index of the first differing id, -1 if none
}

// OK reports whether the model passed: relative error within
// CheckTolerance and identical greedy ids.
func (r *CheckResult) OK() bool { return r.RelErr <= CheckTolerance && r.IDMismatches == 0 }

// Check runs the reference test of a model: prefill prompt_ids and compare
// with prefill_logits, then greedily decode len(gen_ids) tokens, comparing
// each step's logits with gen_logits and each chosen id with gen_ids. The
// decode feeds the reference ids, so one wrong id does not derail the rest.
func Check(ctx context.Context, m Model, ref *safetensors.File) (*CheckResult, error) {
	get := func(name string) (*safetensors.Tensor, error) {
		t, ok := ref.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("reference: missing tensor %q", name)
		}
		return t, nil
	}
	var prompt, gen []int64
	var prefillRef, genLogits []float32
	for _, step := range []func() error{
		func() error {
			t, err := get("prompt_ids")
			if err == nil {
				prompt, err = Int64s(t)
			}
			return err
		},
		func() error {
			t, err := get("gen_ids")
			if err == nil {
				gen, err = Int64s(t)
			}
			return err
		},
		func() error {
			t, err := get("prefill_logits")
			if err == nil {
				prefillRef, err = Float32s(t)
			}
			return err
		},
		func() error {
			t, err := get("gen_logits")
			if err == nil {
				genLogits, err = Float32s(t)
			}
			return err
		},
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	V := m.Config().VocabSize
	if len(prompt) == 0 || len(prefillRef) != len(prompt)*V || len(genLogits) != len(gen)*V {
		return nil, fmt.Errorf("reference: %d prompt ids, %d prefill logits, %d gen ids, %d gen logits for vocabulary %d",
			len(prompt), len(prefillRef), len(gen), len(genLogits), V)
	}
	res := &CheckResult{PromptTokens: len(prompt), GenTokens: len(gen), FirstMismatchAt: -1}
	toInts := func(x []int64) []int {
		out := make([]int, len(x))
		for i, v := range x {
			out[i] = int(v)
		}
		return out
	}
	st := m.newState(len(prompt) + len(gen))
	all := make([]float32, len(prompt)*V)
	if err := prefill(ctx, m, st, toInts(prompt), all, nil); err != nil {
		return nil, fmt.Errorf("prefill: %w", err)
	}
	maxDiff := func(a, b []float32) (d, r float64) {
		for i := range a {
			d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
			if math.IsNaN(float64(a[i])) {
				d = math.Inf(1)
			}
			r = math.Max(r, math.Abs(float64(b[i])))
		}
		return d, r
	}
	var refMax float64
	res.PrefillMaxErr, refMax = maxDiff(all, prefillRef)
	res.RefMaxAbs = refMax

	logits := make([]float32, V)
	copy(logits, all[(len(prompt)-1)*V:])
	for i, want := range gen {
		d, r := maxDiff(logits, genLogits[i*V:(i+1)*V])
		res.GenMaxErr = math.Max(res.GenMaxErr, d)
		res.RefMaxAbs = math.Max(res.RefMaxAbs, r)
		if got := argmax(logits); got != int(want) {
			res.IDMismatches++
			if res.FirstMismatchAt < 0 {
				res.FirstMismatchAt = i
			}
		}
		if i == len(gen)-1 {
			break
		}
		if err := decodeStep(ctx, m, []state{st}, []int{int(want)}, [][]float32{logits}); err != nil {
			return nil, fmt.Errorf("decode step %d: %w", i, err)
		}
	}
	res.RelErr = math.Max(res.PrefillMaxErr, res.GenMaxErr) / math.Max(1, res.RefMaxAbs)
	return res, nil
}

// argmax returns the index of the largest value (the first on ties).
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
