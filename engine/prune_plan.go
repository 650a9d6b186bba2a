package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// PruneShape is the size of a pruned model along each axis (what is
// kept): the hidden size, FFN width, KV groups and query heads per group,
// Mamba heads per B/C group and head channels, and the layers dropped
// (original numbering).
type PruneShape struct {
	Hidden        int   `json:"hidden_size"`
	FFN           int   `json:"intermediate_size,omitempty"`
	KVGroups      int   `json:"num_key_value_heads,omitempty"`
	HeadsPerGroup int   `json:"heads_per_kv_group,omitempty"`
	MambaPerGroup int   `json:"mamba_heads_per_group,omitempty"`
	MambaHeadDim  int   `json:"mamba_head_dim,omitempty"`
	DroppedLayers []int `json:"dropped_layers"`
}

// fullShape is cfg's own shape.
func fullShape(cfg *Config) PruneShape {
	s := PruneShape{Hidden: cfg.HiddenSize, FFN: cfg.IntermediateSize, DroppedLayers: []int{}}
	if cfg.NumKVHeads > 0 {
		s.KVGroups, s.HeadsPerGroup = cfg.NumKVHeads, cfg.NumHeads/cfg.NumKVHeads
	}
	if cfg.MambaHeads > 0 {
		s.MambaPerGroup, s.MambaHeadDim = cfg.MambaHeads/cfg.NGroups, cfg.MambaHeadDim
	}
	return s
}

// prunedConfig is cfg with the shape's sizes and the layers left.
func prunedConfig(cfg *Config, s PruneShape) *Config {
	c := *cfg
	c.HiddenSize, c.IntermediateSize = s.Hidden, s.FFN
	if cfg.NumKVHeads > 0 {
		c.NumKVHeads, c.NumHeads = s.KVGroups, s.KVGroups*s.HeadsPerGroup
	}
	if cfg.MambaHeads > 0 {
		c.MambaHeads, c.MambaHeadDim = s.MambaPerGroup*cfg.NGroups, s.MambaHeadDim
	}
	c.NumLayers = cfg.NumLayers - len(s.DroppedLayers)
	if cfg.Pattern != "" {
		var sb strings.Builder
		for l := 0; l < cfg.NumLayers; l++ {
			if !slices.Contains(s.DroppedLayers, l) {
				sb.WriteByte(cfg.Pattern[l])
			}
		}
		c.Pattern = sb.String()
	}
	return &c
}

// countParams is the number of parameters of cfg's checkpoint.
func countParams(cfg *Config) int64 {
	specs, err := checkpointSpecs(cfg)
	if err != nil {
		return 0
	}
	var n int64
	for i := range specs {
		n += specs[i].numElements()
	}
	return n
}

// prunePlan says which indices of each axis survive (sorted, original
// numbering).
type prunePlan struct {
	shape  PruneShape
	hidden []int
	layers []int         // kept layers
	ffn    map[int][]int // per layer: kept FFN neurons
	qHeads map[int][]int // per attention layer: kept query heads
	kv     map[int][]int // per attention layer: kept KV groups
	mHeads map[int][]int // per Mamba layer: kept heads
	mDims  map[int][]int // per Mamba layer: kept channels of each head
}

// PruneImportance holds the scores a plan is ranked by (higher: more
// important), as measured on the calibration rows; maps are keyed by the
// layer's original index.
type PruneImportance struct {
	Hidden []float64         `json:"hidden"`
	FFN    map[int][]float64 `json:"ffn,omitempty"`     // per layer, per neuron
	Heads  map[int][]float64 `json:"heads,omitempty"`   // per attention layer, per query head
	Mamba  map[int][]float64 `json:"mamba_x,omitempty"` // per Mamba layer, per x channel (head·P + p)
	Depth  []float64         `json:"depth_kl"`          // per layer: KL to the full model with the layer skipped
	BI     []float64         `json:"block_influence"`   // per layer: mean 1 − cos(input, output)
}

// topK returns the indices of the k largest scores, sorted ascending
// (ties: the lower index).
func topK(scores []float64, k int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	idx = idx[:k]
	sort.Ints(idx)
	return idx
}

// randomK returns k random indices of n, sorted.
func randomK(r *rand.Rand, n, k int) []int {
	idx := r.Perm(n)[:k]
	sort.Ints(idx)
	return idx
}

func l2(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// makePlan picks what to keep for shape s: by the scores (imp), or at
// random with r (the baseline of the same shape) when r is non-nil.
//
//   - hidden channels, FFN neurons: the top by score;
//   - KV groups: the top by the L2 norm of their heads' scores; in each kept
//     group the top query heads, the same number per group;
//   - Mamba head channels: the top by the L2 norm over heads of each
//     channel's score, the same set for every head; then in each of the G
//     B/C groups the top heads by the L2 norm of their kept channels, the
//     same number per group (ModelOpt's _estimate_head_and_head_dim_rankings);
//   - layers: the ones in s.DroppedLayers go (at random: as many random
//     layers, so a Nemotron-H baseline may drop other kinds of layer).
func makePlan(cfg *Config, s PruneShape, imp *PruneImportance, r *rand.Rand) *prunePlan {
	p := &prunePlan{shape: s, ffn: map[int][]int{}, qHeads: map[int][]int{}, kv: map[int][]int{},
		mHeads: map[int][]int{}, mDims: map[int][]int{}}
	pick := func(scores []float64, n, k int) []int {
		if r != nil {
			return randomK(r, n, k)
		}
		return topK(scores, k)
	}
	if r != nil && len(s.DroppedLayers) > 0 { // random layers too, as many
		s.DroppedLayers = randomK(r, cfg.NumLayers, len(s.DroppedLayers))
		p.shape = s
	}
	p.hidden = pick(imp.Hidden, cfg.HiddenSize, s.Hidden)
	for l := 0; l < cfg.NumLayers; l++ {
		if slices.Contains(s.DroppedLayers, l) {
			continue
		}
		p.layers = append(p.layers, l)
		if sc, ok := imp.FFN[l]; ok {
			p.ffn[l] = pick(sc, cfg.IntermediateSize, s.FFN)
		}
		if sc, ok := imp.Heads[l]; ok {
			hpg := cfg.NumHeads / cfg.NumKVHeads
			group := make([]float64, cfg.NumKVHeads)
			for g := range group {
				group[g] = l2(sc[g*hpg : (g+1)*hpg])
			}
			p.kv[l] = pick(group, cfg.NumKVHeads, s.KVGroups)
			for _, g := range p.kv[l] {
				for _, h := range pick(sc[g*hpg:(g+1)*hpg], hpg, s.HeadsPerGroup) {
					p.qHeads[l] = append(p.qHeads[l], g*hpg+h)
				}
			}
		}
		if sc, ok := imp.Mamba[l]; ok {
			H, P, G := cfg.MambaHeads, cfg.MambaHeadDim, cfg.NGroups
			dimScore := make([]float64, P)
			for pp := range dimScore {
				var ss float64
				for h := 0; h < H; h++ {
					ss += sc[h*P+pp] * sc[h*P+pp]
				}
				dimScore[pp] = math.Sqrt(ss)
			}
			p.mDims[l] = pick(dimScore, P, s.MambaHeadDim)
			hpg := H / G
			for g := 0; g < G; g++ {
				hs := make([]float64, hpg)
				for j := range hs {
					var ss float64
					for _, pp := range p.mDims[l] {
						v := sc[(g*hpg+j)*P+pp]
						ss += v * v
					}
					hs[j] = math.Sqrt(ss)
				}
				for _, j := range pick(hs, hpg, s.MambaPerGroup) {
					p.mHeads[l] = append(p.mHeads[l], g*hpg+j)
				}
			}
		}
	}
	return p
}

// channels expands kept heads of width w into kept channels.
func channels(heads []int, w int) []int {
	out := make([]int, 0, len(heads)*w)
	for _, h := range heads {
		for j := 0; j < w; j++ {
			out = append(out, h*w+j)
		}
	}
	return out
}

// mambaChannels is the kept x channels (head·P + p) of a Mamba layer.
func (p *prunePlan) mambaChannels(cfg *Config, l int) []int {
	var out []int
	for _, h := range p.mHeads[l] {
		for _, pp := range p.mDims[l] {
			out = append(out, h*cfg.MambaHeadDim+pp)
		}
	}
	return out
}

// mambaInProj is the kept rows of in_proj (z | x | B | C | dt) and of the
// conv (x | B | C): B and C stay whole (groups are never removed).
func (p *prunePlan) mambaInProj(cfg *Config, l int) (inProj, conv []int) {
	ch := p.mambaChannels(cfg, l)
	di, gn := cfg.DInner(), cfg.NGroups*cfg.StateSize
	for _, c := range ch {
		inProj = append(inProj, c)
	}
	for _, c := range ch {
		inProj = append(inProj, di+c)
		conv = append(conv, c)
	}
	for j := 0; j < 2*gn; j++ {
		inProj = append(inProj, 2*di+j)
		conv = append(conv, di+j)
	}
	for _, h := range p.mHeads[l] {
		inProj = append(inProj, 2*di+2*gn+h)
	}
	return inProj, conv
}

var layerName = regexp.MustCompile(`^(.*\blayers\.)(\d+)\.(.+)$`)

// pruneTensor returns the name and the data of tensor t in the pruned
// checkpoint (keep false when its layer is dropped).
// With dry set, only the name and shape are computed (Data stays nil).
func (p *prunePlan) pruneTensor(cfg *Config, t *safetensors.Tensor, dry bool) (name string, out safetensors.Tensor, keep bool, err error) {
	m := layerName.FindStringSubmatch(t.Name)
	if m == nil { // embeddings, final norm, LM head
		switch {
		case strings.HasSuffix(t.Name, "norm.weight") || strings.HasSuffix(t.Name, "norm_f.weight"):
			out, err = selectTensor(t, p.hidden, nil, dry)
		case len(t.Shape) == 2 && t.Shape[1] == cfg.HiddenSize:
			out, err = selectTensor(t, nil, p.hidden, dry)
		default:
			err = fmt.Errorf("prune: tensor %s %v: not understood", t.Name, t.Shape)
		}
		return t.Name, out, err == nil, err
	}
	l, _ := strconv.Atoi(m[2])
	newL := slices.Index(p.layers, l)
	if l >= cfg.NumLayers {
		return "", out, false, fmt.Errorf("prune: tensor %s: layer %d of %d", t.Name, l, cfg.NumLayers)
	}
	if newL < 0 {
		return "", out, false, nil
	}
	name = m[1] + strconv.Itoa(newL) + "." + m[3]
	suffix := m[3]
	module, _, _ := strings.Cut(suffix[strings.Index(suffix, ".")+1:], ".")
	isBias := strings.HasSuffix(suffix, ".bias")
	hd := cfg.HeadDim
	var rows, cols []int
	switch {
	case suffix == "input_layernorm.weight" || suffix == "post_attention_layernorm.weight" || suffix == "norm.weight":
		rows = p.hidden
	case module == "q_proj":
		rows, cols = channels(p.qHeads[l], hd), p.hidden
	case module == "k_proj" || module == "v_proj":
		rows, cols = channels(p.kv[l], hd), p.hidden
	case module == "o_proj" || module == "down_proj" || module == "out_proj":
		rows = p.hidden
		switch module {
		case "o_proj":
			cols = channels(p.qHeads[l], hd)
		case "down_proj":
			cols = p.ffn[l]
		default:
			cols = p.mambaChannels(cfg, l)
		}
	case module == "gate_proj" || module == "up_proj":
		rows, cols = p.ffn[l], p.hidden
	case module == "in_proj":
		rows, _ = p.mambaInProj(cfg, l)
		cols = p.hidden
	case module == "conv1d":
		_, rows = p.mambaInProj(cfg, l)
	case module == "dt_bias" || module == "A_log" || module == "D":
		rows = p.mHeads[l]
	case module == "norm": // the Mamba gated norm
		rows = p.mambaChannels(cfg, l)
	default:
		return "", out, false, fmt.Errorf("prune: tensor %s %v: not understood", t.Name, t.Shape)
	}
	if isBias {
		cols = nil
	}
	out, err = selectTensor(t, rows, cols, dry)
	out.Name = name
	return name, out, err == nil, err
}

// selectTensor keeps the given indices of dimension 0 (rows) and 1 (cols)
// of t (nil: all), copying the raw bytes in t's dtype (only the shape when
// dry).
func selectTensor(t *safetensors.Tensor, rows, cols []int, dry bool) (safetensors.Tensor, error) {
	out := safetensors.Tensor{Name: t.Name, DType: t.DType, Shape: slices.Clone(t.Shape)}
	if len(t.Shape) == 0 || (cols != nil && len(t.Shape) < 2) {
		return out, fmt.Errorf("prune: tensor %s: shape %v has too few dimensions", t.Name, t.Shape)
	}
	es := t.DType.Size()
	inner := es // bytes of one [.., i, j, ...] element past dim 1
	for _, d := range t.Shape[min(2, len(t.Shape)):] {
		inner *= d
	}
	n0, n1 := t.Shape[0], 1
	if len(t.Shape) > 1 {
		n1 = t.Shape[1]
	}
	if rows == nil {
		rows = seqInts(n0)
	}
	if cols == nil {
		cols = seqInts(n1)
	}
	for _, i := range rows {
		if i >= n0 {
			return out, fmt.Errorf("prune: tensor %s: row %d of %d", t.Name, i, n0)
		}
	}
	for _, j := range cols {
		if j >= n1 {
			return out, fmt.Errorf("prune: tensor %s: column %d of %d", t.Name, j, n1)
		}
	}
	out.Shape[0] = len(rows)
	if len(t.Shape) > 1 {
		out.Shape[1] = len(cols)
	}
	if dry {
		return out, nil
	}
	out.Data = make([]byte, 0, len(rows)*len(cols)*inner)
	for _, i := range rows {
		base := i * n1 * inner
		for _, j := range cols {
			out.Data = append(out.Data, t.Data[base+j*inner:base+(j+1)*inner]...)
		}
	}
	return out, nil
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
