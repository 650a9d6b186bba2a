package engine

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// sampleCalib writes n rows of T tokens sampled from m itself (temperature
// 1, from BOS), as {"input_ids": [...]}: calibration data on the model's
// own distribution, which random-weight fixtures need (they have no
// tokenizer and no training data).
func sampleCalib(t *testing.T, m Model, n, T int, seed uint64) string {
	t.Helper()
	cfg := m.Config()
	r := rand.New(rand.NewPCG(seed, 11))
	st := m.newState(T)
	last := make([]float32, cfg.VocabSize)
	probs := make([]float64, cfg.VocabSize)
	path := filepath.Join(t.TempDir(), "calib.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for i := 0; i < n; i++ {
		st.Reset()
		ids := []int{max(cfg.BOSTokenID, 0)}
		for len(ids) < T {
			if err := prefill(context.Background(), m, st, ids[len(ids)-1:], nil, last); err != nil {
				t.Fatal(err)
			}
			mx := float64(slices.Max(last))
			var sum float64
			for j, v := range last {
				probs[j] = math.Exp(float64(v) - mx)
				sum += probs[j]
			}
			u, next := r.Float64()*sum, 0
			for j, p := range probs {
				if u -= p; u <= 0 {
					next = j
					break
				}
			}
			ids = append(ids, next)
		}
		if err := enc.Encode(map[string]any{"input_ids": ids, "id": i}); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestProbeMatchesForward: a probe pass that records (and skips nothing)
// gives the forward pass's logits bit for bit.
func TestProbeMatchesForward(t *testing.T) {
	for _, name := range []string{"llama3_rope_scaling", "mamba2_tiny", "nemotron_h_wide_bf16", "qwen2_tiny_bf16"} {
		t.Run(name, func(t *testing.T) {
			m, err := Load(sharedFixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p, _ := asProber(m)
			V := m.Config().VocabSize
			seq := randomSeqs(5, 1, 100, V)[0] // two chunks
			want, err := sequenceLogits(context.Background(), m, m.newState(len(seq)), seq, nil)
			if err != nil {
				t.Fatal(err)
			}
			st := m.newState(len(seq))
			got := make([]float32, len(seq)*V)
			rec := newActRecorder(m.Config())
			for a := 0; a < len(seq); a += maxChunk {
				b := min(a+maxChunk, len(seq))
				rows := make([][]float32, b-a)
				for i := range rows {
					rows[i] = got[(a+i)*V : (a+i+1)*V]
				}
				p.probe(st, seq[a:b], rec, -1, rows)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("logit %d: probe %v, forward %v", i, got[i], want[i])
				}
			}
		})
	}
}

// checkPrunedFolder loads a pruned folder and checks its config against
// its tensors.
func checkPrunedFolder(t *testing.T, dir string) *Config {
	t.Helper()
	m, err := Load(dir)
	if err != nil {
		t.Fatalf("pruned model does not load: %v", err)
	}
	m.Close()
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var ts []safetensors.Tensor
	for _, n := range ck.Names() {
		tt, _ := ck.Tensor(n)
		ts = append(ts, *tt)
	}
	if err := checkTensorsMatch(cfg, ts); err != nil {
		t.Errorf("config does not match tensors: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "prune_report.json")); err != nil {
		t.Error(err)
	}
	return cfg
}

// TestPruneImportanceBeatsRandom prunes each fixture to 75% of its
// parameters and compares the KL of importance ranking with random
// pruning of the same shape.
func TestPruneImportanceBeatsRandom(t *testing.T) {
	for _, name := range []string{"llama3_rope_scaling", "mamba2_tiny", "nemotron_h_wide_bf16"} {
		t.Run(name, func(t *testing.T) {
			dir := sharedFixture(t, name)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			calib := sampleCalib(t, m, 24, 64, 1)
			m.Close()
			out := filepath.Join(t.TempDir(), "pruned")
			rep, err := Prune(context.Background(), dir, out, PruneOptions{Calib: calib, CalibField: "input_ids",
				HeldoutTokens: 512, TargetParams: 0.75, RandomSeeds: []uint64{1, 2, 3, 4, 5}})
			if err != nil {
				t.Fatal(err)
			}
			cfg := checkPrunedFolder(t, out)
			if rep.ParamsAfter > rep.ParamsBefore*3/4 || countParams(cfg) != rep.ParamsAfter {
				t.Errorf("params %d -> %d (config says %d), want <= 75%%", rep.ParamsBefore, rep.ParamsAfter, countParams(cfg))
			}
			var sum float64
			var kls []float64
			for _, r := range rep.Random {
				sum += r.KL
				kls = append(kls, r.KL)
			}
			mean := sum / float64(len(rep.Random))
			var mixes []string
			for _, c := range rep.Search {
				mixes = append(mixes, strings.Join(c.Mix, "+")+": "+formatG(c.KL))
			}
			t.Logf("%s: %d -> %d params, shape %+v; KL importance %.4f vs random mean %.4f %v; ppl %.2f -> %.2f; search %v",
				name, rep.ParamsBefore, rep.ParamsAfter, rep.Shape, rep.After.KL, mean, kls, rep.Before.Perplexity, rep.After.Perplexity, mixes)
			for _, r := range rep.Random {
				if rep.After.KL >= r.KL {
					t.Errorf("importance KL %v not below random pruning's %v (seed %d)", rep.After.KL, r.KL, r.Seed)
				}
			}
			if cfg.MambaHeads > 0 && cfg.MambaHeads%cfg.NGroups != 0 {
				t.Errorf("%d Mamba heads in %d groups", cfg.MambaHeads, cfg.NGroups)
			}
		})
	}
}

func formatG(f float64) string { b, _ := json.Marshal(math.Round(f*1e4) / 1e4); return string(b) }

// TestPruneAxes prunes each fixture along given axes and checks the
// resulting sizes, group structure, and that the written folder computes
// what the report measured.
func TestPruneAxes(t *testing.T) {
	tests := []struct {
		fixture string
		opts    PruneOptions
		check   func(t *testing.T, src, cfg *Config, rep *PruneReport)
	}{
		{"nemotron_h_wide_bf16", PruneOptions{MambaHeads: 0.5, MambaHeadDim: 0.75, FFN: 0.5, Hidden: 0.8, DropLayers: 1},
			func(t *testing.T, src, cfg *Config, rep *PruneReport) {
				if cfg.MambaHeads != src.NGroups || cfg.MambaHeadDim != 48 || cfg.IntermediateSize != 768 ||
					cfg.HiddenSize != 410 || cfg.NumLayers != 3 || cfg.NGroups != src.NGroups {
					t.Errorf("config %+v", cfg)
				}
				// Equal heads per group: one removed head in each of the 8 groups of 2.
				for _, l := range rep.Removed["per_layer"].([]map[string]any) {
					heads, ok := l["mamba_heads"].([]int)
					if !ok {
						continue
					}
					perGroup := map[int]int{}
					for _, h := range heads {
						perGroup[h/(src.MambaHeads/src.NGroups)]++
					}
					for g := 0; g < src.NGroups; g++ {
						if perGroup[g] != 1 {
							t.Errorf("layer %v: removed heads %v: group %d loses %d", l["layer"], heads, g, perGroup[g])
						}
					}
				}
			}},
		{"nemotron_h_wide_bf16", PruneOptions{Heads: 0.5, KVGroups: 0.5},
			func(t *testing.T, src, cfg *Config, rep *PruneReport) {
				if cfg.NumKVHeads != 1 || cfg.NumHeads != 2 || cfg.HeadDim != src.HeadDim {
					t.Errorf("attention %d/%d heads of %d", cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim)
				}
			}},
		{"llama3_rope_scaling", PruneOptions{FFN: 0.5, Heads: 0.5, Hidden: 0.75, DropLayers: 1},
			func(t *testing.T, src, cfg *Config, rep *PruneReport) {
				if cfg.IntermediateSize != 80 || cfg.NumHeads != 2 || cfg.NumKVHeads != 1 || cfg.HiddenSize != 48 || cfg.NumLayers != 1 || cfg.HeadDim != 16 {
					t.Errorf("config %+v", cfg)
				}
			}},
		{"qwen2_tiny_bf16", PruneOptions{FFN: 0.5, KVGroups: 0.5},
			func(t *testing.T, src, cfg *Config, rep *PruneReport) {
				if cfg.NumKVHeads != src.NumKVHeads/2 || cfg.NumHeads != src.NumHeads/2 || !cfg.AttentionBias {
					t.Errorf("config %+v", cfg)
				}
			}},
		{"mamba2_tiny", PruneOptions{MambaHeads: 0.5, MambaHeadDim: 0.5, Hidden: 0.5},
			func(t *testing.T, src, cfg *Config, rep *PruneReport) {
				if cfg.MambaHeads != 4 || cfg.MambaHeadDim != 8 || cfg.HiddenSize != 32 {
					t.Errorf("config %+v", cfg)
				}
				raw, _ := os.ReadFile(filepath.Join(rep.Source, "config.json"))
				if !strings.Contains(string(raw), `"__float__": "Infinity"`) {
					t.Error("source config changed?")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			dir := sharedFixture(t, tt.fixture)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			calib := sampleCalib(t, m, 8, 48, 2)
			out := filepath.Join(t.TempDir(), "pruned")
			opts := tt.opts
			opts.Calib, opts.CalibField, opts.HeldoutTokens = calib, "input_ids", 96
			rep, err := Prune(context.Background(), dir, out, opts)
			if err != nil {
				t.Fatal(err)
			}
			cfg := checkPrunedFolder(t, out)
			tt.check(t, m.Config(), cfg, rep)
			// The written folder computes what the report measured.
			pm, err := Load(out)
			if err != nil {
				t.Fatal(err)
			}
			defer pm.Close()
			cs, err := readCalib(context.Background(), calib, "input_ids", nil, cfg.VocabSize, 1024, 0, 96)
			if err != nil {
				t.Fatal(err)
			}
			st, err := CompareLogits(context.Background(), m, pm, cs.heldout)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(st.MeanKL-rep.After.KL) > 1e-6*max(1, rep.After.KL) {
				t.Errorf("written model's KL %v, report says %v", st.MeanKL, rep.After.KL)
			}
		})
	}
}

func TestPruneBadInput(t *testing.T) {
	dir := sharedFixture(t, "llama3_rope_scaling")
	calib := filepath.Join(t.TempDir(), "c.jsonl")
	os.WriteFile(calib, []byte(`{"text": "no tokenizer here"}`+"\n"), 0o644)
	ids := filepath.Join(t.TempDir(), "ids.jsonl")
	os.WriteFile(ids, []byte(`{"input_ids": [1, 2, 3]}`+"\n"+`{"input_ids": [1, 99999]}`+"\n"), 0o644)
	two := filepath.Join(t.TempDir(), "two.jsonl")
	os.WriteFile(two, []byte(`{"input_ids": [1, 2, 3]}`+"\n"+`{"input_ids": [1, 4, 5]}`+"\n"), 0o644)
	one := filepath.Join(t.TempDir(), "one.jsonl")
	os.WriteFile(one, []byte(`{"input_ids": [1, 2, 3]}`+"\n"), 0o644)
	tests := []struct {
		name string
		opts PruneOptions
		want string
	}{
		{"no calib", PruneOptions{FFN: 0.5}, "no calibration rows"},
		{"no target", PruneOptions{Calib: ids}, "nothing to prune"},
		{"both targets", PruneOptions{Calib: ids, FFN: 0.5, TargetParams: 0.5}, "one or the other"},
		{"fraction and count", PruneOptions{Calib: ids, TargetCount: 5, TargetParams: 0.5}, "give one"},
		{"target 1", PruneOptions{Calib: ids, TargetParams: 1}, "want a fraction"},
		{"bad fraction", PruneOptions{Calib: ids, FFN: 1.5}, "keep fraction"},
		{"text without tokenizer", PruneOptions{Calib: calib, FFN: 0.5}, "no tokenizer"},
		{"id out of range", PruneOptions{Calib: ids, CalibField: "input_ids", FFN: 0.5}, "outside the vocabulary"},
		{"one row", PruneOptions{Calib: one, CalibField: "input_ids", FFN: 0.5}, "need at least one"},
		{"missing file", PruneOptions{Calib: "/nonexistent.jsonl", FFN: 0.5}, "no such file"},
		{"no mamba", PruneOptions{Calib: two, CalibField: "input_ids", MambaHeads: 0.5, HeldoutTokens: 2}, "no mamba layers"},
		{"drop every layer", PruneOptions{Calib: two, CalibField: "input_ids", DropLayers: 2, HeldoutTokens: 2}, "at least one must stay"},
		{"count too big", PruneOptions{Calib: two, CalibField: "input_ids", TargetCount: 1 << 40, HeldoutTokens: 2}, "has"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prune(context.Background(), dir, filepath.Join(t.TempDir(), "out"), tt.opts)
			if err == nil || tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

// TestPruneCancel: a cancelled context stops the run with its error.
func TestPruneCancel(t *testing.T) {
	dir := sharedFixture(t, "nemotron_h_wide_bf16")
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	calib := sampleCalib(t, m, 4, 16, 3)
	m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	opts := PruneOptions{Calib: calib, CalibField: "input_ids", HeldoutTokens: 16, FFN: 0.5,
		Progress: func(stage string, done, total int64) { cancel() }}
	_, err = Prune(ctx, dir, filepath.Join(t.TempDir(), "out"), opts)
	if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Errorf("error %v, want context canceled", err)
	}
}

// TestDepthScoreIsDroppedLayerKL: the layer-skip KL of depth importance
// equals the KL of the checkpoint pruned of that layer, measured on the
// same rows.
func TestDepthScoreIsDroppedLayerKL(t *testing.T) {
	for _, name := range []string{"mamba2_tiny", "nemotron_h_wide_bf16", "llama3_rope_scaling"} {
		t.Run(name, func(t *testing.T) {
			dir := sharedFixture(t, name)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p, _ := asProber(m)
			cfg := m.Config()
			seqs := randomSeqs(9, 2, 40, cfg.VocabSize)
			imp, err := measureImportance(context.Background(), p, seqs, PruneOptions{DepthTokens: 1 << 20}, map[string]float64{})
			if err != nil {
				t.Fatal(err)
			}
			depth := imp.Depth
			ck, err := safetensors.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			ev, err := newPruneEvaluator(context.Background(), m, ck, seqs)
			if err != nil {
				t.Fatal(err)
			}
			for l := 0; l < cfg.NumLayers; l++ {
				s := fullShape(cfg)
				s.DroppedLayers = []int{l}
				e, err := ev.evalPlan(cfg, makePlan(cfg, s, imp, nil))
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(e.KL-depth[l]) > 1e-5*max(1, depth[l]) {
					t.Errorf("layer %d: skip KL %v, dropped-layer model KL %v", l, depth[l], e.KL)
				}
			}
		})
	}
}

// TestProbeAllocs: a recording probe pass allocates nothing.
func TestProbeAllocs(t *testing.T) {
	for _, name := range []string{"llama3_rope_scaling", "mamba2_tiny", "nemotron_h_tiny"} {
		t.Run(name, func(t *testing.T) {
			m, err := Load(sharedFixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p, _ := asProber(m)
			rec := newActRecorder(m.Config())
			st := p.newState(4096)
			tok := randomSeqs(3, 1, 8, m.Config().VocabSize)[0]
			p.probe(st, tok, rec, -1, nil)
			if n := testing.AllocsPerRun(50, func() { p.probe(st, tok, rec, -1, nil) }); n != 0 {
				t.Errorf("%v allocations per probe pass", n)
			}
		})
	}
}

// TestPruneTextCalibration prunes a random model that has a tokenizer,
// from text rows, and checks the tokenizer files travel with it.
func TestPruneTextCalibration(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, []byte(`{"architectures": ["LlamaForCausalLM"], "vocab_size": 4096, "hidden_size": 32,
		"intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
		"rms_norm_eps": 1e-5, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2}`), 0o644)
	model := filepath.Join(dir, "model")
	if _, err := InitModel(cfgPath, model, InitOptions{Seed: 3, DType: safetensors.F32, Tokenizer: "tokenizer/testdata/smollm2"}); err != nil {
		t.Fatal(err)
	}
	calib := filepath.Join(dir, "calib.jsonl")
	var rows []string
	for i := 0; i < 12; i++ {
		b, _ := json.Marshal(map[string]any{"text": strings.Repeat("The sum of 3 and 4 is 7. ", i+2)})
		rows = append(rows, string(b))
	}
	os.WriteFile(calib, []byte(strings.Join(rows, "\n")+"\n"), 0o644)
	out := filepath.Join(dir, "pruned")
	rep, err := Prune(context.Background(), model, out, PruneOptions{Calib: calib, HeldoutTokens: 40, FFN: 0.5, Heads: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	cfg := checkPrunedFolder(t, out)
	if cfg.IntermediateSize != 32 || cfg.NumHeads != 2 || cfg.NumKVHeads != 2 {
		t.Errorf("config %+v", cfg)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("tokenizer file not copied: %v", err)
		}
	}
	if rep.Calibration["tokens"].(int) == 0 || rep.Calibration["heldout_tokens"].(int) < 40 {
		t.Errorf("calibration %v", rep.Calibration)
	}
}
