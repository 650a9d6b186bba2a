package grade

import (
	"math"
	"math/big"
	"math/cmplx"
)

// Caps on exact arithmetic, so that 2^{2^{2^{100}}} or 10^6! give up at once
// instead of hanging.
const (
	maxBits     = 1 << 17 // largest numerator or denominator, in bits
	maxFact     = 3000    // largest n for exact n!
	maxSumTerms = 1000    // largest number of terms of a \sum evaluated
)

// exact evaluates n with exact rational arithmetic. ok is false when n has a
// variable, an irrational value, or would exceed the size caps.
func exact(n *node) (*big.Rat, bool) {
	switch n.k {
	case nNum:
		return n.val, true
	case nNeg:
		a, ok := exact(n.args[0])
		if !ok {
			return nil, false
		}
		return new(big.Rat).Neg(a), true
	case nAdd:
		sum := new(big.Rat)
		for _, a := range n.args {
			v, ok := exact(a)
			if !ok {
				return nil, false
			}
			sum.Add(sum, v)
			if !bitsOK(sum) {
				return nil, false
			}
		}
		return sum, true
	case nMul:
		prod := big.NewRat(1, 1)
		for _, a := range n.args {
			v, ok := exact(a)
			if !ok {
				return nil, false
			}
			prod.Mul(prod, v)
			if !bitsOK(prod) {
				return nil, false
			}
		}
		return prod, true
	case nDiv:
		a, ok := exact(n.args[0])
		if !ok {
			return nil, false
		}
		b, ok := exact(n.args[1])
		if !ok || b.Sign() == 0 {
			return nil, false
		}
		return new(big.Rat).Quo(a, b), true
	case nPow:
		return exactPow(n)
	case nFact:
		a, ok := exact(n.args[0])
		if !ok || !a.IsInt() || a.Sign() < 0 || a.Num().Cmp(big.NewInt(maxFact)) > 0 {
			return nil, false
		}
		return new(big.Rat).SetInt(new(big.Int).MulRange(1, a.Num().Int64())), true
	case nFunc:
		return exactFunc(n)
	}
	return nil, false
}

func bitsOK(r *big.Rat) bool {
	return r.Num().BitLen() <= maxBits && r.Denom().BitLen() <= maxBits
}

// exactPow evaluates a^b for rational a and b when the result is rational.
func exactPow(n *node) (*big.Rat, bool) {
	a, ok := exact(n.args[0])
	if !ok {
		return nil, false
	}
	b, ok := exact(n.args[1])
	if !ok {
		return nil, false
	}
	if a.Sign() == 0 {
		if b.Sign() > 0 {
			return new(big.Rat), true
		}
		return nil, false
	}
	if a.Cmp(big.NewRat(1, 1)) == 0 {
		return a, true
	}
	if !b.IsInt() {
		// a^(p/q): exact only when a is a perfect q-th power.
		q := b.Denom()
		if !q.IsInt64() || q.Int64() > 12 || b.Num().BitLen() > 30 {
			return nil, false
		}
		r, ok := rootRat(a, int(q.Int64()))
		if !ok {
			return nil, false
		}
		return powInt(r, b.Num())
	}
	return powInt(a, b.Num())
}

// powInt raises r to an integer power, within the size caps.
func powInt(r *big.Rat, e *big.Int) (*big.Rat, bool) {
	if r.Sign() == 0 {
		if e.Sign() > 0 {
			return new(big.Rat), true
		}
		return nil, false
	}
	abs := new(big.Rat).Abs(r)
	if abs.Cmp(big.NewRat(1, 1)) == 0 {
		if e.Bit(0) == 1 {
			return r, true
		}
		return abs, true
	}
	if !e.IsInt64() {
		return nil, false
	}
	k := e.Int64()
	neg := k < 0
	if neg {
		k = -k
	}
	bits := max(r.Num().BitLen(), r.Denom().BitLen())
	if int64(bits)*k > maxBits {
		return nil, false
	}
	kk := big.NewInt(k)
	num := new(big.Int).Exp(r.Num(), kk, nil)
	den := new(big.Int).Exp(r.Denom(), kk, nil)
	if neg {
		if num.Sign() == 0 {
			return nil, false
		}
		num, den = den, num
	}
	return new(big.Rat).SetFrac(num, den), true
}

// rootRat returns the exact q-th root of r, if r is a perfect q-th power.
func rootRat(r *big.Rat, q int) (*big.Rat, bool) {
	neg := r.Sign() < 0
	if neg && q%2 == 0 {
		return nil, false
	}
	num, ok := rootInt(new(big.Int).Abs(r.Num()), q)
	if !ok {
		return nil, false
	}
	den, ok := rootInt(r.Denom(), q)
	if !ok {
		return nil, false
	}
	if neg {
		num.Neg(num)
	}
	return new(big.Rat).SetFrac(num, den), true
}

// rootInt returns the exact q-th root of x >= 0, if there is one.
func rootInt(x *big.Int, q int) (*big.Int, bool) {
	if q == 2 {
		s := new(big.Int).Sqrt(x)
		return s, new(big.Int).Mul(s, s).Cmp(x) == 0
	}
	if x.BitLen() > 4096 {
		return nil, false
	}
	f, _ := new(big.Float).SetInt(x).Float64()
	if math.IsInf(f, 0) {
		return nil, false
	}
	g := math.Round(math.Pow(f, 1/float64(q)))
	for d := -1.0; d <= 1; d++ {
		c, _ := big.NewFloat(g + d).Int(nil)
		if c.Sign() < 0 {
			continue
		}
		if new(big.Int).Exp(c, big.NewInt(int64(q)), nil).Cmp(x) == 0 {
			return c, true
		}
	}
	return nil, false
}

// exactFunc evaluates the functions whose value can be exactly rational.
func exactFunc(n *node) (*big.Rat, bool) {
	switch n.name {
	case "sqrt":
		a, ok := exact(n.args[0])
		if !ok {
			return nil, false
		}
		return rootRat(a, 2)
	case "root":
		a, ok := exact(n.args[0])
		if !ok {
			return nil, false
		}
		q, ok := exact(n.args[1])
		if !ok || !q.IsInt() || !q.Num().IsInt64() || q.Num().Int64() < 2 || q.Num().Int64() > 64 {
			return nil, false
		}
		return rootRat(a, int(q.Num().Int64()))
	case "abs":
		a, ok := exact(n.args[0])
		if !ok {
			return nil, false
		}
		return new(big.Rat).Abs(a), true
	case "floor", "ceil":
		a, ok := exact(n.args[0])
		if !ok {
			return nil, false
		}
		q, m := new(big.Int).DivMod(a.Num(), a.Denom(), new(big.Int))
		if n.name == "ceil" && m.Sign() != 0 {
			q.Add(q, big.NewInt(1))
		}
		return new(big.Rat).SetInt(q), true
	case "binom":
		a, ok1 := exact(n.args[0])
		b, ok2 := exact(n.args[1])
		if !ok1 || !ok2 || !a.IsInt() || !b.IsInt() || !a.Num().IsInt64() || !b.Num().IsInt64() {
			return nil, false
		}
		nn, kk := a.Num().Int64(), b.Num().Int64()
		if nn < 0 || nn > 20000 || kk < 0 || kk > nn {
			return nil, false
		}
		return new(big.Rat).SetInt(new(big.Int).Binomial(nn, kk)), true
	}
	return nil, false
}

// env binds variables to values for numeric evaluation and counts the
// operations spent, so that nested sums cannot run away.
type env struct {
	v   map[string]complex128
	ops int
}

// maxOps caps the operations of one numeric evaluation.
const maxOps = 200000

// numeric evaluates n in complex floating point at the point e.
func numeric(n *node, e *env) (complex128, bool) {
	e.ops++
	if e.ops > maxOps {
		return 0, false
	}
	switch n.k {
	case nNum:
		f, _ := n.val.Float64()
		return complex(f, 0), true
	case nSym:
		v, ok := e.v[n.name]
		return v, ok
	case nConst:
		switch n.name {
		case "pi":
			return complex(math.Pi, 0), true
		case "e":
			return complex(math.E, 0), true
		case "i":
			return complex(0, 1), true
		}
		return 0, false
	case nNeg:
		a, ok := numeric(n.args[0], e)
		return -a, ok
	case nAdd:
		var s complex128
		for _, a := range n.args {
			v, ok := numeric(a, e)
			if !ok {
				return 0, false
			}
			s += v
		}
		return s, true
	case nMul:
		s := complex(1, 0)
		for _, a := range n.args {
			v, ok := numeric(a, e)
			if !ok {
				return 0, false
			}
			s *= v
		}
		return s, true
	case nDiv:
		a, ok1 := numeric(n.args[0], e)
		b, ok2 := numeric(n.args[1], e)
		if !ok1 || !ok2 || b == 0 {
			return 0, false
		}
		return a / b, true
	case nPow:
		return numPow(n, e)
	case nFact:
		a, ok := numeric(n.args[0], e)
		if !ok || imag(a) != 0 || real(a) < 0 || real(a) > 170 {
			return 0, false
		}
		return complex(math.Gamma(real(a)+1), 0), true
	case nPercent:
		a, ok := numeric(n.args[0], e)
		if n.name == "deg" {
			return a * math.Pi / 180, ok
		}
		return a / 100, ok
	case nFunc:
		return numFunc(n, e)
	}
	return 0, false
}

// numPow evaluates a power; a real negative base with an integer exponent
// stays real.
func numPow(n *node, e *env) (complex128, bool) {
	a, ok1 := numeric(n.args[0], e)
	b, ok2 := numeric(n.args[1], e)
	if !ok1 || !ok2 {
		return 0, false
	}
	if imag(b) == 0 && imag(a) == 0 {
		if real(b) == math.Trunc(real(b)) || real(a) >= 0 {
			return complex(math.Pow(real(a), real(b)), 0), true
		}
		// A negative base with a rational exponent p/q, q odd, takes the real
		// branch, as \sqrt[3]{x} does: (-8)^{2/3} = 4.
		if r, ok := exact(n.args[1]); ok && r.Denom().Bit(0) == 1 && r.Num().IsInt64() {
			v := math.Pow(-real(a), real(b))
			if r.Num().Bit(0) == 1 {
				v = -v
			}
			return complex(v, 0), true
		}
	}
	if a == 0 {
		return 0, real(b) > 0
	}
	if imag(b) == 0 && real(b) == math.Trunc(real(b)) && math.Abs(real(b)) < 64 {
		r := complex(1, 0)
		k := int(math.Abs(real(b)))
		for range k {
			r *= a
		}
		if real(b) < 0 {
			r = 1 / r
		}
		return r, true
	}
	return cmplx.Pow(a, b), true
}

var realFuncs = map[string]func(float64) float64{
	"floor": math.Floor, "ceil": math.Ceil,
}

var complexFuncs = map[string]func(complex128) complex128{
	"sin": cmplx.Sin, "cos": cmplx.Cos, "tan": cmplx.Tan,
	"sec":    func(x complex128) complex128 { return 1 / cmplx.Cos(x) },
	"csc":    func(x complex128) complex128 { return 1 / cmplx.Sin(x) },
	"cot":    func(x complex128) complex128 { return 1 / cmplx.Tan(x) },
	"arcsin": cmplx.Asin, "arccos": cmplx.Acos, "arctan": cmplx.Atan,
	"sinh": cmplx.Sinh, "cosh": cmplx.Cosh, "tanh": cmplx.Tanh,
	"ln": cmplx.Log, "log": cmplx.Log, "exp": cmplx.Exp, "sqrt": cmplx.Sqrt,
	"lg":  cmplx.Log10,
	"abs": func(x complex128) complex128 { return complex(cmplx.Abs(x), 0) },
}

// numFunc evaluates a function application numerically.
func numFunc(n *node, e *env) (complex128, bool) {
	switch n.name {
	case "sum", "prod":
		return numSum(n, e)
	case "root":
		a, ok1 := numeric(n.args[0], e)
		q, ok2 := numeric(n.args[1], e)
		if !ok1 || !ok2 || q == 0 {
			return 0, false
		}
		if imag(a) == 0 && imag(q) == 0 && real(a) < 0 && math.Mod(real(q), 2) == 1 {
			return complex(-math.Pow(-real(a), 1/real(q)), 0), true
		}
		return cmplx.Pow(a, 1/q), true
	case "binom":
		a, ok1 := numeric(n.args[0], e)
		b, ok2 := numeric(n.args[1], e)
		if !ok1 || !ok2 || imag(a) != 0 || imag(b) != 0 {
			return 0, false
		}
		x, y := real(a), real(b)
		if x > 170 || y > 170 {
			return 0, false
		}
		if x == math.Trunc(x) && y == math.Trunc(y) && (y < 0 || y > x && x >= 0) {
			return 0, true
		}
		v := math.Gamma(x+1) / math.Gamma(y+1) / math.Gamma(x-y+1)
		return complex(v, 0), !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	if len(n.args) == 2 && n.name == "log" {
		a, ok1 := numeric(n.args[0], e)
		b, ok2 := numeric(n.args[1], e)
		if !ok1 || !ok2 || cmplx.Log(b) == 0 {
			return 0, false
		}
		return cmplx.Log(a) / cmplx.Log(b), true
	}
	if len(n.args) != 1 {
		return 0, false
	}
	a, ok := numeric(n.args[0], e)
	if !ok {
		return 0, false
	}
	if f, ok := realFuncs[n.name]; ok {
		if imag(a) != 0 {
			return 0, false
		}
		return complex(f(real(a)), 0), true
	}
	if f, ok := complexFuncs[n.name]; ok {
		return f(a), true
	}
	return 0, false
}

// numSum evaluates \sum_{k=lo}^{hi} body and \prod with integer bounds.
func numSum(n *node, e *env) (complex128, bool) {
	lo, ok1 := numeric(n.args[2], e)
	hi, ok2 := numeric(n.args[3], e)
	if !ok1 || !ok2 || imag(lo) != 0 || imag(hi) != 0 {
		return 0, false
	}
	a, b := real(lo), real(hi)
	if a != math.Trunc(a) || b != math.Trunc(b) || b-a > maxSumTerms {
		return 0, false
	}
	v := n.args[1].name
	old, had := e.v[v]
	acc := complex(0, 0)
	if n.name == "prod" {
		acc = 1
	}
	for k := a; k <= b; k++ {
		e.v[v] = complex(k, 0)
		t, ok := numeric(n.args[0], e)
		if !ok {
			return 0, false
		}
		if n.name == "prod" {
			acc *= t
		} else {
			acc += t
		}
	}
	if had {
		e.v[v] = old
	} else {
		delete(e.v, v)
	}
	return acc, true
}

// vars collects the free variables of n in first-seen order.
func vars(n *node, seen map[string]bool, out []string) []string {
	if n == nil {
		return out
	}
	if n.k == nSym && !seen[n.name] {
		seen[n.name] = true
		out = append(out, n.name)
	}
	for _, a := range n.args {
		out = vars(a, seen, out)
	}
	for _, r := range n.rows {
		for _, a := range r {
			out = vars(a, seen, out)
		}
	}
	return out
}

// hasDecimal reports whether n contains a decimal literal (an inexact value).
func hasDecimal(n *node) bool {
	if n.k == nNum && n.dec {
		return true
	}
	for _, a := range n.args {
		if hasDecimal(a) {
			return true
		}
	}
	return false
}
