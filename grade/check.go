package grade

import "strings"

// Check extracts the answer from both sides (each goes through ExtractWith,
// so "$9$" and "\boxed{9}" work on either side) and compares them with Equal.
// When either side's answer is a multiple-choice letter (A-J), the other
// side's letter is extracted with letter rules ("the answer is for sure D").
func Check(gold, pred string, opts Options) Verdict {
	g, okg := ExtractWith(gold, opts)
	p, okp := ExtractWith(pred, opts)
	var lg, lp byte
	if okg {
		lg = letterOf(g)
	}
	if okp {
		lp = letterOf(p)
	}
	switch {
	case lg != 0 && lp == 0 && notMath(p, okp):
		lp = extractLetter(pred)
	case lp != 0 && lg == 0 && notMath(g, okg):
		lg = extractLetter(gold)
	}
	if lg != 0 && lp != 0 {
		return Verdict{Equal: lg == lp, Rule: "multiple-choice letter", Gold: string(lg), Pred: string(lp)}
	}
	if !okg || !okp {
		return Verdict{Rule: "no answer extracted", Gold: g, Pred: p}
	}
	v := Equal(g, p, opts)
	if v.Equal || opts.Boxes != BoxJoin {
		return v
	}
	// Joined boxes against a single value: the final box is the answer
	// ("\boxed{1} and \boxed{2}" against 2), as last-box graders read it.
	last := opts
	last.Boxes = BoxLast
	if pl, ok := ExtractWith(pred, last); ok && pl != p && !isList(g) {
		if w := Equal(g, pl, opts); w.Equal {
			w.Rule += " (last box)"
			return w
		}
	}
	if gl, ok := ExtractWith(gold, last); ok && gl != g && !isList(p) {
		if w := Equal(gl, p, opts); w.Equal {
			w.Rule += " (last box)"
			return w
		}
	}
	return v
}

// isList reports whether an answer parses as several values.
func isList(answer string) bool {
	n, err := parse(clean(answer))
	return err == nil && (n.k == nSeq && n.open != "(" && n.open != "[" && n.open != ":" || n.k == nPM)
}

// notMath reports whether an extracted answer is missing or prose, so that a
// choice letter should be looked for in the response instead.
func notMath(answer string, ok bool) bool {
	if !ok || proseWords(answer) > 0 || isProse(answer) {
		return true
	}
	_, err := parse(clean(answer))
	return err != nil
}

// letterOf returns the choice letter when answer is one: "B", "(B)",
// "\textbf{B}", "\mathrm{B}", "B.".
func letterOf(answer string) byte {
	a := strings.TrimSpace(answer)
	for _, p := range []string{`\textbf{`, `\text{`, `\mathrm{`, `\mathbf{`, `\mathcal{`, "**", "(", "{"} {
		a = strings.TrimPrefix(a, p)
	}
	a = strings.TrimRight(a, "}).:* ")
	if len(a) == 1 && a[0] >= 'A' && a[0] <= 'J' {
		return a[0]
	}
	return 0
}

// leadingChoice returns the choice letter an answer opens with: "B", "(B)",
// "B. x = 42", "B) ...", "**B**".
func leadingChoice(answer string) byte {
	if l := letterOf(answer); l != 0 {
		return l
	}
	t := strings.TrimLeft(answer, " (*")
	if len(t) >= 2 && t[0] >= 'A' && t[0] <= 'J' && strings.IndexByte(".):", t[1]) >= 0 && (len(t) == 2 || t[2] == ' ' || t[2] == '*') {
		return t[0]
	}
	return 0
}

// standaloneLetter reports whether s[i] is a choice letter standing alone:
// not inside a word, and not the article "A" or pronoun "I" before a word.
func standaloneLetter(s string, i int) bool {
	c := s[i]
	if c < 'A' || c > 'J' {
		return false
	}
	if i > 0 && (isLetter(s[i-1]) || s[i-1] == '\\' || s[i-1] == '\'') {
		return false
	}
	if i+1 < len(s) && (isLetter(s[i+1]) || s[i+1] == '\'') {
		return false
	}
	if (c == 'A' || c == 'I') && i+2 < len(s) && s[i+1] == ' ' && s[i+2] >= 'a' && s[i+2] <= 'z' {
		return false
	}
	return true
}

// extractLetter finds the chosen letter in a response: a boxed letter, the
// first letter after the last answer phrase, a letter opening the response,
// or the last letter standing alone.
func extractLetter(response string) byte {
	s, ok := afterThink(response)
	if !ok {
		return 0
	}
	if bs := findBoxes(s); len(bs) > 0 {
		if l := letterOf(bs[len(bs)-1].content); l != 0 {
			return l
		}
	}
	low := lowerASCII(s)
	best, bestLen := -1, 0
	for _, p := range append(answerPhrases, "answer") {
		if i := strings.LastIndex(low, p); i > best {
			best, bestLen = i, len(p)
		}
	}
	if best >= 0 {
		for i := best + bestLen; i < len(s); i++ {
			if standaloneLetter(s, i) {
				return s[i]
			}
		}
	}
	t := strings.TrimLeft(s, " \t\n(*")
	if len(t) > 0 && standaloneLetter(t, 0) {
		return t[0]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if standaloneLetter(s, i) {
			return s[i]
		}
	}
	return 0
}
