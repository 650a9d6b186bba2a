// Package grade decides whether a model's math answer equals the reference
// answer: it extracts the final answer from a response, parses LaTeX or plain
// answers into an expression tree, and compares the trees with exact rational
// arithmetic where values are exact, 256-bit floating point for other
// constants (radicals, π, e), and evaluation at deterministic random points
// (complex float64) where they are symbolic.
//
// The comparison is a cascade of small steps: identical strings; the value an
// answer states (x = 5, x ≈ 5, x ∈ S); ± expanded into a set; relations;
// collections (tuples, intervals, sets, unions, matrices); then scalars by
// text, percent, degrees, infinity, exact value, numeric value, symbolic
// identity, and finally the canonical printed form. Verdict.Rule names the
// step that decided.
//
//	opts := grade.DefaultOptions()
//	v := grade.Check(`$\frac{1}{2}$`, `so the answer is \boxed{0.5}.`, opts)
//	fmt.Println(v.Equal, v.Rule) // true decimal tolerance
//	ans, ok := grade.Extract("... The final answer is $42$.") // "42", true
//	grade.Equal(`x = 5`, `5`, opts).Equal                      // true
//
// # Policies
//
// Graders disagree on a few questions; Options holds the choices,
// DefaultOptions documents the defaults, and Policies names bundles of them
// that every grading command takes as --policy: default; math-verify (a
// response that states no answer is read for its last math or number);
// nemo-skills (only the last \boxed{} answers); strict (no tolerance,
// fractions in lowest terms, bare lists in order). A graded row records
// its policy (grade_policy). The defaults:
//
//   - Tolerance: exact values (integers, fractions, radicals, π, factorials)
//     compare exactly, so 1/2004! ≠ 1/2006!. Only when either side holds a
//     decimal literal does Options.RTol (1e-4) apply; a decimal with at least
//     Options.MinDigits (4) significant digits also equals a value that
//     rounds or truncates to it (0.3333 = 1/3).
//   - Percent: "10%" equals 10 and 0.1 (PercentEither).
//   - Bare lists "1, 2, 3" compare as multisets; tuples and intervals in order;
//     sets "\{..\}" as sets; "x = 1, y = 2" as the tuple (1, 2).
//   - Several boxes: the last run of \boxed{} joined only by connectors
//     ("\boxed{1} and \boxed{2}") is one list answer (BoxJoin); else the
//     last. Against a single value, Check falls back to the last box.
//   - Multiple choice: when one side is a letter A-J ("B", "(B)",
//     "\text{B}"), Check reads the other side's choice from its prose ("the
//     answer is for sure D, not A"); "C" equals "C. x = 42".
//   - Unreduced fractions equal their value (3245/5 = 649).
//   - Equations: "x = 5" equals 5; equations are equal when sides match,
//     swapped or not, or when (left - right) agree up to a constant factor
//     (positive for inequalities); "x > 5" equals the interval (5, ∞).
//   - Units, "\$" and \text{} words after a number are dropped ("10 cm",
//     "10 weeks", "10weeks"); a unit of one or two letters needs a space, so
//     "10cm" and "2m" are products. θ° equals θ and θπ/180; "8:34 p.m." is
//     20:34.
//   - Symbolic answers are compared at points where every variable is
//     positive (as a geometry answer assumes), so √(x²) = x there; odd roots
//     of negative numbers are real (∛-8 = -2, (-8)^{2/3} = 4).
//
// # Bounds
//
// Every verdict takes bounded time: responses are cut to their last 256 KiB,
// answers over 8000 bytes or 3000 tokens compare as text, exact arithmetic
// gives up beyond 2^17-bit numbers and 3000!, numeric evaluation beyond
// 200000 operations (so nested 1000-term sums stop), ± expansions beyond 16
// variants, and list comparisons beyond 5000 steps. Nothing is random at run
// time: the evaluation points derive from the variables' names.
package grade
