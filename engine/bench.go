package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// BenchOptions configure BenchEngine.
type BenchOptions struct {
	Config *Config // the model shape (see PresetConfig), for random weights
	// Dir, when set, is a model folder to bench instead (config.json and
	// safetensors, loaded as Load does; Config and DType are then ignored).
	Dir      string
	Name     string            // for the report
	DType    safetensors.DType // of the random matrices: F32 or BF16
	Threads  int               // 0: GOMAXPROCS
	Quantize string            // Options.Quantize ("int8" or "")
	Matmul   string            // Options.Matmul ("auto", "bf16" or "")
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
	Model        string `json:"model"`
	Architecture string `json:"architecture"`
	Parameters   int64  `json:"parameters"`
	DType        string `json:"dtype"`
	// Product is the arithmetic of the matrix products that ran: "f32"
	// (exact), "bf16" (bf16 products), "int8" (Options.Quantize), with
	// the auto probe's figures when it chose.
	Product       string `json:"product"`
	Threads       int    `json:"threads"`
	Kernel        string `json:"kernel"`
	WeightBytes   int64  `json:"weight_bytes"`
	BytesPerToken int64  `json:"weight_bytes_read_per_step"` // matrices read by one forward step (the embedding table is only indexed, unless tied)
	KVPerToken    int64  `json:"kv_bytes_per_token"`
	StateBytes    int64  `json:"state_bytes"`
	// ReadGBs is the machine's streaming-read bandwidth (all threads, best
	// of probes before and after the decode rows): the one figure every
	// bandwidth roofline uses.
	ReadGBs float64 `json:"read_bandwidth_gb_s"`
	// GEMMGFLOPs is the compute roof: the kernels of Product on an
	// in-cache [512x1024]x64 product, all threads.
	GEMMGFLOPs  float64 `json:"gemm_peak_gflop_s"`
	LoadAverage string  `json:"load_average,omitempty"`
	// RSS of the process, engine alone (the bench's random weights
	// released): after load, and the peak from the start of the load (a
	// folder, Dir) or from after the load (random weights, built in
	// memory first) to the end of the run. 0 where /proc is missing.
	RSSAfterLoad int64 `json:"rss_after_load_bytes"`
	PeakRSS      int64 `json:"peak_rss_bytes"`
	PeakFromLoad bool  `json:"peak_rss_includes_load"`

	PrefillTokens  int     `json:"prefill_tokens"`
	PrefillTokS    float64 `json:"prefill_tokens_s"`
	PrefillCPUTokS float64 `json:"prefill_tokens_per_cpu_s"` // tokens per CPU-second times threads
	// PrefillGFLOPs counts what prefill computes: every matrix once per
	// prompt token, attention over the positions so far, the output layer
	// once (for the last position only).
	PrefillGFLOPs float64 `json:"prefill_gflop_s"`
	PrefillRatio  float64 `json:"prefill_compute_ratio"` // PrefillGFLOPs / GEMMGFLOPs

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
	TokS      float64 `json:"tokens_s"`         // aggregate over the batch, wall clock
	CPUTokS   float64 `json:"tokens_per_cpu_s"` // aggregate per CPU-second times threads
	StepMS    float64 `json:"step_ms"`          // one decode step
	WeightGBs float64 `json:"weight_gb_s"`      // weight bytes read per second
	GFLOPs    float64 `json:"gflop_s"`          // arithmetic done per second (as computed)
	// BandwidthRoof is the tokens/s if every byte a step reads (weights
	// once, each sequence's KV cache, Mamba states read and written) moved
	// at ReadGBs; ComputeRoof the tokens/s if every FLOP ran at
	// GEMMGFLOPs. Roofline is the lower, Bound names it, Ratio =
	// TokS/Roofline.
	BandwidthRoof float64 `json:"bandwidth_roofline_tokens_s"`
	ComputeRoof   float64 `json:"compute_roofline_tokens_s"`
	Roofline      float64 `json:"roofline_tokens_s"`
	Bound         string  `json:"bound"` // "bandwidth" or "compute"
	Ratio         float64 `json:"roofline_ratio"`
	MemPerSeq     int64   `json:"memory_per_sequence_bytes"` // bytes one sequence's state holds (KV caches with room for the measured steps, Mamba state)
}

// BenchEngine builds a model of opts.Config with random weights (or loads
// opts.Dir) and times prefill and decode on it, next to the machine's
// read bandwidth and the arithmetic peak of the product the model runs.
func BenchEngine(ctx context.Context, opts BenchOptions) (*BenchResult, error) {
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	say := func(format string, a ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, a...))
		}
	}
	mm, err := ResolveMatmul(opts.Matmul)
	if err != nil {
		return nil, err
	}
	eo := Options{Threads: threads, Quantize: opts.Quantize, Matmul: opts.Matmul, KVCache: opts.KVCache}
	var m Model
	dt := opts.DType
	fromLoad := opts.Dir != ""
	if fromLoad {
		if dt, err = folderDType(opts.Dir); err != nil {
			return nil, err
		}
	}
	peakDType, pairs := kernel.DType(dt), false
	switch {
	case opts.Quantize == "int8":
		peakDType = kernel.Q8
	case dt == safetensors.BF16:
		pairs = mm.Product == "bf16"
	default:
		peakDType = kernel.F32 // bf16 products apply to bf16 matrices only
	}
	// The probes run before the model is built and after the decode rows,
	// outside the peak RSS measured (their buffers are not the engine's).
	const probe = 512 << 20
	readBW := kernel.ReadBandwidth(threads, probe, 3) / 1e9
	gemm := kernel.GEMMPeak(threads, 3, peakDType, pairs) / 1e9
	if fromLoad {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		if m, err = LoadWith(opts.Dir, eo); err != nil {
			return nil, err
		}
	} else {
		ck, err := randomCheckpoint(opts.Config, dt, opts.Seed)
		if err != nil {
			return nil, err
		}
		if m, err = newModel(opts.Config, ck, eo); err != nil {
			return nil, err
		}
		// Let go of the random tensors the model copied (a matrix that it
		// still reads from the checkpoint keeps its bytes alive), so that
		// the memory measured is the engine's, as if loaded from a folder.
		for _, name := range ck.Names() {
			t, _ := ck.Tensor(name)
			t.Data = nil
		}
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
	}
	defer m.Close()
	cfg := m.Config()
	info := m.Info()
	res := &BenchResult{Model: opts.Name, Architecture: cfg.Architecture, Parameters: info.Parameters,
		DType: string(dt), Threads: threads, Kernel: kernel.Active(), WeightBytes: info.WeightBytes,
		KVPerToken: info.KVBytesPerToken, StateBytes: info.StateBytes, LoadAverage: loadAverage(),
		RSSAfterLoad: rssBytes("VmRSS:"), PeakFromLoad: fromLoad}
	embBytes := int64(cfg.VocabSize) * int64(cfg.HiddenSize) * int64(dt.Size())
	switch {
	case opts.Quantize == "int8":
		res.DType += "->int8"
		res.Product = "int8"
		embBytes = int64(cfg.VocabSize) * int64(cfg.HiddenSize) * (kernel.Q8Block + 4) / kernel.Q8Block
	case dt == safetensors.BF16:
		res.Product = mm.String()
	default:
		res.Product = "f32"
	}
	if opts.KVCache == "bf16" {
		res.DType += " (bf16 KV cache)"
	}
	res.BytesPerToken = info.WeightBytes
	if !cfg.TieEmbeddings {
		res.BytesPerToken -= embBytes
	}
	fl := newFlopCount(cfg, info.Parameters)
	res.ReadGBs, res.GEMMGFLOPs = readBW, gemm
	say("probes: read bandwidth %.1f GB/s (probed again after the decode rows; the result keeps the best), GEMM peak %.0f GFLOP/s of %s products (%d threads, %s kernels)", res.ReadGBs, res.GEMMGFLOPs, res.Product, threads, res.Kernel)

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
		res.PrefillGFLOPs = fl.prefill(opts.Prefill) / wall / 1e9
		res.PrefillRatio = res.PrefillGFLOPs / res.GEMMGFLOPs
		say("prefill %d tokens: %.1f tokens/s (%.1f per CPU-second x %d), %.0f GFLOP/s (%.0f%% of the compute peak)",
			opts.Prefill, res.PrefillTokS, res.PrefillCPUTokS, threads, res.PrefillGFLOPs, 100*res.PrefillRatio)
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
			d.CPUTokS *= float64(threads)
			d.WeightGBs = float64(res.BytesPerToken) * d.TokS / float64(b) / 1e9
			d.GFLOPs = fl.decode(ctxLen) * d.TokS / 1e9
			res.Decode = append(res.Decode, d)
			say("decode batch %d context %d: %.1f tokens/s (%.1f per CPU-second x %d), %.1f GB/s of weights, %.0f GFLOP/s, %.1f MiB per sequence",
				b, ctxLen, d.TokS, d.CPUTokS, threads, d.WeightGBs, d.GFLOPs, float64(d.MemPerSeq)/(1<<20))
		}
	}
	res.PeakRSS = rssBytes("VmHWM:")
	if len(res.Decode) > 0 {
		res.ReadGBs = max(res.ReadGBs, kernel.ReadBandwidth(threads, probe, 3)/1e9)
	}
	for i := range res.Decode {
		d := &res.Decode[i]
		b, c := float64(d.Batch), d.Context
		bytesPerStep := float64(res.BytesPerToken) + b*float64(c)*float64(info.KVBytesPerToken) + b*2*float64(info.StateBytes)
		d.BandwidthRoof = b * res.ReadGBs * 1e9 / bytesPerStep
		d.ComputeRoof = res.GEMMGFLOPs * 1e9 / fl.decode(c)
		d.Roofline, d.Bound = d.BandwidthRoof, "bandwidth"
		if d.ComputeRoof < d.BandwidthRoof {
			d.Roofline, d.Bound = d.ComputeRoof, "compute"
		}
		d.Ratio = d.TokS / d.Roofline
	}
	return res, nil
}

// flopCount counts the arithmetic of a forward pass as the engine does it.
type flopCount struct {
	body    float64 // multiply-adds of the matrices every token runs (no embedding lookup, no output layer)
	head    float64 // of the output layer, for a token that wants logits
	attnPer float64 // attention multiply-adds per position attended, all attention layers
	window  int     // positions attended at most (0: all)
	mamba   float64 // Mamba-2 scan and conv per token, all Mamba layers
}

func newFlopCount(cfg *Config, params int64) flopCount {
	vd := float64(cfg.VocabSize) * float64(cfg.HiddenSize)
	f := flopCount{head: vd, window: cfg.SlidingWindow}
	f.body = float64(params) - vd // the embedding table
	if !cfg.TieEmbeddings {
		f.body -= vd // the output layer's own matrix
	}
	attn, mamba := cfg.NumLayers, 0
	if !cfg.attentionOnly() {
		attn = strings.Count(cfg.Pattern, string(rune(LayerAttention)))
		mamba = strings.Count(cfg.Pattern, string(rune(LayerMamba)))
	}
	// q·k and p·v: nq·hd multiply-adds each per position attended.
	f.attnPer = float64(attn) * 2 * float64(cfg.NumHeads*cfg.HeadDim)
	// State update (h = h·dA + dt·x·B) and output (y = C·h) over H·P·N,
	// and the causal conv over ConvDim channels.
	f.mamba = float64(mamba) * (3*float64(cfg.DInner()*cfg.StateSize) + float64(cfg.ConvDim()*cfg.ConvKernel))
	return f
}

// attended is the positions a token at position pos attends to.
func (f flopCount) attended(pos int) float64 {
	if f.window > 0 {
		return float64(min(pos+1, f.window))
	}
	return float64(pos + 1)
}

// prefill is the FLOPs of prefilling n tokens, logits for the last only.
func (f flopCount) prefill(n int) float64 {
	var attn float64
	for p := 0; p < n; p++ {
		attn += f.attended(p)
	}
	return 2 * (float64(n)*(f.body+f.mamba) + f.attnPer*attn + f.head)
}

// decode is the FLOPs of one decode token at a context of ctxLen tokens.
func (f flopCount) decode(ctxLen int) float64 {
	return 2 * (f.body + f.mamba + f.head + f.attnPer*f.attended(ctxLen))
}

// folderDType is the dtype of the largest tensor of the checkpoint in
// dir (reading only the headers).
func folderDType(dir string) (safetensors.DType, error) {
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return "", fmt.Errorf("bench %s: %w", dir, err)
	}
	defer ck.Close()
	var dt safetensors.DType
	var most int
	for _, name := range ck.Names() {
		if t, _ := ck.Tensor(name); len(t.Data) > most {
			dt, most = t.DType, len(t.Data)
		}
	}
	return dt, nil
}

// rssBytes reads a memory field of /proc/self/status ("VmRSS:",
// "VmHWM:") in bytes; 0 where there is none.
func rssBytes(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS restarts VmHWM from the current RSS (Linux: "5" to
// /proc/self/clear_refs); elsewhere it does nothing.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

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
