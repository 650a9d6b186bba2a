package grade

import (
	"math/big"
	"strings"
)

// Variant is another way to write an answer, or a near miss of it.
type Variant struct {
	// Answer is the rewritten answer.
	Answer string
	// Equal is the verdict Equal(answer, Answer, DefaultOptions()) gives:
	// true for a rewriting, false for a near miss.
	Equal bool
}

// Variants returns the answer (trimmed) itself, equivalent rewritings of it
// (boxed, "x = ...", another form of its value, thousands separators, an
// added zero) and near misses (off by one, doubled, 1% off), each with the
// verdict it should get. The rewritings of a value are made only for an
// answer that parses as one number. They make test cases for a grader, and
// pairs to measure one (`crucible bench grade`). An empty answer has none.
func Variants(answer string) []Variant {
	a := strings.TrimSpace(answer)
	if a == "" {
		return nil
	}
	var out []Variant
	add := func(p string, want bool) { out = append(out, Variant{Answer: p, Equal: want}) }
	add(a, true)
	add(`\boxed{`+a+`}`, true)
	n, err := parse(clean(a))
	if err != nil {
		return out
	}
	scalar := !isColl(n) && n.k != nRel && n.k != nText && !hasPM(n) && n.k != nPercent
	if scalar && !strings.Contains(a, ",") {
		add("x = "+a, true)
		add("("+a+") + 0", true)
		add("("+a+") + 1", false)
		if v, ok := exact(n); !ok || v.Sign() != 0 {
			add("2("+a+")", false)
		}
	}
	if v, ok := exact(n); ok && !hasDecimal(n) && scalar {
		for _, f := range rewrites(v) {
			add(f, true)
		}
		add(new(big.Rat).Add(v, big.NewRat(1, 1)).RatString(), false)
		if f, ok := decimal(new(big.Rat).Mul(v, big.NewRat(101, 100))); ok && v.Sign() != 0 {
			add(f, false)
		}
	}
	return out
}

// rewrites returns other ways to write the rational v.
func rewrites(v *big.Rat) []string {
	var out []string
	if v.IsInt() {
		s := v.Num().String()
		out = append(out, thousands(s), s+".0", "$"+s+"$")
		return out
	}
	out = append(out, v.RatString(), `\frac{`+v.Num().String()+"}{"+v.Denom().String()+"}")
	if f, ok := decimal(v); ok {
		out = append(out, f)
	}
	return out
}

// thousands inserts "," every three digits.
func thousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// decimal writes v as a terminating decimal, when it is one.
func decimal(v *big.Rat) (string, bool) {
	d := new(big.Int).Set(v.Denom())
	for _, p := range []int64{2, 5} {
		bp := big.NewInt(p)
		for new(big.Int).Mod(d, bp).Sign() == 0 {
			d.Quo(d, bp)
		}
	}
	if d.Cmp(big.NewInt(1)) != 0 {
		return "", false
	}
	return v.FloatString(12), true
}
