package grade

// Grader bundles the grader with its options behind methods, so that it can
// stand in for an interface a consumer declares (eval's Grader):
//
//	var g eval.Grader = grade.Grader{Opts: grade.DefaultOptions()}
type Grader struct {
	Opts Options
}

// NewGrader returns a Grader with the default options.
func NewGrader() Grader { return Grader{Opts: DefaultOptions()} }

// Extract returns the final answer of a response (see ExtractWith).
func (g Grader) Extract(response string) (string, bool) { return ExtractWith(response, g.Opts) }

// Equal reports whether the predicted answer equals the reference answer.
func (g Grader) Equal(gold, pred string) bool { return Equal(gold, pred, g.Opts).Equal }

// Check extracts both sides and compares them (see Check).
func (g Grader) Check(gold, pred string) Verdict { return Check(gold, pred, g.Opts) }

// Same reports whether two predicted answers are equivalent, for majority
// voting.
func (g Grader) Same(a, b string) bool { return Equal(a, b, g.Opts).Equal }

// Key returns a normal form of an answer under which equal simple answers
// collide (see Key).
func (g Grader) Key(answer string) string { return Key(answer) }
