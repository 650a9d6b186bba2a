package grade

import "testing"

// equalCases are hand-written pairs; each is checked both ways round.
var equalCases = []struct {
	a, b string
	want bool
}{
	// numbers and formats
	{"12", "12", true},
	{"12", "13", false},
	{"1,234,567", "1234567", true},
	{"1{,}234", "1234", true},
	{"12\\,345", "12345", true},
	{"0.5", ".5", true},
	{"-0.25", "-\\frac14", true},
	{"1.5e3", "1500", true},
	{"3\\times 10^{4}", "30000", true},
	{"2.5 \\cdot 10^{-2}", "0.025", true},
	{"007", "7", true},
	{"+5", "5", true},
	{"100000000000000000001", "100000000000000000000", false},
	{"1011_2", "11", true},
	{"52_8", "42", true},
	{"52_8", "52", false},
	// fractions and mixed numbers
	{"\\frac{3}{4}", "0.75", true},
	{"\\dfrac{3}{4}", "3/4", true},
	{"\\frac34", "\\tfrac{3}{4}", true},
	{"\\frac{6}{8}", "\\frac{3}{4}", true},
	{"2\\frac{1}{3}", "\\frac{7}{3}", true},
	{"5 1/4", "5.25", true},
	{"\\frac{1}{3}", "0.33", false},
	{"\\frac{1}{3}", "0.3333", true},
	{"\\frac{2}{3}", "0.6667", true},
	{"\\frac{1}{7}", "0.142857", true},
	{"\\frac{1}{2004!}", "\\frac{1}{2006!}", false},
	{"\\frac{1}{2004!}", "\\frac{2005 \\cdot 2006}{2006!}", true},
	{"2^{2005}", "2^{2005}+1", false},
	{"2^{100}", "1267650600228229401496703205376", true},
	// radicals, powers, constants
	{"\\sqrt{8}", "2\\sqrt{2}", true},
	{"\\sqrt[3]{27}", "3", true},
	{"\\sqrt[3]{-8}", "-2", true},
	{"\\sqrt3", "\\sqrt{3}", true},
	{"\\sqrt{2}", "1.41", false},
	{"\\sqrt{2}", "1.414", true},
	{"\\sqrt{2}", "1.4142", true},
	{"\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", true},
	{"2^{1/2}", "\\sqrt2", true},
	{"\\pi", "3.14159", true},
	{"2\\pi", "\\pi \\cdot 2", true},
	{"\\pi", "3", false},
	{"e^2", "\\exp(2)", true},
	{"\\ln e^3", "3", true},
	{"\\log_2 8", "3", true},
	{"\\sin \\frac{\\pi}{6}", "\\frac12", true},
	{"\\cos^2 x + \\sin^2 x", "1", true},
	{"\\infty", "\\infty", true},
	{"-\\infty", "\\infty", false},
	// complex numbers
	{"3+4i", "4i+3", true},
	{"(1+i)^2", "2i", true},
	{"1-i", "1+i", false},
	// symbolic
	{"x^2-1", "(x-1)(x+1)", true},
	{"x^2-1", "(x-1)^2", false},
	{"\\frac{x}{2}", "0.5x", true},
	{"2ab", "2 \\cdot a \\cdot b", true},
	{"a+b", "b+a", true},
	{"a-b", "b-a", false},
	{"\\left(x+1\\right)^{2}", "x^2+2x+1", true},
	{"\\frac{1}{x+1}", "(x+1)^{-1}", true},
	{"\\sqrt{x^2}", "x", true}, // variables are taken positive
	{"(-8)^{2/3}", "4", true},
	{"\\sqrt[3]{x-5}^2", "(x-5)^{2/3}", true},
	{"(x-5)\\sqrt[3]{x-5}^2", "(x-5)^{5/3}", true},
	{"n(n+1)/2", "\\frac{n^2+n}{2}", true},
	{"\\binom{5}{2}", "10", true},
	{"5!", "120", true},
	{"|{-3}|", "3", true},
	// percent, degrees, units, currency
	{"25\\%", "0.25", true},
	{"25\\%", "25", true},
	{"25\\%", "2.5", false},
	{"45^\\circ", "45", true},
	{"45^{\\circ}", "45", true},
	{"\\$12.50", "12.5", true},
	{"12 \\text{ cm}", "12", true},
	{"12\\text{ meters}^2", "12", true},
	{"5 \\text{ dollars}", "5", true},
	// text
	{"\\text{yes}", "Yes", true},
	{"\\text{(C)}", "C", true},
	{"\\text{odd}", "\\text{even}", false},
	// equations and relations
	{"x=3", "3", true},
	{"y = 2x+1", "y = 1+2x", true},
	{"y = 2x+1", "2x+1", true},
	{"2x + 3y = 6", "y = 2 - \\frac{2}{3}x", true},
	{"2x + 3y = 6", "4x+6y=12", true},
	{"2x + 3y = 6", "2x+3y=7", false},
	{"x \\le 3", "3 \\ge x", true},
	{"x > 3", "(3, \\infty)", true},
	{"x \\ge 3", "(3, \\infty)", false},
	{"-2 < x \\le 5", "(-2, 5]", true},
	{"x < 3", "x > 3", false},
	// intervals, sets, tuples, lists
	{"(1, 2]", "(1,2]", true},
	{"(1, 2]", "[1, 2]", false},
	{"(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup(1,\\infty)", true},
	{"(-\\infty, 0) \\cup (1, \\infty)", "(1,\\infty) \\cup (-\\infty, 0)", true},
	{"\\{1, 2, 3\\}", "\\{3, 2, 1\\}", true},
	{"\\{1, 2\\}", "\\{1, 2, 3\\}", false},
	{"(1, 2)", "(2, 1)", false},
	{"(1, -2)", "\\left(1,-2\\right)", true},
	{"1, 2, 3", "3, 2, 1", true},
	{"1, 2", "1, 2, 2", false},
	{"x = 1, y = 2", "(1, 2)", true},
	{"\\pm 3", "3, -3", true},
	{"1 \\pm \\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2", true},
	{"1 \\pm \\sqrt{2}", "1+\\sqrt2", false},
	{"\\emptyset", "\\varnothing", true},
	// matrices
	{"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", true},
	{"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", false},
	{"\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 2)", true},
	{"\\begin{pmatrix} 1/2 \\\\ \\sqrt{4} \\end{pmatrix}", "\\begin{pmatrix} 0.5 \\\\ 2 \\end{pmatrix}", true},
	// more formats
	{"0.\\overline{3}", "\\frac13", true},
	{"0.1\\overline{6}", "\\frac16", true},
	{"0.\\overline{3}", "0.3", false},
	{"30^\\circ", "\\frac{\\pi}{6}", true},
	{"30^\\circ", "30", true},
	{"30^\\circ", "60^\\circ", false},
	{"72 degrees", "72", true},
	{"5 \\text{ ways}", "5", true},
	{"5 \\text{ ways}", "6", false},
	{"12 \\text{ handshakes}", "12", true},
	{"\\mathbb{R}", "(-\\infty, \\infty)", true},
	{"x \\neq 3", "(-\\infty, 3) \\cup (3, \\infty)", true},
	{"\\approx 3.14", "3.14", true},
	{"\\text{Devon and Eve}", "Devon and Eve", true},
	{"x^2+2x+1", "y^2+2y+1", false},
	{"2/(-3)", "-2/3", true},
	{"\\frac{3}{2}", "1.5", true},
	{"6.02 \\times 10^{23}", "6.02e23", true},
	{"\\$1{,}000", "1000", true},
	{"1,000,000", "10^6", true},
	{"x = 2 \\text{ or } x = 3", "2, 3", true},
	{"x = 2 \\text{ or } x = 3", "2", false},
	{"(x, y) = (1, 2)", "(1, 2)", true},
	{"y - 2x = 3", "y = 2x + 3", true},
	{"f(x) = x^2", "x^2", true},
	{"y = 2x+1", "x = \\frac{y-1}{2}", true},
	{"y = 2x+1", "x = 2y+1", false},
	{"x = 2", "x = 3", false},
	{"\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", true},
	{"[2, \\infty)", "x \\ge 2", true},
	{"\\sqrt{x+1}", "(x+1)^{1/2}", true},
	{"\\log_{10} 1000", "3", true},
	{"4!", "24", true},
	{"\\dbinom{6}{3}", "20", true},
	{"5^\\text{th}", "5", false},
	{"\\{x \\mid x > 0\\}", "(0, \\infty)", true},
	{"\\text{5 apples}", "5", true},
	{"\\text{infinity}", "\\infty", true},
	{"\\binom{n}{2}", "\\frac{n(n-1)}{2}", true},
	{"|x-1|", "|1-x|", true},
	{"\\{1,2\\} \\cap \\{2,3\\}", "\\{2\\}", true},
	{"\\{1,2,3\\} \\setminus \\{2\\}", "\\{1, 3\\}", true},
	{"\\{1,1,2\\}", "\\{2, 1\\}", true},
	{"\\{1,2\\} \\cap \\{3\\}", "\\emptyset", true},
	{"2\\theta", "2θ", true},
	{"√2", "\\sqrt{2}", true},
	{"x²+1", "x^2+1", true},
	// beyond float64: 256-bit evaluation
	{"\\frac{\\sqrt{2}}{2004!}", "\\frac{2005 \\cdot 2006\\sqrt{2}}{2006!}", true},
	{"\\frac{\\sqrt{2}}{2004!}", "\\frac{\\sqrt{2}}{2006!}", false},
	{"\\pi^{-400}", "\\pi^{-400}(1+10^{-30})", false},
	{"\\sqrt[3]{2}^{3000}", "2^{1000}", true},
	{"\\sqrt{2}^{3001}", "2^{1500}\\sqrt{2}", true},
	{"\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}", "\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}", true},
	{"\\begin{pmatrix}1 & 1 \\\\ 0 & 1\\end{pmatrix}\\begin{pmatrix}1 & 1 \\\\ 0 & 1\\end{pmatrix}", "\\begin{pmatrix}1 & 2 \\\\ 0 & 1\\end{pmatrix}", true},
	{"2\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}", "\\begin{pmatrix}2 \\\\ 4\\end{pmatrix}", true},
	{"-\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}", "\\begin{pmatrix}-1 \\\\ -2\\end{pmatrix}", true},
	{"\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}", "\\begin{pmatrix}1 & 2\\end{pmatrix}", false},
	{"(1,3)", "{1,3}", true},
	{"(3,1)", "{1,3}", false},
	{"1, 2, 3", "1, 2, 3, ...", false},
	{"1, 2, 3, \\ldots", "1, 2, 3, ...", true},
	{"\\frac{1}{3}", "\\frac{1}{3},", true},
	{"4 4/9", "40/9", true},
	{"-4 4/9", "-40/9", true},
	{"4 4/9", "4", false},
	{"4 0/9", "4", true},
	{"11 6/6", "11", false},
	{"11 6/6", "12", false},
	{"(11) 4/9", "103/9", false},
	{"4 4/9\\%", "40/900", true},
	{"3\\frac52", "\\frac{15}{2}", true},
	{"C", "C. x = 42", true},
	{"C", "D. x = 42", false},
	{"C", "(C) 42", true},
	{"17\\text{ any text}", "17", true},
	{"y = x^2+2x+1", "2x+ 1+x^2", true},
	{"20:34", "08:34 \\text{P.M.}", true},
	{"8:34 pm", "20:34", true},
	{"8:34 am", "20:34", false},
	{"10cm", "10", false},
	{"10 cm", "10", true},
	{"10m", "10", false},
	{"10weeks", "10", true},
	{"\\begin{matrix} x \\\\\\\\ \\frac12 \\end{matrix}", "[x, 0.5]", true},
	{"x + \\sqrt{2}i", "x + 1.414i", true},
	{"x + \\sqrt{2}i", "x + 1.41i", false},
	{"2\\pi r", "6.2832 r", true},
	{"x^2 - x^2", "0", true},
	{"\\sin^2 x + \\cos^2 x - 1", "0", true},
	{"x - x", "1", false},
	// bounded work
	{"2^{2^{2^{100}}}", "2^{2^{2^{100}}}", true},
	{"2^{2^{2^{100}}}", "2^{2^{2^{101}}}", false},
	{"10^{10^{10}}", "1", false},
	{"100000!", "100000!", true},
	{"100000!", "100001!", false},
}

func TestEqualTable(t *testing.T) {
	opts := DefaultOptions()
	for _, c := range equalCases {
		for _, pair := range [][2]string{{c.a, c.b}, {c.b, c.a}} {
			v := Equal(pair[0], pair[1], opts)
			if v.Equal != c.want {
				t.Errorf("Equal(%q, %q) = %v (rule %q; %s | %s), want %v", pair[0], pair[1], v.Equal, v.Rule, v.Gold, v.Pred, c.want)
			}
		}
	}
}

func TestKeyAndGrader(t *testing.T) {
	g := NewGrader()
	if !g.Same(`\frac12`, "0.5") || g.Same("1", "2") {
		t.Error("Grader.Same")
	}
	for _, p := range [][2]string{{`\frac{2}{4}`, "1/2"}, {"x = 3", "3"}, {`\boxed{7}`, "7"}, {"1,000", "1000"}} {
		if Key(p[0]) != Key(p[1]) {
			t.Errorf("Key(%q) = %q, Key(%q) = %q", p[0], Key(p[0]), p[1], Key(p[1]))
		}
	}
	if Key("1") == Key("2") {
		t.Error("Key(1) == Key(2)")
	}
}
