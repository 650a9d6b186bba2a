package grade_test

import (
	"fmt"

	"github.com/crucible-ml/crucible/grade"
)

func ExampleCheck() {
	opts := grade.DefaultOptions()
	v := grade.Check(`$\frac{1}{2}$`, `So the answer is \boxed{0.5}.`, opts)
	fmt.Println(v.Equal, v.Rule)
	// Output: true decimal tolerance
}

func ExampleEqual() {
	opts := grade.DefaultOptions()
	for _, p := range [][2]string{
		{`x = 5`, `5`},
		{`\frac{1}{2004!}`, `\frac{1}{2006!}`},
		{`(-\infty, 2]`, `x \le 2`},
		{`\{1, 2, 3\}`, `3, 2, 1`},
		{`x^2 - 1`, `(x-1)(x+1)`},
	} {
		fmt.Println(grade.Equal(p[0], p[1], opts).Equal)
	}
	// Output:
	// true
	// false
	// true
	// true
	// true
}

func ExampleExtract() {
	ans, ok := grade.Extract("<think>hmm</think> ... The final answer is $42$. I hope it is correct.")
	fmt.Println(ans, ok)
	// Output: 42 true
}
