package grade

import (
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{`so the answer is \boxed{5}.`, "5", true},
		{`\boxed{\frac{1}{2}} and \boxed{\frac{3}{4}}`, `\frac{1}{2}, \frac{3}{4}`, true},
		{`\boxed{1} and later \boxed{2}`, "2", true},
		{`first \boxed{1}. Then, after more work, we find \boxed{2}`, "2", true},
		{`\fbox{7}`, "7", true},
		{strings.Repeat(`\boxed{9} `, 400) + `\boxed{42}`, "42", true},
		{`\boxed 5`, "5", true},
		{`\boxed{\text{(B)}}`, `\text{(B)}`, true},
		{`nested \boxed{\frac{a}{\sqrt{b}}}`, `\frac{a}{\sqrt{b}}`, true},
		{`unbalanced \boxed{1`, "1", true},
		{"The final answer is $\\frac{3}{4}$. I hope it is correct.", `\frac{3}{4}`, true},
		{"The answer is 12 because 3 times 4 is 12.", "12", true},
		{"Answer: 42", "42", true},
		{"Réponse: Janeth aura encore 220 $ à payer d'ici 12 mois.", "220", true},
		{`答案：每份应该是 (\frac{2}{5}) 吨。`, `(\frac{2}{5})`, true},
		{"how many $? just about 1$", "1", true},
		{"The answer is 1, 2, 3, ... and so on.", "1, 2, 3, ... and so on", true},
		{"The answer is 3.5. Next we check.", "3.5", true},
		{"**Final Answer:** 17", "17", true},
		{"She pays 5 dollars.\n#### 5", "5", true},
		{"We get $x = 3$.", "x = 3", true},
		{`Thus \(x^2\) is the result`, "x^2", true},
		{`The roots are $1$ and $2$`, "2", true},
		{"$1$ and $2$", "1, 2", true},
		{"<think>maybe 3</think>It is \\boxed{4}", "4", true},
		{"<think>maybe 3 but I never finish", "", false},
		{"42", "42", true},
		{`\frac{1}{2}`, `\frac{1}{2}`, true},
		{"10 square units", "10 square units", true},
		{"The train travels 60 miles in 1.5 hours, so the speed is 40 mph", "40", true},
		{"no digits here at all, sorry", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		got, ok := Extract(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("Extract(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestExtractBoxLast(t *testing.T) {
	opts := DefaultOptions()
	opts.Boxes = BoxLast
	if got, _ := ExtractWith(`\boxed{1} and \boxed{2}`, opts); got != "2" {
		t.Errorf("BoxLast: got %q, want 2", got)
	}
}

func TestCheck(t *testing.T) {
	opts := DefaultOptions()
	cases := []struct {
		gold, pred string
		want       bool
	}{
		{"$9$", `\boxed{9}`, true},
		{`\boxed{9}`, "$9$", true},
		{"B", "The answer is (B).", true},
		{"B", "I pick C, not B... final answer: C", false},
		{"(C)", `\boxed{C}`, true},
		{"42", "<think>41?</think> The answer is 42.", true},
		{"42", "no answer", false},
		{"x = 5", "Solving gives $x=5$.", true},
		{`\frac{1}{2004!}`, `\boxed{\frac{1}{2006!}}`, false},
		{"16386.20", `The total is $\$16,\!386.20$`, true},
		{"E", `$\mathrm{E}*2$`, false},
		{"D", "The answer: D, since A and B fail", true},
		{"2", `\boxed{1} and \boxed{2}`, true},
		{"1", `\boxed{1} and \boxed{2}`, false},
		{"1, 2", `\boxed{1} and \boxed{2}`, true},
		{"2, 3", `\boxed{1} and \boxed{2} and \boxed{3}`, false},
		{"5", "The answer is 5, because 2+3=5", true},
	}
	for _, c := range cases {
		if v := Check(c.gold, c.pred, opts); v.Equal != c.want {
			t.Errorf("Check(%q, %q) = %v (%s; %s | %s), want %v", c.gold, c.pred, v.Equal, v.Rule, v.Gold, v.Pred, c.want)
		}
	}
}

func TestOptions(t *testing.T) {
	o := DefaultOptions()
	cases := []struct {
		name       string
		set        func(*Options)
		gold, pred string
		want       bool
	}{
		{"percent either 10", func(*Options) {}, "10%", "10", true},
		{"percent either 0.1", func(*Options) {}, "10%", "0.1", true},
		{"percent value 10", func(o *Options) { o.Percent = PercentValue }, "10%", "10", false},
		{"percent value 0.1", func(o *Options) { o.Percent = PercentValue }, "10%", "0.1", true},
		{"percent ignore 0.1", func(o *Options) { o.Percent = PercentIgnore }, "10%", "0.1", false},
		{"ordered lists", func(o *Options) { o.OrderedLists = true }, "1, 2", "2, 1", false},
		{"unordered lists", func(*Options) {}, "1, 2", "2, 1", true},
		{"reduced fractions", func(o *Options) { o.ReducedFractions = true }, "649", "3245/5", false},
		{"rtol tight", func(o *Options) { o.RTol, o.MinDigits = 1e-9, 0 }, "16386.20", "16386.17", false},
		{"rtol default", func(*Options) {}, "16386.20", "16386.17", true},
		{"min digits off", func(o *Options) { o.MinDigits = 0 }, `\frac13`, "0.3333", true},
	}
	for _, c := range cases {
		opts := o
		c.set(&opts)
		if v := Equal(c.gold, c.pred, opts); v.Equal != c.want {
			t.Errorf("%s: Equal(%q, %q) = %v (%s), want %v", c.name, c.gold, c.pred, v.Equal, v.Rule, c.want)
		}
	}
}

func TestExtractStated(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{`so the total is \boxed{12}.`, "12", true},
		{"The answer is 7.", "7", true},
		{"work\n#### 1,234", "1,234", true},
		{"42", "42", true},
		{`$\frac{1}{2}$`, `\frac{1}{2}`, true},
		{`\pi`, `\pi`, true},
		{"I give up", "", false},
		{"no idea", "", false},
		{"We add 2 and 3 to get 5, then stop.", "", false},
		{`\boxed`, "", false},
		{"<think>still thinking", "", false},
	} {
		got, ok := ExtractStated(c.in, DefaultOptions())
		if ok != c.ok || got != c.want {
			t.Errorf("ExtractStated(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
