package grade

import (
	"strings"
	"testing"
)

// familyCases are hand-written pairs for the answer families graders often
// get wrong, each graded with Check (both sides extracted) under the
// default policy and checked both ways round, with the rule --explain
// shows.
var familyCases = []struct {
	family, gold, pred string
	want               bool
	rule               string // a part of Verdict.Rule ("" : any)
}{
	// Labelled answers: a name (or a ratio of names) equals its value.
	{"labelled", `A:B = 3:5`, `3:5`, true, "ratio"},
	{"labelled", `AB:BC = 3:5`, `3:5`, true, "ratio"},
	{"labelled", `x:y = 3:5`, `5:3`, false, "ratio"},
	{"labelled", `P(A) = 0.5`, `0.5`, true, ""},
	{"labelled", `k = 5`, `5`, true, ""},
	// Systems and alternatives: equations in any order, any separator.
	{"systems", `x=1, y=2`, `y=2, x=1`, true, "system"},
	{"systems", `x=1 \quad y=2`, `y = 2; x = 1`, true, "system"},
	{"systems", `x = 1 \qquad y = 2`, `(1, 2)`, true, ""},
	{"systems", `x=1, y=2`, `y=1, x=2`, false, "system"},
	{"systems", `x = 2 \text{ or } x = 3`, `x=3 \text{ and } x=2`, true, ""},
	{"systems", `5 \quad \text{cm}`, `5`, true, ""},
	// Solution sets: unions, absolute-value inequalities, alternatives.
	{"sets", `(-\infty, 1) \cup (3, \infty)`, `|x-2| > 1`, true, "union"},
	{"sets", `(-\infty, 1] \cup [3, \infty)`, `|x-2| \ge 1`, true, "union"},
	{"sets", `(-\infty, 1) \cup (3, \infty)`, `|x-2| \ge 1`, false, "union"},
	{"sets", `[-2, 2]`, `|2x| \le 4`, true, ""},
	{"sets", `(1, 3)`, `1 > |2 - x|`, true, ""},
	{"sets", `(0, 3)`, `|x-2| < 1`, false, ""},
	{"sets", `x < 1 \text{ or } x > 3`, `(-\infty,1)\cup(3,\infty)`, true, "union"},
	{"sets", `\{1\} \cup \{2, 3\}`, `\{1, 2, 3\}`, true, "set"},
	// Units and text inside answers.
	{"units", `12 \mathrm{cm}`, `12`, true, ""},
	{"units", `(3\mathrm{cm}, 4 \mathrm{cm})`, `(3, 4)`, true, ""},
	{"units", `(3 \text{ cm}, 4 \text{ cm})`, `(3, 4)`, true, ""},
	{"units", `(30^\circ, 60^\circ)`, `(30, 60)`, true, ""},
	{"units", `\boxed{3\text{ cm}} and \boxed{4 cm}`, `3, 4`, true, ""},
	// Extraction order: a later statement overrides an intermediate box.
	{"extraction", `3`, `We get \boxed{2}. Therefore, the final answer is $3$.`, true, ""},
	{"extraction", `2`, `We get \boxed{2}. Therefore, the final answer is $3$.`, false, ""},
	{"extraction", `5`, `\boxed{5}. The answer is above.`, true, ""},
	{"extraction", `\frac{1}{2}`, `The answer is \boxed{\frac{1}{2}$}`, true, ""},
	{"extraction", `C`, `答案：C。`, true, "multiple-choice"},
	// Tolerance inside structures follows the scalar rule.
	{"tolerance", `\begin{pmatrix} 0.3333 & 0.5 \end{pmatrix}`, `\begin{pmatrix} \frac13 & \frac12 \end{pmatrix}`, true, "matrix"},
	{"tolerance", `(0.6667, 1.5)`, `(\frac23, \frac32)`, true, ""},
	{"tolerance", `(1.414, 2)`, `(\sqrt2, 2)`, true, ""},
	// Budget: long polynomial identities are decided exactly.
	{"budget", `\left(x + y + 1\right)^{8}`, expand8, true, "exact"},
	{"budget", `\left(x + y + 1\right)^{8}`, expand8 + " + 1", false, "exact"},
	// Empty answers are no answers.
	{"edge", ``, `\boxed{}`, false, ""},
	{"edge", `\boxed{}`, `\boxed{}`, false, ""},
}

// expand8 is (x + y + 1)^8 expanded (sympy).
const expand8 = `x^{8} + 8 x^{7} y + 8 x^{7} + 28 x^{6} y^{2} + 56 x^{6} y + 28 x^{6} + 56 x^{5} y^{3} + 168 x^{5} y^{2} + 168 x^{5} y + 56 x^{5} + 70 x^{4} y^{4} + 280 x^{4} y^{3} + 420 x^{4} y^{2} + 280 x^{4} y + 70 x^{4} + 56 x^{3} y^{5} + 280 x^{3} y^{4} + 560 x^{3} y^{3} + 560 x^{3} y^{2} + 280 x^{3} y + 56 x^{3} + 28 x^{2} y^{6} + 168 x^{2} y^{5} + 420 x^{2} y^{4} + 560 x^{2} y^{3} + 420 x^{2} y^{2} + 168 x^{2} y + 28 x^{2} + 8 x y^{7} + 56 x y^{6} + 168 x y^{5} + 280 x y^{4} + 280 x y^{3} + 168 x y^{2} + 56 x y + 8 x + y^{8} + 8 y^{7} + 28 y^{6} + 56 y^{5} + 70 y^{4} + 56 y^{3} + 28 y^{2} + 8 y + 1`

func TestFamilies(t *testing.T) {
	opts := DefaultOptions()
	for _, tc := range familyCases {
		for _, swap := range []bool{false, true} {
			g, p := tc.gold, tc.pred
			if swap {
				if tc.family == "extraction" {
					continue // a response is not a reference answer
				}
				g, p = p, g
			}
			v := Check(g, p, opts)
			if v.Equal != tc.want || tc.rule != "" && !strings.Contains(v.Rule, tc.rule) {
				t.Errorf("%s: Check(%q, %q) = %v (rule %q; parsed %q vs %q), want %v (rule ~%q)",
					tc.family, trunc(g), trunc(p), v.Equal, v.Rule, trunc(v.Gold), trunc(v.Pred), tc.want, tc.rule)
			}
		}
	}
}
