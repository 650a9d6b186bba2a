package grade

import (
	"context"
	"math/big"
	"strings"
	"time"
)

// BenchResult reports the speed of the grader over a set of pairs.
type BenchResult struct {
	Pairs       int     `json:"pairs"`
	Rounds      int     `json:"rounds"`
	Equal       int     `json:"equal"`
	Seconds     float64 `json:"seconds"`
	PairsPerSec float64 `json:"pairs_per_sec"`
	// Slowest is the slowest pair's time: the largest over pairs of each
	// pair's fastest round, so that a garbage-collection pause does not count.
	Slowest     time.Duration `json:"slowest_ns"`
	SlowestGold string        `json:"slowest_gold"`
	SlowestPred string        `json:"slowest_pred"`
	// MaxObserved is the longest single verdict seen, pauses included.
	MaxObserved time.Duration `json:"max_observed_ns"`
}

// Bench grades every pair (gold, predicted) with Equal on the calling
// goroutine, in rounds until at least minTime has passed (and at least three
// rounds), and reports pairs per second and the slowest pair. It stops early
// when ctx is done.
func Bench(ctx context.Context, pairs [][2]string, opts Options, minTime time.Duration) BenchResult {
	var r BenchResult
	if len(pairs) == 0 {
		return r
	}
	best := make([]time.Duration, len(pairs))
	start := time.Now()
	for r.Rounds < 3 || time.Since(start) < minTime {
		if ctx.Err() != nil {
			break
		}
		equal := 0
		for i, p := range pairs {
			t0 := time.Now()
			v := Equal(p[0], p[1], opts)
			d := time.Since(t0)
			if r.Rounds == 0 || d < best[i] {
				best[i] = d
			}
			r.MaxObserved = max(r.MaxObserved, d)
			if v.Equal {
				equal++
			}
		}
		r.Rounds++
		r.Pairs += len(pairs)
		r.Equal = equal
	}
	r.Seconds = time.Since(start).Seconds()
	if r.Seconds > 0 {
		r.PairsPerSec = float64(r.Pairs) / r.Seconds
	}
	for i, d := range best {
		if d > r.Slowest {
			r.Slowest, r.SlowestGold, r.SlowestPred = d, pairs[i][0], pairs[i][1]
		}
	}
	r.Pairs = len(pairs)
	return r
}

// BenchPairs makes grading pairs from reference answers: each answer against
// itself, equivalent rewritings (boxed, "x = ...", another form of its value,
// thousands separators, an added zero) and near misses (off by one, doubled,
// 1% off).
func BenchPairs(answers []string) [][2]string {
	cases := benchCases(answers)
	out := make([][2]string, len(cases))
	for i, c := range cases {
		out[i] = [2]string{c.gold, c.pred}
	}
	return out
}

// benchCase is a generated pair with the verdict it should get.
type benchCase struct {
	gold, pred string
	want       bool
}

func benchCases(answers []string) []benchCase {
	var out []benchCase
	for _, a := range answers {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		add := func(p string, want bool) { out = append(out, benchCase{a, p, want}) }
		add(a, true)
		add(`\boxed{`+a+`}`, true)
		n, err := parse(clean(a))
		if err != nil {
			continue
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

// Key returns a normal form of an answer under which equal simple answers
// collide, for majority voting: the exact value of a number, else the
// canonical form of the parsed answer, else the normalized text.
func Key(answer string) string {
	a := clean(answer)
	n, err := parse(a)
	if err != nil {
		return normText(a)
	}
	n = reduce(n)
	if n.k == nRel {
		if v := eqValue(n); v != nil {
			n = v
		}
	}
	if v, ok := exact(n); ok {
		return v.RatString()
	}
	return canon(n)
}
