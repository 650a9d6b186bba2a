package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/engine/safetensors"
	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// PruneOptions configure Prune. A size target (TargetParams or
// TargetCount) and the per-axis fractions are exclusive; one of them is
// required.
type PruneOptions struct {
	Calib         string // JSON Lines file of calibration rows
	CalibField    string // the field with text (tokenized with DIR's tokenizer) or token ids; "text" when empty
	CalibTokens   int    // tokens to measure importance on (0: every row after the held-out ones)
	HeldoutTokens int    // tokens held out for KL and perplexity, taken first (0: 2048)
	SeqLen        int    // tokens per row at most (0: 1024)
	DepthTokens   int    // calibration tokens for the layer-skip KL (0: 2048)

	// TargetParams is the fraction of today's parameters to keep (0 < f < 1);
	// TargetCount a parameter count. A small search picks the axis mix.
	TargetParams float64
	TargetCount  int64

	// Per-axis keep fractions (0: the axis is not pruned) and layers to drop.
	FFN, Heads, KVGroups, MambaHeads, MambaHeadDim, Hidden float64
	DropLayers                                             int

	// RandomSeeds, when set, also measure random pruning of the chosen
	// shape, once per seed, for the report.
	RandomSeeds []uint64

	// Progress, when set, is told each stage's progress.
	Progress func(stage string, done, total int64)
}

// PruneEval is a pruned model measured against the original on the
// held-out rows.
type PruneEval struct {
	KL         float64 `json:"kl"`         // mean KL(original ‖ pruned) per position, nats
	Perplexity float64 `json:"perplexity"` // of the held-out next tokens
	Top1Agree  float64 `json:"top1_agree"` // positions with the original's argmax
}

// PruneCandidate is one shape the size search measured.
type PruneCandidate struct {
	Mix    []string   `json:"mix"`
	Keep   float64    `json:"keep_fraction"`
	Shape  PruneShape `json:"shape"`
	Params int64      `json:"params"`
	PruneEval
}

// PruneReport is prune_report.json.
type PruneReport struct {
	Source       string             `json:"source"`
	Architecture string             `json:"architecture"`
	ParamsBefore int64              `json:"params_before"`
	ParamsAfter  int64              `json:"params_after"`
	Target       string             `json:"target"`
	Shape        PruneShape         `json:"shape"`
	Config       map[string]any     `json:"config_changes"`
	Calibration  map[string]any     `json:"calibration"`
	Importance   *PruneImportance   `json:"importance"`
	Removed      map[string]any     `json:"removed"`
	Search       []PruneCandidate   `json:"search,omitempty"`
	Before       PruneEval          `json:"before"`
	After        PruneEval          `json:"after"`
	Random       []PruneRandomEval  `json:"random_baseline,omitempty"`
	Seconds      map[string]float64 `json:"seconds"`
}

// PruneRandomEval is random pruning of the same shape with one seed.
type PruneRandomEval struct {
	Seed uint64 `json:"seed"`
	PruneEval
}

// Prune writes into out a structurally pruned copy of the Llama/Qwen2,
// Mamba-2 or Nemotron-H model in dir, ranked by activation importance
// (Minitron; Minitron-SSM's group-aware Mamba pruning) measured by forward
// passes over calibration rows, and prune_report.json.
//
// Importance (ModelOpt's estimators: per row the mean |a| over its tokens,
// L2 over rows): FFN neurons by the down projection's input; attention
// heads by the output projection's input (L2 over a head's channels; a KV
// group by the L2 of its heads), query heads pruned equally in every
// group; embedding channels by the outputs of every RMSNorm; Mamba head
// channels and heads by the x rows of in_proj's output, the same channels
// kept in every head and the same number of heads in every B/C group
// (groups and the state size stay whole); layers by the KL to the full
// model when the layer is skipped (block influence, 1 − cos, is reported
// too).
//
// With a size target, the search tries each axis mix of the architecture
// (e.g. FFN only, hidden only, depth only, FFN + hidden, ...): for each,
// the largest common keep fraction of its axes that fits the target, then
// the mix whose pruned model has the lowest KL on the held-out rows wins.
// The pruned checkpoint keeps the source's dtype and tensor names, has a
// config.json with the new sizes and layer pattern (everything else byte
// for byte), and the tokenizer files copied.
func Prune(ctx context.Context, dir, out string, opts PruneOptions) (*PruneReport, error) {
	t0 := time.Now()
	rep, err := prune(ctx, dir, out, opts)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	rep.Seconds["total"] = time.Since(t0).Seconds()
	return rep, nil
}

func prune(ctx context.Context, dir, out string, opts PruneOptions) (*PruneReport, error) {
	if err := checkPruneTargets(&opts); err != nil {
		return nil, err
	}
	if err := checkOutputDir(out); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	if cfg.mambaSSM {
		return nil, fmt.Errorf("%w: a mamba_ssm-format config (convert it to transformers' Mamba2Config first)", ErrUnsupported)
	}
	if _, _, ok := rawConfigOf(raw).has("quantization_config"); ok {
		return nil, fmt.Errorf("%s is quantized: prune the unquantized model", dir)
	}
	m, err := Load(dir)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	pm, err := asProber(m)
	if err != nil {
		return nil, err
	}
	var tok *tokenizer.Tokenizer
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err == nil {
		if tok, err = tokenizer.Load(dir); err != nil {
			return nil, err
		}
	}
	cs, err := readCalib(ctx, opts.Calib, opts.CalibField, tok, cfg.VocabSize, opts.SeqLen, opts.CalibTokens, opts.HeldoutTokens)
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{Source: dir, Architecture: cfg.Architecture, ParamsBefore: countParams(cfg), Seconds: map[string]float64{},
		Calibration: map[string]any{"file": opts.Calib, "field": opts.CalibField, "rows": len(cs.calib), "tokens": cs.calibTokens,
			"heldout_rows": len(cs.heldout), "heldout_tokens": cs.heldoutTokens, "rows_skipped": cs.skipped}}

	imp, err := measureImportance(ctx, pm, cs.calib, opts, rep.Seconds)
	if err != nil {
		return nil, err
	}
	rep.Importance = imp

	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	ev, err := newPruneEvaluator(ctx, pm, ck, cs.heldout)
	if err != nil {
		return nil, err
	}
	rep.Before = ev.base

	t := time.Now()
	var shape PruneShape
	if opts.TargetParams > 0 || opts.TargetCount > 0 {
		target := opts.TargetCount
		rep.Target = fmt.Sprintf("%d parameters", target)
		if opts.TargetParams > 0 {
			target = int64(opts.TargetParams * float64(rep.ParamsBefore))
			rep.Target = fmt.Sprintf("%.4g of %d parameters", opts.TargetParams, rep.ParamsBefore)
		}
		if rep.Search, shape, err = searchShape(ctx, cfg, imp, ev, target, opts.Progress); err != nil {
			return nil, err
		}
	} else {
		rep.Target = "per axis"
		if shape, err = axisShape(cfg, imp, opts); err != nil {
			return nil, err
		}
	}
	rep.Seconds["search"] = time.Since(t).Seconds()
	plan := makePlan(cfg, shape, imp, nil)
	newCfg := prunedConfig(cfg, shape)
	rep.Shape, rep.ParamsAfter = shape, countParams(newCfg)
	if rep.After, err = ev.evalPlan(cfg, plan); err != nil {
		return nil, err
	}
	for i, seed := range opts.RandomSeeds {
		if opts.Progress != nil {
			opts.Progress("random baseline", int64(i), int64(len(opts.RandomSeeds)))
		}
		rp := makePlan(cfg, shape, imp, rand.New(rand.NewPCG(seed, 0x9a11)))
		e, err := ev.evalPlan(cfg, rp)
		if err != nil {
			return nil, err
		}
		rep.Random = append(rep.Random, PruneRandomEval{Seed: seed, PruneEval: e})
	}
	rep.Removed = removedSummary(cfg, plan)

	t = time.Now()
	changes, err := writePruned(ctx, dir, out, raw, cfg, plan, ck)
	if err != nil {
		return nil, err
	}
	rep.Config = changes
	rep.Seconds["write"] = time.Since(t).Seconds()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(out, "prune_report.json"), b); err != nil {
		return nil, err
	}
	return rep, nil
}

// checkPruneTargets validates the targets and fills defaults.
func checkPruneTargets(o *PruneOptions) error {
	if o.Calib == "" {
		return fmt.Errorf("no calibration rows (a JSON Lines file)")
	}
	if o.CalibField == "" {
		o.CalibField = "text"
	}
	if o.HeldoutTokens == 0 {
		o.HeldoutTokens = 2048
	}
	if o.SeqLen == 0 {
		o.SeqLen = 1024
	}
	if o.DepthTokens == 0 {
		o.DepthTokens = 2048
	}
	if o.CalibTokens < 0 || o.HeldoutTokens < 0 || o.SeqLen < 2 || o.DepthTokens < 0 {
		return fmt.Errorf("calibration tokens %d, held-out %d, sequence length %d, depth tokens %d: want positive sizes",
			o.CalibTokens, o.HeldoutTokens, o.SeqLen, o.DepthTokens)
	}
	size := o.TargetParams > 0 || o.TargetCount > 0
	axes := o.FFN > 0 || o.Heads > 0 || o.KVGroups > 0 || o.MambaHeads > 0 || o.MambaHeadDim > 0 || o.Hidden > 0 || o.DropLayers > 0
	switch {
	case o.TargetParams > 0 && o.TargetCount > 0:
		return fmt.Errorf("a target as a fraction and as a count: give one")
	case size && axes:
		return fmt.Errorf("a size target and per-axis fractions: give one or the other")
	case !size && !axes:
		return fmt.Errorf("nothing to prune: give a size target or per-axis fractions")
	case o.TargetParams < 0 || o.TargetParams >= 1 || o.TargetCount < 0:
		return fmt.Errorf("target %v / %d: want a fraction in (0, 1) or a positive count", o.TargetParams, o.TargetCount)
	case o.DropLayers < 0:
		return fmt.Errorf("--drop-layers %d: want a count >= 0", o.DropLayers)
	}
	for name, f := range map[string]float64{"ffn": o.FFN, "heads": o.Heads, "kv-groups": o.KVGroups, "mamba-heads": o.MambaHeads,
		"mamba-head-dim": o.MambaHeadDim, "hidden": o.Hidden} {
		if f < 0 || f > 1 {
			return fmt.Errorf("--%s %v: want a keep fraction in (0, 1]", name, f)
		}
	}
	return nil
}

// keepCount is round(f·n), at least 1 (n when f is 0: not pruned).
func keepCount(n int, f float64) int {
	if f <= 0 {
		return n
	}
	return max(1, min(n, int(math.Round(f*float64(n)))))
}

// axisShape is the shape of per-axis fractions.
func axisShape(cfg *Config, imp *PruneImportance, o PruneOptions) (PruneShape, error) {
	s := fullShape(cfg)
	s.Hidden = keepCount(cfg.HiddenSize, o.Hidden)
	hasFFN, hasAttn, hasMamba := len(imp.FFN) > 0, len(imp.Heads) > 0, len(imp.Mamba) > 0
	for _, c := range []struct {
		set  bool
		has  bool
		name string
	}{{o.FFN > 0, hasFFN, "ffn"}, {o.Heads > 0 || o.KVGroups > 0, hasAttn, "heads"}, {o.MambaHeads > 0 || o.MambaHeadDim > 0, hasMamba, "mamba"}} {
		if c.set && !c.has {
			return s, fmt.Errorf("%s: the model has no %s layers", cfg.Architecture, c.name)
		}
	}
	if hasFFN {
		s.FFN = keepCount(cfg.IntermediateSize, o.FFN)
	}
	if hasAttn {
		s.KVGroups = keepCount(cfg.NumKVHeads, o.KVGroups)
		s.HeadsPerGroup = keepCount(cfg.NumHeads/cfg.NumKVHeads, o.Heads)
	}
	if hasMamba {
		s.MambaPerGroup = keepCount(cfg.MambaHeads/cfg.NGroups, o.MambaHeads)
		s.MambaHeadDim = keepCount(cfg.MambaHeadDim, o.MambaHeadDim)
	}
	if o.DropLayers >= cfg.NumLayers {
		return s, fmt.Errorf("--drop-layers %d of %d layers: at least one must stay", o.DropLayers, cfg.NumLayers)
	}
	s.DroppedLayers = leastImportantLayers(imp.Depth, o.DropLayers)
	return s, nil
}

// leastImportantLayers is the k layers whose skipping changes the output
// least, sorted.
func leastImportantLayers(depth []float64, k int) []int {
	neg := make([]float64, len(depth))
	for i, d := range depth {
		neg[i] = -d
	}
	return topK(neg, k)
}

// removedSummary lists what the plan removes.
func removedSummary(cfg *Config, p *prunePlan) map[string]any {
	drop := func(n int, kept []int) []int {
		out := []int{}
		for i := 0; i < n; i++ {
			if !slices.Contains(kept, i) {
				out = append(out, i)
			}
		}
		return out
	}
	layers := []map[string]any{}
	for _, l := range p.layers {
		e := map[string]any{"layer": l, "kind": string(rune(layerKind(cfg, l)))}
		if k, ok := p.ffn[l]; ok {
			e["ffn_neurons"] = drop(cfg.IntermediateSize, k)
		}
		if k, ok := p.qHeads[l]; ok {
			e["query_heads"] = drop(cfg.NumHeads, k)
			e["kv_groups"] = drop(cfg.NumKVHeads, p.kv[l])
		}
		if k, ok := p.mHeads[l]; ok {
			e["mamba_heads"] = drop(cfg.MambaHeads, k)
			e["mamba_head_channels"] = drop(cfg.MambaHeadDim, p.mDims[l])
		}
		layers = append(layers, e)
	}
	return map[string]any{"hidden_channels": drop(cfg.HiddenSize, p.hidden), "layers": p.shape.DroppedLayers, "per_layer": layers}
}

// writePruned writes the pruned checkpoint, the tokenizer files and the
// config (last), after checking that the config's tensors are the ones
// written.
func writePruned(ctx context.Context, dir, out string, raw []byte, cfg *Config, p *prunePlan, ck *safetensors.Checkpoint) (map[string]any, error) {
	changes, newRaw, newCfg, err := prunedConfigJSON(raw, cfg, p.shape)
	if err != nil {
		return nil, err
	}
	header, err := p.pruneCheckpoint(ctx, cfg, ck, true)
	if err != nil {
		return nil, err
	}
	if err := checkTensorsMatch(newCfg, header); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	// Tensor by tensor: one pruned tensor in memory at a time.
	err = writeSafetensorsAtomic(filepath.Join(out, "model.safetensors"), header, func(enc *safetensors.Encoder) error {
		for _, name := range ck.Names() {
			if err := ctx.Err(); err != nil {
				return err
			}
			t, _ := ck.Tensor(name)
			_, nt, keep, err := p.pruneTensor(cfg, t, false)
			if err != nil {
				return err
			}
			if !keep {
				continue
			}
			if _, err := enc.Write(nt.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := copyTokenizerFiles(dir, out); err != nil {
		return nil, err
	}
	return changes, writeFileAtomic(filepath.Join(out, "config.json"), newRaw)
}

// pruneCheckpoint applies the plan to every tensor of ck, in name order
// (names and shapes only when dry).
func (p *prunePlan) pruneCheckpoint(ctx context.Context, cfg *Config, ck *safetensors.Checkpoint, dry bool) ([]safetensors.Tensor, error) {
	var out []safetensors.Tensor
	for _, name := range ck.Names() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, _ := ck.Tensor(name)
		_, nt, keep, err := p.pruneTensor(cfg, t, dry)
		if err != nil {
			return nil, err
		}
		if keep {
			out = append(out, nt)
		}
	}
	return out, nil
}

// checkTensorsMatch checks that tensors are exactly the ones cfg's
// checkpoint holds (names, ignoring the prefix, and shapes).
func checkTensorsMatch(cfg *Config, tensors []safetensors.Tensor) error {
	specs, err := checkpointSpecs(cfg)
	if err != nil {
		return err
	}
	want := map[string][]int{}
	for _, s := range specs {
		want[trimPrefix(s.name)] = s.shape
	}
	for _, t := range tensors {
		shape, ok := want[trimPrefix(t.Name)]
		if !ok && trimPrefix(t.Name) == "lm_head.weight" && cfg.TieEmbeddings {
			continue // a tied head stored anyway: loaders ignore it
		}
		if !ok {
			return fmt.Errorf("pruned tensor %s is not in the pruned config's checkpoint", t.Name)
		}
		if !slices.Equal(shape, t.Shape) {
			return fmt.Errorf("pruned tensor %s: shape %v, the pruned config wants %v", t.Name, t.Shape, shape)
		}
		delete(want, trimPrefix(t.Name))
	}
	for name := range want {
		return fmt.Errorf("the pruned config wants tensor %s, which is missing", name)
	}
	return nil
}

func trimPrefix(name string) string {
	for _, p := range []string{"backbone.", "model."} {
		if strings.HasPrefix(name, p) {
			return name[len(p):]
		}
	}
	return name
}
