package grade

import (
	"errors"
	"math/big"
	"strings"
)

// kind is the kind of an expression-tree node.
type kind uint8

const (
	nNum     kind = iota // val; dec marks a decimal literal
	nSym                 // a variable: name
	nConst               // pi, e, i, infty
	nAdd                 // args summed
	nMul                 // args multiplied
	nDiv                 // args[0] / args[1]
	nPow                 // args[0] ^ args[1]
	nNeg                 // -args[0]
	nFunc                // name(args...)
	nFact                // args[0]!
	nRel                 // args[0] ops[0] args[1] ops[1] ...
	nSeq                 // open args close: tuple, interval, list ("" brackets), set ("{s")
	nMatrix              // rows
	nUnion               // args joined by ∪
	nPM                  // args[0] ± args[1], or ±args[0] when len(args) == 1
	nText                // name: words
	nPercent             // args[0] %
)

// node is one node of an answer's expression tree.
type node struct {
	k           kind
	name        string
	ops         []string
	args        []*node
	rows        [][]*node
	val         *big.Rat
	dec         bool
	open, close string
}

// Caps that bound the work one answer may cause.
const (
	maxDepth = 120
	maxNodes = 4000
)

var errParse = errors.New("grade: cannot parse answer")

// parser is a recursive-descent parser over tokens.
type parser struct {
	toks  []token
	pos   int
	depth int
	nodes int
	err   error
}

// parse parses an answer into a tree.
func parse(s string) (*node, error) {
	if len(s) > maxAnswer {
		return nil, errParse
	}
	toks, ok := lex(s)
	if !ok {
		return nil, errParse
	}
	if len(toks) == 0 {
		return nil, errParse
	}
	p := &parser{toks: toks}
	n := p.top()
	if p.err != nil {
		return nil, p.err
	}
	if p.pos < len(p.toks) {
		return nil, errParse
	}
	return n, nil
}

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{k: tEOF}
}

func (p *parser) next() token {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) is(k tokKind, s string) bool {
	t := p.peek()
	return t.k == k && t.s == s
}

func (p *parser) fail() *node {
	if p.err == nil {
		p.err = errParse
	}
	p.pos = len(p.toks)
	return &node{k: nText, name: "?"}
}

func (p *parser) mk(n *node) *node {
	p.nodes++
	if p.nodes > maxNodes {
		return p.fail()
	}
	return n
}

func (p *parser) enter() bool {
	p.depth++
	if p.depth > maxDepth {
		p.fail()
		return false
	}
	return true
}

func (p *parser) leave() { p.depth-- }

// top parses a whole answer: items separated by ",", ";", "and", "or".
// Groups separated by ";" become tuples when they hold several items
// ("p=5,q=2; p=7,q=2").
func (p *parser) top() *node {
	var groups [][]*node
	var cur []*node
	semi := false
	for p.err == nil {
		for p.peek().k == tSep {
			t := p.next()
			if t.s == ";" {
				semi = true
				if len(cur) > 0 {
					groups = append(groups, cur)
					cur = nil
				}
			}
		}
		if p.peek().k == tEOF {
			break
		}
		start := p.pos
		it := p.item()
		if p.pos == start {
			return p.fail()
		}
		cur = append(cur, it)
		if t := p.peek(); t.k != tSep && t.k != tEOF {
			return p.fail()
		}
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	if len(groups) == 0 {
		return p.fail()
	}
	if !semi {
		if len(groups[0]) == 1 {
			return groups[0][0]
		}
		return p.mk(&node{k: nSeq, args: groups[0]})
	}
	out := &node{k: nSeq}
	for _, g := range groups {
		if len(g) == 1 {
			out.args = append(out.args, g[0])
		} else {
			out.args = append(out.args, &node{k: nSeq, open: "(", close: ")", args: g})
		}
	}
	if len(out.args) == 1 {
		return out.args[0]
	}
	return p.mk(out)
}

// list parses items separated by "," or ";" up to a closing token.
func (p *parser) list() []*node {
	var items []*node
	for p.err == nil {
		t := p.peek()
		if t.k == tClose || t.k == tEOF || t.k == tBar || t.k == tEnd {
			return items
		}
		if t.k == tSep {
			p.next()
			continue
		}
		start := p.pos
		items = append(items, p.item())
		if p.pos == start {
			p.fail()
		}
		if t := p.peek(); t.k != tSep && t.k != tClose && t.k != tEOF && t.k != tBar {
			p.fail()
		}
	}
	return items
}

var relOps = map[string]bool{"=": true, "<": true, "<=": true, ">": true, ">=": true, "!=": true, "~": true, "in": true, "=>": true, ":=": true}

// item parses a relation chain: a = b, a < x <= b, x \in S.
func (p *parser) item() *node {
	if !p.enter() {
		return p.fail()
	}
	defer p.leave()
	if t := p.peek(); t.k == tOp && relOps[t.s] && p.pos == 0 {
		p.next()
	}
	first := p.ratio()
	t := p.peek()
	if t.k != tOp || !relOps[t.s] {
		return first
	}
	rel := &node{k: nRel, args: []*node{first}}
	for p.err == nil {
		t := p.peek()
		if t.k != tOp || !relOps[t.s] {
			break
		}
		p.next()
		rel.ops = append(rel.ops, t.s)
		if p.peek().k == tEOF || p.peek().k == tSep {
			rel.args = append(rel.args, &node{k: nText, name: ""})
			break
		}
		rel.args = append(rel.args, p.ratio())
	}
	return p.mk(rel)
}

// ratio parses a ratio or a time, "3:5", "A:B", "8:34 pm", on either side
// of a relation ("A:B = 3:5").
func (p *parser) ratio() *node {
	first := p.union()
	if !p.is(tOp, ":") {
		return first
	}
	r := &node{k: nSeq, open: ":", args: []*node{first}}
	for p.err == nil && p.is(tOp, ":") {
		p.next()
		r.args = append(r.args, p.union())
	}
	if t := p.peek(); t.k == tUnit && (t.s == "pm" || t.s == "am") {
		p.next()
		r.args[0] = clock12(r.args[0], t.s == "pm")
	}
	return p.mk(r)
}

// union parses sets joined by \cup.
func (p *parser) union() *node {
	a := p.sum()
	if !p.is(tOp, "cup") && !p.is(tOp, "cap") && !p.is(tOp, "setminus") {
		return a
	}
	u := &node{k: nUnion, args: []*node{a}}
	for p.err == nil && (p.is(tOp, "cup") || p.is(tOp, "cap") || p.is(tOp, "setminus")) {
		op := p.next().s
		u.ops = append(u.ops, op)
		u.args = append(u.args, p.sum())
	}
	return p.mk(u)
}

// sum parses terms joined by + - ±.
func (p *parser) sum() *node {
	first := p.term()
	var args []*node
	for p.err == nil {
		t := p.peek()
		if t.k != tOp || (t.s != "+" && t.s != "-" && t.s != "pm" && t.s != "mp") {
			break
		}
		p.next()
		if p.peek().k == tEOF || p.peek().k == tSep || p.peek().k == tClose {
			break // a dangling sign: "185+"
		}
		rhs := p.term()
		if args == nil {
			args = []*node{first}
		}
		switch t.s {
		case "+":
			args = append(args, rhs)
		case "-":
			args = append(args, p.mk(&node{k: nNeg, args: []*node{rhs}}))
		default:
			a := &node{k: nAdd, args: args}
			if len(args) == 1 {
				a = args[0]
			}
			args = []*node{p.mk(&node{k: nPM, args: []*node{a, rhs}})}
		}
	}
	if args == nil {
		return first
	}
	if len(args) == 1 {
		return args[0]
	}
	return p.mk(&node{k: nAdd, args: args})
}

// startsFactor reports whether t can begin an implicitly multiplied factor.
func startsFactor(t token) bool {
	switch t.k {
	case tNum, tName, tFunc, tBegin:
		return true
	case tOpen:
		return t.s == "(" || t.s == "{"
	case tWord:
		return false
	}
	return false
}

// term parses factors joined by *, / and juxtaposition.
func (p *parser) term() *node {
	first := p.unary()
	var args []*node
	push := func(n *node) {
		if args == nil {
			args = []*node{first}
		}
		args = append(args, n)
	}
	cur := func() *node {
		if args == nil {
			return first
		}
		return args[len(args)-1]
	}
	for p.err == nil {
		t := p.peek()
		switch {
		case t.k == tOp && (t.s == "*" || t.s == "/"):
			p.next()
			if p.peek().k == tEOF {
				return p.fail()
			}
			rhs := p.unary()
			switch t.s {
			case "*":
				push(rhs)
			case "/":
				d := p.mk(&node{k: nDiv, args: []*node{cur(), rhs}})
				if args == nil {
					first = d
				} else {
					args[len(args)-1] = d
				}
			}
		case t.k == tUnit && t.s != "pm" && t.s != "am":
			p.next()
			p.skipUnitPower()
		case t.k == tWord && p.trailingWord():
			for p.peek().k == tWord {
				p.next()
			}
			p.skipUnitPower()
		case startsFactor(t) && cur().k != nText:
			if m := p.mixed(cur()); m != nil {
				m = p.postfixOps(m)
				if args == nil {
					first = m
				} else {
					args[len(args)-1] = m
				}
				continue
			}
			push(p.power())
		default:
			if args == nil {
				return first
			}
			return p.mk(&node{k: nMul, args: args})
		}
	}
	return first
}

// trailingWord reports whether the words at the current position end the
// item after a quantity ("5 \text{ ways}", "3 hours"), so they are a unit.
func (p *parser) trailingWord() bool {
	if p.pos == 0 {
		return false
	}
	if prev := p.toks[p.pos-1]; prev.k != tNum && prev.k != tClose && prev.k != tUnit {
		return false
	}
	j := p.pos
	for j < len(p.toks) && p.toks[j].k == tWord {
		j++
	}
	if j < len(p.toks) && p.toks[j].k == tOp && p.toks[j].s == "^" {
		j += 2
	}
	return j >= len(p.toks) || p.toks[j].k == tSep || p.toks[j].k == tClose
}

// skipUnitPower drops the "^2" of "cm^2".
func (p *parser) skipUnitPower() {
	if p.is(tOp, "^") && p.pos+1 < len(p.toks) && p.toks[p.pos+1].k == tNum {
		p.pos += 2
	} else if p.is(tOp, "^") && p.pos+3 < len(p.toks) && p.toks[p.pos+1].s == "{" && p.toks[p.pos+2].k == tNum && p.toks[p.pos+3].s == "}" {
		p.pos += 4
	}
}

// mixed reads the fraction of a mixed number after an integer literal:
// "2\frac58", "3128 1/2". It returns nil when none follows.
func (p *parser) mixed(prev *node) *node {
	if prev.k != nNum || prev.dec || !prev.val.IsInt() || prev.name != "lit" {
		return nil
	}
	save := p.pos
	t := p.peek()
	if t.k == tFunc && t.s == "frac" {
		var saved token
		if save+1 < len(p.toks) {
			saved = p.toks[save+1] // arg() may split "\frac12"'s digits
		}
		p.next()
		a, b := p.arg(), p.arg()
		if a.k == nNum && b.k == nNum && !a.dec && !b.dec && a.val.IsInt() && b.val.IsInt() && b.val.Sign() > 0 &&
			a.val.Cmp(b.val) < 0 && a.val.Sign() > 0 {
			return p.mk(&node{k: nNum, val: addMixed(prev.val, a.val, b.val)})
		}
		p.pos = save
		if save+1 < len(p.toks) {
			p.toks[save+1] = saved
		}
		p.err = nil
		return nil
	}
	if t.k == tNum && t.sp && t.base == 0 && p.pos+2 < len(p.toks) && p.toks[p.pos+1].k == tOp && p.toks[p.pos+1].s == "/" &&
		p.toks[p.pos+2].k == tNum && !p.toks[p.pos+1].sp && !p.toks[p.pos+2].sp && !strings.ContainsAny(t.s+p.toks[p.pos+2].s, ".eE") {
		// "4 4/9" is a mixed number; "11 6/6" or "4 4/0" is no number at all.
		a, b := numVal(t), numVal(p.toks[p.pos+2])
		if a == nil || b == nil || b.Sign() == 0 || a.Cmp(b) >= 0 {
			return p.fail()
		}
		p.pos += 3
		return p.mk(&node{k: nNum, val: addMixed(prev.val, a, b)})
	}
	return nil
}

// clock12 turns the hour of a 12-hour time into 24-hour form: 8 p.m. is 20,
// 12 a.m. is 0.
func clock12(h *node, pm bool) *node {
	if h.k != nNum || !h.val.IsInt() || h.val.Sign() < 0 || h.val.Cmp(big.NewRat(12, 1)) > 0 {
		return h
	}
	v := new(big.Rat).Set(h.val)
	twelve := big.NewRat(12, 1)
	switch {
	case pm && v.Cmp(twelve) < 0:
		v.Add(v, twelve)
	case !pm && v.Cmp(twelve) == 0:
		v.SetInt64(0)
	}
	return &node{k: nNum, val: v, name: h.name, open: h.open}
}

// addMixed returns the mixed number w a/b; a negative whole part makes the
// whole number negative ("-3\frac12" is -3.5).
func addMixed(w, a, b *big.Rat) *big.Rat {
	f := new(big.Rat).Quo(a, b)
	if w.Sign() < 0 {
		return f.Sub(w, f)
	}
	return f.Add(w, f)
}

// unary parses a sign before a factor.
func (p *parser) unary() *node {
	if !p.enter() {
		return p.fail()
	}
	defer p.leave()
	t := p.peek()
	if t.k == tOp {
		switch t.s {
		case "-":
			p.next()
			x := p.unary()
			if x.k == nNum && x.name == "lit" {
				x.val.Neg(x.val)
				return x
			}
			return p.mk(&node{k: nNeg, args: []*node{x}})
		case "+":
			p.next()
			return p.unary()
		case "pm", "mp":
			p.next()
			return p.mk(&node{k: nPM, args: []*node{p.unary()}})
		}
	}
	return p.power()
}

// power parses postfix operators and a right-associative ^.
func (p *parser) power() *node {
	base := p.postfix()
	for p.err == nil && p.is(tOp, "^") {
		p.next()
		if p.peek().k == tUnit { // ^\circ
			if p.next().s == "deg" {
				base = p.mk(&node{k: nPercent, name: "deg", args: []*node{base}})
			}
			continue
		}
		if p.is(tOpen, "{") && p.pos+2 < len(p.toks) && p.toks[p.pos+1].k == tUnit && p.toks[p.pos+2].k == tClose {
			if p.toks[p.pos+1].s == "deg" {
				base = p.mk(&node{k: nPercent, name: "deg", args: []*node{base}})
			}
			p.pos += 3
			continue
		}
		if p.is(tOp, "'") {
			p.next()
			continue
		}
		var e *node
		if p.is(tOpen, "{") || p.peek().k == tNum {
			e = p.arg()
		} else {
			e = p.unary()
		}
		base = p.mk(&node{k: nPow, args: []*node{base, e}})
		base = p.postfixOps(base)
	}
	return base
}

// postfix parses a primary and its postfix operators.
func (p *parser) postfix() *node {
	return p.postfixOps(p.primary())
}

func (p *parser) postfixOps(n *node) *node {
	for p.err == nil {
		t := p.peek()
		switch {
		case t.k == tOp && t.s == "!":
			p.next()
			n = p.mk(&node{k: nFact, args: []*node{n}})
		case t.k == tOp && t.s == "%":
			p.next()
			n = p.mk(&node{k: nPercent, args: []*node{n}})
		case t.k == tOp && t.s == "'":
			p.next()
			if n.k == nSym {
				n = p.mk(&node{k: nSym, name: n.name + "'"})
			} else {
				n = p.mk(&node{k: nFunc, name: "prime", args: []*node{n}})
			}
		case t.k == tUnit && t.s == "deg":
			p.next()
			n = p.mk(&node{k: nPercent, name: "deg", args: []*node{n}})
		case t.k == tUnit && t.s != "pm" && t.s != "am":
			p.next()
			p.skipUnitPower()
		default:
			return n
		}
	}
	return n
}

// numVal converts a number token to a rational.
func numVal(t token) *big.Rat {
	if t.base > 0 {
		i, ok := new(big.Int).SetString(t.s, t.base)
		if !ok {
			return nil
		}
		return new(big.Rat).SetInt(i)
	}
	s := t.s
	if len(s) > 400 {
		return nil
	}
	if i := strings.IndexByte(s, '('); i >= 0 {
		return repeating(s[:i], strings.TrimSuffix(s[i+1:], ")"))
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp := s[i+1:]
		if len(strings.TrimLeft(exp, "+-")) > 4 {
			return nil
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	return r
}

// repeating returns the value of a decimal with a repeating block:
// repeating("0.1", "6") is 0.1666... = 1/6.
func repeating(fixed, rep string) *big.Rat {
	if !strings.Contains(fixed, ".") {
		fixed += "."
	}
	places := len(fixed) - strings.IndexByte(fixed, '.') - 1
	base, ok := new(big.Rat).SetString(fixed + "0")
	if !ok || rep == "" || len(rep) > 50 {
		return nil
	}
	r, ok := new(big.Int).SetString(rep, 10)
	if !ok {
		return nil
	}
	// rep / (10^len(rep) - 1) / 10^places
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(rep))), nil)
	den.Sub(den, big.NewInt(1))
	den.Mul(den, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil))
	return base.Add(base, new(big.Rat).SetFrac(r, den))
}

// primary parses an atom: number, name, group, bracketed list, command.
func (p *parser) primary() *node {
	if !p.enter() {
		return p.fail()
	}
	defer p.leave()
	t := p.next()
	switch t.k {
	case tNum:
		v := numVal(t)
		if v == nil {
			return p.fail()
		}
		return p.mk(&node{k: nNum, val: v, dec: strings.ContainsAny(t.s, ".eE"), name: "lit", open: t.s})
	case tName:
		return p.name(t)
	case tWord:
		w := t.s
		for p.peek().k == tWord {
			w += " " + p.next().s
		}
		return p.mk(&node{k: nText, name: w})
	case tOpen:
		return p.bracket(t)
	case tBar:
		x := p.sum()
		if p.peek().k != tBar {
			return p.fail()
		}
		p.next()
		return p.mk(&node{k: nFunc, name: "abs", args: []*node{x}})
	case tFunc:
		return p.function(t.s)
	case tBegin:
		return p.env(t.s)
	case tSep:
		if t.s == "and" {
			return p.fail()
		}
	}
	return p.fail()
}

// name parses a variable or constant with an optional subscript.
func (p *parser) name(t token) *node {
	switch t.s {
	case "pi", "infty", "emptyset", "...":
		return p.mk(&node{k: nConst, name: t.s})
	}
	name := t.s
	if p.is(tOp, "_") {
		p.next()
		name += "_" + p.subscript()
	}
	if name == "e" || name == "i" {
		return p.mk(&node{k: nConst, name: name})
	}
	return p.mk(&node{k: nSym, name: name})
}

// subscript reads a subscript as text: "1", "{n-k-1}".
func (p *parser) subscript() string {
	t := p.next()
	if t.k == tOpen && t.s == "{" {
		var b strings.Builder
		depth := 1
		for p.peek().k != tEOF {
			u := p.next()
			if u.k == tOpen {
				depth++
			}
			if u.k == tClose {
				depth--
				if depth == 0 {
					break
				}
			}
			b.WriteString(u.s)
		}
		return b.String()
	}
	if t.k == tNum && len(t.s) > 1 {
		return t.s
	}
	return t.s
}

// bracket parses (...), [...], {...}, \{...\} and mixed interval brackets.
func (p *parser) bracket(open token) *node {
	items := p.list()
	if (open.s == "{s" || open.s == "{") && len(items) == 1 && p.peek().k == tBar {
		// set-builder {x | condition}: the condition stands for the set.
		p.next()
		cond := p.item()
		if !p.is(tClose, "}") {
			return p.fail()
		}
		p.next()
		return cond
	}
	c := p.next()
	if c.k != tClose {
		return p.fail()
	}
	if len(items) == 1 && items[0].k == nMatrix {
		return items[0]
	}
	switch open.s {
	case "(":
		if c.s != ")" && c.s != "]" {
			return p.fail()
		}
		if len(items) == 1 && c.s == ")" {
			if it := items[0]; it.k == nNum && it.name == "lit" {
				cp := *it
				cp.name = "" // "(11) 4/9" is no mixed number
				return &cp
			}
			return items[0]
		}
	case "[":
		if c.s != "]" && c.s != ")" {
			return p.fail()
		}
	case "{":
		if c.s != "}" {
			return p.fail()
		}
		if len(items) == 1 {
			return items[0]
		}
		// Plain braces only group in LaTeX: "{1,3}" is the list 1, 3, which
		// equals the set {1,3} and, in order, the tuple (1,3).
		return p.mk(&node{k: nSeq, args: items})
	case "{s":
		if c.s != "}" {
			return p.fail()
		}
	default:
		return p.fail()
	}
	return p.mk(&node{k: nSeq, open: open.s, close: c.s, args: items})
}

// arg parses one argument of \frac or \sqrt: a braced group or one token
// ("\frac12" takes the digits one at a time).
func (p *parser) arg() *node {
	t := p.peek()
	if t.k == tOpen && t.s == "{" {
		p.next()
		x := p.item()
		if !p.is(tClose, "}") {
			return p.fail()
		}
		p.next()
		return x
	}
	if t.k == tNum && len(t.s) > 1 && t.base == 0 && isDigit(t.s[0]) && isDigit(t.s[1]) {
		d := t.s[:1]
		p.toks[p.pos].s = t.s[1:]
		p.toks[p.pos].sp = false
		return p.mk(&node{k: nNum, val: new(big.Rat).SetInt64(int64(d[0] - '0')), name: "lit", open: d})
	}
	if t.k == tEOF {
		return p.fail()
	}
	return p.power()
}

// function parses a function command and its arguments.
func (p *parser) function(f string) *node {
	switch f {
	case "frac":
		a := p.arg()
		b := p.arg()
		return p.mk(&node{k: nDiv, args: []*node{a, b}})
	case "binom":
		a := p.arg()
		b := p.arg()
		return p.mk(&node{k: nFunc, name: "binom", args: []*node{a, b}})
	case "sqrt":
		if p.is(tOpen, "[") {
			p.next()
			n := p.sum()
			if !p.is(tClose, "]") {
				return p.fail()
			}
			p.next()
			x := p.arg()
			return p.mk(&node{k: nFunc, name: "root", args: []*node{x, n}})
		}
		if p.is(tOpen, "(") {
			return p.mk(&node{k: nFunc, name: "sqrt", args: []*node{p.primary()}})
		}
		return p.mk(&node{k: nFunc, name: "sqrt", args: []*node{p.arg()}})
	case "floor", "ceil":
		x := p.sum()
		if !p.is(tClose, f) {
			return p.fail()
		}
		p.next()
		return p.mk(&node{k: nFunc, name: f, args: []*node{x}})
	case "sum", "prod":
		return p.bigOp(f)
	}
	var pow, base *node
	for p.err == nil {
		if p.is(tOp, "^") {
			p.next()
			pow = p.arg()
			continue
		}
		if p.is(tOp, "_") {
			p.next()
			base = p.arg()
			continue
		}
		break
	}
	var x *node
	switch {
	case p.is(tOpen, "("):
		p.next()
		items := p.list()
		if !p.is(tClose, ")") {
			return p.fail()
		}
		p.next()
		if len(items) == 0 {
			return p.fail()
		}
		if len(items) > 1 {
			fn := p.mk(&node{k: nFunc, name: f, args: items})
			return p.applyPow(fn, pow)
		}
		x = items[0]
	case p.is(tOpen, "{"):
		x = p.arg()
	default:
		x = p.implicitArg()
	}
	fn := &node{k: nFunc, name: f, args: []*node{x}}
	if base != nil && (f == "log") {
		fn.args = append(fn.args, base)
	}
	if pow != nil && pow.k == nNeg && pow.args[0].k == nNum && pow.args[0].val.Cmp(big.NewRat(1, 1)) == 0 {
		if inv, ok := inverseTrig[f]; ok {
			fn.name = inv
			pow = nil
		}
	}
	if pow != nil && pow.k == nNum && pow.val.Cmp(big.NewRat(-1, 1)) == 0 {
		if inv, ok := inverseTrig[f]; ok {
			fn.name = inv
			pow = nil
		}
	}
	return p.applyPow(p.mk(fn), pow)
}

var inverseTrig = map[string]string{"sin": "arcsin", "cos": "arccos", "tan": "arctan"}

func (p *parser) applyPow(fn, pow *node) *node {
	if pow == nil {
		return fn
	}
	return p.mk(&node{k: nPow, args: []*node{fn, pow}})
}

// implicitArg parses the argument of "\sin 2x": a run of juxtaposed factors.
func (p *parser) implicitArg() *node {
	if !startsFactor(p.peek()) {
		return p.fail()
	}
	x := p.power()
	args := []*node{x}
	for p.err == nil {
		t := p.peek()
		if (t.k == tNum || t.k == tName) && !t.sp {
			args = append(args, p.power())
			continue
		}
		break
	}
	if len(args) == 1 {
		return x
	}
	return p.mk(&node{k: nMul, args: args})
}

// bigOp parses \sum_{k=a}^{b} body and \prod.
func (p *parser) bigOp(f string) *node {
	var lo, hi *node
	for p.err == nil && (p.is(tOp, "_") || p.is(tOp, "^")) {
		t := p.next()
		if t.s == "_" {
			lo = p.arg()
		} else {
			hi = p.arg()
		}
	}
	body := p.term()
	if lo == nil || hi == nil || lo.k != nRel || len(lo.args) != 2 || lo.args[0].k != nSym {
		return p.mk(&node{k: nFunc, name: f + "?", args: []*node{body}})
	}
	return p.mk(&node{k: nFunc, name: f, args: []*node{body, lo.args[0], lo.args[1], hi}})
}

// env parses \begin{env}...\end{env}: matrices and cases.
func (p *parser) env(name string) *node {
	var rows [][]*node
	var row []*node
	for p.err == nil {
		t := p.peek()
		switch t.k {
		case tEOF:
			return p.fail()
		case tEnd:
			p.next()
			if len(row) > 0 {
				rows = append(rows, row)
			}
			return p.envNode(name, rows)
		case tAmp:
			p.next()
			if len(row) == 0 {
				row = append(row, &node{k: nText, name: ""})
			}
		case tRow:
			p.next()
			if len(row) > 0 {
				rows = append(rows, row) // "\\\\" twice (escaped twice) is one break
			}
			row = nil
		case tSep:
			p.next()
		default:
			start := p.pos
			row = append(row, p.item())
			if p.pos == start {
				return p.fail()
			}
		}
	}
	return p.fail()
}

func (p *parser) envNode(name string, rows [][]*node) *node {
	switch name {
	case "pmatrix", "bmatrix", "matrix", "vmatrix", "Bmatrix", "smallmatrix", "array":
		for len(rows) > 0 && len(rows[len(rows)-1]) == 0 {
			rows = rows[:len(rows)-1]
		}
		if len(rows) == 0 {
			return p.fail()
		}
		for _, r := range rows {
			if len(r) != len(rows[0]) {
				return p.fail()
			}
		}
		return p.mk(&node{k: nMatrix, rows: rows})
	}
	// cases, align, aligned, gathered: an ordered list of the rows' items.
	s := &node{k: nSeq, open: "cases"}
	for _, r := range rows {
		if len(r) == 0 {
			continue
		}
		item := r[0]
		if len(r) > 1 {
			item = joinRow(r)
		}
		s.args = append(s.args, item)
	}
	if len(s.args) == 1 {
		return s.args[0]
	}
	return p.mk(s)
}

// joinRow joins "a &= b" cells of an align row into one relation.
func joinRow(r []*node) *node {
	if len(r) == 2 && r[1].k == nRel && len(r[1].args) > 0 && r[1].args[0].k == nText && r[1].args[0].name == "" {
		rel := *r[1]
		rel.args = append([]*node{r[0]}, rel.args[1:]...)
		return &rel
	}
	return r[len(r)-1]
}
