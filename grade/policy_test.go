package grade

import (
	"testing"

	"github.com/crucible-ml/crucible/record"
)

func TestPolicies(t *testing.T) {
	const worked = "We add 2 and 3 to get 5." // states no answer
	const twoBoxes = `First \boxed{4}, then the answer is \boxed{5}.`
	for _, tc := range []struct {
		policy, response, gold string
		answer                 string // "" when none
		correct                bool
	}{
		{"default", worked, "5", "", false},
		{"math-verify", worked, "5", "5", true},
		{"nemo-skills", worked, "5", "", false},
		{"nemo-skills", "The answer is 5.", "5", "", false}, // only boxes answer
		{"nemo-skills", twoBoxes, "5", "5", true},
		{"default", "The answer is 0.33333.", `\frac13`, "0.33333", true},
		{"strict", "The answer is 0.33333.", `\frac13`, "0.33333", false},
		{"default", `\boxed{\frac{6}{4}}`, `\frac32`, `\frac{6}{4}`, true},
		{"strict", `\boxed{\frac{6}{4}}`, `\frac32`, `\frac{6}{4}`, false},
	} {
		p, err := LookupPolicy(tc.policy)
		if err != nil {
			t.Fatal(err)
		}
		r := &record.Row{}
		r.Set("expected_answer", tc.gold)
		r.Set("generation", tc.response)
		answered, correct := Row(r, RowOptions{Options: p.Options})
		got, _ := r.String("predicted_answer")
		if answered != (tc.answer != "") || got != tc.answer || correct != tc.correct {
			t.Errorf("%s on %q: answer %q (%v), correct %v; want %q, %v", tc.policy, tc.response, got, answered, correct, tc.answer, tc.correct)
		}
		if name, _ := r.String("grade_policy"); name != tc.policy {
			t.Errorf("%s: row records policy %q", tc.policy, name)
		}
	}
	if _, err := LookupPolicy("lenient"); err == nil {
		t.Error("unknown policy accepted")
	}
	if p, err := LookupPolicy(""); err != nil || p.Name != "default" || p.Options != DefaultOptions() {
		t.Errorf("empty name: %+v %v", p, err)
	}
}
