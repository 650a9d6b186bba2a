package grade

import (
	"strings"
	"testing"
	"time"
)

// adversarial returns inputs built to be slow: huge powers, long sums, deep
// nesting, many ± signs, many boxes, unbalanced braces.
func adversarial() [][2]string {
	sum := func(n int, term string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = strings.ReplaceAll(term, "K", string(rune('a'+i%26)))
		}
		return strings.Join(parts, "+")
	}
	return [][2]string{
		{`2^{2^{2^{100}}}`, `2^{2^{2^{101}}}`},
		{`2^{2^{2^{49}}}`, `1`},
		{`10^{10^{10}}`, `10^{10^{10}}+1`},
		{`(10^{1000})!`, `5`},
		{`2999!`, `3000!/3000`},
		{`\frac{1}{2004!}`, `\frac{1}{2006!}`},
		{sum(800, "K^2"), sum(800, "K*K")},
		{sum(800, "1"), "800"},
		{sum(400, `\frac{1}{K+1}`), sum(400, `(K+1)^{-1}`)},
		{`\sum_{k=1}^{1000}\sum_{j=1}^{1000}\sum_{i=1}^{1000} ijk`, `1`},
		{strings.Repeat(`\pm 1`, 60), strings.Repeat(`\pm 1`, 60)},
		{strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000), "1"},
		{strings.Repeat(`\sqrt{`, 3000) + "2" + strings.Repeat("}", 3000), "2"},
		{strings.Repeat("1, ", 2500) + "1", strings.Repeat("1, ", 2500) + "2"},
		{strings.Repeat("x+", 2000) + "1", strings.Repeat("1+", 2000) + "x"},
		{strings.Repeat(`\boxed{1} and `, 20000), `1`},
		{strings.Repeat(`\boxed{`, 200000), `1`},
		{strings.Repeat(`$\(`, 100000), `1`},
		{strings.Repeat(`\mathrm{`, 20000) + "x", `x`},
		{strings.Repeat(`\text{`, 20000) + "1", `1`},
		{strings.Repeat("9", 100000), strings.Repeat("9", 100000)},
		{"0." + strings.Repeat("3", 5000), `\frac13`},
		{`1e99999999`, `1e99999998`},
		{strings.Repeat(`\{1, `, 2000), `\{1\}`},
		{`\begin{pmatrix}` + strings.Repeat(`1 & `, 3000) + `1\end{pmatrix}`, `1`},
		{`x^{x^{x^{x^{x^{x^{x^{x}}}}}}}`, `x^{x^{x^{x^{x^{x^{x^{x+1}}}}}}}`},
		{`\sin(\sin(\sin(\sin(\sin(\sin(x))))))`, `x`},
	}
}

func TestBoundedTime(t *testing.T) {
	opts := DefaultOptions()
	for _, c := range adversarial() {
		for _, f := range []func(){
			func() { Check(c[0], c[1], opts) },
			func() { Equal(c[0], c[1], opts) },
			func() { Equal(c[1], c[0], opts) },
		} {
			// Every call returns (the work budgets bound it); the time is
			// reported, not asserted: `crucible bench grade` measures it.
			t0 := time.Now()
			f()
			if d := time.Since(t0); d > 50*time.Millisecond {
				t.Logf("%v for %.60q vs %.60q", d, c[0], c[1])
			}
		}
	}
}

func TestAdversarialVerdicts(t *testing.T) {
	opts := DefaultOptions()
	for _, c := range [][3]string{
		{`2^{2^{2^{100}}}`, `2^{2^{2^{101}}}`, "false"},
		{`2^{2^{2^{49}}}`, `1`, "false"},
		{`\frac{1}{2004!}`, `\frac{1}{2006!}`, "false"},
		{`2999!`, `3000!/3000`, "true"},
	} {
		if got := Equal(c[0], c[1], opts).Equal; (got && c[2] != "true") || (!got && c[2] == "true") {
			t.Errorf("Equal(%q, %q) = %v, want %s", c[0], c[1], got, c[2])
		}
	}
}
