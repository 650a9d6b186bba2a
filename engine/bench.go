package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// BenchOptions configure BenchEngine.
type BenchOptions struct {
	Config   *Config           // the model shape (see PresetConfig)
	Name     string            // for the report
	DType    safetensors.DType // of the matrices: F32 or BF16
	Threads  int               // 0: GOMAXPROCS
	Quantize string            // Options.Quantize ("int8" or "")
	Matmul   string            // Options.Matmul ("bf16" or "")
	KVCache  string            // Options.KVCache ("bf16" or "")
	Batches  []int             // sequences per decode step
	Contexts []int             // tokens already in each sequence's cache
	Prefill  int               // prompt length of the prefill measurement (0: skip)
	Steps    int               // decode steps per measurement
	Seed     uint64
	// Samples, when > 0, measures Samples continuations of one prompt of
	// SamplesPrompt tokens (SamplesTokens new tokens each) through a
	// Batcher, against one: forking makes them cost one prefill.
	Samples, SamplesPrompt, SamplesTokens int
	// Progress, when set, is told about each measurement as it ends.
	Progress func(msg string)
}

// BenchResult is what `crucible bench engine` reports.
type BenchResult struct {
	Model         string  `json:"model"`
	Architecture  string  `json:"architecture"`
	Parameters    int64   `json:"parameters"`
	DType         string  `json:"dtype"`
	Threads       int     `json:"threads"`
	Kernel        string  `json:"kernel"`
	WeightBytes   int64   `json:"weight_bytes"`
	BytesPerToken int64   `json:"weight_bytes_read_per_step"` // matrices read by one forward step (the embedding table is only indexed, unless tied)
	KVPerToken    int64   `json:"kv_bytes_per_token"`
	StateBytes    int64   `json:"state_bytes"`
	ReadGBs       float64 `json:"read_bandwidth_gb_s"` // streaming read, all threads, best of the run
	GEMMGFLOPs    float64 `json:"gemm_peak_gflop_s"`   // the kernels on an in-cache [512x1024]x64 product
	LoadAverage   string  `json:"load_average,omitempty"`

	PrefillTokens  int     `json:"prefill_tokens"`
	PrefillTokS    float64 `json:"prefill_tokens_s"`
	PrefillCPUTokS float64 `json:"prefill_tokens_per_cpu_s"` // tokens per CPU-second times threads
	PrefillGFLOPs  float64 `json:"prefill_gflop_s"`

	Decode []BenchDecode `json:"decode"`

	Fork *BenchFork `json:"fork,omitempty"`
}

// BenchFork compares k samples of one prompt with one sample.
type BenchFork struct {
	Samples       int     `json:"samples"`
	PromptTokens  int     `json:"prompt_tokens"`
	NewTokens     int     `json:"new_tokens"`
	OneSeconds    float64 `json:"one_sample_s"`
	AllSeconds    float64 `json:"all_samples_s"`
	Ratio         float64 `json:"ratio"` // AllSeconds / OneSeconds
	OneCPUSeconds float64 `json:"one_sample_cpu_s"`
	AllCPUSeconds float64 `json:"all_samples_cpu_s"`
	CPURatio      float64 `json:"cpu_ratio"`
	PrefilledToks int64   `json:"prefilled_tokens"` // prompt tokens run through the model for all samples
}

// BenchDecode is one decode measurement.
type BenchDecode struct {
	Batch     int     `json:"batch"`
	Context   int     `json:"context"`
	TokS      float64 `json:"tokens_s"`            // aggregate over the batch, wall clock
	CPUTokS   float64 `json:"tokens_per_cpu_s"`    // aggregate per CPU-second times threads
	StepMS    float64 `json:"step_ms"`             // one decode step
	WeightGBs float64 `json:"weight_gb_s"`         // weight bytes read per second
	ReadGBs   float64 `json:"read_bandwidth_gb_s"` // streaming read measured just before
	// Roofline is the tokens/s if every byte read per step (weights once,
	// plus each sequence's KV cache) moved at ReadGBs; Ratio = TokS/Roofline.
	Roofline  float64 `json:"roofline_tokens_s"`
	Ratio     float64 `json:"roofline_ratio"`
	MemPerSeq int64   `json:"memory_per_sequence_bytes"` // bytes one sequence's state holds (KV caches with room for the measured steps, Mamba state)
}

// BenchEngine builds a model of opts.Config with random weights and times
// prefill and decode on it, next to the machine's read bandwidth and the
// kernels' arithmetic peak.
func BenchEngine(ctx context.Context, opts BenchOptions) (*BenchResult, error) {
	cfg := opts.Config
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	say := func(format string, a ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, a...))
		}
	}
	ck, err := randomCheckpoint(cfg, opts.DType, opts.Seed)
	if err != nil {
		return nil, err
	}
	m, err := newModel(cfg, ck, Options{Threads: threads, Quantize: opts.Quantize, Matmul: opts.Matmul, KVCache: opts.KVCache})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	info := m.Info()
	dtype := string(opts.DType)
	embBytes := int64(cfg.VocabSize) * int64(cfg.HiddenSize) * int64(opts.DType.Size())
	if opts.Matmul == "bf16" {
		dtype += " (bf16 products)"
	}
	if opts.KVCache == "bf16" {
		dtype += " (bf16 KV cache)"
	}
	if opts.Quantize == "int8" {
		dtype += "->int8"
		embBytes = int64(cfg.VocabSize) * int64(cfg.HiddenSize) * (kernel.Q8Block + 4) / kernel.Q8Block
	}
	res := &BenchResult{Model: opts.Name, Architecture: cfg.Architecture, Parameters: info.Parameters,
		DType: dtype, Threads: threads, Kernel: kernel.Active(), WeightBytes: info.WeightBytes,
		KVPerToken: info.KVBytesPerToken, StateBytes: info.StateBytes, LoadAverage: loadAverage()}
	res.BytesPerToken = info.WeightBytes
	if !cfg.TieEmbeddings {
		res.BytesPerToken -= embBytes
	}
	const probe = 512 << 20
	res.ReadGBs = kernel.ReadBandwidth(threads, probe, 3) / 1e9
	res.GEMMGFLOPs = kernel.GEMMPeak(threads, 3, opts.Matmul) / 1e9
	say("read bandwidth %.1f GB/s, GEMM peak %.0f GFLOP/s (%d threads, %s)", res.ReadGBs, res.GEMMGFLOPs, threads, res.Kernel)

	rng := rand.New(rand.NewPCG(opts.Seed, 7))
	if opts.Prefill > 0 {
		prompt := make([]int, opts.Prefill)
		for i := range prompt {
			prompt[i] = rng.IntN(cfg.VocabSize)
		}
		st := m.newState(opts.Prefill)
		last := make([]float32, cfg.VocabSize)
		// Warm up (workspace, pages of the weights), then time.
		if err := prefill(ctx, m, st, prompt[:min(len(prompt), maxChunk)], nil, last); err != nil {
			return nil, err
		}
		st.Reset()
		c0, t0 := cpuTime(), time.Now()
		if err := prefill(ctx, m, st, prompt, nil, last); err != nil {
			return nil, err
		}
		wall, cpu := time.Since(t0).Seconds(), cpuTime()-c0
		res.PrefillTokens = opts.Prefill
		res.PrefillTokS = float64(opts.Prefill) / wall
		res.PrefillCPUTokS = float64(opts.Prefill) / (cpu / float64(threads))
		res.PrefillGFLOPs = 2 * float64(info.Parameters) * float64(opts.Prefill) / wall / 1e9
		say("prefill %d tokens: %.1f tokens/s (%.1f per CPU-second x %d)", opts.Prefill, res.PrefillTokS, res.PrefillCPUTokS, threads)
	}

	if opts.Samples > 0 {
		f, err := benchFork(ctx, m, opts, rng)
		if err != nil {
			return nil, err
		}
		res.Fork = f
		say("%d samples of one %d-token prompt: %.2fs vs %.2fs for one (x%.2f; CPU x%.2f), %d prompt tokens prefilled",
			f.Samples, f.PromptTokens, f.AllSeconds, f.OneSeconds, f.Ratio, f.CPURatio, f.PrefilledToks)
	}

	steps := max(opts.Steps, 1)
	for _, ctxLen := range opts.Contexts {
		for _, b := range opts.Batches {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			d, err := benchDecode(ctx, m, b, ctxLen, steps, rng)
			if err != nil {
				return nil, err
			}
			d.ReadGBs = kernel.ReadBandwidth(threads, probe, 2) / 1e9
			res.ReadGBs = max(res.ReadGBs, d.ReadGBs)
			d.CPUTokS *= float64(threads)
			d.WeightGBs = float64(res.BytesPerToken) * d.TokS / float64(b) / 1e9
			bytesPerStep := float64(res.BytesPerToken) + float64(b)*float64(ctxLen)*float64(info.KVBytesPerToken)
			d.Roofline = float64(b) * d.ReadGBs * 1e9 / bytesPerStep
			d.Ratio = d.TokS / d.Roofline
			res.Decode = append(res.Decode, d)
			say("decode batch %d context %d: %.1f tokens/s (%.1f per CPU-second x %d), %.1f GB/s of weights, roofline %.1f (%.0f%%), %.1f MiB per sequence",
				b, ctxLen, d.TokS, d.CPUTokS, threads, d.WeightGBs, d.Roofline, 100*d.Ratio, float64(d.MemPerSeq)/(1<<20))
		}
	}
	return res, nil
}

// benchFork times one, then opts.Samples, continuations of one prompt
// through a fresh Batcher each (so no prefix cache carries over).
func benchFork(ctx context.Context, m Model, opts BenchOptions, rng *rand.Rand) (*BenchFork, error) {
	prompt := make([]int, max(opts.SamplesPrompt, 1))
	for i := range prompt {
		prompt[i] = rng.IntN(m.Config().VocabSize)
	}
	f := &BenchFork{Samples: opts.Samples, PromptTokens: len(prompt), NewTokens: max(opts.SamplesTokens, 1)}
	run := func(k int) (wall, cpu float64, prefilled int64, err error) {
		b := newBatcherWith(m, nil, max(k, 1), batcherOptions{PrefixCacheBytes: -1})
		defer b.Close()
		errs := make(chan error, k)
		c0, t0 := cpuTime(), time.Now()
		for i := 0; i < k; i++ {
			go func() {
				_, err := b.Generate(ctx, GenRequest{Prompt: prompt, MaxTokens: f.NewTokens,
					Sampling: SamplingParams{Temperature: 0.8, Seed: uint64(i)}})
				errs <- err
			}()
		}
		for i := 0; i < k; i++ {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		return time.Since(t0).Seconds(), cpuTime() - c0, b.Stats().PromptTokens.Load(), err
	}
	var err error
	if f.OneSeconds, f.OneCPUSeconds, _, err = run(1); err != nil {
		return nil, err
	}
	if f.AllSeconds, f.AllCPUSeconds, f.PrefilledToks, err = run(opts.Samples); err != nil {
		return nil, err
	}
	f.Ratio = f.AllSeconds / f.OneSeconds
	f.CPURatio = f.AllCPUSeconds / f.OneCPUSeconds
	return f, nil
}

// benchDecode times steps decode steps of b sequences whose caches hold
// ctxLen random positions.
func benchDecode(ctx context.Context, m Model, b, ctxLen, steps int, rng *rand.Rand) (BenchDecode, error) {
	cfg := m.Config()
	states := make([]state, b)
	var mem int64
	for i := range states {
		states[i] = m.newState(ctxLen + steps + 2)
		fillRandom(states[i], ctxLen, uint64(i))
		mem += stateBytes(states[i])
	}
	d := BenchDecode{Batch: b, Context: ctxLen, MemPerSeq: mem / int64(b)}
	tokens := make([]int, b)
	logits := make([][]float32, b)
	for i := range logits {
		logits[i] = make([]float32, cfg.VocabSize)
		tokens[i] = rng.IntN(cfg.VocabSize)
	}
	if err := decodeStep(ctx, m, states, tokens, logits); err != nil { // warm up
		return d, err
	}
	c0, t0 := cpuTime(), time.Now()
	for s := 0; s < steps; s++ {
		if err := decodeStep(ctx, m, states, tokens, logits); err != nil {
			return d, err
		}
	}
	wall, cpu := time.Since(t0).Seconds(), cpuTime()-c0
	d.TokS = float64(b*steps) / wall
	d.CPUTokS = float64(b*steps) / cpu
	d.StepMS = 1000 * wall / float64(steps)
	runtime.KeepAlive(states)
	return d, nil
}

// loadAverage is /proc/loadavg's first three fields, if readable.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
