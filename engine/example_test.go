package engine_test

import (
	"context"
	"fmt"

	"github.com/crucible-ml/crucible/engine"
)

// Greedy generation from token ids with a tiny random-weight Llama.
func Example() {
	m, err := engine.Load("testdata/models/llama_tiny")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	res, err := engine.GenerateBatch(context.Background(), m, nil, []engine.GenRequest{
		{Prompt: []int{1, 17, 42}, MaxTokens: 6}, // greedy
		{Prompt: []int{1, 17, 42}, MaxTokens: 6, Sampling: engine.SamplingParams{Temperature: 0.8, TopP: 0.9, Seed: 7}}, // sampled
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res[0].Tokens, res[0].FinishReason)
	// Output: [281 422 255 311 412 166] length
}

// Requests from many goroutines share the forward passes of one Batcher.
func ExampleBatcher() {
	m, err := engine.Load("testdata/models/llama_tiny")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	b := engine.NewBatcher(m, nil, 8) // up to 8 sequences at once
	defer b.Close()
	res, err := b.Generate(context.Background(), engine.GenRequest{Prompt: []int{1, 17, 42}, MaxTokens: 6})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Tokens, res.FinishReason, b.Stats().GeneratedTokens.Load())
	// Output: [281 422 255 311 412 166] length 6
}
