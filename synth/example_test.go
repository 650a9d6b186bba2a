package synth_test

import (
	"fmt"

	"github.com/crucible-ml/crucible/synth"
)

func ExampleParseList() {
	items, format, ok := synth.ParseList("Here are three topics:\n\n1. **Food**\n2. Travel\n3. Music\n\nEnjoy!")
	fmt.Println(items, format, ok)
	// Output: [Food Travel Music] numbered true
}

func ExampleCombineReward() {
	scores := map[string]float64{"helpfulness": 3, "correctness": 3, "coherence": 4, "complexity": 1, "verbosity": 2}
	fmt.Printf("%.2f\n", synth.CombineReward(scores, synth.DefaultRewardWeights))
	// Output: 4.77
}

func ExampleCheckInstruction() {
	ok, _ := synth.CheckInstruction("startend:end_checker", map[string]any{"end_phrase": "Any other questions?"},
		"Tides come from the Moon. Any other questions?")
	fmt.Println(ok)
	// Output: true
}
