package engine

import (
	"context"
	"math"
	"testing"
)

// TestEmbed: a one-token embedding is the direction of the hidden state
// the output head reads (its logits are head · embedding, up to scale);
// embeddings have unit length, and a long sequence (several prefill
// chunks) gives the same mean as feeding it one token at a time.
func TestEmbed(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"llama_tiny", "nemotron_h_tiny", "mamba2_tiny"} {
		t.Run(name, func(t *testing.T) {
			m := loadTest(t, name)
			V, d := m.Config().VocabSize, m.Config().HiddenSize
			tok := []int{7 % V}
			e, err := Embed(ctx, m, tok)
			if err != nil {
				t.Fatal(err)
			}
			logits := make([]float32, V)
			if err := prefill(ctx, m, m.newState(1), tok, nil, logits); err != nil {
				t.Fatal(err)
			}
			head, row := headOf(m), make([]float32, d)
			var dot, nl, nw float64
			for j := 0; j < V; j++ {
				head.Row(j, row)
				var w float64
				for k := range row {
					w += float64(row[k]) * float64(e[k])
				}
				dot += w * float64(logits[j])
				nl += float64(logits[j]) * float64(logits[j])
				nw += w * w
			}
			if cos := dot / math.Sqrt(nl*nw); cos < 1-1e-5 {
				t.Errorf("logits vs head·embedding: cosine %g", cos)
			}

			long := make([]int, 150)
			for i := range long {
				long[i] = (i*37 + 1) % V
			}
			a, err := Embed(ctx, m, long)
			if err != nil {
				t.Fatal(err)
			}
			st := m.newState(len(long))
			p := st.(pooler).pool()
			p.sum = make([]float32, d)
			for _, tk := range long {
				forwardAll(m, []state{st}, []int{tk}, nil)
			}
			var n2, diff float64
			for i := range a {
				n2 += float64(a[i]) * float64(a[i])
				diff = math.Max(diff, math.Abs(float64(a[i])-float64(p.sum[i])/float64(p.n)/norm(p.sum, p.n)))
			}
			if math.Abs(n2-1) > 1e-5 || diff > 1e-5 {
				t.Errorf("|embedding|² = %g, max diff from token-by-token %g", n2, diff)
			}
		})
	}
}

// norm is the length of sum/n.
func norm(sum []float32, n int) float64 {
	var s float64
	for _, v := range sum {
		x := float64(v) / float64(n)
		s += x * x
	}
	return math.Sqrt(s)
}
