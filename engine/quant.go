package engine

import "fmt"

// ParseMatmul checks an Options.Matmul value.
func ParseMatmul(s string) (string, error) {
	switch s {
	case "", "f32", "float32":
		return "", nil
	case "bf16":
		return "bf16", nil
	}
	return "", fmt.Errorf("matmul %q: want f32 or bf16", s)
}

// ParseKVCache checks an Options.KVCache value.
func ParseKVCache(s string) (string, error) {
	switch s {
	case "", "f32", "float32":
		return "", nil
	case "bf16":
		return "bf16", nil
	}
	return "", fmt.Errorf("kv cache %q: want f32 or bf16", s)
}

// ParseQuantize checks an Options.Quantize value.
func ParseQuantize(s string) (string, error) {
	switch s {
	case "", "none":
		return "", nil
	case "int8", "q8":
		return "int8", nil
	}
	return "", fmt.Errorf("quantize %q: want int8 or none", s)
}
