package grade

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
