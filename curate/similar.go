package curate

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// Embedder turns texts into vectors (e.g. an OpenAI-compatible
// /v1/embeddings server; see backend/openai.Client.Embed).
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Neighbor is a reference and its cosine similarity to a query.
type Neighbor struct {
	Ref   int
	Score float64
}

// Retriever finds the references most similar to a text.
type Retriever interface {
	TopK(ctx context.Context, queries []string, k int) ([][]Neighbor, error)
}

// LexicalRetriever ranks references by the cosine similarity of TF-IDF
// vectors over hashed character 3- to 5-grams, through an inverted index. It
// needs no model and catches light paraphrases that keep most wording.
type LexicalRetriever struct {
	idf      map[uint32]float64
	postings map[uint32][]posting
	nrefs    int
}

type posting struct {
	ref int32
	w   float32
}

// NewLexicalRetriever indexes the reference texts.
func NewLexicalRetriever(refs []string) *LexicalRetriever {
	lr := &LexicalRetriever{idf: map[uint32]float64{}, postings: map[uint32][]posting{}, nrefs: len(refs)}
	tfs := make([]map[uint32]float64, len(refs))
	df := map[uint32]int{}
	for i, t := range refs {
		tfs[i] = charGrams(t)
		for g := range tfs[i] {
			df[g]++
		}
	}
	for g, n := range df {
		lr.idf[g] = math.Log(float64(1+len(refs))/float64(1+n)) + 1
	}
	for i, tf := range tfs {
		vec := lr.weigh(tf)
		for g, w := range vec {
			lr.postings[g] = append(lr.postings[g], posting{int32(i), float32(w)})
		}
	}
	return lr
}

func charGrams(text string) map[uint32]float64 {
	t := []rune(" " + normalizeProblem(text) + " ")
	tf := map[uint32]float64{}
	for n := 3; n <= 5; n++ {
		for i := 0; i+n <= len(t); i++ {
			h := uint32(2166136261)
			for _, r := range t[i : i+n] {
				h ^= uint32(r)
				h *= 16777619
			}
			tf[h]++
		}
	}
	return tf
}

// weigh returns the L2-normalized TF-IDF vector (grams unknown to the
// references get weight 0: they cannot match anything).
func (lr *LexicalRetriever) weigh(tf map[uint32]float64) map[uint32]float64 {
	vec := make(map[uint32]float64, len(tf))
	var norm float64
	for g, c := range tf {
		idf, ok := lr.idf[g]
		if !ok {
			idf = math.Log(float64(1+lr.nrefs)) + 1
		}
		w := (1 + math.Log(c)) * idf
		vec[g] = w
		norm += w * w
	}
	norm = math.Sqrt(norm)
	for g := range vec {
		vec[g] /= norm
	}
	return vec
}

// TopK implements Retriever.
func (lr *LexicalRetriever) TopK(_ context.Context, queries []string, k int) ([][]Neighbor, error) {
	out := make([][]Neighbor, len(queries))
	scores := make([]float64, lr.nrefs)
	var touched []int32
	for qi, q := range queries {
		vec := lr.weigh(charGrams(q))
		for g, w := range vec {
			for _, p := range lr.postings[g] {
				if scores[p.ref] == 0 {
					touched = append(touched, p.ref)
				}
				scores[p.ref] += w * float64(p.w)
			}
		}
		nb := make([]Neighbor, 0, len(touched))
		for _, r := range touched {
			nb = append(nb, Neighbor{int(r), scores[r]})
			scores[r] = 0
		}
		touched = touched[:0]
		out[qi] = topK(nb, k)
	}
	return out, nil
}

func topK(nb []Neighbor, k int) []Neighbor {
	sort.Slice(nb, func(i, j int) bool {
		if nb[i].Score != nb[j].Score {
			return nb[i].Score > nb[j].Score
		}
		return nb[i].Ref < nb[j].Ref
	})
	if len(nb) > k {
		nb = nb[:k]
	}
	return nb
}

// EmbeddingRetriever ranks references by the cosine similarity of
// embeddings from an Embedder (exhaustive search).
type EmbeddingRetriever struct {
	e     Embedder
	refs  [][]float32
	batch int
}

// NewEmbeddingRetriever embeds the references.
func NewEmbeddingRetriever(ctx context.Context, e Embedder, refs []string, batch int) (*EmbeddingRetriever, error) {
	if batch <= 0 {
		batch = 256
	}
	er := &EmbeddingRetriever{e: e, batch: batch}
	vecs, err := er.embed(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("embed benchmark problems: %w", err)
	}
	er.refs = vecs
	return er, nil
}

func (er *EmbeddingRetriever) embed(ctx context.Context, texts []string) ([][]float32, error) {
	var out [][]float32
	for i := 0; i < len(texts); i += er.batch {
		v, err := er.e.Embed(ctx, texts[i:min(i+er.batch, len(texts))])
		if err != nil {
			return nil, err
		}
		for _, x := range v {
			normalize32(x)
		}
		out = append(out, v...)
	}
	return out, nil
}

func normalize32(x []float32) {
	var n float64
	for _, v := range x {
		n += float64(v) * float64(v)
	}
	if n == 0 {
		return
	}
	s := float32(1 / math.Sqrt(n))
	for i := range x {
		x[i] *= s
	}
}

// TopK implements Retriever.
func (er *EmbeddingRetriever) TopK(ctx context.Context, queries []string, k int) ([][]Neighbor, error) {
	qv, err := er.embed(ctx, queries)
	if err != nil {
		return nil, fmt.Errorf("embed problems: %w", err)
	}
	out := make([][]Neighbor, len(queries))
	for qi, q := range qv {
		nb := make([]Neighbor, len(er.refs))
		for ri, r := range er.refs {
			var dot float32
			for i := range min(len(q), len(r)) {
				dot += q[i] * r[i]
			}
			nb[ri] = Neighbor{ri, float64(dot)}
		}
		out[qi] = topK(nb, k)
	}
	return out, nil
}
