package eval

import "github.com/crucible-ml/crucible/grade"

// Grader extracts answers from responses and decides whether two answers
// are the same.
type Grader interface {
	// Extract returns the final answer of a response.
	Extract(response string) (string, bool)
	// Equal reports whether a predicted answer matches the reference.
	Equal(gold, pred string) bool
	// Same reports whether two predicted answers are equivalent, for
	// majority voting.
	Same(a, b string) bool
}

// MathGrader is the grade package's grader as evaluation uses it: a response
// has an answer only when it states one (a box, an answer phrase, "#### N",
// or a bare short answer — see grade.ExtractStated), and the reference goes
// through extraction too, so "$9$" and "\boxed{9}" work on either side.
type MathGrader struct {
	Opts grade.Options
}

// NewMathGrader returns a MathGrader with the grader's default policies.
func NewMathGrader() MathGrader { return MathGrader{Opts: grade.DefaultOptions()} }

// Extract implements Grader.
func (g MathGrader) Extract(response string) (string, bool) {
	return grade.ExtractStated(response, g.Opts)
}

// Equal implements Grader.
func (g MathGrader) Equal(gold, pred string) bool { return grade.Check(gold, pred, g.Opts).Equal }

// Same implements Grader.
func (g MathGrader) Same(a, b string) bool { return grade.Equal(a, b, g.Opts).Equal }
