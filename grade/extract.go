package grade

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxResponse caps the response length Extract looks at (its tail is kept).
const maxResponse = 256 << 10

// Extract returns the final answer in a model response, with the default
// policies (see ExtractWith).
func Extract(response string) (answer string, ok bool) {
	return ExtractWith(response, DefaultOptions())
}

// ExtractWith returns the final answer in a model response. In order, it
// takes: only the text after the last </think> (none if <think> is never
// closed); the last \boxed{}/\fbox{} (joined with the boxes before it that
// only connectors separate, under BoxJoin); the text after the last "final
// answer is", "the answer is", "Answer:" and the like; a GSM8K "#### N"; the
// math in $..$, \(..\), \[..\] (all of it when only connectors lie between,
// else the last); the response itself when it is a short bare answer; and
// finally the last number of prose. ok is false when nothing is found.
func ExtractWith(response string, opts Options) (string, bool) {
	return extract(response, opts, []func(string, Options) (string, bool){
		fromFinalBox, fromPhrase, fromGSM8K, fromMath, fromBare, fromProse,
	})
}

// ExtractStated returns the final answer a model response states: a box,
// an answer phrase, a GSM8K "#### N", or a response that is itself a short
// answer (bare or in a math wrapper). Unlike ExtractWith it never guesses
// from the math or numbers of a worked solution, so a solution that never
// gives its answer has none — what evaluation counts as no_answer.
func ExtractStated(response string, opts Options) (string, bool) {
	return extract(response, opts, []func(string, Options) (string, bool){
		fromFinalBox, fromPhrase, fromGSM8K, fromShortMath, fromMathOnly,
	})
}

// fromMathOnly reads a short response that has no words at all — "42",
// "x = 3", "\\frac{1}{2}" — as its own answer; "I give up" is not one.
func fromMathOnly(s string, opts Options) (string, bool) {
	t := strings.TrimSpace(withoutText(s))
	if len(t) > 100 || strings.Contains(t, `\boxed`) || strings.Contains(t, `\fbox`) {
		return "", false // a box that could not be read is no answer
	}
	run := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			run++
			if start := i - run + 1; run >= 2 && (start == 0 || t[start-1] != '\\') {
				return "", false // a word, not a LaTeX command
			}
			continue
		}
		run = 0
	}
	return fromBare(s, opts)
}

// fromShortMath reads a response that is one short math expression in a
// wrapper ("$9$", "\(x+1\)").
func fromShortMath(s string, opts Options) (string, bool) {
	if t := strings.TrimSpace(s); len(t) > 200 || isProse(withoutText(t)) {
		return "", false
	}
	return fromMath(s, opts)
}

func extract(response string, opts Options, steps []func(string, Options) (string, bool)) (string, bool) {
	s := response
	if len(s) > maxResponse {
		s = s[len(s)-maxResponse:]
	}
	s, ok := afterThink(s)
	if !ok {
		return "", false
	}
	s = unescape(s)
	for _, f := range steps {
		if a, ok := f(s, opts); ok {
			a = strings.TrimSpace(a)
			if a != "" {
				return a, true
			}
		}
	}
	return "", false
}

// afterThink returns the text after the last </think>; ok is false when a
// <think> is never closed.
func afterThink(s string) (string, bool) {
	if i := strings.LastIndex(s, "</think>"); i >= 0 {
		return s[i+len("</think>"):], true
	}
	if strings.Contains(s, "<think>") {
		return "", false
	}
	return s, true
}

// unescape turns the literal "\n" of doubly escaped text into newlines.
func unescape(s string) string {
	if !strings.Contains(s, `\n`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == 'n' && (i+2 >= len(s) || !isLetter(s[i+2])) && (i == 0 || s[i-1] != '\\') {
			b.WriteByte('\n')
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// matchBrace returns the index of the brace closing the one at s[open], or -1.
func matchBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '}') {
				i++
			}
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// braceMatches returns, for every '{' of s, the index of its closing brace
// (or -1), in one pass.
func braceMatches(s string) []int32 {
	m := make([]int32, len(s))
	var stack []int32
	for i := 0; i < len(s); i++ {
		m[i] = -1
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '}') {
				i++
				m[i] = -1
			}
		case '{':
			stack = append(stack, int32(i))
		case '}':
			if len(stack) > 0 {
				m[stack[len(stack)-1]] = int32(i)
				stack = stack[:len(stack)-1]
			}
		}
	}
	return m
}

// box is one \boxed{...} found in a response: its content and span.
type box struct {
	content    string
	start, end int
}

// findBoxes returns every \boxed{}/\fbox{} (and a bare "boxed {x}") with
// balanced braces, plus "\boxed 5".
func findBoxes(s string) []box {
	var out []box
	var closes []int32
	match := func(open int) int {
		if len(s) < 4096 {
			return matchBrace(s, open)
		}
		if closes == nil {
			closes = braceMatches(s)
		}
		return int(closes[open])
	}
	nextB, nextF := -2, -2 // cached next "boxed"/"fbox" positions; -1 when none
	find := func(cache *int, word string, i int) int {
		if *cache == -1 || *cache >= i {
			return *cache
		}
		j := strings.Index(s[i:], word)
		if j < 0 {
			*cache = -1
		} else {
			*cache = i + j
		}
		return *cache
	}
	for i := 0; i < len(s); {
		j := find(&nextB, "boxed", i)
		k := find(&nextF, "fbox", i)
		if j < 0 && k < 0 {
			break
		}
		var start, after int
		if j >= 0 && (k < 0 || j < k) {
			start, after = j, j+len("boxed")
		} else {
			start, after = k, k+len("fbox")
		}
		if start > 0 && s[start-1] == '\\' {
			start--
		}
		r := after
		for r < len(s) && (s[r] == ' ' || s[r] == '\t') {
			r++
		}
		switch {
		case r < len(s) && s[r] == '{':
			e := match(r)
			if e < 0 {
				i = after
				continue
			}
			out = append(out, box{s[r+1 : e], start, e + 1})
			i = e + 1
		case r > after && r < len(s) && s[start] == '\\':
			// "\boxed 5": one token.
			e := r
			for e < len(s) && !strings.ContainsRune(" \t\n$.,;", rune(s[e])) {
				e++
			}
			if e > r {
				out = append(out, box{s[r:e], start, e})
			}
			i = e
		default:
			i = after
		}
	}
	return out
}

// maxJoin caps how many boxes BoxJoin joins into one list answer.
const maxJoin = 12

// fromFinalBox extracts the last box, unless an answer phrase after it
// states another answer in math ("we get \boxed{2}; the final answer is
// $3$": the box held an intermediate result).
func fromFinalBox(s string, opts Options) (string, bool) {
	bs := findBoxes(s)
	if len(bs) == 0 {
		return "", false
	}
	if after := s[bs[len(bs)-1].end:]; hasAnswerPhrase(after) {
		if a, ok := fromPhrase(after, opts); ok && !notMath(a, ok) {
			return a, true
		}
	}
	return fromBoxes(s, opts)
}

// hasAnswerPhrase reports whether s holds an answer phrase.
func hasAnswerPhrase(s string) bool {
	low := lowerASCII(s)
	for _, p := range answerPhrases {
		if strings.Contains(low, p) {
			return true
		}
	}
	return false
}

// fromBoxes extracts the last box, joined with earlier ones under BoxJoin.
func fromBoxes(s string, opts Options) (string, bool) {
	bs := findBoxes(s)
	if len(bs) == 0 {
		return "", false
	}
	last := len(bs) - 1
	first := last
	if opts.Boxes == BoxJoin {
		for first > 0 && last-first <= maxJoin && connectorGap(s[bs[first-1].end:bs[first].start]) {
			first--
		}
		if last-first > maxJoin {
			first = last // a flood of boxes is no list: the final one answers
		}
	}
	parts := make([]string, 0, last-first+1)
	same := true
	lastContent := strings.TrimSpace(bs[last].content)
	for _, b := range bs[first : last+1] {
		c := strings.TrimSpace(b.content)
		parts = append(parts, c)
		if same && c != lastContent && !Equal(c, lastContent, opts).Equal {
			same = false
		}
	}
	if same {
		// "\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}": one answer.
		return lastContent, true
	}
	return strings.Join(parts, ", "), true
}

// connectorGap reports whether the text between two boxes or two math spans
// only connects them: ",", "and", "or", "\quad", at most one other word.
func connectorGap(g string) bool {
	for _, w := range []string{`\quad`, `\qquad`, `\text`, `\(`, `\)`, `\[`, `\]`, "$", "{", "}", `\,`, `\ `, `\;`} {
		g = strings.ReplaceAll(g, w, " ")
	}
	g = strings.NewReplacer(",", " , ", ";", " ; ").Replace(g)
	fs := strings.Fields(g)
	if len(fs) == 0 {
		return true
	}
	conn, other, after := 0, 0, false
	for _, f := range fs {
		switch strings.ToLower(f) {
		case ",", ";", "and", "or", "&":
			conn++
			after = false
		default:
			other++
			if conn > 0 && len(f) >= 3 && isLetter(f[0]) && isLetter(f[1]) && isLetter(f[2]) {
				after = true
			}
		}
	}
	return conn > 0 && conn <= 2 && other <= 3 && !after
}

// answerPhrases introduce a final answer, most specific first.
var answerPhrases = []string{
	"final answer is", "final answer:", "answer is", "answer:", "answer :", "solution is",
	"réponse est", "réponse :", "réponse:", "respuesta es", "respuesta:", "antwort ist", "antwort:",
	"risposta è", "risposta:", "resposta é", "resposta:", "ответ:", "ответ —", "ответ -",
	"答案是", "答案：", "答案:", "答案为", "答え：", "答え:", "정답은", "정답:", "الإجابة هي", "الجواب هو",
}

// fromPhrase extracts what follows the last answer phrase.
func fromPhrase(s string, opts Options) (string, bool) {
	low := lowerASCII(s)
	best, bestLen := -1, 0
	for _, p := range answerPhrases {
		if i := strings.LastIndex(low, p); i > best {
			best, bestLen = i, len(p)
		}
	}
	if best < 0 {
		return "", false
	}
	rest := s[best+bestLen:]
	rest = strings.TrimLeft(rest, " \t\n:*\u2003")
	rest = strings.TrimPrefix(rest, "**")
	if rest == "" {
		return "", false
	}
	if a, ok := fromBoxes(rest, opts); ok {
		return a, true
	}
	rest = sentence(rest)
	rest = strings.Trim(rest, " *")
	if spans := mathSpans(rest); len(spans) > 0 && !isProse(outside(rest, spans)) {
		return joinSpans(rest, spans), true
	}
	if _, err := parse(rest); err == nil && proseWords(rest) == 0 {
		return rest, true
	}
	if pre := strings.TrimRight(strings.TrimSpace(beforeProse(rest)), ",;:"); pre != "" {
		if _, err := parse(pre); err == nil {
			return pre, true
		}
	}
	if isProse(stripMath(rest)) || proseWords(rest) > 0 {
		// The first piece of math in the sentence after the phrase:
		// "Réponse: Janeth aura encore 220 $ à payer d'ici 12 mois" is 220.
		if c := mathChunks(rest); len(c) > 0 {
			return c[0], true
		}
	}
	return rest, true
}

// skipCommand returns the index after the backslash command at s[i].
func skipCommand(s string, i int) int {
	j := i + 1
	for j < len(s) && isLetter(s[j]) {
		j++
	}
	if j == i+1 && j < len(s) {
		j++
	}
	return j
}

// chunkStopWords are short English words that separate math in prose.
var chunkStopWords = map[string]bool{
	"is": true, "of": true, "in": true, "be": true, "it": true, "at": true, "to": true, "on": true,
	"an": true, "as": true, "by": true, "we": true, "so": true, "if": true, "do": true, "up": true,
	"or": false, "a": true, "I": true,
}

// mathChunks splits prose into the runs between its words (and other
// scripts' letters and punctuation) and returns the runs that hold a digit
// and parse, in order.
func mathChunks(s string) []string {
	var out []string
	start := 0
	flush := func(end int) {
		c := strings.Trim(strings.TrimSpace(s[start:end]), ",;:.*$")
		c = strings.TrimSpace(c)
		if c != "" && strings.ContainsAny(c, "0123456789") {
			if _, err := parse(c); err == nil {
				out = append(out, c)
			}
		}
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r >= utf8.RuneSelf {
			if unicode.IsLetter(r) || unicode.IsPunct(r) && r != '−' {
				flush(i)
				start = i + n
			}
			i += n
			continue
		}
		if s[i] == '\\' {
			i = skipCommand(s, i)
			continue
		}
		if !isLetter(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		if w := s[i:j]; (len(w) >= 3 || chunkStopWords[strings.ToLower(w)]) && !mathWord(strings.ToLower(w)) && w != strings.ToUpper(w) {
			flush(i)
			start = j
		}
		i = j
	}
	flush(len(s))
	return out
}

// beforeProse returns s up to its first prose word ("5 because ..." is "5").
func beforeProse(s string) string {
	for i := 0; i < len(s); {
		if s[i] == '\\' {
			i = skipCommand(s, i)
			continue
		}
		if !isLetter(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		if w := strings.ToLower(s[i:j]); j-i >= 3 && !mathWord(w) {
			pre := s[:i]
			// "D, it doesn't ...": the words before the prose one go too.
			if k := strings.LastIndexAny(pre, ",;"); k >= 0 && strings.Trim(pre[k+1:], " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
				pre = pre[:k]
			}
			return pre
		}
		i = j
	}
	return s
}

// sentence cuts s at the end of its first line or sentence.
func sentence(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	inMath := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '$':
			inMath = !inMath
		case '.':
			if !inMath && (i+1 == len(s) || s[i+1] == ' ') && (i == 0 || s[i-1] != '.') {
				return s[:i]
			}
		}
	}
	return s
}

// fromGSM8K extracts the "#### N" of a GSM8K-style answer.
func fromGSM8K(s string, _ Options) (string, bool) {
	i := strings.LastIndex(s, "####")
	if i < 0 {
		return "", false
	}
	r := strings.TrimSpace(s[i+4:])
	if j := strings.IndexByte(r, '\n'); j >= 0 {
		r = r[:j]
	}
	return strings.TrimSpace(r), r != ""
}

// span is a math span of a response: the content's bounds.
type span struct{ start, end, outerStart, outerEnd int }

// mathSpans finds $$..$$, $..$, \(..\) and \[..\] spans in order.
func mathSpans(s string) []span {
	var out []span
	missing := map[string]bool{} // closers known to be absent from the rest
	for i := 0; i < len(s); i++ {
		var open, close string
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			open, close = "$$", "$$"
		case s[i] == '$' && (i == 0 || s[i-1] != '\\'):
			open, close = "$", "$"
		case strings.HasPrefix(s[i:], `\(`):
			open, close = `\(`, `\)`
		case strings.HasPrefix(s[i:], `\[`):
			open, close = `\[`, `\]`
		default:
			continue
		}
		if missing[close] {
			continue
		}
		j := indexUnescaped(s[i+len(open):], close)
		if j < 0 {
			missing[close] = true
			continue
		}
		out = append(out, span{i + len(open), i + len(open) + j, i, i + len(open) + j + len(close)})
		i += len(open) + j + len(close) - 1
	}
	return out
}

// indexUnescaped is strings.Index that skips a "$" escaped as "\$".
func indexUnescaped(s, sub string) int {
	if sub[0] != '$' {
		return strings.Index(s, sub)
	}
	for off := 0; ; {
		j := strings.Index(s[off:], sub)
		if j < 0 {
			return -1
		}
		if k := off + j; k == 0 || s[k-1] != '\\' {
			return k
		}
		off += j + 1
	}
}

// outside returns the text of s outside the spans.
func outside(s string, spans []span) string {
	var b strings.Builder
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.outerStart])
		b.WriteByte(' ')
		prev = sp.outerEnd
	}
	b.WriteString(s[prev:])
	return b.String()
}

func stripMath(s string) string { return outside(s, mathSpans(s)) }

// joinSpans joins the contents of all spans with ", ".
func joinSpans(s string, spans []span) string {
	parts := make([]string, 0, len(spans))
	for _, sp := range spans {
		if c := strings.TrimSpace(s[sp.start:sp.end]); c != "" {
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, ", ")
}

// fromMath extracts the math of a response: all spans when only connectors
// lie between them, else the last span, unless a number in prose follows it.
func fromMath(s string, _ Options) (string, bool) {
	spans := mathSpans(s)
	if len(spans) == 0 {
		return "", false
	}
	if connectorOnly(outside(s, spans)) {
		return joinSpans(s, spans), true
	}
	last := spans[len(spans)-1]
	// A number in the prose after the last math span is the later answer
	// ("... increases by 100%.").
	if n, ok := lastNumber(s[last.outerEnd:]); ok {
		return n, true
	}
	content := strings.TrimSpace(s[last.start:last.end])
	if proseWords(content) > 0 {
		// "$? just about 1$": a stray pair of dollar signs around prose.
		if c := mathChunks(content); len(c) > 0 {
			return c[len(c)-1], true
		}
	}
	return content, true
}

// connectorOnly reports whether text between spans only joins them.
func connectorOnly(g string) bool {
	for _, f := range strings.Fields(strings.NewReplacer(",", " ", ";", " ", ".", " ").Replace(g)) {
		switch strings.ToLower(f) {
		case "and", "or", `\quad`, "&":
		default:
			return false
		}
	}
	return true
}

// fromBare returns s itself when it is a short answer rather than prose.
func fromBare(s string, _ Options) (string, bool) {
	t := strings.TrimSpace(s)
	if len(t) > 400 && len(t) <= maxAnswer && proseWords(t) == 0 && !isProse(withoutText(t)) {
		// A long bare answer (an expanded polynomial) when it is all math.
		if _, err := parse(clean(t)); err == nil {
			return t, true
		}
	}
	if t == "" || len(t) > 400 || isProse(withoutText(t)) || proseWords(t) > 0 && strings.ContainsAny(t, "0123456789") && !strings.Contains(t, `\text`) {
		return "", false
	}
	return t, true
}

// withoutText replaces the content of \text{} and the like with a mark, so
// that "\text{two lines}" is not prose.
func withoutText(s string) string {
	for _, c := range []string{`\text{`, `\textbf{`, `\mbox{`, `\textnormal{`, `\textit{`} {
		for {
			i := strings.Index(s, c)
			if i < 0 {
				break
			}
			e := matchBrace(s, i+len(c)-1)
			if e < 0 {
				break
			}
			s = s[:i] + "T" + s[e+1:]
		}
	}
	return s
}

// fromProse returns the last number of a prose response.
func fromProse(s string, _ Options) (string, bool) {
	return lastNumber(s)
}

// isProse reports whether s reads as sentences: two or more words of three
// letters or more that are not math (function names, units, connectors), or
// any letter of a non-Latin script.
func isProse(s string) bool {
	for _, r := range s {
		if r >= utf8.RuneSelf && unicode.IsLetter(r) && !unicode.In(r, unicode.Latin, unicode.Greek) {
			return true
		}
	}
	return proseWords(s) >= 2
}

// proseWords counts the words of three letters or more that are not math.
func proseWords(s string) int {
	words := 0
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		if !isLetter(s[i]) {
			i += n
			continue
		}
		j := i
		for j < len(s) && (isLetter(s[j]) || s[j] >= utf8.RuneSelf && unicode.IsLetter(rune(s[j]))) {
			j++
		}
		w := strings.ToLower(s[i:j])
		cmd := i > 0 && s[i-1] == '\\' || strings.HasSuffix(s[:i], `\begin{`) || strings.HasSuffix(s[:i], `\end{`)
		if !cmd && len(w) >= 3 && !mathWord(w) && s[i:j] != strings.ToUpper(s[i:j]) {
			words++
		}
		i = j
	}
	return words
}

// mathWord reports whether w is a word that appears in bare answers.
func mathWord(w string) bool {
	if _, ok := plainFuncs[w]; ok {
		return true
	}
	return units[w] || percentWords[w] || w == "and" || w == "degrees" || w == "sqrt" || w == "infty"
}

// lastNumber returns the last number in s: an optional sign, digits with
// thousands separators, a decimal part, or a simple fraction "a/b".
func lastNumber(s string) (string, bool) {
	end := -1
	for i := len(s) - 1; i >= 0; i-- {
		if isDigit(s[i]) {
			end = i + 1
			break
		}
	}
	if end < 0 {
		return "", false
	}
	start := end
	for start > 0 {
		c := s[start-1]
		switch {
		case isDigit(c):
			start--
		case (c == '.' || c == ',') && start >= 2 && isDigit(s[start-2]) && start < end:
			start--
		case c == '/' && start >= 2 && isDigit(s[start-2]):
			start--
		default:
			goto done
		}
	}
done:
	num := s[start:end]
	if start > 0 && s[start-1] == '-' && (start == 1 || !isDigit(s[start-2]) && s[start-2] != ')') {
		num = "-" + num
	}
	num = strings.Trim(num, ".,/")
	if num == "" || num == "-" {
		return "", false
	}
	// A unit stuck to the number is not part of it; a decimal comma is kept.
	return num, true
}

// lowerASCII lowercases ASCII letters only, so that byte offsets into the
// result are offsets into s.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
