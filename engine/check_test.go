package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// TestCheckDetectsErrors alters a good reference and expects Check to fail.
func TestCheckDetectsErrors(t *testing.T) {
	m := loadTest(t, "llama_tiny")
	ref, err := safetensors.Open("testdata/models/llama_tiny/reference.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	tensors := func(edit func(name string, data []byte)) *safetensors.File {
		var ts []safetensors.Tensor
		for _, n := range ref.Names() {
			tt, _ := ref.Tensor(n)
			c := *tt
			c.Data = bytes.Clone(tt.Data)
			edit(n, c.Data)
			ts = append(ts, c)
		}
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, ts, nil); err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name      string
		edit      func(name string, data []byte)
		wantIDs   bool
		wantError bool
	}{
		{"unchanged", func(string, []byte) {}, false, false},
		{"one greedy id", func(n string, d []byte) {
			if n == "gen_ids" {
				binary.LittleEndian.PutUint64(d[8*3:], binary.LittleEndian.Uint64(d[8*3:])+1)
			}
		}, true, true},
		{"one prefill logit off by 1e-3", func(n string, d []byte) {
			if n == "prefill_logits" {
				v := math.Float32frombits(binary.LittleEndian.Uint32(d[40:]))
				binary.LittleEndian.PutUint32(d[40:], math.Float32bits(v+1e-3))
			}
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Check(context.Background(), m, tensors(tt.edit))
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() == tt.wantError || (res.IDMismatches > 0) != tt.wantIDs {
				t.Errorf("OK %v, %d id mismatches, relative error %.3g", res.OK(), res.IDMismatches, res.RelErr)
			}
		})
	}
	// A reference missing a tensor is an error, not a pass.
	var buf bytes.Buffer
	safetensors.Write(&buf, []safetensors.Tensor{{Name: "prompt_ids", DType: safetensors.I64, Shape: []int{1}, Data: make([]byte, 8)}}, nil)
	f, _ := safetensors.Parse(buf.Bytes())
	if _, err := Check(context.Background(), m, f); err == nil {
		t.Error("Check of an incomplete reference succeeded")
	}
}
