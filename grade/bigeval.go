package grade

import (
	"math"
	"math/big"
)

var mathPow = math.Pow

// bigPrec is the precision, in bits, of the high-precision evaluation.
const bigPrec = 256

// Constants to 80 digits for the high-precision evaluation.
var (
	bigPi, _ = new(big.Float).SetPrec(bigPrec).SetString("3.1415926535897932384626433832795028841971693993751058209749445923078164062862090")
	bigE, _  = new(big.Float).SetPrec(bigPrec).SetString("2.7182818284590452353602874713526624977572470936999595749669676277240766303535476")
)

// highPrec evaluates a real expression without variables in 256-bit floating
// point with an unbounded exponent, for values float64 cannot hold (1/2004!
// next to √2). It handles + - × ÷, integer powers, square and n-th roots, π,
// e and whatever exact() handles; ok is false for anything else.
func highPrec(n *node, budget *int) (*big.Float, bool) {
	*budget--
	if *budget < 0 {
		return nil, false
	}
	if v, ok := exact(n); ok {
		return new(big.Float).SetPrec(bigPrec).SetRat(v), true
	}
	f := func() *big.Float { return new(big.Float).SetPrec(bigPrec) }
	switch n.k {
	case nConst:
		switch n.name {
		case "pi":
			return f().Set(bigPi), true
		case "e":
			return f().Set(bigE), true
		}
	case nNeg:
		a, ok := highPrec(n.args[0], budget)
		if !ok {
			return nil, false
		}
		return f().Neg(a), true
	case nAdd, nMul:
		acc := f()
		if n.k == nMul {
			acc.SetInt64(1)
		}
		for _, a := range n.args {
			v, ok := highPrec(a, budget)
			if !ok {
				return nil, false
			}
			if n.k == nAdd {
				acc.Add(acc, v)
			} else {
				acc.Mul(acc, v)
			}
		}
		return acc, true
	case nDiv:
		a, ok1 := highPrec(n.args[0], budget)
		b, ok2 := highPrec(n.args[1], budget)
		if !ok1 || !ok2 || b.Sign() == 0 {
			return nil, false
		}
		return f().Quo(a, b), true
	case nPow:
		return highPow(n, budget)
	case nFunc:
		if n.name == "root" && len(n.args) == 2 {
			a, ok := highPrec(n.args[0], budget)
			q, okq := exact(n.args[1])
			if !ok || !okq || !q.IsInt() || !q.Num().IsInt64() || q.Num().Int64() < 2 || q.Num().Int64() > 64 {
				return nil, false
			}
			k := q.Num().Int64()
			if a.Sign() < 0 {
				if k%2 == 0 {
					return nil, false
				}
				return f().Neg(nthRoot(f().Neg(a), k)), true
			}
			return nthRoot(a, k), true
		}
		if n.name == "sqrt" && len(n.args) == 1 {
			a, ok := highPrec(n.args[0], budget)
			if !ok || a.Sign() < 0 {
				return nil, false
			}
			return f().Sqrt(a), true
		}
	}
	return nil, false
}

// highPow evaluates base^k for an integer k, or base^(1/q)·… via roots.
func highPow(n *node, budget *int) (*big.Float, bool) {
	e, ok := exact(n.args[1])
	if !ok || !e.Num().IsInt64() || !e.Denom().IsInt64() {
		return nil, false
	}
	p, q := e.Num().Int64(), e.Denom().Int64()
	if p > 1<<20 || p < -(1<<20) || q > 64 {
		return nil, false
	}
	b, ok := highPrec(n.args[0], budget)
	if !ok {
		return nil, false
	}
	if q > 1 {
		if b.Sign() < 0 {
			return nil, false
		}
		b = nthRoot(b, q)
	}
	neg := p < 0
	if neg {
		p = -p
	}
	r := new(big.Float).SetPrec(bigPrec).SetInt64(1)
	sq := new(big.Float).SetPrec(bigPrec).Set(b)
	for p > 0 {
		if p&1 == 1 {
			r.Mul(r, sq)
		}
		sq.Mul(sq, sq)
		p >>= 1
	}
	if neg {
		if r.Sign() == 0 {
			return nil, false
		}
		r.Quo(new(big.Float).SetPrec(bigPrec).SetInt64(1), r)
	}
	return r, true
}

// nthRoot returns x^(1/q) for x >= 0 by Newton's method.
func nthRoot(x *big.Float, q int64) *big.Float {
	if x.Sign() == 0 {
		return x
	}
	// Start from a float64 estimate on the mantissa and exponent.
	mant := new(big.Float)
	exp := x.MantExp(mant)
	m, _ := mant.Float64()
	g := new(big.Float).SetPrec(bigPrec).SetFloat64(mathPow(m, 1/float64(q)))
	// x = m·2^exp: fold exp into the estimate, keeping the fractional part.
	g.SetMantExp(g, int(int64(exp)/q))
	if rem := int64(exp) % q; rem != 0 {
		g.Mul(g, new(big.Float).SetPrec(bigPrec).SetFloat64(mathPow(2, float64(rem)/float64(q))))
	}
	qf := new(big.Float).SetPrec(bigPrec).SetInt64(q)
	q1 := new(big.Float).SetPrec(bigPrec).SetInt64(q - 1)
	for range 12 {
		// g = ((q-1)·g + x / g^(q-1)) / q
		gp := new(big.Float).SetPrec(bigPrec).SetInt64(1)
		for range q - 1 {
			gp.Mul(gp, g)
		}
		t := new(big.Float).SetPrec(bigPrec).Quo(x, gp)
		g = new(big.Float).SetPrec(bigPrec).Add(new(big.Float).SetPrec(bigPrec).Mul(q1, g), t)
		g.Quo(g, qf)
	}
	return g
}
