package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// QuantizeFP8Options configure QuantizeFP8.
type QuantizeFP8Options struct {
	// PerTensor writes one scale per weight (ModelOpt quant_algo "FP8")
	// instead of one per output channel ("FP8_PER_CHANNEL_PER_TOKEN", the
	// default, which loses less).
	PerTensor bool
	// Exclude lists module names (e.g. "model.layers.0.mlp.down_proj") or
	// name substrings whose weights stay in their dtype.
	Exclude []string
	// Progress, when set, is told the tensors written so far.
	Progress func(done, total int)
}

// QuantizeFP8Result describes the folder QuantizeFP8 wrote.
type QuantizeFP8Result struct {
	Quantized, Kept int   // weights made FP8; tensors copied as they were
	Bytes           int64 // size of the new model.safetensors
	MaxRelErr       float64
	Files           []string
}

// QuantizeFP8 writes into out a ModelOpt-style FP8 copy of the model in
// dir: the weight of every linear projection inside the layers (q/k/v/o,
// gate/up/down, Mamba in_proj/out_proj: 2-D tensors named *_proj.weight)
// becomes F8_E4M3 q with a float32 NAME.weight_scale s, w ≈ q·s, where s is
// amax/448 of each output row ([out]) or of the whole tensor ([] with
// PerTensor), and q = E4M3(w/s), rounded to nearest even and saturated.
// Embeddings, the LM head, norms, conv and SSM parameters stay as they are
// (ModelOpt's default exclusions). config.json gains a quantization_config
// {quant_method: modelopt, quant_algo, kv_cache_quant_algo: null,
// exclude_modules}, and hf_quant_config.json holds the same under
// "quantization", the two places vLLM's ModelOpt loader reads. Activations
// are not quantized (no input_scale): per-channel weights go with dynamic
// per-token activation scales in vLLM; per-tensor ones run there as
// weight-only FP8 without a static input scale. Tokenizer files and
// generation_config.json are copied; config.json is written last.
func QuantizeFP8(ctx context.Context, dir, out string, opts QuantizeFP8Options) (*QuantizeFP8Result, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if _, err := ParseConfig(raw); err != nil {
		return nil, fmt.Errorf("quantize: %s: %w", dir, err)
	}
	if _, _, ok := (rawConfigOf(raw)).has("quantization_config"); ok {
		return nil, fmt.Errorf("quantize: %s is already quantized (config.json has quantization_config)", dir)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	defer ck.Close()
	if err := checkOutputDir(out); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}

	names := ck.Names()
	res := &QuantizeFP8Result{}
	var header []safetensors.Tensor
	quant := map[string]bool{}
	var excluded []string
	for _, name := range names {
		t, _ := ck.Tensor(name)
		if t.DType.IsFP8() || strings.HasSuffix(name, "_scale") || strings.HasSuffix(name, "_scale_inv") {
			return nil, fmt.Errorf("quantize: %s holds FP8 tensors already (%s)", dir, name)
		}
		module := strings.TrimSuffix(name, ".weight")
		if !isProjection(name, t) {
			header = append(header, safetensors.Tensor{Name: name, DType: t.DType, Shape: t.Shape})
			if strings.HasSuffix(name, ".weight") && len(t.Shape) == 2 {
				excluded = append(excluded, module)
			}
			res.Kept++
			continue
		}
		if excludedBy(module, opts.Exclude) {
			header = append(header, safetensors.Tensor{Name: name, DType: t.DType, Shape: t.Shape})
			excluded = append(excluded, module)
			res.Kept++
			continue
		}
		switch t.DType {
		case safetensors.F32, safetensors.BF16, safetensors.F16:
		default:
			return nil, fmt.Errorf("quantize: tensor %s: dtype %s: want F32, BF16 or F16", name, t.DType)
		}
		quant[name] = true
		scaleShape := []int{t.Shape[0]}
		if opts.PerTensor {
			scaleShape = []int{}
		}
		header = append(header, safetensors.Tensor{Name: name, DType: safetensors.F8E4M3, Shape: t.Shape},
			safetensors.Tensor{Name: module + ".weight_scale", DType: safetensors.F32, Shape: scaleShape})
		res.Quantized++
	}
	if res.Quantized == 0 {
		return nil, fmt.Errorf("quantize: %s: no linear projection weights to quantize", dir)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	path := filepath.Join(out, "model.safetensors")
	err = writeSafetensorsAtomic(path, header, func(enc *safetensors.Encoder) error {
		for i := 0; i < len(header); i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			h := header[i]
			t, _ := ck.Tensor(h.Name)
			if !quant[h.Name] {
				if _, err := enc.Write(t.Data); err != nil {
					return err
				}
			} else {
				q, scale, relErr, err := quantizeE4M3(t, opts.PerTensor)
				if err != nil {
					return err
				}
				res.MaxRelErr = math.Max(res.MaxRelErr, relErr)
				sb := make([]byte, 4*len(scale))
				for j, s := range scale {
					binary.LittleEndian.PutUint32(sb[4*j:], math.Float32bits(s))
				}
				if _, err := enc.Write(q); err != nil {
					return err
				}
				if _, err := enc.Write(sb); err != nil {
					return err
				}
				i++ // the scale
			}
			if opts.Progress != nil {
				opts.Progress(i+1, len(header))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if st, err := os.Stat(path); err == nil {
		res.Bytes = st.Size()
	}
	res.Files = append(res.Files, "model.safetensors")

	algo := "FP8_PER_CHANNEL_PER_TOKEN"
	if opts.PerTensor {
		algo = "FP8"
	}
	if !slices.Contains(excluded, "lm_head") {
		excluded = append(excluded, "lm_head") // tied or not, the head stays unquantized (ModelOpt's default)
	}
	qc := map[string]any{"quant_method": "modelopt", "quant_algo": algo, "kv_cache_quant_algo": nil, "exclude_modules": excluded}
	hf, _ := json.MarshalIndent(map[string]any{
		"producer":     map[string]any{"name": "modelopt", "version": "crucible"},
		"quantization": map[string]any{"quant_algo": algo, "kv_cache_quant_algo": nil, "exclude_modules": excluded},
	}, "", "  ")
	if err := writeFileAtomic(filepath.Join(out, "hf_quant_config.json"), hf); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	res.Files = append(res.Files, "hf_quant_config.json")
	copied, err := copyTokenizerFiles(dir, out)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	res.Files = append(res.Files, copied...)
	newCfg, err := patchConfigJSON(raw, map[string]any{"quantization_config": qc})
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(out, "config.json"), newCfg); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	res.Files = append(res.Files, "config.json")
	return res, nil
}

// rawConfigOf parses a config.json for key lookups (nil when malformed:
// ParseConfig has checked it).
func rawConfigOf(b []byte) rawConfig {
	var r rawConfig
	_ = json.Unmarshal(SanitizeJSON(b), &r)
	return r
}

// isProjection reports whether a tensor is a linear projection's weight
// inside the layers (what FP8 checkpoints quantize).
func isProjection(name string, t *safetensors.Tensor) bool {
	if len(t.Shape) != 2 || !strings.HasSuffix(name, "_proj.weight") || !strings.Contains(name, "layers.") {
		return false
	}
	return true
}

func excludedBy(module string, patterns []string) bool {
	for _, p := range patterns {
		if p != "" && strings.Contains(module, p) {
			return true
		}
	}
	return false
}

// quantizeE4M3 quantizes a [rows, cols] float tensor to E4M3 bytes with
// per-row (or one) scales amax/448, and reports the largest error relative
// to its row's amax.
func quantizeE4M3(t *safetensors.Tensor, perTensor bool) (q []byte, scale []float32, maxRel float64, err error) {
	w, err := Float32s(t)
	if err != nil {
		return nil, nil, 0, err
	}
	rows, cols := t.Shape[0], t.Shape[1]
	amax := make([]float32, rows)
	for r := 0; r < rows; r++ {
		for _, v := range w[r*cols : (r+1)*cols] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, nil, 0, fmt.Errorf("tensor %s: non-finite weight %v in row %d", t.Name, v, r)
			}
			amax[r] = max(amax[r], float32(math.Abs(float64(v))))
		}
	}
	if perTensor {
		var m float32
		for _, a := range amax {
			m = max(m, a)
		}
		scale = []float32{fp8ScaleOf(m)}
	} else {
		scale = make([]float32, rows)
		for r, a := range amax {
			scale[r] = fp8ScaleOf(a)
		}
	}
	q = make([]byte, rows*cols)
	for r := 0; r < rows; r++ {
		s := scale[0]
		if !perTensor {
			s = scale[r]
		}
		for c, v := range w[r*cols : (r+1)*cols] {
			b := EncodeE4M3(v/s, true)
			q[r*cols+c] = b
			if amax[r] > 0 {
				maxRel = math.Max(maxRel, math.Abs(float64(DecodeE4M3(b)*s-v))/float64(amax[r]))
			}
		}
	}
	return q, scale, maxRel, nil
}

// fp8ScaleOf is the scale that maps amax to E4M3's largest value (1 for an
// all-zero row).
func fp8ScaleOf(amax float32) float32 {
	if amax == 0 {
		return 1
	}
	return amax / MaxE4M3
}

// checkOutputDir refuses a folder that already holds a model.
func checkOutputDir(out string) error {
	if out == "" {
		return errors.New("no output folder")
	}
	for _, name := range []string{"config.json", "model.safetensors", "model.safetensors.index.json"} {
		if _, err := os.Stat(filepath.Join(out, name)); err == nil {
			return fmt.Errorf("%s already holds %s: give a new folder", out, name)
		}
	}
	return nil
}

// copyTokenizerFiles copies the tokenizer files and generation_config.json
// of dir that exist into out.
func copyTokenizerFiles(dir, out string) ([]string, error) {
	var copied []string
	for _, name := range tokenizerFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = writeFileAtomic(filepath.Join(out, name), b)
		}
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", name, err)
		}
		copied = append(copied, name)
	}
	return copied, nil
}

// writeSafetensorsAtomic writes a safetensors file of the tensors in
// header (Data unused), whose bytes write emits in order, through a
// temporary file renamed into place on success.
func writeSafetensorsAtomic(path string, header []safetensors.Tensor, write func(*safetensors.Encoder) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	bw := bufio.NewWriterSize(f, 4<<20)
	enc, err := safetensors.NewEncoder(bw, header, map[string]string{"format": "pt"})
	if err != nil {
		return fail(err)
	}
	if err := write(enc); err != nil {
		return fail(err)
	}
	if err := errors.Join(enc.Close(), bw.Flush(), f.Chmod(0o644)); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
