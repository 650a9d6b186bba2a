package eval

import "github.com/crucible-ml/crucible/grade"

// Grader extracts answers from responses and decides whether two answers
// are the same. grade.Grader is the math grader under a named policy.
type Grader interface {
	// Extract returns the final answer of a response.
	Extract(response string) (string, bool)
	// Equal reports whether a predicted answer matches the reference.
	Equal(gold, pred string) bool
	// Same reports whether two predicted answers are equivalent, for
	// majority voting.
	Same(a, b string) bool
}

// policyNamer is a Grader that names its grading policy, which GradeRow
// records on the row.
type policyNamer interface{ Policy() string }

// NewMathGrader returns the math grader under the default policy: a
// response has an answer only when it states one (a box, an answer phrase,
// "#### N", or a bare short answer — see grade.ExtractStated), and the
// reference goes through extraction too.
func NewMathGrader() Grader { return grade.NewGrader() }
