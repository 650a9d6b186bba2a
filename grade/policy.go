package grade

import (
	"fmt"
	"strings"
)

// AnswerRule says how the final answer of a model response is found (by
// ExtractAnswer, Row, and so by grade and eval).
type AnswerRule uint8

const (
	// AnswerStated (the default) takes only an answer the response states:
	// a box, an answer phrase, "#### N", or a response that is itself a
	// short answer (ExtractStated). A worked solution that never gives its
	// answer has none.
	AnswerStated AnswerRule = iota
	// AnswerGuess also takes the last math or number of a response that
	// states nothing (ExtractWith), as Math-Verify does.
	AnswerGuess
	// AnswerBoxed takes only a \boxed{} answer, as NeMo-Skills does.
	AnswerBoxed
)

// String returns the rule's name: stated, guess or boxed.
func (r AnswerRule) String() string {
	switch r {
	case AnswerGuess:
		return "guess"
	case AnswerBoxed:
		return "boxed"
	}
	return "stated"
}

// MarshalText writes the rule by name, for manifests.
func (r AnswerRule) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// ExtractAnswer returns the final answer of a response under opts.Answer.
func ExtractAnswer(response string, opts Options) (string, bool) {
	switch opts.Answer {
	case AnswerGuess:
		return ExtractWith(response, opts)
	case AnswerBoxed:
		return extract(response, opts, []func(string, Options) (string, bool){fromBoxes})
	}
	return ExtractStated(response, opts)
}

// Policy is a named bundle of Options for where graders legitimately
// disagree. Every command that grades takes one by name (--policy) and a
// graded row records it (grade_policy).
type Policy struct {
	Name        string
	Description string
	Options     Options
}

// Policies are the named policies, the default first.
var Policies = []Policy{
	policy("default", "stated answers only, decimals within 1e-4, 10% = 10 = 0.1, bare lists unordered",
		func(o *Options) {}),
	policy("math-verify", "as default, and a response that states no answer is read for its last math or number",
		func(o *Options) { o.Answer = AnswerGuess }),
	policy("nemo-skills", "only the last \\boxed{} answers",
		func(o *Options) { o.Answer, o.Boxes = AnswerBoxed, BoxLast }),
	policy("strict", "no tolerance, fractions in lowest terms, bare lists in order",
		func(o *Options) { o.RTol, o.MinDigits, o.ReducedFractions, o.OrderedLists = 0, 0, true, true }),
}

func policy(name, description string, set func(*Options)) Policy {
	o := DefaultOptions()
	set(&o)
	o.Policy = name
	return Policy{Name: name, Description: description, Options: o}
}

// PolicyNames lists the policies' names, the default first.
func PolicyNames() []string {
	names := make([]string, len(Policies))
	for i, p := range Policies {
		names[i] = p.Name
	}
	return names
}

// LookupPolicy returns the policy of that name ("" is the default).
func LookupPolicy(name string) (Policy, error) {
	if name == "" {
		return Policies[0], nil
	}
	for _, p := range Policies {
		if p.Name == name {
			return p, nil
		}
	}
	return Policy{}, fmt.Errorf("grading policy %q: want %s", name, strings.Join(PolicyNames(), ", "))
}
