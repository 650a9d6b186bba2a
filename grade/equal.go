package grade

import (
	"math"
	"math/big"
	"math/cmplx"
	"strings"
)

// PercentPolicy says how an answer with a percent sign compares with one
// without.
type PercentPolicy uint8

const (
	// PercentEither (the default) makes "x%" equal to both x and x/100, as
	// NeMo-Skills' and MARIO's graders do: "10%" = "10" = "0.1".
	PercentEither PercentPolicy = iota
	// PercentValue makes "x%" equal to x/100 only: "10%" = "0.1" ≠ "10".
	PercentValue
	// PercentIgnore drops the sign: "10%" = "10" ≠ "0.1".
	PercentIgnore
)

// String returns the policy's flag name: either, value or ignore.
func (p PercentPolicy) String() string {
	switch p {
	case PercentValue:
		return "value"
	case PercentIgnore:
		return "ignore"
	}
	return "either"
}

// MarshalText writes the policy by name, for manifests.
func (p PercentPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// BoxPolicy says what Extract returns when a response has several \boxed{}.
type BoxPolicy uint8

const (
	// BoxJoin (the default) joins the last run of boxes that are separated only
	// by short connectors ("\boxed{2} and \boxed{3}" is "2, 3"), as Math-Verify
	// does; otherwise the last box. When Check finds such a list unequal to a
	// single-valued other side, it compares the last box alone, as last-box
	// graders (NeMo-Skills, inspect_ai) would.
	BoxJoin BoxPolicy = iota
	// BoxLast takes the last box only, as NeMo-Skills does.
	BoxLast
)

// String returns the policy's flag name: join or last.
func (p BoxPolicy) String() string {
	if p == BoxLast {
		return "last"
	}
	return "join"
}

// MarshalText writes the policy by name, for manifests.
func (p BoxPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Options are the policies on which graders disagree. DefaultOptions documents
// the defaults.
type Options struct {
	// RTol is the relative tolerance used when either side holds a decimal
	// literal (an inexact number): |a-b| <= RTol*max(|a|,|b|). Exact values
	// (integers, fractions, radicals, π) are always compared exactly, so no
	// tolerance can make 1/2004! equal 1/2006!. Default 1e-4 (NeMo-Skills).
	RTol float64 `json:"rtol"`
	// MinDigits: a decimal literal with at least this many significant digits
	// also equals any value that rounds or truncates to it ("0.3333" = 1/3).
	// 0 disables the rule. Default 4.
	MinDigits int `json:"min_digits"`
	// Percent is the percent-sign policy. Default PercentEither.
	Percent PercentPolicy `json:"percent"`
	// OrderedLists compares bare comma lists ("1, 2, 3") in order. By default
	// they compare as multisets, as most MATH answers list solutions. Tuples
	// "(1,2)" and intervals are always ordered; sets "\{1,2\}" never are.
	OrderedLists bool `json:"ordered_lists"`
	// Boxes is the several-\boxed{} policy of Check. Default BoxJoin.
	Boxes BoxPolicy `json:"boxes"`
	// ReducedFractions requires a predicted fraction literal a/b to be in
	// lowest terms (as an LLM judge told "no simplification" would). Default
	// false: 3245/5 = 649.
	ReducedFractions bool `json:"reduced_fractions"`
	// Answer is how a response's final answer is found (ExtractAnswer).
	// Default AnswerStated.
	Answer AnswerRule `json:"answer"`
	// Policy names the Policy these options come from, recorded on graded
	// rows; DefaultOptions says "default".
	Policy string `json:"policy"`
}

// DefaultOptions returns the default policy: RTol 1e-4, MinDigits 4,
// PercentEither, unordered bare lists, BoxJoin, unreduced fractions allowed,
// stated answers only.
func DefaultOptions() Options {
	return Options{RTol: 1e-4, MinDigits: 4, Policy: "default"}
}

// Verdict is the result of a comparison: whether the answers are equal, the
// rule that decided, and both answers' parsed forms (for --explain).
type Verdict struct {
	Equal bool
	Rule  string
	Gold  string
	Pred  string
}

// Equal compares two already-extracted answers, gold and predicted.
func Equal(gold, pred string, opts Options) Verdict {
	if len(gold) > maxAnswer || len(pred) > maxAnswer {
		g, p := strings.TrimSpace(gold), strings.TrimSpace(pred)
		return Verdict{Equal: g == p, Rule: "text (answer too long to parse)"}
	}
	g, p := clean(gold), clean(pred)
	v := Verdict{Gold: g, Pred: p}
	if g == "" || p == "" {
		v.Rule = "empty answer"
		return v
	}
	if g == p {
		v.Equal, v.Rule = true, "identical strings"
		return v
	}
	if lg, lp := leadingChoice(g), leadingChoice(p); lg != 0 && lp != 0 && (letterOf(g) != 0 || letterOf(p) != 0) {
		// "C" against "C. x = 42": a choice letter and its explanation.
		v.Equal, v.Rule, v.Gold, v.Pred = lg == lp, "multiple-choice letter", string(lg), string(lp)
		return v
	}
	ga, err1 := parse(g)
	pa, err2 := parse(p)
	if err1 != nil || err2 != nil {
		v.Equal = normText(g) == normText(p)
		v.Rule = "text (unparsed)"
		if err1 == nil {
			v.Gold = canon(ga)
		}
		if err2 == nil {
			v.Pred = canon(pa)
		}
		return v
	}
	v.Gold, v.Pred = canon(ga), canon(pa)
	if opts.ReducedFractions && unreduced(pa) {
		v.Rule = "unreduced fraction (ReducedFractions)"
		return v
	}
	c := &comparer{opts: opts}
	v.Equal = c.eq(ga, pa)
	v.Rule = c.rule
	if v.Rule == "" {
		v.Rule = "structure"
	}
	if !v.Equal && normText(g) == normText(p) {
		v.Equal, v.Rule = true, "same text up to formatting"
	}
	return v
}

// maxAnswer is the longest answer Equal parses; longer ones compare as text.
const maxAnswer = 8000

// clean strips what never matters: spaces, "$" wrappers, a whole \boxed{},
// trailing punctuation and "\!".
func clean(s string) string {
	s = strings.TrimSpace(s)
	for range 4 {
		old := s
		s = strings.TrimSpace(s)
		if !strings.HasSuffix(s, "...") {
			s = strings.TrimSuffix(strings.TrimSuffix(s, "."), "。")
		}
		s = strings.TrimSuffix(s, `\\`)
		s = strings.TrimSuffix(s, `\`)
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "$") && strings.HasSuffix(s, "$") && len(s) >= 2 {
			s = strings.Trim(s, "$")
		}
		for _, w := range [][2]string{{`\(`, `\)`}, {`\[`, `\]`}} {
			if strings.HasPrefix(s, w[0]) && strings.HasSuffix(s, w[1]) {
				s = s[len(w[0]) : len(s)-len(w[1])]
			}
		}
		if b, ok := wholeBox(s); ok {
			s = b
		}
		if s == old {
			break
		}
	}
	return strings.TrimSpace(s)
}

// wholeBox returns the content of s when s is one \boxed{...}.
func wholeBox(s string) (string, bool) {
	for _, p := range []string{`\boxed`, `\fbox`} {
		if !strings.HasPrefix(s, p) {
			continue
		}
		r := strings.TrimLeft(s[len(p):], " ")
		if !strings.HasPrefix(r, "{") {
			return "", false
		}
		end := matchBrace(r, 0)
		if end != len(r)-1 {
			return "", false
		}
		return r[1:end], true
	}
	return "", false
}

// normText normalizes text for a string comparison.
func normText(s string) string {
	s = strings.ToLower(s)
	for _, w := range []string{`\text`, `\mathrm`, `\textbf`, `\mbox`, `\left`, `\right`, `\!`, `\,`, `\ `, "{", "}", " ", "$"} {
		s = strings.ReplaceAll(s, w, "")
	}
	return s
}

// unreduced reports whether n is a fraction literal a/b not in lowest terms.
func unreduced(n *node) bool {
	if n.k != nDiv || n.args[0].k != nNum || n.args[1].k != nNum {
		return false
	}
	a, b := n.args[0].val, n.args[1].val
	if !a.IsInt() || !b.IsInt() {
		return false
	}
	return new(big.Int).GCD(nil, nil, new(big.Int).Abs(a.Num()), new(big.Int).Abs(b.Num())).Cmp(big.NewInt(1)) != 0
}

// comparer holds the options and the rule that decided.
type comparer struct {
	opts  Options
	rule  string
	steps int
}

// maxSteps bounds the element comparisons of one verdict.
const maxSteps = 5000

func (c *comparer) decide(rule string, eq bool) bool {
	if c.rule == "" || eq {
		c.rule = rule
	}
	return eq
}

// eq is the comparison cascade: relations, collections, then scalars.
func (c *comparer) eq(a, b *node) bool {
	c.steps++
	if c.steps > maxSteps {
		return c.decide("step cap", false)
	}
	a, b = reduce(a), reduce(b)
	if a.k != nMatrix && hasMatrix(a) {
		if m, ok := foldMatrix(a); ok {
			a = m
		}
	}
	if b.k != nMatrix && hasMatrix(b) {
		if m, ok := foldMatrix(b); ok {
			b = m
		}
	}
	if hasPM(a) || hasPM(b) {
		return c.eqColl(pmList(a), pmList(b))
	}
	if a.k == nRel || b.k == nRel {
		return c.eqRel(a, b)
	}
	if isColl(a) || isColl(b) || isEmptySet(a) || isEmptySet(b) {
		return c.eqColl(a, b)
	}
	return c.eqScalar(a, b)
}

// reduce strips what an answer carries around its value: "x \approx 11" is 11,
// "1/3 \approx 0.33" is 1/3, "x \in S" is S, "A \Rightarrow B" is B.
func reduce(n *node) *node {
	if n.k != nRel {
		return n
	}
	for i, op := range n.ops {
		if op == "~" {
			if i == 0 && isDefinitional(n.args[0]) {
				return reduce(n.args[1])
			}
			if i == 0 {
				return n.args[0]
			}
			return reduce(&node{k: nRel, ops: n.ops[:i], args: n.args[:i+1]})
		}
		if op == "=>" {
			return reduce(n.args[len(n.args)-1])
		}
	}
	if len(n.ops) == 1 && n.ops[0] == "in" {
		return n.args[1]
	}
	return n
}

func isColl(n *node) bool { return n.k == nSeq || n.k == nUnion || n.k == nMatrix }

// isDefinitional reports whether n names what an equation defines: x, y_1,
// f(x), A:B, NO/BO, (p,q).
func isDefinitional(n *node) bool {
	switch n.k {
	case nSym:
		return true
	case nMul, nDiv:
		for _, a := range n.args {
			if !isDefinitional(a) {
				return false
			}
		}
		return true
	case nSeq:
		if n.open != ":" && n.open != "(" {
			return false
		}
		for _, a := range n.args {
			if !isDefinitional(a) {
				return false
			}
		}
		return len(n.args) > 0
	case nFunc:
		return n.name == "prime"
	}
	return false
}

// eqValue returns the value an equation states: the right side of "x = 5",
// the left of "5 = x", the last of a chain "1 = a = 0".
func eqValue(n *node) *node {
	for _, op := range n.ops {
		if op != "=" {
			return nil
		}
	}
	last := n.args[len(n.args)-1]
	switch {
	case isDefinitional(n.args[0]) && !(last.k == nText && last.name == ""):
		return last
	case len(n.args) == 2 && isDefinitional(last):
		return n.args[0]
	case len(n.args) > 2:
		return last
	case len(vars(n, map[string]bool{}, nil)) == 0:
		return last // a computation: "35 + 70 = 105"
	}
	return nil
}

var flipOp = map[string]string{">": "<", ">=": "<=", "<": ">", "<=": ">="}

// eqRel compares when either side is a relation.
func (c *comparer) eqRel(a, b *node) bool {
	if a.k == nRel && b.k == nRel {
		return c.eqRels(a, b)
	}
	rel, other := a, b
	if b.k == nRel {
		rel, other = b, a
	}
	if iv := toInterval(rel); iv != nil && (other.k == nSeq || other.k == nUnion) {
		return c.eqColl(iv, other)
	}
	if v := eqValue(rel); v != nil {
		return c.eq(v, other)
	}
	return c.decide("relation vs value", false)
}

// eqRels compares two relations: the values they state, then side by side,
// then as (left - right) up to a constant factor (positive for inequalities).
func (c *comparer) eqRels(a, b *node) bool {
	if va, vb := eqValue(a), eqValue(b); va != nil && vb != nil && isDefinitional(a.args[0]) && isDefinitional(b.args[0]) {
		// "f(x) = 2x+3" and "y = 2x+3" state the same value; with the same
		// left side the values decide, otherwise the equations may still be
		// the same ("y = 2x+1", "x = (y-1)/2").
		if c.sub(va, vb) {
			return c.decide("stated values", true)
		}
		if canon(a.args[0]) == canon(b.args[0]) {
			return c.decide("stated values", false)
		}
	}
	ia, ib := toInterval(a), toInterval(b)
	if ia != nil && ib != nil {
		return c.eqColl(ia, ib)
	}
	if len(a.ops) != len(b.ops) {
		return c.decide("relation shape", false)
	}
	bb := b
	if a.ops[0] != b.ops[0] {
		bb = flip(b)
		if bb == nil || bb.ops[0] != a.ops[0] {
			return c.decide("relation operators", false)
		}
	}
	for i := range a.ops {
		if a.ops[i] != bb.ops[i] {
			return c.decide("relation operators", false)
		}
	}
	sub := &comparer{opts: c.opts, steps: c.steps}
	same := true
	for i := range a.args {
		if !sub.eq(a.args[i], bb.args[i]) {
			same = false
			break
		}
	}
	c.steps = sub.steps
	if same {
		return c.decide("relation sides", true)
	}
	if len(a.args) == 2 && (a.ops[0] == "=" || a.ops[0] == "!=") {
		if sw := (&comparer{opts: c.opts}); sw.eq(a.args[0], b.args[1]) && sw.eq(a.args[1], b.args[0]) {
			return c.decide("relation sides swapped", true)
		}
	}
	if len(a.args) != 2 {
		return c.decide("relation chain", false)
	}
	sign := 0
	if a.ops[0] != "=" && a.ops[0] != "!=" {
		sign = 1
	}
	return c.decide("relation (left-right) proportional", proportional(a.args[0], a.args[1], bb.args[0], bb.args[1], sign))
}

// flip turns "a > b" into "b < a".
func flip(n *node) *node {
	out := &node{k: nRel}
	for i := len(n.args) - 1; i >= 0; i-- {
		out.args = append(out.args, n.args[i])
	}
	for i := len(n.ops) - 1; i >= 0; i-- {
		f, ok := flipOp[n.ops[i]]
		if !ok {
			if n.ops[i] == "=" || n.ops[i] == "!=" {
				f = n.ops[i]
			} else {
				return nil
			}
		}
		out.ops = append(out.ops, f)
	}
	return out
}

// toInterval turns "x > 5", "a < x <= b" into an interval, or returns nil.
func toInterval(n *node) *node {
	if n.k != nRel {
		return nil
	}
	r := n
	if len(r.ops) == 1 && r.ops[0] == "!=" {
		// x ≠ a is (-∞, a) ∪ (a, ∞).
		x, a := r.args[0], r.args[1]
		if !isDefinitional(x) {
			x, a = a, x
		}
		if !isDefinitional(x) || len(vars(a, map[string]bool{}, nil)) > 0 {
			return nil
		}
		inf := &node{k: nConst, name: "infty"}
		return &node{k: nUnion, ops: []string{"cup"}, args: []*node{
			{k: nSeq, open: "(", close: ")", args: []*node{{k: nNeg, args: []*node{inf}}, a}},
			{k: nSeq, open: "(", close: ")", args: []*node{a, inf}},
		}}
	}
	if iv := absInterval(r); iv != nil {
		return iv
	}
	if len(r.ops) >= 1 && (r.ops[0] == ">" || r.ops[0] == ">=") {
		r = flip(r)
		if r == nil {
			return nil
		}
	}
	for _, op := range r.ops {
		if op != "<" && op != "<=" {
			return nil
		}
	}
	inf := &node{k: nConst, name: "infty"}
	ninf := &node{k: nNeg, args: []*node{inf}}
	br := func(op string, lo bool) string {
		switch {
		case op == "<" && lo:
			return "("
		case op == "<":
			return ")"
		case lo:
			return "["
		}
		return "]"
	}
	switch {
	case len(r.args) == 3 && isDefinitional(r.args[1]) && len(vars(r.args[0], map[string]bool{}, nil)) == 0:
		return &node{k: nSeq, open: br(r.ops[0], true), close: br(r.ops[1], false), args: []*node{r.args[0], r.args[2]}}
	case len(r.args) == 2 && isDefinitional(r.args[0]) && len(vars(r.args[1], map[string]bool{}, nil)) == 0:
		return &node{k: nSeq, open: "(", close: br(r.ops[0], false), args: []*node{ninf, r.args[1]}}
	case len(r.args) == 2 && isDefinitional(r.args[1]) && len(vars(r.args[0], map[string]bool{}, nil)) == 0:
		return &node{k: nSeq, open: br(r.ops[0], true), close: ")", args: []*node{r.args[0], inf}}
	}
	return nil
}

// absInterval reads |ax + b| op c, with a linear inside of one variable
// and rational a, b, c, as the interval or union it means: |x-2| > 1 is
// (-∞, 1) ∪ (3, ∞), |2x| <= 4 is [-2, 2].
func absInterval(r *node) *node {
	if len(r.ops) != 1 || len(r.args) != 2 {
		return nil
	}
	abs, rhs, op := r.args[0], r.args[1], r.ops[0]
	if abs.k != nFunc || abs.name != "abs" {
		abs, rhs = rhs, abs
		op = flipOp[op]
	}
	if abs.k != nFunc || abs.name != "abs" || op == "" || len(abs.args) != 1 {
		return nil
	}
	vs := vars(abs.args[0], map[string]bool{}, nil)
	c, ok := exact(rhs)
	if len(vs) != 1 || !ok || c.Sign() <= 0 {
		return nil
	}
	at := func(x int64) (*big.Rat, bool) {
		return exact(substitute(abs.args[0], vs[0], &node{k: nNum, val: big.NewRat(x, 1)}))
	}
	f0, ok0 := at(0)
	f1, ok1 := at(1)
	f2, ok2 := at(2)
	if !ok0 || !ok1 || !ok2 {
		return nil
	}
	a := new(big.Rat).Sub(f1, f0)
	if a.Sign() == 0 || new(big.Rat).Sub(f2, f1).Cmp(a) != 0 {
		return nil // constant or not linear
	}
	// |ax + b| = c at x = (±c - b) / a.
	lo := new(big.Rat).Quo(new(big.Rat).Sub(new(big.Rat).Neg(c), f0), a)
	hi := new(big.Rat).Quo(new(big.Rat).Sub(c, f0), a)
	if lo.Cmp(hi) > 0 {
		lo, hi = hi, lo
	}
	num := func(v *big.Rat) *node { return &node{k: nNum, val: v} }
	inf := &node{k: nConst, name: "infty"}
	ninf := &node{k: nNeg, args: []*node{inf}}
	switch op {
	case "<":
		return &node{k: nSeq, open: "(", close: ")", args: []*node{num(lo), num(hi)}}
	case "<=":
		return &node{k: nSeq, open: "[", close: "]", args: []*node{num(lo), num(hi)}}
	case ">", ">=":
		o, cl := "(", ")"
		if op == ">=" {
			o, cl = "[", "]"
		}
		return &node{k: nUnion, ops: []string{"cup"}, args: []*node{
			{k: nSeq, open: "(", close: cl, args: []*node{ninf, num(lo)}},
			{k: nSeq, open: o, close: ")", args: []*node{num(hi), inf}},
		}}
	}
	return nil
}

// substitute returns a copy of n with the variable name replaced by v.
func substitute(n *node, name string, v *node) *node {
	if n.k == nSym && n.name == name {
		return v
	}
	if len(n.args) == 0 && len(n.rows) == 0 {
		return n
	}
	c := *n
	c.args = make([]*node, len(n.args))
	for i, a := range n.args {
		c.args[i] = substitute(a, name, v)
	}
	if len(n.rows) > 0 {
		c.rows = make([][]*node, len(n.rows))
		for i, row := range n.rows {
			c.rows[i] = make([]*node, len(row))
			for j, x := range row {
				c.rows[i][j] = substitute(x, name, v)
			}
		}
	}
	return &c
}

// proportional reports whether a1-a2 = k(b1-b2) for a constant k (k > 0 when
// sign > 0), by evaluation at random points.
func proportional(a1, a2, b1, b2 *node, sign int) bool {
	f := &node{k: nAdd, args: []*node{a1, {k: nNeg, args: []*node{a2}}}}
	g := &node{k: nAdd, args: []*node{b1, {k: nNeg, args: []*node{b2}}}}
	seen := map[string]bool{}
	vs := vars(g, seen, vars(f, seen, nil))
	if len(vs) == 0 {
		return false
	}
	var k complex128
	good := 0
	for i := range numPoints {
		e := point(vs, i)
		x, ok1 := numeric(f, e)
		y, ok2 := numeric(g, e)
		if !ok1 || !ok2 || y == 0 || x == 0 || !finite(x) || !finite(y) {
			continue
		}
		r := x / y
		if good == 0 {
			k = r
		} else if !near(r, k, 1e-8) {
			return false
		}
		good++
	}
	if good < 2 {
		return false
	}
	if sign > 0 {
		return math.Abs(imag(k)) < 1e-9*math.Abs(real(k)) && real(k) > 0
	}
	return true
}

// numPoints is the number of random points a symbolic identity is tested at.
const numPoints = 4

// point returns the i-th evaluation point for the variables vs: values in
// (1.2, 2.8) that depend only on the variable's name and i (deterministic).
func point(vs []string, i int) *env {
	e := &env{v: make(map[string]complex128, len(vs))}
	for _, v := range vs {
		h := uint64(14695981039346656037)
		for j := 0; j < len(v); j++ {
			h ^= uint64(v[j])
			h *= 1099511628211
		}
		h ^= uint64(i+1) * 0x9E3779B97F4A7C15
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
		e.v[v] = complex(1.2+1.6*float64(h>>11)/float64(1<<53), 0)
	}
	return e
}

func finite(x complex128) bool {
	return !cmplx.IsNaN(x) && !cmplx.IsInf(x) && cmplx.Abs(x) < 1e250
}

// near reports |a-b| <= tol*max(|a|,|b|), or both tiny.
func near(a, b complex128, tol float64) bool {
	d := cmplx.Abs(a - b)
	m := math.Max(cmplx.Abs(a), cmplx.Abs(b))
	return d <= tol*m || d < 1e-12
}
