package grade

import (
	"math"
	"math/big"
	"math/cmplx"
	"slices"
	"strings"
)

// hasPM reports whether n holds a ± anywhere.
func hasPM(n *node) bool {
	if n.k == nPM {
		return true
	}
	for _, a := range n.args {
		if hasPM(a) {
			return true
		}
	}
	return false
}

// maxPM caps the number of sign combinations a ± expands to.
const maxPM = 16

// expandPM returns the variants of n with each ± replaced by + and by -.
func expandPM(n *node) []*node {
	if n.k == nPM {
		var out []*node
		if len(n.args) == 1 {
			for _, x := range expandPM(n.args[0]) {
				out = append(out, x, &node{k: nNeg, args: []*node{x}})
			}
			return out
		}
		for _, a := range expandPM(n.args[0]) {
			for _, b := range expandPM(n.args[1]) {
				out = append(out, &node{k: nAdd, args: []*node{a, b}}, &node{k: nAdd, args: []*node{a, {k: nNeg, args: []*node{b}}}})
				if len(out) >= maxPM {
					return out
				}
			}
		}
		return out
	}
	if !hasPM(n) {
		return []*node{n}
	}
	variants := [][]*node{nil}
	for _, a := range n.args {
		ex := expandPM(a)
		var next [][]*node
		for _, v := range variants {
			for _, x := range ex {
				next = append(next, append(slices.Clip(v), x))
				if len(next) >= maxPM {
					break
				}
			}
		}
		variants = next
	}
	out := make([]*node, 0, len(variants))
	for _, v := range variants {
		m := *n
		m.args = v
		out = append(out, &m)
	}
	return out
}

// pmList turns an answer with ± into the set of its values; lists are
// expanded element by element.
func pmList(n *node) *node {
	if n.k == nSeq && (n.open == "" || n.open == "{s") {
		out := &node{k: nSeq, open: n.open, close: n.close}
		for _, a := range n.args {
			out.args = append(out.args, expandPM(reduce(a))...)
		}
		return out
	}
	if n.k == nRel {
		if v := eqValue(n); v != nil {
			n = v
		}
	}
	if !hasPM(n) {
		return n
	}
	return &node{k: nSeq, args: expandPM(n)}
}

// asList returns the elements of n as an unordered collection, when n is a
// set, a bare list, or a single value.
func asList(n *node) ([]*node, bool) {
	if n.k == nSeq && (n.open == "" || n.open == "{s" || n.open == "cases") {
		return n.args, true
	}
	return nil, false
}

// eqColl compares when either side is a tuple, interval, list, set, union
// or matrix.
func (c *comparer) eqColl(a, b *node) bool {
	if a.k == nRel {
		if iv := toInterval(a); iv != nil {
			a = iv
		}
	}
	if b.k == nRel {
		if iv := toInterval(b); iv != nil {
			b = iv
		}
	}
	if a.k == nMatrix || b.k == nMatrix {
		return c.eqMatrix(a, b)
	}
	a, b = c.setAlgebra(a), c.setAlgebra(b)
	if a.k == nUnion || b.k == nUnion {
		// "x < 1 or x > 3" is the union (-∞, 1) ∪ (3, ∞).
		a, b = relUnion(a), relUnion(b)
	}
	if isEmptySet(a) || isEmptySet(b) {
		return c.decide("empty set", isEmptySet(a) && isEmptySet(b))
	}
	if a.k == nUnion || b.k == nUnion {
		if a.k != nUnion || b.k != nUnion || !slices.Equal(a.ops, b.ops) {
			return c.decide("union", false)
		}
		return c.decide("union", c.multiset(a.args, b.args))
	}
	if a.k != nSeq {
		a, b = b, a
	}
	if b.k != nSeq {
		// a collection against a single value: only a one-element list or set.
		if la, ok := asList(a); ok && len(la) == 1 {
			return c.eq(la[0], b)
		}
		return c.decide("collection vs value", false)
	}
	return c.eqSeqs(a, b)
}

// eqSeqs compares two bracketed or bare sequences.
func (c *comparer) eqSeqs(a, b *node) bool {
	if ma, ok := assignments(a); ok {
		if mb, ok := assignments(b); ok && len(ma) == len(mb) {
			// A system's solution in any order: "x = 1, y = 2" and "y = 2; x = 1".
			same := true
			for name, va := range ma {
				vb, ok := mb[name]
				if !ok {
					same = false
					break
				}
				if !c.sub(va, vb) {
					return c.decide("system (by variable)", false)
				}
			}
			if same {
				return c.decide("system (by variable)", true)
			}
		}
	}
	a, b = assignTuple(a), assignTuple(b)
	ao, bo := a.open, b.open
	switch {
	case ao == ":" || bo == ":":
		if ao != bo {
			return c.decide("ratio", false)
		}
		return c.decide("ratio/time", c.ordered(trimZeros(a.args), trimZeros(b.args)))
	case ao == "{s" && bo == "{s":
		return c.decide("set", c.multiset(c.dedup(a.args), c.dedup(b.args)))
	case ao == "{s" && (bo == "" || bo == "cases"), bo == "{s" && (ao == "" || ao == "cases"):
		return c.decide("set", c.multiset(a.args, b.args))
	case ao == "{s" || bo == "{s":
		if la := a.args; bo == "{s" && len(la) == 1 && (ao == "" || ao == "cases") {
			return c.eq(la[0], b)
		}
		return c.decide("set vs tuple", false)
	case (ao == "" || ao == "cases") && (bo == "" || bo == "cases"):
		if c.opts.OrderedLists {
			return c.decide("ordered list", c.ordered(a.args, b.args))
		}
		return c.decide("list (unordered)", c.multiset(a.args, b.args))
	case ao == "" || bo == "":
		// a tuple or interval against a bare list: a bare list of tuples holds
		// the other side as one element, otherwise compare in order.
		bare, br := a, b
		if bo == "" {
			bare, br = b, a
		}
		if len(bare.args) == 1 {
			return c.eq(bare.args[0], br)
		}
		if len(bare.args) > 0 && bare.args[0].k == nSeq {
			return c.decide("list vs tuple", false)
		}
		return c.decide("tuple vs list (ordered)", c.ordered(a.args, b.args))
	}
	if ao != bo || a.close != b.close {
		return c.decide("brackets", false)
	}
	return c.decide("tuple/interval (ordered)", c.ordered(a.args, b.args))
}

// setAlgebra evaluates ∪, ∩ and \setminus of finite sets, left to right:
// {1,2} ∪ {3} is {1,2,3}, {1,2} ∩ {2,3} is {2}.
func (c *comparer) setAlgebra(n *node) *node {
	if n.k != nUnion {
		return n
	}
	finite := func(x *node) bool { return x.k == nSeq && x.open == "{s" || isEmptySet(x) }
	for _, a := range n.args {
		if !finite(a) {
			return n
		}
	}
	elems := func(x *node) []*node {
		if x.k == nSeq {
			return x.args
		}
		return nil
	}
	acc := slices.Clone(elems(n.args[0]))
	for i, op := range n.ops {
		next := elems(n.args[i+1])
		switch op {
		case "cup":
			acc = append(acc, next...)
		case "cap", "setminus":
			var kept []*node
			for _, x := range acc {
				in := slices.ContainsFunc(next, func(y *node) bool { return c.sub(x, y) })
				if in == (op == "cap") {
					kept = append(kept, x)
				}
			}
			acc = kept
		}
	}
	return &node{k: nSeq, open: "{s", close: "}", args: c.dedup(acc)}
}

// dedup drops repeated elements of a set.
func (c *comparer) dedup(xs []*node) []*node {
	var out []*node
	for _, x := range xs {
		if !slices.ContainsFunc(out, func(y *node) bool { return c.sub(x, y) }) {
			out = append(out, x)
		}
	}
	return out
}

func isEmptySet(n *node) bool {
	return n.k == nConst && n.name == "emptyset" || n.k == nSeq && n.open == "{s" && len(n.args) == 0
}

// assignTuple turns a bare list of assignments to distinct names
// ("x = 1, y = 2") into the tuple of their values.
func assignTuple(n *node) *node {
	if n.k != nSeq || (n.open != "" && n.open != "(") || len(n.args) < 2 {
		return n
	}
	seen := map[string]bool{}
	var vals []*node
	for _, a := range n.args {
		if a.k != nRel || len(a.ops) != 1 || a.ops[0] != "=" || a.args[0].k != nSym || seen[a.args[0].name] {
			return n
		}
		seen[a.args[0].name] = true
		vals = append(vals, a.args[1])
	}
	return &node{k: nSeq, open: "(", close: ")", args: vals}
}

// relUnion reads a bare list of inequalities in one variable ("x < 1 or
// x > 3") as the union of their intervals; other nodes are returned as
// they are.
func relUnion(n *node) *node {
	if n.k != nSeq || n.open != "" || len(n.args) < 2 {
		return n
	}
	u := &node{k: nUnion}
	for _, a := range n.args {
		iv := toInterval(a)
		if iv == nil || iv.k != nSeq {
			return n
		}
		u.args = append(u.args, iv)
	}
	u.ops = make([]string, len(u.args)-1)
	for i := range u.ops {
		u.ops[i] = "cup"
	}
	return u
}

// assignments reads a bare list of "name = value" with distinct names (a
// system's solution) as the value of each name.
func assignments(n *node) (map[string]*node, bool) {
	if n.k != nSeq || (n.open != "" && n.open != "cases") || len(n.args) < 2 {
		return nil, false
	}
	m := make(map[string]*node, len(n.args))
	for _, a := range n.args {
		if a.k != nRel || len(a.ops) != 1 || a.ops[0] != "=" || a.args[0].k != nSym || m[a.args[0].name] != nil {
			return nil, false
		}
		m[a.args[0].name] = a.args[1]
	}
	return m, true
}

// trimZeros drops trailing zero parts of a time: 20:34:00 is 20:34.
func trimZeros(xs []*node) []*node {
	for len(xs) > 2 && xs[len(xs)-1].k == nNum && xs[len(xs)-1].val.Sign() == 0 {
		xs = xs[:len(xs)-1]
	}
	return xs
}

// ordered compares two lists element by element.
func (c *comparer) ordered(a, b []*node) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !c.sub(a[i], b[i]) {
			return false
		}
	}
	return true
}

// sub compares two elements without letting them set the rule.
func (c *comparer) sub(a, b *node) bool {
	s := &comparer{opts: c.opts, steps: c.steps}
	eq := s.eq(a, b)
	c.steps = s.steps
	return eq
}

// multiset compares two lists as multisets.
func (c *comparer) multiset(a, b []*node) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(b))
outer:
	for _, x := range a {
		for j, y := range b {
			if !used[j] && c.sub(x, y) {
				used[j] = true
				continue outer
			}
			if c.steps > maxSteps {
				return false
			}
		}
		return false
	}
	return true
}

// eqMatrix compares matrices; a nested list "[[1,2],[3,4]]" is a matrix and
// a one-row or one-column matrix equals a tuple of its entries.
func (c *comparer) eqMatrix(a, b *node) bool {
	ra, oka := matrixRows(a)
	rb, okb := matrixRows(b)
	if !oka || !okb {
		return c.decide("matrix vs other", false)
	}
	if len(ra) != len(rb) || len(ra[0]) != len(rb[0]) {
		return c.decide("matrix shape", false)
	}
	for i := range ra {
		if !c.ordered(ra[i], rb[i]) {
			return c.decide("matrix entries", false)
		}
	}
	return c.decide("matrix entries", true)
}

func matrixRows(n *node) ([][]*node, bool) {
	if n.k == nMatrix {
		return n.rows, true
	}
	if n.k != nSeq || len(n.args) == 0 {
		return nil, false
	}
	if n.args[0].k == nSeq && n.args[0].open != "{s" {
		var rows [][]*node
		for _, r := range n.args {
			if r.k != nSeq || len(r.args) != len(n.args[0].args) {
				return nil, false
			}
			rows = append(rows, r.args)
		}
		return rows, true
	}
	if n.open == "(" || n.open == "[" {
		var rows [][]*node
		for _, x := range n.args {
			rows = append(rows, []*node{x})
		}
		return rows, true
	}
	return nil, false
}

// eqScalar compares two single values: text, percent, infinity, then exact,
// numeric and symbolic comparison.
func (c *comparer) eqScalar(a, b *node) bool {
	if a.k == nText || b.k == nText {
		if a.k != nText || b.k != nText {
			return c.decide("text vs math", false)
		}
		return c.decide("text", strings.EqualFold(strings.TrimSpace(a.name), strings.TrimSpace(b.name)))
	}
	if a.k == nPercent || b.k == nPercent {
		return c.eqPercent(a, b)
	}
	if isInf(a) != 0 || isInf(b) != 0 {
		return c.decide("infinity", isInf(a) == isInf(b))
	}
	if va, ok := exact(a); ok {
		if vb, ok := exact(b); ok {
			if !hasDecimal(a) && !hasDecimal(b) {
				return c.decide("exact rational", va.Cmp(vb) == 0)
			}
			return c.decide("decimal tolerance", c.tolerant(va, vb, a, b))
		}
	}
	return c.eqNumeric(a, b)
}

// eqPercent applies the percent policy.
func (c *comparer) eqPercent(a, b *node) bool {
	if a.k == nPercent && b.k == nPercent && a.name == b.name {
		return c.eq(a.args[0], b.args[0])
	}
	p, other := a, b
	if b.k == nPercent && (a.k != nPercent || a.name == "deg") {
		p, other = b, a
	}
	x := p.args[0]
	if p.name == "deg" {
		// θ° equals θ (the number of degrees) and θπ/180 (radians).
		rad := &node{k: nDiv, args: []*node{{k: nMul, args: []*node{x, {k: nConst, name: "pi"}}}, {k: nNum, val: big.NewRat(180, 1)}}}
		return c.decide("degrees (θ or θπ/180)", c.sub(x, other) || c.sub(rad, other))
	}
	hundredth := &node{k: nDiv, args: []*node{x, {k: nNum, val: big.NewRat(100, 1)}}}
	switch c.opts.Percent {
	case PercentValue:
		return c.sub(hundredth, other) && c.decide("percent as x/100", true) || c.decide("percent as x/100", false)
	case PercentIgnore:
		return c.sub(x, other) && c.decide("percent sign ignored", true) || c.decide("percent sign ignored", false)
	}
	if c.sub(x, other) || c.sub(hundredth, other) {
		return c.decide("percent (x or x/100)", true)
	}
	return c.decide("percent (x or x/100)", false)
}

// isInf returns +1 or -1 for ±∞, else 0.
func isInf(n *node) int {
	switch {
	case n.k == nConst && n.name == "infty":
		return 1
	case n.k == nNeg:
		return -isInf(n.args[0])
	}
	return 0
}

// tolerant compares exact values when a decimal literal is involved.
func (c *comparer) tolerant(va, vb *big.Rat, a, b *node) bool {
	if va.Cmp(vb) == 0 {
		return true
	}
	d := new(big.Rat).Sub(va, vb)
	d.Abs(d)
	m := new(big.Rat).Abs(va)
	if mb := new(big.Rat).Abs(vb); mb.Cmp(m) > 0 {
		m = mb
	}
	tol := new(big.Rat)
	if c.opts.RTol > 0 {
		tol.SetFloat64(c.opts.RTol)
	}
	if d.Cmp(new(big.Rat).Mul(tol, m)) <= 0 {
		return true
	}
	return c.digitsMatch(a, vb) || c.digitsMatch(b, va)
}

// digitsMatch reports whether decimal literal n shows at least MinDigits
// significant digits and v rounds or truncates to it.
func (c *comparer) digitsMatch(n *node, v *big.Rat) bool {
	neg := false
	if n.k == nNeg {
		n, neg = n.args[0], true
	}
	if c.opts.MinDigits <= 0 || n.k != nNum || !n.dec || strings.ContainsAny(n.open, "eE") {
		return false
	}
	lit := n.open
	dot := strings.IndexByte(lit, '.')
	if dot < 0 {
		return false
	}
	places := len(lit) - dot - 1
	sig := len(strings.TrimLeft(strings.Replace(lit, ".", "", 1), "0"))
	if sig < c.opts.MinDigits || places > 30 {
		return false
	}
	want := new(big.Rat).Set(n.val)
	if neg {
		want.Neg(want)
	}
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)
	x := new(big.Rat).Mul(v, new(big.Rat).SetInt(scale))
	q := new(big.Int).Quo(x.Num(), x.Denom()) // truncation toward zero
	for _, k := range []*big.Int{q, roundRat(x)} {
		if new(big.Rat).SetFrac(k, scale).Cmp(want) == 0 {
			return true
		}
	}
	return false
}

func roundRat(x *big.Rat) *big.Int {
	h := new(big.Rat).Add(new(big.Rat).Abs(x), big.NewRat(1, 2))
	q := new(big.Int).Quo(h.Num(), h.Denom())
	if x.Sign() < 0 {
		q.Neg(q)
	}
	return q
}

// eqNumeric compares values that are not both rational: by complex floating
// point at deterministic random points, falling back to the canonical form
// when evaluation fails or leaves float64's safe range.
func (c *comparer) eqNumeric(a, b *node) bool {
	seen := map[string]bool{}
	vs := vars(b, seen, vars(a, seen, nil))
	tol := 1e-9
	dec := hasDecimal(a) || hasDecimal(b)
	if dec {
		tol = math.Max(c.opts.RTol, 1e-9)
	}
	good, bad := 0, 0
	pts := numPoints
	if len(vs) == 0 {
		pts = 1
	}
	if len(vs) == 0 {
		// Constants: 256-bit floats with an unbounded exponent where they
		// reach (radicals, π, e, powers); float64 for the rest.
		if eq, ok := c.eqHighPrec(a, b, dec); ok {
			if !eq && dec {
				eq = c.digitsMatchBig(a, b)
			}
			return c.decide("numeric (256-bit)", eq)
		}
	}
	if len(vs) > 0 && !dec {
		// Polynomial and rational identities exactly, at rational points:
		// float64 loses (x+y+1)^8 against its expansion to cancellation.
		if eq, ok := exactIdentity(a, b, vs); ok {
			return c.decide("symbolic (exact at random points)", eq)
		}
	}
	for i := range pts {
		e := point(vs, i)
		x, ok1 := numeric(a, e)
		y, ok2 := numeric(b, e)
		if !ok1 || !ok2 {
			if ok1 != ok2 {
				bad++
			}
			continue
		}
		if x == y && finite(x) {
			good++ // identical values, zero included: x^2 - x^2 is 0
			continue
		}
		if !finite(x) || !finite(y) || tiny(x) && tiny(y) {
			continue
		}
		eq := nearRel(x, y, tol)
		if !eq && dec && len(vs) == 0 {
			eq = c.digitsMatchF(a, y) || c.digitsMatchF(b, x)
		}
		if !eq && dec {
			// Decimals written to n places stand for anything within one unit
			// of their last place: x + 1.414i against x + √2 i.
			eq = cmplx.Abs(x-y) <= c.slack(a, e, x)+c.slack(b, e, y)
		}
		if !eq {
			if len(vs) == 0 {
				return c.decide("numeric", false)
			}
			return c.decide("symbolic (random points)", false)
		}
		good++
	}
	if good > 0 && bad == 0 {
		if len(vs) == 0 {
			return c.decide("numeric", true)
		}
		return c.decide("symbolic (random points)", true)
	}
	return c.decide("canonical form", canon(a) == canon(b))
}

// eqHighPrec compares two real constant expressions in 256-bit floats.
func (c *comparer) eqHighPrec(a, b *node, dec bool) (eq, ok bool) {
	budget := 20000
	x, ok1 := highPrec(a, &budget)
	y, ok2 := highPrec(b, &budget)
	if !ok1 || !ok2 {
		return false, false
	}
	tol := 1e-60
	if dec {
		tol = max(c.opts.RTol, 1e-60)
	}
	d := new(big.Float).Sub(x, y)
	d.Abs(d)
	m := new(big.Float).Abs(x)
	if ay := new(big.Float).Abs(y); ay.Cmp(m) > 0 {
		m = ay
	}
	return d.Cmp(m.Mul(m, big.NewFloat(tol))) <= 0, true
}

// digitsMatchBig applies the MinDigits rule with a 256-bit value.
func (c *comparer) digitsMatchBig(a, b *node) bool {
	budget := 20000
	x, ok1 := highPrec(a, &budget)
	y, ok2 := highPrec(b, &budget)
	if !ok1 || !ok2 {
		return false
	}
	rx, _ := x.Rat(nil)
	ry, _ := y.Rat(nil)
	return rx != nil && ry != nil && (c.digitsMatch(a, ry) || c.digitsMatch(b, rx))
}

// slack bounds how much n's value at e may move when each decimal literal
// with at least MinDigits significant digits moves by one unit in its last
// place.
func (c *comparer) slack(n *node, e *env, base complex128) float64 {
	if c.opts.MinDigits <= 0 {
		return 0
	}
	var lits []*node
	var collect func(*node)
	collect = func(m *node) {
		if len(lits) > 16 {
			return
		}
		if m.k == nNum && m.dec && !strings.ContainsAny(m.open, "eE(") {
			lits = append(lits, m)
		}
		for _, a := range m.args {
			collect(a)
		}
		for _, r := range m.rows {
			for _, a := range r {
				collect(a)
			}
		}
	}
	collect(n)
	total := 0.0
	for _, lit := range lits {
		dot := strings.IndexByte(lit.open, '.')
		if dot < 0 {
			continue
		}
		places := len(lit.open) - dot - 1
		sig := len(strings.TrimLeft(strings.Replace(lit.open, ".", "", 1), "0"))
		if sig < c.opts.MinDigits || places > 30 {
			continue
		}
		ulp := new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil))
		old := lit.val
		lit.val = new(big.Rat).Add(old, ulp)
		v, ok := numeric(n, e)
		lit.val = old
		if !ok || !finite(v) {
			return 0
		}
		total += cmplx.Abs(v - base)
	}
	return total
}

func tiny(x complex128) bool { return cmplx.Abs(x) < 1e-200 }

// nearRel is a relative comparison that treats a tiny difference near zero
// (cancellation noise against an exact zero) as equal.
func nearRel(x, y complex128, tol float64) bool {
	d := cmplx.Abs(x - y)
	m := math.Max(cmplx.Abs(x), cmplx.Abs(y))
	return d <= tol*m || (x == 0 || y == 0) && d < 1e-13
}

// digitsMatchF is digitsMatch against a floating-point value.
func (c *comparer) digitsMatchF(n *node, v complex128) bool {
	if imag(v) != 0 || math.IsNaN(real(v)) || math.IsInf(real(v), 0) {
		return false
	}
	r := new(big.Rat)
	if r.SetFloat64(real(v)) == nil {
		return false
	}
	return c.digitsMatch(n, r)
}

// exactIdentity compares a and b at numPoints rational points in exact
// arithmetic; ok is false when either side cannot be evaluated exactly
// there (a radical, a function, a pole), leaving the float comparison.
func exactIdentity(a, b *node, vs []string) (eq, ok bool) {
	for i := range numPoints {
		pa, pb := a, b
		for j, v := range vs {
			x := &node{k: nNum, val: ratPoint(v, i, j)}
			pa, pb = substitute(pa, v, x), substitute(pb, v, x)
		}
		x, ok1 := exact(pa)
		y, ok2 := exact(pb)
		if !ok1 || !ok2 {
			return false, false
		}
		if x.Cmp(y) != 0 {
			return false, true
		}
	}
	return true, true
}

// ratPoint is the value of variable v (the j-th) at point i: a positive
// rational with a small numerator and denominator, different per variable
// and point.
func ratPoint(v string, i, j int) *big.Rat {
	h := uint64(14695981039346656037)
	for k := 0; k < len(v); k++ {
		h ^= uint64(v[k])
		h *= 1099511628211
	}
	h ^= uint64(i+1)*0x9E3779B97F4A7C15 + uint64(j)*0xC2B2AE3D27D4EB4F
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return big.NewRat(int64(h%89)+3, int64(h>>32%13)+2)
}
