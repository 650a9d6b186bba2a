package serve

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
)

// embeddingRequest is the body of /v1/embeddings.
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"` // a string, a list of strings, token ids, or a list of token-id lists
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

// maxEmbeddingInputs bounds the inputs of one request.
const maxEmbeddingInputs = 2048

// embeddings answers /v1/embeddings: each input's mean-pooled final hidden
// state, unit length (engine.Embed), as floats or base64 of little-endian
// float32 (the openai clients' default).
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) int {
	fail := func(e *apiError) int { writeAPIError(w, e); return e.status }
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 64<<20))
	if err != nil {
		return fail(badRequest("", "reading the body: %v", err))
	}
	var q embeddingRequest
	if err := json.Unmarshal(body, &q); err != nil {
		return fail(badRequest("", "invalid JSON body: %v", err))
	}
	if q.Model != "" && q.Model != s.opts.ModelName {
		return fail(&apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "model",
			msg: "the model " + q.Model + " does not exist (this server has " + s.opts.ModelName + ")"})
	}
	if q.EncodingFormat != "" && q.EncodingFormat != "float" && q.EncodingFormat != "base64" {
		return fail(badRequest("encoding_format", "encoding_format must be float or base64, got %q", q.EncodingFormat))
	}
	if q.Dimensions != nil && *q.Dimensions != s.b.Model().Config().HiddenSize {
		return fail(badRequest("dimensions", "this model's embeddings have %d dimensions", s.b.Model().Config().HiddenSize))
	}
	inputs, aerr := s.embeddingInputs(q.Input)
	if aerr != nil {
		return fail(aerr)
	}
	data := make([]map[string]any, len(inputs))
	total := 0
	for i, ids := range inputs {
		v, err := s.b.Embed(r.Context(), ids)
		if err != nil {
			return fail(failure(err))
		}
		total += len(ids)
		var emb any = v
		if q.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(f))
			}
			emb = base64.StdEncoding.EncodeToString(buf)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": s.opts.ModelName,
		"usage": map[string]int{"prompt_tokens": total, "total_tokens": total}})
	return http.StatusOK
}

// embeddingInputs reads input: a string, a list of strings, a list of
// token ids, or a list of lists of token ids.
func (s *Server) embeddingInputs(raw json.RawMessage) ([][]int, *apiError) {
	if !present(raw) {
		return nil, badRequest("input", "missing input")
	}
	var str string
	var strs []string
	var ids []int
	var idss [][]int
	var out [][]int
	switch {
	case json.Unmarshal(raw, &str) == nil:
		strs = []string{str}
	case json.Unmarshal(raw, &strs) == nil:
	case json.Unmarshal(raw, &ids) == nil:
		out = [][]int{ids}
	case json.Unmarshal(raw, &idss) == nil:
		out = idss
	default:
		return nil, badRequest("input", "input must be a string, a list of strings, or token ids")
	}
	for _, t := range strs {
		out = append(out, s.b.Tokenizer().Encode(t, true))
	}
	if len(out) == 0 || len(out) > maxEmbeddingInputs {
		return nil, badRequest("input", "input must hold 1 to %d items, got %d", maxEmbeddingInputs, len(out))
	}
	for i, t := range out {
		if len(t) == 0 {
			return nil, badRequest("input", "input %d is empty", i)
		}
	}
	return out, nil
}
