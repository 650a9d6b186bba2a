package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// The size search (the MiniPuzzle idea, kept small): each architecture has
// a handful of axis mixes; for each mix, the largest common keep fraction
// r of its axes (in steps of 0.005; depth drops round((1−r)·layers)
// layers) whose model fits the parameter target gives one candidate; every
// candidate is pruned by importance, built and measured on the held-out
// rows, and the lowest KL to the original wins. A mix whose first fit
// falls below minFit of the target (coarse axes: a few layers, a few heads)
// is left out, so that models of about the same size are compared.

const minFit = 0.9

// searchMixes lists the axis mixes tried for cfg.
func searchMixes(cfg *Config, imp *PruneImportance) [][]string {
	heads := "heads"
	if cfg.NumKVHeads > 0 && cfg.NumHeads == cfg.NumKVHeads {
		heads = "kv-groups" // one query head per group: drop whole groups
	}
	switch {
	case cfg.attentionOnly():
		return [][]string{{"ffn"}, {"hidden"}, {"depth"}, {"ffn", "hidden"}, {"ffn", heads, "hidden"}, {"ffn", "hidden", "depth"}}
	case len(imp.FFN) == 0 && len(imp.Heads) == 0: // Mamba-2
		return [][]string{{"mamba-heads"}, {"mamba-head-dim"}, {"hidden"}, {"depth"}, {"mamba-heads", "hidden"}, {"mamba-head-dim", "hidden"}}
	}
	var mixes [][]string
	for _, m := range [][]string{{"ffn", "mamba-heads"}, {"ffn", "hidden"}, {"depth"}, {"ffn", "mamba-heads", "hidden"},
		{"ffn", "mamba-head-dim", "hidden"}, {"ffn", heads, "mamba-heads", "hidden"}} {
		ok := true
		for _, a := range m {
			ok = ok && (a != "ffn" || len(imp.FFN) > 0) && (a != heads || len(imp.Heads) > 0) &&
				(a != "mamba-heads" && a != "mamba-head-dim" || len(imp.Mamba) > 0)
		}
		if ok {
			mixes = append(mixes, m)
		}
	}
	return mixes
}

// mixOptions sets every axis of mix to keep fraction r.
func mixOptions(cfg *Config, mix []string, r float64) PruneOptions {
	var o PruneOptions
	for _, a := range mix {
		switch a {
		case "ffn":
			o.FFN = r
		case "heads":
			o.Heads = r
		case "kv-groups":
			o.KVGroups = r
		case "mamba-heads":
			o.MambaHeads = r
		case "mamba-head-dim":
			o.MambaHeadDim = r
		case "hidden":
			o.Hidden = r
		case "depth":
			o.DropLayers = min(cfg.NumLayers-1, int(math.Round((1-r)*float64(cfg.NumLayers))))
		}
	}
	return o
}

// searchShape runs the search and returns the candidates measured and the
// winner's shape.
func searchShape(ctx context.Context, cfg *Config, imp *PruneImportance, ev *pruneEvaluator, target int64,
	progress func(string, int64, int64)) ([]PruneCandidate, PruneShape, error) {
	if target >= countParams(cfg) {
		return nil, PruneShape{}, fmt.Errorf("target of %d parameters: the model has %d already", target, countParams(cfg))
	}
	var cands []PruneCandidate
	seen := map[string]bool{}
	for _, mix := range searchMixes(cfg, imp) {
		for r := 1.0; r > 0; r -= 0.005 {
			s, err := axisShape(cfg, imp, mixOptions(cfg, mix, r))
			if err != nil {
				return nil, s, err
			}
			n := countParams(prunedConfig(cfg, s))
			if n > target {
				continue
			}
			if float64(n) < minFit*float64(target) {
				break // too coarse an axis: no fraction lands near the target
			}
			key, _ := json.Marshal(s)
			if !seen[string(key)] {
				seen[string(key)] = true
				cands = append(cands, PruneCandidate{Mix: mix, Keep: math.Round(r*1000) / 1000, Shape: s, Params: n})
			}
			break
		}
	}
	if len(cands) == 0 {
		return nil, PruneShape{}, fmt.Errorf("no axis mix reaches %d parameters", target)
	}
	best := -1
	for i := range cands {
		if progress != nil {
			progress("search", int64(i), int64(len(cands)))
		}
		e, err := ev.evalPlan(cfg, makePlan(cfg, cands[i].Shape, imp, nil))
		if err != nil {
			return nil, PruneShape{}, err
		}
		cands[i].PruneEval = e
		if best < 0 || e.KL < cands[best].KL {
			best = i
		}
	}
	return cands, cands[best].Shape, nil
}

// prunedConfigJSON rewrites config.json for shape s: the sizes, the layer
// count and pattern, and returns the keys changed, the new file and its
// parsed config (checked against the shape).
func prunedConfigJSON(raw []byte, cfg *Config, s PruneShape) (map[string]any, []byte, *Config, error) {
	want := prunedConfig(cfg, s)
	r := rawConfigOf(raw)
	set := map[string]any{"hidden_size": want.HiddenSize}
	if _, _, ok := r.has("num_hidden_layers"); ok || cfg.Architecture != ArchNemotronH {
		set["num_hidden_layers"] = want.NumLayers // Nemotron-H may count its pattern instead
	}
	switch cfg.Architecture {
	case ArchLlama, ArchMistral, ArchQwen2:
		set["intermediate_size"] = want.IntermediateSize
		set["num_attention_heads"], set["num_key_value_heads"], set["head_dim"] = want.NumHeads, want.NumKVHeads, want.HeadDim
	case ArchMamba2:
		set["num_heads"], set["head_dim"] = want.MambaHeads, want.MambaHeadDim
		// transformers' Mamba2 mixer takes its width as int(expand·hidden):
		// make that exactly heads·head_dim.
		di := want.DInner()
		e := float64(di) / float64(want.HiddenSize)
		for int(e*float64(want.HiddenSize)) < di {
			e = math.Nextafter(e, math.Inf(1))
		}
		set["expand"] = e
	case ArchNemotronH:
		set["intermediate_size"] = want.IntermediateSize
		set["num_attention_heads"], set["num_key_value_heads"] = want.NumHeads, want.NumKVHeads
		if _, k, ok := r.has("head_dim", "attention_head_dim"); ok {
			set[k] = want.HeadDim
		}
		set["mamba_num_heads"], set["mamba_head_dim"] = want.MambaHeads, want.MambaHeadDim
		if _, _, ok := r.has("hybrid_override_pattern"); ok {
			set["hybrid_override_pattern"] = want.Pattern
		}
		if v, _, ok := r.has("layers_block_type"); ok {
			var kinds []string
			if err := json.Unmarshal(v, &kinds); err != nil {
				return nil, nil, nil, err
			}
			var kept []string
			for l, k := range kinds {
				if !slices.Contains(s.DroppedLayers, l) {
					kept = append(kept, k)
				}
			}
			set["layers_block_type"] = kept
		}
	}
	if v, _, ok := r.has("layer_types"); ok { // per-layer attention kinds (transformers v5)
		var kinds []any
		if err := json.Unmarshal(v, &kinds); err == nil && len(kinds) == cfg.NumLayers {
			var kept []any
			for l, k := range kinds {
				if !slices.Contains(s.DroppedLayers, l) {
					kept = append(kept, k)
				}
			}
			set["layer_types"] = kept
		}
	}
	newRaw, err := patchConfigJSON(raw, set)
	if err != nil {
		return nil, nil, nil, err
	}
	got, err := ParseConfig(newRaw)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pruned config: %w", err)
	}
	if got.HiddenSize != want.HiddenSize || got.IntermediateSize != want.IntermediateSize || got.NumHeads != want.NumHeads ||
		got.NumKVHeads != want.NumKVHeads || got.HeadDim != want.HeadDim || got.MambaHeads != want.MambaHeads ||
		got.MambaHeadDim != want.MambaHeadDim || got.NumLayers != want.NumLayers || got.Pattern != want.Pattern {
		return nil, nil, nil, fmt.Errorf("pruned config.json reads back as %+v, want %+v", got, want)
	}
	return set, newRaw, got, nil
}
