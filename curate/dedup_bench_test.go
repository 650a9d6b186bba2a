package curate

import (
	"testing"

	"github.com/crucible-ml/crucible/record"
)

func BenchmarkMinHashSignature(b *testing.B) {
	data := sharedData(b)
	rows := readRows(b, data+"/math/train.jsonl", 2000)
	var texts []string
	for _, r := range rows {
		s, _ := r.String("solution")
		texts = append(texts, s)
	}
	mh := NewMinHasher(DefaultMinHash())
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		mh.Signature(texts[i%len(texts)])
	}
}

func BenchmarkMinHashDedup(b *testing.B) {
	data := sharedData(b)
	var base []*record.Row
	for _, f := range []string{"/math/train.jsonl", "/gsm8k/train.jsonl"} {
		for _, r := range readRows(b, data+f, 0) {
			s, ok := r.String("solution")
			if !ok {
				s, _ = r.String("answer")
			}
			x := &record.Row{}
			x.Set("id", r.ID())
			x.Set("generation", s)
			base = append(base, x)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		d := NewDataset(append([]*record.Row(nil), base...))
		MinHashDedup(d, DefaultMinHash())
	}
	b.ReportMetric(float64(len(base))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
