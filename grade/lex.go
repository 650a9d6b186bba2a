package grade

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token of an answer.
type tokKind uint8

const (
	tEOF   tokKind = iota
	tNum           // a number literal; s holds digits and at most one '.', base in base
	tName          // a one-letter variable, a Greek letter or an unknown command
	tWord          // a word of prose or \text content
	tFunc          // a function or operator command: frac, sqrt, sin, log, binom, ...
	tOp            // + - * / ^ _ ! ' % pm = < <= > >= != ~ in cup cap
	tOpen          // ( [ { and the set brace \{ (s is "{s")
	tClose         // ) ] } and \}
	tSep           // , ; and "and"/"or" between list items
	tAmp           // & between matrix cells
	tRow           // \\ between matrix rows
	tBegin         // \begin{env}; s is env
	tEnd           // \end{env}
	tBar           // | (absolute value)
	tUnit          // a unit word after a quantity; dropped by the parser
)

// token is one lexical token. sp records whitespace before it.
type token struct {
	k    tokKind
	s    string
	base int
	sp   bool
}

// maxTokens caps the size of an answer the parser looks at.
const maxTokens = 3000

// lexer turns an answer string into tokens.
type lexer struct {
	src   string
	pos   int
	toks  []token
	sp    bool
	comma bool // the answer has exactly one comma: "1,22" may be a decimal comma
	depth int  // bracket depth: inside brackets a plain comma separates items
	nest  int  // nesting of \text{}/\mathrm{} sub-lexers
	fail  bool
}

// lex splits s into tokens; ok is false when s is too large to grade.
func lex(s string) ([]token, bool) {
	l := &lexer{src: s, comma: strings.Count(s, ",") == 1 && !strings.Contains(s, ", "), toks: make([]token, 0, len(s)/2+2)}
	l.run()
	if l.fail || len(l.toks) > maxTokens {
		return nil, false
	}
	return quads(l.toks), true
}

// quads keeps a \quad as a separator where it stands between relations
// ("x = 1 \quad y = 2", a system) and makes it a space elsewhere ("5 \quad
// \text{cm}").
func quads(toks []token) []token {
	hasRel := func(ts []token) bool {
		for _, t := range ts {
			if t.k == tOp && relOps[t.s] {
				return true
			}
		}
		return false
	}
	// segment returns the tokens from i in direction d up to a separator.
	segment := func(i, d int) []token {
		j := i
		for j >= 0 && j < len(toks) && !(toks[j].k == tSep) {
			j += d
		}
		if d < 0 {
			return toks[j+1 : i+1]
		}
		return toks[i:j]
	}
	out := toks[:0:0]
	sp := false
	for i, t := range toks {
		if t.k == tSep && t.s == "quad" {
			if i > 0 && i+1 < len(toks) && hasRel(segment(i-1, -1)) && hasRel(segment(i+1, 1)) {
				out = append(out, token{k: tSep, s: ";", sp: t.sp})
			} else {
				sp = true
			}
			continue
		}
		if sp {
			t.sp, sp = true, false
		}
		out = append(out, t)
	}
	return out
}

func (l *lexer) emit(k tokKind, s string) {
	if len(l.toks) > maxTokens {
		l.fail = true
		return
	}
	l.toks = append(l.toks, token{k: k, s: s, sp: l.sp})
	l.sp = false
}

func (l *lexer) run() {
	for l.pos < len(l.src) && !l.fail {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '~':
			l.sp = true
			l.pos++
		case c >= '0' && c <= '9' || c == '.' && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]):
			l.number()
		case c == '\\':
			l.command()
		case isLetter(c):
			l.letters()
		case c < utf8.RuneSelf:
			l.punct(c)
		default:
			l.unicode()
		}
	}
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// number reads a numeral: digits with thousands separators (",", "{,}", ",\!",
// "\,", a space before exactly three digits), a decimal point or decimal comma,
// an exponent ("1e-5") and a base subscript ("1011_2").
func (l *lexer) number() {
	var b strings.Builder
	start := l.pos
	l.digits(&b)
	for {
		n, ok := l.group(b.String())
		if !ok {
			break
		}
		b.WriteString(n)
	}
	if l.pos < len(l.src) && l.src[l.pos] == '.' && l.pos+1 < len(l.src) && (isDigit(l.src[l.pos+1]) || l.src[l.pos+1] == '\\') {
		save := l.pos
		b.WriteByte('.')
		l.pos++
		l.digits(&b)
		if rep, ok := l.overline(); ok {
			b.WriteString("(" + rep + ")")
		} else if b.String()[b.Len()-1] == '.' {
			l.pos = save
			s := b.String()
			b.Reset()
			b.WriteString(s[:len(s)-1])
		}
	} else if l.comma && l.depth == 0 && l.pos+1 < len(l.src) && l.src[l.pos] == ',' && isDigit(l.src[l.pos+1]) {
		// A lone comma between digits: "1,22", "0,111", "1000,99" are decimals.
		intPart := b.String()
		j := l.pos + 1
		for j < len(l.src) && isDigit(l.src[j]) {
			j++
		}
		frac := l.src[l.pos+1 : j]
		if !strings.Contains(intPart, ".") && (len(frac) == 2 || intPart == "0") && (j == len(l.src) || !isLetter(l.src[j])) {
			b.WriteByte('.')
			b.WriteString(frac)
			l.pos = j
		}
	}
	s := b.String()
	if s == "" || s == "." {
		s = l.src[start:l.pos]
	}
	// Scientific notation in plain text: 1e-5, 2.5E+3.
	if l.pos+1 < len(l.src) && (l.src[l.pos] == 'e' || l.src[l.pos] == 'E') {
		j := l.pos + 1
		if j < len(l.src) && (l.src[j] == '+' || l.src[j] == '-') {
			j++
		}
		k := j
		for k < len(l.src) && isDigit(l.src[k]) {
			k++
		}
		if k > j && (k == len(l.src) || !isLetter(l.src[k])) {
			s += "e" + l.src[l.pos+1:k]
			l.pos = k
		}
	}
	base := 0
	if l.pos+1 < len(l.src) && l.src[l.pos] == '_' {
		j := l.pos + 1
		brace := l.src[j] == '{'
		if brace {
			j++
		}
		k := j
		for k < len(l.src) && isDigit(l.src[k]) {
			k++
		}
		if k > j && k-j <= 2 && (!brace || k < len(l.src) && l.src[k] == '}') && (brace || k-j == 1 || k == j+2) {
			v := atoiSmall(l.src[j:k])
			if v >= 2 && v <= 36 && !strings.ContainsAny(s, ".e") {
				base = v
				if brace {
					k++
				}
				l.pos = k
			}
		}
	}
	l.emit(tNum, s)
	l.toks[len(l.toks)-1].base = base
}

// overline reads the repeating block of "0.\overline{3}" or "0.1\dot{6}".
func (l *lexer) overline() (string, bool) {
	for _, p := range []string{`\overline`, `\dot`, `\bar`} {
		if !strings.HasPrefix(l.src[l.pos:], p) {
			continue
		}
		save := l.pos
		l.pos += len(p)
		var c string
		if l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			c = l.src[l.pos : l.pos+1]
			l.pos++
		} else {
			c = strings.TrimSpace(l.braceArg())
		}
		if c == "" || strings.Trim(c, "0123456789") != "" {
			l.pos = save
			return "", false
		}
		return c, true
	}
	return "", false
}

func atoiSmall(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func (l *lexer) digits(b *strings.Builder) {
	for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
		b.WriteByte(l.src[l.pos])
		l.pos++
	}
}

// groupSeps are the thousands separators; the bool says whether a group after
// it may have any length (LaTeX's ",\!" is only ever a digit separator).
var groupSeps = []struct {
	sep string
	any bool
}{
	{",\\!", true}, {"{,}", true}, {"{, }", true}, {" {,}", true}, {" {, }", true}, {"\\!", true}, {"\\,", false}, {",\\ ", false},
	{",", false}, {"\u2009", false}, {"\u202f", false}, {"\u00a0", false}, {"\\ ", false}, {" ", false},
}

// group consumes one thousands group after a run of digits.
func (l *lexer) group(intPart string) (string, bool) {
	rest := l.src[l.pos:]
	for _, g := range groupSeps {
		if !strings.HasPrefix(rest, g.sep) {
			continue
		}
		if !g.any && (l.depth > 0 && strings.HasPrefix(g.sep, ",") || intPart == "0") {
			return "", false
		}
		r := rest[len(g.sep):]
		if g.any {
			r = strings.TrimLeft(r, " ")
		}
		n := 0
		for n < len(r) && isDigit(r[n]) {
			n++
		}
		if n == 0 || !g.any && n != 3 {
			return "", false
		}
		if !g.any && n < len(r) && (r[n] == '.' && g.sep == " " || r[n] == '/') {
			return "", false
		}
		if g.sep == "," && n < len(r) && r[n] == ',' && !l.nextGroupsOK(r[n:]) {
			return "", false
		}
		l.pos += len(rest) - len(r) + n
		return r[:n], true
	}
	return "", false
}

// nextGroupsOK reports whether ",ddd,ddd..." continues with well-formed groups.
func (l *lexer) nextGroupsOK(r string) bool {
	for strings.HasPrefix(r, ",") {
		r = r[1:]
		n := 0
		for n < len(r) && isDigit(r[n]) {
			n++
		}
		if n != 3 {
			return false
		}
		r = r[n:]
	}
	return true
}

// letters reads a run of ASCII letters: a known function or word, or
// single-letter variables.
func (l *lexer) letters() {
	j := l.pos
	for j < len(l.src) && isLetter(l.src[j]) {
		j++
	}
	w := l.src[l.pos:j]
	l.pos = j
	l.word(w, false)
}

// word emits the tokens for a word w; text reports that it came from \text{}.
func (l *lexer) word(w string, text bool) {
	lw := strings.ToLower(w)
	if f, ok := plainFuncs[lw]; ok && !text {
		l.emitCmd(f)
		return
	}
	switch {
	case lw == "and" || lw == "or" || lw == "und" || lw == "et":
		l.emit(tSep, "and")
		return
	case percentWords[lw]:
		l.emit(tOp, "%")
		return
	case lw == "degrees" || lw == "degree" || lw == "deg":
		l.emit(tUnit, "deg")
		return
	case (lw == "pm" || lw == "am" || lw == "p.m." || lw == "a.m.") && l.afterTime():
		l.emit(tUnit, strings.ReplaceAll(lw, ".", ""))
		return
	case units[lw] && (len(l.toks) > 0 && quantityEnd(l.toks[len(l.toks)-1]) || text) && (len(w) > 1 || l.atEnd()) &&
		(len(w) > 2 || l.sp || text):
		// A short unit needs a space ("10 cm"); "10cm" and "2m" are products.
		l.emit(tUnit, lw)
		return
	}
	if len(w) == 1 {
		l.emit(tName, w)
		return
	}
	if len(w) == 2 && !text {
		l.emit(tName, w[:1])
		l.emit(tName, w[1:])
		return
	}
	l.emit(tWord, lw)
}

// afterTime reports whether the last tokens are a time "8:34".
func (l *lexer) afterTime() bool {
	n := len(l.toks)
	return n >= 3 && l.toks[n-1].k == tNum && l.toks[n-2].k == tOp && l.toks[n-2].s == ":" && l.toks[n-3].k == tNum
}

// atEnd reports whether only a power of a unit ("^2") or nothing is left.
func (l *lexer) atEnd() bool {
	r := strings.TrimSpace(l.src[l.pos:])
	r = strings.TrimPrefix(r, "^")
	r = strings.Trim(r, "{}23.")
	return r == "" && len(l.toks) > 0 && l.toks[len(l.toks)-1].k == tNum
}

// quantityEnd reports whether t can end a quantity a unit may follow.
func quantityEnd(t token) bool {
	return t.k == tNum || t.k == tClose || t.k == tUnit || t.k == tName || t.k == tOp && t.s == "^"
}

var plainFuncs = map[string]string{
	"sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan", "sec": "sec", "csc": "csc", "cot": "cot",
	"arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan", "asin": "arcsin", "acos": "arccos", "atan": "arctan",
	"sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "log": "log", "ln": "ln", "exp": "exp", "pi": "pi",
	"inf": "infty", "infty": "infty", "infinity": "infty", "abs": "abs", "oo": "infty", "lg": "lg",
}

var percentWords = map[string]bool{"percent": true, "pct": true, "percentage": true, "prozent": true}

// units are words dropped after a quantity ("10 cm", "5 \text{ miles}").
var units = map[string]bool{}

func init() {
	for _, u := range strings.Fields(`cm mm km m meter meters metre metres centimeter centimeters kilometer kilometers
		millimeter millimeters inch inches ft feet foot yard yards yd mile miles mi mph kph kmh
		kg g gram grams kilogram kilograms mg lb lbs pound pounds ounce ounces oz ton tons
		s sec secs second seconds min mins minute minutes h hr hrs hour hours day days week weeks month months year years
		dollar dollars cent cents euro euros usd unit units square sq cubic cu liter liters litre litres l ml gallon gallons
		people persons students apples times ways items points dots sides cents inches² cm² m²
		km/h m/s mi/h`) {
		units[u] = true
	}
}

// cmdMap renames LaTeX commands to token kinds and names.
var cmdMap = map[string]token{
	"cdot": {k: tOp, s: "*"}, "times": {k: tOp, s: "*"}, "ast": {k: tOp, s: "*"}, "div": {k: tOp, s: "/"},
	"pm": {k: tOp, s: "pm"}, "mp": {k: tOp, s: "mp"},
	"le": {k: tOp, s: "<="}, "leq": {k: tOp, s: "<="}, "leqslant": {k: tOp, s: "<="},
	"ge": {k: tOp, s: ">="}, "geq": {k: tOp, s: ">="}, "geqslant": {k: tOp, s: ">="},
	"lt": {k: tOp, s: "<"}, "gt": {k: tOp, s: ">"}, "ne": {k: tOp, s: "!="}, "neq": {k: tOp, s: "!="},
	"approx": {k: tOp, s: "~"}, "simeq": {k: tOp, s: "~"}, "approxeq": {k: tOp, s: "~"}, "equiv": {k: tOp, s: "="},
	"in": {k: tOp, s: "in"}, "cup": {k: tOp, s: "cup"}, "cap": {k: tOp, s: "cap"},
	"to": {k: tOp, s: "=>"}, "rightarrow": {k: tOp, s: "=>"}, "Rightarrow": {k: tOp, s: "=>"},
	"implies": {k: tOp, s: "=>"}, "Longrightarrow": {k: tOp, s: "=>"},
	"%": {k: tOp, s: "%"}, "prime": {k: tOp, s: "'"},
	"{": {k: tOpen, s: "{s"}, "}": {k: tClose, s: "}"}, "lbrace": {k: tOpen, s: "{s"}, "rbrace": {k: tClose, s: "}"},
	"langle": {k: tOpen, s: "("}, "rangle": {k: tClose, s: ")"},
	"lfloor": {k: tFunc, s: "floor"}, "lceil": {k: tFunc, s: "ceil"},
	"rfloor": {k: tClose, s: "floor"}, "rceil": {k: tClose, s: "ceil"},
	"vert": {k: tBar, s: "|"}, "lvert": {k: tBar, s: "|"}, "rvert": {k: tBar, s: "|"}, "mid": {k: tBar, s: "|"},
	"infty": {k: tName, s: "infty"}, "infin": {k: tName, s: "infty"}, "pi": {k: tName, s: "pi"},
	"emptyset": {k: tName, s: "emptyset"}, "varnothing": {k: tName, s: "emptyset"},
	"dots": {k: tName, s: "..."}, "ldots": {k: tName, s: "..."}, "cdots": {k: tName, s: "..."},
	"imath": {k: tName, s: "i"}, "circ": {k: tUnit, s: "deg"}, "degree": {k: tUnit, s: "deg"},
	"setminus": {k: tOp, s: "setminus"},
	"colon":    {k: tOp, s: ":"},
}

// funcCmds are commands that take arguments or name a function.
var funcCmds = map[string]string{
	"frac": "frac", "dfrac": "frac", "tfrac": "frac", "cfrac": "frac", "sqrt": "sqrt",
	"binom": "binom", "dbinom": "binom", "tbinom": "binom",
	"sin": "sin", "cos": "cos", "tan": "tan", "sec": "sec", "csc": "csc", "cot": "cot",
	"arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
	"log": "log", "ln": "ln", "lg": "lg", "exp": "exp", "gcd": "gcd", "lcm": "lcm", "max": "max", "min": "min",
	"det": "det", "sum": "sum", "prod": "prod", "abs": "abs",
}

// skipCmds are commands with no meaning for the value of an answer.
var skipCmds = map[string]bool{
	"left": true, "right": true, "big": true, "Big": true, "bigg": true, "Bigg": true, "bigl": true, "bigr": true,
	"Bigl": true, "Bigr": true, "biggl": true, "biggr": true, "displaystyle": true, "textstyle": true,
	"limits": true, "nolimits": true, "boxed": true, "fbox": true, "$": true, "quad": true, "qquad": true,
	"overline": true, "vec": true, "hat": true, "bar": true, "tilde": true, "mathbf": true, "boldsymbol": true,
	"mathit": true, "mathcal": true, "mathbb": true, "mathsf": true, "mathscr": true, "mathfrak": true, "bm": true,
	"overrightarrow": true, "widehat": true, "angle": true, "measuredangle": true, "it": true, "bf": true,
	"rm": true, "cal": true, "mathrm": true, "operatorname": true, "hline": true, "small": true, "large": true,
	"underline": true, "cancel": true, "phantom": true, "color": true, "ensuremath": true, "space": true,
	"allowbreak": true, "relax": true, "nonumber": true, "notag": true, "Large": true, "normalsize": true,
}

// textCmds take a braced argument of text.
var textCmds = map[string]bool{
	"text": true, "textbf": true, "textit": true, "mbox": true, "textnormal": true, "textrm": true,
	"texttt": true, "textsf": true, "emph": true, "hbox": true, "textup": true,
}

var greek = map[string]bool{
	"alpha": true, "beta": true, "gamma": true, "delta": true, "epsilon": true, "varepsilon": true, "zeta": true,
	"eta": true, "theta": true, "vartheta": true, "iota": true, "kappa": true, "lambda": true, "mu": true,
	"nu": true, "xi": true, "rho": true, "sigma": true, "tau": true, "upsilon": true, "phi": true, "varphi": true,
	"chi": true, "psi": true, "omega": true, "Gamma": true, "Delta": true, "Theta": true, "Lambda": true,
	"Xi": true, "Pi": true, "Sigma": true, "Phi": true, "Psi": true, "Omega": true, "ell": true,
}

// greekRunes names the Greek letters written as Unicode.
var greekRunes = map[rune]string{
	'α': "alpha", 'β': "beta", 'γ': "gamma", 'δ': "delta", 'ε': "epsilon", 'θ': "theta", 'λ': "lambda",
	'μ': "mu", 'σ': "sigma", 'τ': "tau", 'φ': "phi", 'ω': "omega", 'ρ': "rho", 'ψ': "psi", 'χ': "chi",
}

// command reads a backslash command.
func (l *lexer) command() {
	s := l.src
	i := l.pos + 1
	if i >= len(s) {
		l.pos++
		return
	}
	// "\\" is a row separator unless a known command follows ("\\frac" from
	// doubly escaped JSON).
	if s[i] == '\\' {
		j := i + 1
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		if name := s[i+1 : j]; j > i+1 && knownCmd(name) {
			l.pos = i
			l.command()
			return
		}
		l.pos = i + 1
		l.emit(tRow, `\\`)
		return
	}
	if !isLetter(s[i]) {
		l.pos = i + 1
		switch s[i] {
		case ',', '!', ';', ':', ' ', '>', '\n':
			l.sp = true
		case '{', '}', '%':
			t := cmdMap[string(s[i])]
			l.emit(t.k, t.s)
		case '(', '[', ')', ']', '$':
			// math delimiters inside an answer: ignore.
		case '|':
			l.emit(tBar, "|")
		}
		return
	}
	j := i
	for j < len(s) && isLetter(s[j]) {
		j++
	}
	name := s[i:j]
	l.pos = j
	switch {
	case name == "left" || name == "right" || strings.HasPrefix(name, "big") || strings.HasPrefix(name, "Big"):
		if l.pos < len(s) && s[l.pos] == '.' {
			l.pos++
		}
	case textCmds[name]:
		l.text(name)
	case name == "mathrm" || name == "operatorname" || name == "mathcal" || name == "mathbf" || name == "mathit" || name == "mathbb":
		l.mathrm()
	case name == "begin" || name == "end":
		env := l.braceArg()
		env = strings.TrimSuffix(env, "*")
		if name == "begin" {
			l.emit(tBegin, env)
			if env == "array" && l.pos < len(s) && s[l.pos] == '{' {
				l.braceArg()
			}
		} else {
			l.emit(tEnd, env)
		}
	case name == "quad" || name == "qquad":
		l.emit(tSep, "quad") // a space, or a separator between equations (see quads)
	case name == "space":
		l.sp = true
	case skipCmds[name]:
	case funcCmds[name] != "":
		l.emitCmd(funcCmds[name])
	case greek[name]:
		l.emit(tName, strings.TrimPrefix(name, "var")) // \varphi is φ
	default:
		if t, ok := cmdMap[name]; ok {
			l.emit(t.k, t.s)
			return
		}
		l.emit(tName, `\`+name)
	}
}

func knownCmd(name string) bool {
	_, a := cmdMap[name]
	return a || skipCmds[name] || textCmds[name] || funcCmds[name] != "" || greek[name] ||
		name == "begin" || name == "end" || name == "left" || name == "right" || name == "mathrm" || name == "operatorname"
}

func (l *lexer) emitCmd(f string) {
	switch f {
	case "pi", "infty":
		l.emit(tName, f)
	default:
		l.emit(tFunc, f)
	}
}

// braceArg reads a balanced {...} argument and returns its content.
func (l *lexer) braceArg() string {
	s := l.src
	for l.pos < len(s) && s[l.pos] == ' ' {
		l.pos++
	}
	if l.pos >= len(s) || s[l.pos] != '{' {
		return ""
	}
	depth := 0
	start := l.pos + 1
	for i := l.pos; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				l.pos = i + 1
				return s[start:i]
			}
		}
	}
	l.pos = len(s)
	return s[start:]
}

// text handles \text{...}: connectors become separators, units and percent
// words their markers, short math-like content is lexed inline, and prose a word.
func (l *lexer) text(name string) {
	if l.pos >= len(l.src) || l.src[l.pos] != '{' {
		return
	}
	c := strings.TrimSpace(l.braceArg())
	sp := l.sp
	switch {
	case c == "":
		return
	case isMathy(c) || len(c) <= 3 && letterOf(c) != 0:
		sub := &lexer{src: c, comma: l.comma, nest: l.nest + 1}
		if sub.nest > 8 {
			l.fail = true
			return
		}
		sub.run()
		if len(sub.toks) > 0 {
			sub.toks[0].sp = sp
		}
		l.toks = append(l.toks, sub.toks...)
		l.fail = l.fail || sub.fail
		return
	}
	if _, ok := plainFuncs[strings.ToLower(c)]; ok {
		l.word(c, false)
		return
	}
	if i := strings.IndexFunc(c, unicode.IsLetter); i > 0 && isMathy(strings.TrimSpace(c[:i])) && isDigit(strings.TrimSpace(c[:i])[0]) {
		// "\text{5 apples}": a quantity and its unit.
		sub := &lexer{src: strings.TrimSpace(c[:i]), comma: l.comma, nest: l.nest + 1}
		sub.run()
		if len(sub.toks) > 0 {
			sub.toks[0].sp = sp
		}
		l.toks = append(l.toks, sub.toks...)
		l.emit(tUnit, strings.ToLower(strings.TrimSpace(c[i:])))
		return
	}
	if lc := strings.ToLower(strings.ReplaceAll(c, " ", "")); (lc == "p.m." || lc == "a.m." || lc == "pm" || lc == "am") && l.afterTime() {
		l.emit(tUnit, strings.ReplaceAll(lc, ".", ""))
		return
	}
	fs := strings.Fields(strings.ToLower(c))
	allUnits := true
	for _, f := range fs {
		if !units[f] && !percentWords[f] && f != "and" && f != "or" && f != "degrees" {
			allUnits = false
		}
	}
	if allUnits {
		for _, f := range fs {
			l.word(f, true)
		}
		return
	}
	l.emit(tWord, strings.Join(fs, " "))
}

// isMathy reports whether \text content is a number, a letter or a formula.
func isMathy(c string) bool {
	if len(c) == 1 {
		return true
	}
	for i := 0; i < len(c); i++ {
		if isLetter(c[i]) || c[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// mathrm lexes the argument of \mathrm{}/\operatorname{}: a function name,
// "e", or its content inline.
func (l *lexer) mathrm() {
	if l.pos >= len(l.src) || l.src[l.pos] != '{' {
		return
	}
	c := strings.TrimSpace(l.braceArg())
	if c == "R" && strings.HasSuffix(l.src[:l.pos-3], "mathbb") {
		l.emit(tOpen, "(")
		l.emit(tOp, "-")
		l.emit(tName, "infty")
		l.emit(tSep, ",")
		l.emit(tName, "infty")
		l.emit(tClose, ")")
		return
	}
	if f, ok := funcCmds[c]; ok {
		l.emitCmd(f)
		return
	}
	if f, ok := plainFuncs[strings.ToLower(c)]; ok {
		l.emitCmd(f)
		return
	}
	if lc := strings.ToLower(c); units[lc] && len(c) > 1 && len(l.toks) > 0 && quantityEnd(l.toks[len(l.toks)-1]) {
		l.emit(tUnit, lc) // "12 \mathrm{cm}": upright letters after a quantity are its unit
		return
	}
	sub := &lexer{src: c, comma: l.comma, nest: l.nest + 1}
	if sub.nest > 8 {
		l.fail = true
		return
	}
	sub.run()
	if len(sub.toks) > 0 {
		sub.toks[0].sp = l.sp
	}
	l.sp = false
	l.toks = append(l.toks, sub.toks...)
	l.fail = l.fail || sub.fail
}

// punct handles ASCII punctuation.
func (l *lexer) punct(c byte) {
	s := l.src
	l.pos++
	next := byte(0)
	if l.pos < len(s) {
		next = s[l.pos]
	}
	switch c {
	case '+', '-', '/', '^', '_', '!', '\'', '%', ':':
		if c == '!' && next == '=' {
			l.pos++
			l.emit(tOp, "!=")
			return
		}
		l.emit(tOp, string(c))
	case '*':
		if next == '*' {
			l.pos++
			l.emit(tOp, "^")
			return
		}
		l.emit(tOp, "*")
	case '=':
		if next == '=' {
			l.pos++
		} else if next == '>' {
			l.pos++
			l.emit(tOp, "=>")
			return
		}
		l.emit(tOp, "=")
	case '<', '>':
		op := string(c)
		if next == '=' {
			l.pos++
			op += "="
		}
		l.emit(tOp, op)
	case '(', '[', '{':
		l.depth++
		l.emit(tOpen, string(c))
	case ')', ']', '}':
		l.depth--
		l.emit(tClose, string(c))
	case ',', ';':
		l.emit(tSep, string(c))
	case '&':
		l.emit(tAmp, "&")
	case '|':
		l.emit(tBar, "|")
	case '$', '"', '`', '?':
	case '.':
		if strings.HasPrefix(l.src[l.pos:], "..") {
			l.pos += 2
			l.emit(tName, "...") // an ellipsis is part of the answer
			return
		}
		l.sp = true
	default:
		l.emit(tWord, string(c))
	}
}

// unicode handles non-ASCII characters: math symbols, superscripts, thin
// spaces, and letters of other scripts (prose).
func (l *lexer) unicode() {
	r, n := utf8.DecodeRuneInString(l.src[l.pos:])
	l.pos += n
	switch r {
	case '≤', '⩽':
		l.emit(tOp, "<=")
	case '≥', '⩾':
		l.emit(tOp, ">=")
	case '≠':
		l.emit(tOp, "!=")
	case '≈':
		l.emit(tOp, "~")
	case '×', '·', '⋅', '∙':
		l.emit(tOp, "*")
	case '÷':
		l.emit(tOp, "/")
	case '−', '–', '—':
		l.emit(tOp, "-")
	case '±':
		l.emit(tOp, "pm")
	case 'π':
		l.emit(tName, "pi")
	case '∞':
		l.emit(tName, "infty")
	case '√':
		l.emit(tFunc, "sqrt")
	case '°':
		l.emit(tUnit, "deg")
	case '²', '³':
		if len(l.toks) > 0 && l.toks[len(l.toks)-1].k == tUnit {
			return
		}
		l.emit(tOp, "^")
		l.emit(tNum, map[rune]string{'²': "2", '³': "3"}[r])
	case '∪':
		l.emit(tOp, "cup")
	case '∈':
		l.emit(tOp, "in")
	case '%', '％':
		l.emit(tOp, "%")
	case '，':
		l.emit(tSep, ",")
	case '；':
		l.emit(tSep, ";")
	default:
		if name, ok := greekRunes[r]; ok {
			l.emit(tName, name)
			return
		}
		if unicode.IsSpace(r) {
			l.sp = true
			return
		}
		if unicode.IsLetter(r) {
			l.emit(tWord, string(r))
			return
		}
		l.sp = true
	}
}
