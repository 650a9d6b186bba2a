package curate

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// Filter is a named per-row test; rows for which it returns false are
// removed with the reason.
type Filter struct {
	Name string
	Keep func(d *Dataset, r *record.Row) (bool, string)
}

// CorrectOnly keeps rows whose `is_correct` is true.
func CorrectOnly() Filter {
	return Filter{"correct", func(d *Dataset, r *record.Row) (bool, string) {
		v, ok := r.Bool("is_correct")
		switch {
		case !ok:
			return false, "no is_correct field"
		case !v:
			return false, "incorrect answer"
		}
		return true, ""
	}}
}

// HasAnswer removes solutions with no extractable final answer.
func HasAnswer() Filter {
	return Filter{"no_answer", func(d *Dataset, r *record.Row) (bool, string) {
		if s, ok := r.String("predicted_answer"); ok && s != "" {
			return true, ""
		}
		if r.Has("predicted_answer") {
			return false, "no final answer"
		}
		if _, ok := explicitAnswer(d.Solution(r)); ok {
			return true, ""
		}
		return false, "no final answer"
	}}
}

// SingleBoxed removes solutions with more than one \boxed{}.
func SingleBoxed() Filter {
	return Filter{"multi_boxed", func(d *Dataset, r *record.Row) (bool, string) {
		if n := strings.Count(d.Solution(r), `\boxed`); n > 1 {
			return false, fmt.Sprintf("%d \\boxed", n)
		}
		return true, ""
	}}
}

// AnswerAfterCode removes code solutions that state the boxed answer before
// their first code block — the answer was guessed, then "checked"
// (OpenMathInstruct-1's useless_code).
func AnswerAfterCode(tags prompt.CodeTags) Filter {
	tags = tags.Trimmed() // a fence may end the text without its newline
	return Filter{"answer_before_code", func(d *Dataset, r *record.Row) (bool, string) {
		s := d.Solution(r)
		code := strings.Index(s, tags.CodeBegin)
		box := strings.Index(s, `\boxed`)
		if code >= 0 && box >= 0 && box < code {
			return false, "\\boxed before the first code block"
		}
		return true, ""
	}}
}

// BalancedCode removes solutions whose code tags are unbalanced or out of
// order: every block must read begin, end, output-begin, output-end (the
// last block's output may be missing when generation stopped there).
func BalancedCode(tags prompt.CodeTags) Filter {
	tags = tags.Trimmed() // a fence may end the text without its newline
	return Filter{"broken_code", func(d *Dataset, r *record.Row) (bool, string) {
		if reason := checkCodeTags(d.Solution(r), tags); reason != "" {
			return false, reason
		}
		return true, ""
	}}
}

func checkCodeTags(s string, t prompt.CodeTags) string {
	seq := []string{t.CodeBegin, t.CodeEnd, t.CodeOutputBegin, t.CodeOutputEnd}
	// Scan tags left to right; the longest tag that matches at a position
	// wins (```python before ```).
	want := 0
	blocks := 0
	for i := 0; i < len(s); {
		j := strings.IndexAny(s[i:], "<`")
		if j < 0 {
			break
		}
		i += j
		matched := ""
		for _, tag := range []string{t.CodeBegin, t.CodeOutputBegin, t.CodeEnd, t.CodeOutputEnd} {
			if strings.HasPrefix(s[i:], tag) && len(tag) > len(matched) {
				matched = tag
			}
		}
		if matched == "" {
			i++
			continue
		}
		// With fences, "```" closes whichever block is open.
		expected := seq[want]
		if matched != expected && !(t.CodeEnd == t.CodeOutputEnd && (want == 1 || want == 3) && matched == t.CodeEnd) {
			return fmt.Sprintf("code tag %q where %q was expected (block %d)", matched, expected, blocks+1)
		}
		if want == 0 {
			blocks++
		}
		want = (want + 1) % 4
		i += len(matched)
	}
	switch want {
	case 0, 2:
		return ""
	case 1:
		return fmt.Sprintf("code block %d is not closed", blocks)
	default:
		return fmt.Sprintf("output of code block %d is not closed", blocks)
	}
}

var codeErrorRE = regexp.MustCompile(`Traceback \(most recent call last\)|<output cut>|Timed out|SyntaxError|Execution error|Error: `)

// NoCodeErrors removes solutions whose code failed: a `code_errors` count
// above zero, or an error message inside a code output.
func NoCodeErrors(tags prompt.CodeTags) Filter {
	tags = tags.Trimmed() // a fence may end the text without its newline
	return Filter{"code_errors", func(d *Dataset, r *record.Row) (bool, string) {
		if n, ok := r.Int("code_errors"); ok && n > 0 {
			return false, fmt.Sprintf("%d code errors", n)
		}
		s := d.Solution(r)
		for {
			i := strings.Index(s, tags.CodeOutputBegin)
			if i < 0 {
				return true, ""
			}
			s = s[i+len(tags.CodeOutputBegin):]
			j := strings.Index(s, tags.CodeOutputEnd)
			out := s
			if j >= 0 {
				out = s[:j]
			}
			if m := codeErrorRE.FindString(out); m != "" {
				return false, "code output has " + m
			}
			if j < 0 {
				return true, ""
			}
			s = s[j:]
		}
	}}
}

// Length bounds a text field's length in characters or tokens.
func Length(name, field string, min, max int, count func(string) int, unit string) Filter {
	return Filter{name, func(d *Dataset, r *record.Row) (bool, string) {
		var text string
		switch field {
		case "problem":
			text = d.Problem(r)
		case "solution":
			text = d.Solution(r)
		default:
			text, _ = r.Text(field)
		}
		n := count(text)
		if min > 0 && n < min {
			return false, fmt.Sprintf("%s has %d %s < %d", field, n, unit, min)
		}
		if max > 0 && n > max {
			return false, fmt.Sprintf("%s has %d %s > %d", field, n, unit, max)
		}
		return true, ""
	}}
}

// Chars counts Unicode characters.
func Chars(s string) int { return len([]rune(s)) }

// Apply runs a filter over the dataset and returns how many rows it removed.
func (f Filter) Apply(d *Dataset) int {
	return d.Keep(f.Name, func(r *record.Row) (bool, string) { return f.Keep(d, r) })
}

// Trim cuts each solution after the line holding its first \boxed{} (and
// the next line when it only closes a display: \], $$ or \end{...}), the way
// OpenMathInstruct trims rambling after the answer. It returns how many rows
// changed.
func Trim(d *Dataset) int {
	n := 0
	for _, r := range d.Rows {
		s := d.Solution(r)
		t := trimAfterAnswer(s)
		if t != s {
			r.Set(d.SolutionField, t)
			n++
		}
	}
	return n
}

func trimAfterAnswer(s string) string {
	i := strings.Index(s, `\boxed`)
	if i < 0 {
		return s
	}
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s
	}
	cut := i + end
	rest := s[cut+1:]
	next := rest
	if k := strings.IndexByte(rest, '\n'); k >= 0 {
		next = rest[:k]
	}
	if t := strings.TrimSpace(next); t == `\]` || t == "$$" || strings.HasPrefix(t, `\end{`) {
		cut += 1 + len(next)
	}
	return s[:cut]
}
