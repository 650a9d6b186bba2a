package eval

import (
	"math/big"
	"strings"
)

// Grader extracts answers from responses and decides whether two answers
// are the same. Package grade provides the full grader; SimpleGrader is a
// small exact/numeric one.
type Grader interface {
	// Extract returns the final answer of a response.
	Extract(response string) (string, bool)
	// Equal reports whether a predicted answer matches the reference.
	Equal(gold, pred string) bool
	// Same reports whether two predicted answers are equivalent, for
	// majority voting.
	Same(a, b string) bool
}

// SimpleGrader extracts the last \boxed{} (or a GSM8K "#### N" line) and
// compares answers as exact rationals when both are numbers, else as
// whitespace-free strings.
type SimpleGrader struct{}

// Extract implements Grader.
func (SimpleGrader) Extract(s string) (string, bool) {
	if i := strings.LastIndex(s, "</think>"); i >= 0 {
		s = s[i+len("</think>"):]
	}
	if a, ok := lastBoxed(s); ok {
		return a, true
	}
	if i := strings.LastIndex(s, "####"); i >= 0 {
		a := strings.TrimSpace(s[i+4:])
		if j := strings.IndexByte(a, '\n'); j >= 0 {
			a = a[:j]
		}
		return a, a != ""
	}
	return "", false
}

// lastBoxed returns the content of the last \boxed{...} or \fbox{...}, with
// nested braces matched.
func lastBoxed(s string) (string, bool) {
	i := max(strings.LastIndex(s, `\boxed`), strings.LastIndex(s, `\fbox`))
	if i < 0 {
		return "", false
	}
	rest := s[i:]
	open := strings.IndexByte(rest, '{')
	if open < 0 {
		return "", false
	}
	if strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(rest[:open], `\boxed`), `\fbox`)) != "" {
		return "", false
	}
	depth := 0
	for j := open; j < len(rest); j++ {
		switch rest[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return strings.TrimSpace(rest[open+1 : j]), true
			}
		}
	}
	return "", false
}

// Same implements Grader.
func (g SimpleGrader) Same(a, b string) bool { return g.key(a) == g.key(b) }

func (SimpleGrader) key(a string) string {
	n := normalize(a)
	if r, ok := rat(n); ok {
		return r.RatString()
	}
	return n
}

// Equal implements Grader.
func (g SimpleGrader) Equal(gold, pred string) bool { return g.key(gold) == g.key(pred) }

func normalize(a string) string {
	a = strings.TrimSpace(a)
	a = strings.Trim(a, "$")
	a = strings.TrimSuffix(a, ".")
	a = strings.NewReplacer(" ", "", `\!`, "", `\,`, "", `\$`, "", `\left`, "", `\right`, "", `\dfrac`, `\frac`, `\tfrac`, `\frac`).Replace(a)
	return a
}

func rat(a string) (*big.Rat, bool) {
	s := a
	if strings.Count(s, ",") > 0 && !strings.ContainsAny(s, "()[]{}") {
		s = strings.ReplaceAll(s, ",", "")
	}
	if strings.HasPrefix(s, `\frac{`) {
		num, rest, ok := braced(s[len(`\frac`):])
		if ok {
			den, tail, ok := braced(rest)
			if ok && tail == "" {
				s = num + "/" + den
			}
		}
	}
	if len(s) > 200 {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

func braced(s string) (inner, rest string, ok bool) {
	if !strings.HasPrefix(s, "{") {
		return "", "", false
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return s[1:i], s[i+1:], true
			}
		}
	}
	return "", "", false
}
