package engine

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
	"github.com/crucible-ml/crucible/engine/tokenizer"
)

func loadTest(t *testing.T, name string) Model {
	t.Helper()
	return loadTestWith(t, name, Options{})
}

func loadTestWith(t *testing.T, name string, opts Options) Model {
	t.Helper()
	m, err := LoadWith(filepath.Join("testdata/models", name), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func refIDs(t *testing.T, name, tensor string) []int {
	t.Helper()
	f, err := safetensors.Open(filepath.Join("testdata/models", name, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tt, _ := f.Tensor(tensor)
	v, err := Int64s(tt)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(v))
	for i := range v {
		out[i] = int(v[i])
	}
	return out
}

// TestGenerateGreedyMatchesReference: greedy GenerateBatch reproduces the
// reference continuations, alone and batched with other sequences.
func TestGenerateGreedyMatchesReference(t *testing.T) {
	for _, name := range []string{"llama_tiny", "mamba2_tiny", "nemotron_h_tiny"} {
		t.Run(name, func(t *testing.T) {
			m := loadTest(t, name)
			prompt, want := refIDs(t, name, "prompt_ids"), refIDs(t, name, "gen_ids")
			other := GenRequest{Prompt: []int{1, 5, 6, 7}, MaxTokens: 5, Sampling: SamplingParams{Temperature: 1, Seed: 3}}
			reqs := []GenRequest{other, {Prompt: prompt, MaxTokens: len(want)}, other}
			res, err := GenerateBatch(context.Background(), m, nil, reqs)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res[1].Tokens, want) || res[1].FinishReason != FinishLength {
				t.Errorf("greedy tokens %v (%s), want %v", res[1].Tokens, res[1].FinishReason, want)
			}
			if !slices.Equal(res[0].Tokens, res[2].Tokens) {
				t.Errorf("equal seeded requests differ: %v vs %v", res[0].Tokens, res[2].Tokens)
			}
			alone, err := GenerateBatch(context.Background(), m, nil, reqs[:1])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(alone[0].Tokens, res[0].Tokens) {
				t.Errorf("batched %v, alone %v", res[0].Tokens, alone[0].Tokens)
			}
		})
	}
}

func TestGenerateEOSAndStopStrings(t *testing.T) {
	m := loadTest(t, "qwen2_tiny_bf16")
	tok, err := tokenizer.Load("tokenizer/testdata/bpe_qwen2")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prompt := tok.Encode("If Tom has 3 apples", false)
	base := GenRequest{Prompt: prompt, MaxTokens: 40, Sampling: SamplingParams{Temperature: 0.8, Seed: 7}}
	full, err := GenerateBatch(ctx, m, tok, []GenRequest{base})
	if err != nil {
		t.Fatal(err)
	}
	r := full[0]
	if len(r.Tokens) != 40 || r.FinishReason != FinishLength {
		t.Fatalf("got %d tokens (%s)", len(r.Tokens), r.FinishReason)
	}
	if r.Text != tok.Decode(r.Tokens, true) {
		t.Fatalf("text %q, decode %q", r.Text, tok.Decode(r.Tokens, true))
	}

	// EOS: stop at the 5th generated token's id.
	eos := base
	eos.EOS = []int{r.Tokens[4]}
	first := slices.Index(r.Tokens, r.Tokens[4])
	res, _ := GenerateBatch(ctx, m, tok, []GenRequest{eos})
	if len(res[0].Tokens) != first+1 || res[0].FinishReason != FinishStop || res[0].Text != tok.Decode(r.Tokens[:first], true) {
		t.Errorf("EOS: %d tokens (%s) %q", len(res[0].Tokens), res[0].FinishReason, res[0].Text)
	}

	// A stop string that spans a token boundary: the last 2 bytes of the
	// decoded 6th token and the first 2 of the 7th... chosen from the text.
	prefix := tok.Decode(r.Tokens[:6], true)
	if len(prefix) < 3 || len(r.Text) < len(prefix)+2 {
		t.Skipf("generated text too short: %q", r.Text)
	}
	stop := r.Text[len(prefix)-2 : len(prefix)+2]
	cut := strings.Index(r.Text, stop)
	withStop := base
	withStop.Stop = []string{"never-there", stop}
	res, _ = GenerateBatch(ctx, m, tok, []GenRequest{withStop})
	if res[0].Text != r.Text[:cut] || res[0].FinishReason != FinishStop || res[0].StopString != stop {
		t.Errorf("stop %q: text %q (%s, %q), want %q", stop, res[0].Text, res[0].FinishReason, res[0].StopString, r.Text[:cut])
	}
}

func TestSampler(t *testing.T) {
	logits := []float32{1, 3, 2, -1, 0.5}
	tests := []struct {
		name string
		p    SamplingParams
		want []int // every draw must be one of these
	}{
		{"greedy", SamplingParams{}, []int{1}},
		{"top-k 1", SamplingParams{Temperature: 1, TopK: 1}, []int{1}},
		{"top-k 2", SamplingParams{Temperature: 5, TopK: 2}, []int{1, 2}},
		{"top-p small", SamplingParams{Temperature: 1, TopP: 0.1}, []int{1}},
		{"min-p", SamplingParams{Temperature: 1, MinP: 0.3}, []int{1, 2}}, // p(2)/p(1) = e^-1 ≈ 0.37
		{"tiny temperature", SamplingParams{Temperature: 1e-3}, []int{1}},
		{"all", SamplingParams{Temperature: 1}, []int{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSampler(tt.p)
			seen := map[int]bool{}
			for i := 0; i < 2000; i++ {
				l := slices.Clone(logits)
				got := s.Sample(l, nil)
				if !slices.Contains(tt.want, got) {
					t.Fatalf("drew %d, want one of %v", got, tt.want)
				}
				seen[got] = true
			}
			if len(seen) != len(tt.want) {
				t.Errorf("drew only %v of %v", seen, tt.want)
			}
		})
	}
}

func TestSamplerDistributionAndSeed(t *testing.T) {
	logits := []float32{0, float32(math.Log(3))} // p = 0.25, 0.75
	s := newSampler(SamplingParams{Temperature: 1, Seed: 42})
	n1 := 0
	var draws []int
	for i := 0; i < 20000; i++ {
		d := s.Sample(slices.Clone(logits), nil)
		draws = append(draws, d)
		n1 += d
	}
	if f := float64(n1) / 20000; math.Abs(f-0.75) > 0.02 {
		t.Errorf("frequency of token 1 = %.3f, want 0.75", f)
	}
	s2 := newSampler(SamplingParams{Temperature: 1, Seed: 42})
	for i, want := range draws[:100] {
		if got := s2.Sample(slices.Clone(logits), nil); got != want {
			t.Fatalf("draw %d: same seed gave %d then %d", i, want, got)
		}
	}
}

func TestRepetitionPenalty(t *testing.T) {
	logits := []float32{2, -2, 1.5, 0}
	s := newSampler(SamplingParams{RepetitionPenalty: 2})
	got := s.Sample(logits, []int{0, 1, 0})
	want := []float32{1, -4, 1.5, 0}
	if !slices.Equal(logits, want) || got != 2 {
		t.Errorf("logits %v (picked %d), want %v (picked 2)", logits, got, want)
	}
}

// TestBatcher runs many concurrent requests through a Batcher and checks
// each gets what it would get alone.
func TestBatcher(t *testing.T) {
	m := loadTest(t, "nemotron_h_tiny")
	ctx := context.Background()
	var reqs []GenRequest
	for i := 0; i < 12; i++ {
		reqs = append(reqs, GenRequest{Prompt: []int{1, 10 + i, 20 + i}, MaxTokens: 3 + i%5,
			Sampling: SamplingParams{Temperature: float64(i % 3), Seed: uint64(i)}})
	}
	want, err := GenerateBatch(ctx, m, nil, reqs)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatcher(m, nil, 4)
	defer b.Close()
	got := make([]*GenResult, len(reqs))
	errs := make([]error, len(reqs))
	done := make(chan int)
	for i := range reqs {
		go func() {
			got[i], errs[i] = b.Generate(ctx, reqs[i])
			done <- i
		}()
	}
	for range reqs {
		<-done
	}
	for i := range reqs {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if !slices.Equal(got[i].Tokens, want[i].Tokens) || got[i].FinishReason != want[i].FinishReason {
			t.Errorf("request %d: batcher %v, alone %v", i, got[i].Tokens, want[i].Tokens)
		}
	}
	// A canceled request returns its context's error; a bad one an error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Generate(cctx, reqs[0]); err == nil {
		t.Error("canceled request succeeded")
	}
	if _, err := b.Generate(ctx, GenRequest{Prompt: []int{100000}, MaxTokens: 1}); err == nil {
		t.Error("out-of-vocabulary prompt accepted")
	}
}

// TestSamplerFiltersMatchBruteForce compares the candidate set left by the
// top-k / top-p / min-p filters with a plain sort-everything version.
func TestSamplerFiltersMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for trial := 0; trial < 300; trial++ {
		V := 50 + rng.IntN(500)
		logits := make([]float32, V)
		for i := range logits {
			logits[i] = float32(rng.NormFloat64() * (0.5 + 3*rng.Float64()))
		}
		p := SamplingParams{Temperature: 0.3 + rng.Float64()*1.5}
		switch trial % 4 {
		case 0:
			p.TopK = 1 + rng.IntN(40)
		case 1:
			p.TopP = rng.Float64()
		case 2:
			p.TopK, p.TopP = 1+rng.IntN(40), rng.Float64()
		case 3:
			p.TopP, p.MinP = rng.Float64(), rng.Float64()*0.5
		}
		s := newSampler(p)
		s.Sample(slices.Clone(logits), nil)
		got := slices.Clone(s.cand)
		slices.Sort(got)

		// Brute force: softmax, sort all, cut.
		type cp struct {
			id int
			p  float64
		}
		mx := logits[argmax(logits)]
		var all []cp
		var sum float64
		for i, l := range logits {
			e := math.Exp(float64((l - mx) * float32(1/p.Temperature)))
			all = append(all, cp{i, e})
			sum += e
		}
		slices.SortFunc(all, func(a, b cp) int {
			if a.p != b.p {
				if a.p > b.p {
					return -1
				}
				return 1
			}
			return a.id - b.id
		})
		if p.TopK > 0 && p.TopK < len(all) {
			all = all[:p.TopK]
		}
		if p.TopP > 0 && p.TopP < 1 {
			var total, acc float64
			for _, c := range all {
				total += c.p
			}
			for i, c := range all {
				acc += c.p
				if acc >= p.TopP*total {
					all = all[:i+1]
					break
				}
			}
		}
		if p.MinP > 0 {
			cut := p.MinP * all[0].p
			n := 0
			for _, c := range all {
				if c.p >= cut {
					all[n] = c
					n++
				}
			}
			all = all[:n]
		}
		var want []int
		for _, c := range all {
			want = append(want, c.id)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			// float32 vs float64 rounding may move a token sitting exactly on a cut.
			if d := len(got) - len(want); d < -1 || d > 1 {
				t.Fatalf("trial %d %+v: candidates %v, want %v", trial, p, got, want)
			}
		}
	}
}

func TestSamplerAllocs(t *testing.T) {
	logits := make([]float32, 50000)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	s := newSampler(SamplingParams{Temperature: 0.7, TopP: 0.9, MinP: 0.01, RepetitionPenalty: 1.1})
	hist := []int{1, 2, 3}
	s.Sample(slices.Clone(logits), hist)
	work := slices.Clone(logits)
	if n := testing.AllocsPerRun(20, func() { copy(work, logits); s.Sample(work, hist) }); n != 0 {
		t.Errorf("Sample allocates %v times", n)
	}
}

func TestHugeMaxTokensAllocatesLittle(t *testing.T) {
	m := loadTest(t, "nemotron_h_tiny")
	req := GenRequest{Prompt: []int{1, 2, 3}, MaxTokens: 1 << 40, EOS: nil}
	s, err := newSeq(m, nil, &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cap(s.history) > 4096 {
		t.Errorf("history capacity %d", cap(s.history))
	}
}
