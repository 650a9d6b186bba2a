package grade

// Grader bundles the grader with its options behind methods, so that it can
// stand in for an interface a consumer declares (eval's Grader):
//
//	p, _ := grade.LookupPolicy("math-verify")
//	var g eval.Grader = grade.Grader{Opts: p.Options}
type Grader struct {
	Opts Options
}

// NewGrader returns a Grader with the default policy.
func NewGrader() Grader { return Grader{Opts: DefaultOptions()} }

// Extract returns the final answer of a response under Opts.Answer (see
// ExtractAnswer): by default only an answer the response states.
func (g Grader) Extract(response string) (string, bool) { return ExtractAnswer(response, g.Opts) }

// Equal reports whether the predicted answer matches the reference; the
// reference goes through extraction too (see Check), so "$9$" and
// "\boxed{9}" work as references.
func (g Grader) Equal(gold, pred string) bool { return Check(gold, pred, g.Opts).Equal }

// Check extracts both sides and compares them (see Check).
func (g Grader) Check(gold, pred string) Verdict { return Check(gold, pred, g.Opts) }

// Same reports whether two predicted answers are equivalent, for majority
// voting.
func (g Grader) Same(a, b string) bool { return Equal(a, b, g.Opts).Equal }

// Key returns a normal form of an answer under which equal simple answers
// collide (see Key).
func (g Grader) Key(answer string) string { return Key(answer) }

// Policy names the policy the grader applies (Options.Policy).
func (g Grader) Policy() string { return g.Opts.Policy }
