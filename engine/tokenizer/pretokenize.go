package tokenizer

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// The split regexes of the common byte-level BPE tokenizers. They use a
// lookahead (\s+(?!\S)), which Go's regexp lacks, so each has a hand-written
// scanner below that implements the same leftmost-first alternation; any
// other pattern falls back to regexp2.
const (
	// GPT-2's pattern, also the ByteLevel pre-tokenizer's use_regex split.
	PatternGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// Llama-3's pattern: numbers in runs of up to three digits.
	PatternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// Qwen2's pattern: single digits.
	PatternQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// splitter cuts text into pre-tokens, appending [start, end) byte offsets.
type splitter interface {
	split(s string, dst [][2]int) [][2]int
}

// stepper is a splitter that can find one piece at a time (the scanners),
// so that encoding need not hold every piece of a long text at once.
type stepper interface {
	// next returns the end of the piece that starts at i < len(s).
	next(s string, i int) int
}

func newSplitter(pattern string) (splitter, error) {
	switch pattern {
	case PatternGPT2:
		return scanGPT2{}, nil
	case PatternLlama3:
		return scanLlama{maxDigits: 3}, nil
	case PatternQwen2:
		return scanLlama{maxDigits: 1}, nil
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("split pattern %q: %w", pattern, err)
	}
	// A backtracking engine can take exponential time on a hostile pattern;
	// past this, the rest of the text is left as one piece.
	re.MatchTimeout = matchTimeout
	return regexSplitter{re}, nil
}

// matchTimeout bounds one regexp2 match of a pattern from tokenizer.json.
const matchTimeout = 2 * time.Second

// regexSplitter is the general (slower) path for unknown patterns, with
// the "Isolated" behaviour: matches and the text between them are pieces.
type regexSplitter struct{ re *regexp2.Regexp }

func (r regexSplitter) split(s string, dst [][2]int) [][2]int {
	// regexp2 reports rune indexes; map them back to bytes.
	runeStart := make([]int, 0, len(s)+1)
	for i := range s {
		runeStart = append(runeStart, i)
	}
	runeStart = append(runeStart, len(s))
	prev := 0
	m, _ := r.re.FindStringMatch(s)
	for m != nil {
		a, b := runeStart[m.RuneIndex], runeStart[m.RuneIndex+m.RuneLength]
		if a > prev {
			dst = append(dst, [2]int{prev, a})
		}
		if b > a {
			dst = append(dst, [2]int{a, b})
		}
		prev = b
		m, _ = r.re.FindNextMatch(m)
	}
	if prev < len(s) {
		dst = append(dst, [2]int{prev, len(s)})
	}
	return dst
}

// Character classes as Rust's regex (Unicode) defines them.
func isL(r rune) bool     { return unicode.IsLetter(r) }
func isN(r rune) bool     { return unicode.IsNumber(r) }
func isSpace(r rune) bool { return unicode.IsSpace(r) } // Unicode White_Space

func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// contraction matches 's 't 're 've 'm 'll 'd at i (case-insensitively when
// fold is set, with Unicode simple folding as Rust's (?i) does: ſ folds to
// s, K to k) and returns its length, or 0.
func contraction(s string, i int, fold bool) int {
	if i >= len(s) || s[i] != '\'' {
		return 0
	}
	r1, n1 := runeAt(s, i+1)
	lower := func(r rune) rune {
		if !fold {
			return r
		}
		switch r {
		case 'ſ':
			return 's'
		case 'K':
			return 'k'
		}
		return unicode.ToLower(r)
	}
	switch lower(r1) {
	case 's', 't', 'm', 'd':
		return 1 + n1
	case 'r', 'v', 'l':
		r2, n2 := runeAt(s, i+1+n1)
		want := map[rune]rune{'r': 'e', 'v': 'e', 'l': 'l'}[lower(r1)]
		if r2 >= 0 && lower(r2) == want {
			return 1 + n1 + n2
		}
	}
	return 0
}

// spanWhile returns the end of the run of runes from i that satisfy f.
func spanWhile(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := runeAt(s, i)
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// whitespace handles the shared tail `\s+(?!\S)|\s+` at i (s[i] is
// whitespace): the whole run if it ends the text or is one rune long,
// else the run minus its last rune, which then joins the next piece.
func whitespace(s string, i int) int {
	j := spanWhile(s, i, isSpace)
	if j == len(s) {
		return j
	}
	// Back off one rune so the next token can take it (e.g. " word").
	_, last := utf8.DecodeLastRuneInString(s[i:j])
	if j-last > i {
		return j - last
	}
	return j
}

// scanGPT2 implements PatternGPT2.
type scanGPT2 struct{}

func (sc scanGPT2) split(s string, dst [][2]int) [][2]int {
	for i := 0; i < len(s); {
		end := sc.next(s, i)
		dst = append(dst, [2]int{i, end})
		i = end
	}
	return dst
}

func (scanGPT2) next(s string, i int) int {
	notLNS := func(r rune) bool { return !isSpace(r) && !isL(r) && !isN(r) }
	if n := contraction(s, i, false); n > 0 {
		return i + n
	}
	j := i
	if s[j] == ' ' {
		j++
	}
	r, _ := runeAt(s, j)
	switch {
	case r >= 0 && isL(r):
		return spanWhile(s, j, isL)
	case r >= 0 && isN(r):
		return spanWhile(s, j, isN)
	case r >= 0 && notLNS(r):
		return spanWhile(s, j, notLNS)
	}
	// s[i] is whitespace (a lone space before whitespace or the end).
	return whitespace(s, i)
}

// scanLlama implements PatternLlama3 (maxDigits 3) and PatternQwen2
// (maxDigits 1).
type scanLlama struct{ maxDigits int }

func (sc scanLlama) split(s string, dst [][2]int) [][2]int {
	for i := 0; i < len(s); {
		end := sc.next(s, i)
		dst = append(dst, [2]int{i, end})
		i = end
	}
	return dst
}

func (sc scanLlama) next(s string, i int) int { return sc.match(s, i, isNL, notLNS) }

func isNL(r rune) bool   { return r == '\r' || r == '\n' }
func notLNS(r rune) bool { return !isSpace(r) && !isL(r) && !isN(r) }

func (sc scanLlama) match(s string, i int, isNL, notLNS func(rune) bool) int {
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if n := contraction(s, i, true); n > 0 {
		return i + n
	}
	r, n := runeAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(r) {
		return spanWhile(s, i, isL)
	}
	if !isNL(r) && !isN(r) {
		if r2, _ := runeAt(s, i+n); r2 >= 0 && isL(r2) {
			return spanWhile(s, i+n, isL)
		}
	}
	// \p{N}{1,maxDigits}
	if isN(r) {
		j := i
		for k := 0; k < sc.maxDigits; k++ {
			rr, nn := runeAt(s, j)
			if rr < 0 || !isN(rr) {
				break
			}
			j += nn
		}
		return j
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	j := i
	if r == ' ' {
		j++
	}
	if r2, _ := runeAt(s, j); r2 >= 0 && notLNS(r2) {
		j = spanWhile(s, j, notLNS)
		return spanWhile(s, j, isNL)
	}
	// \s*[\r\n]+ : up to the last newline of the whitespace run.
	ws := spanWhile(s, i, isSpace)
	lastNL := -1
	for k := i; k < ws; k++ {
		if s[k] == '\r' || s[k] == '\n' {
			lastNL = k
		}
	}
	if lastNL >= 0 {
		return lastNL + 1
	}
	// \s+(?!\S)|\s+
	if ws > i {
		return whitespace(s, i)
	}
	// Unreachable for valid text: every rune is covered above. Take one
	// rune so that scanning always advances.
	return i + max(n, 1)
}
