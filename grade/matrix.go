package grade

// maxMatrixDim caps the size of matrices that matrix arithmetic folds.
const maxMatrixDim = 12

// hasMatrix reports whether n is arithmetic over at least one matrix.
func hasMatrix(n *node) bool {
	if n.k == nMatrix {
		return true
	}
	if n.k != nAdd && n.k != nMul && n.k != nNeg {
		return false
	}
	for _, a := range n.args {
		if hasMatrix(a) {
			return true
		}
	}
	return false
}

// foldMatrix evaluates sums, negations, scalar multiples and products of
// matrices into one matrix of expression entries; ok is false when n is not
// such arithmetic or the shapes do not fit.
func foldMatrix(n *node) (*node, bool) {
	switch n.k {
	case nMatrix:
		return n, len(n.rows) <= maxMatrixDim && len(n.rows[0]) <= maxMatrixDim
	case nNeg:
		m, ok := foldMatrix(n.args[0])
		if !ok {
			return nil, false
		}
		return entrywise(m, func(x *node) *node { return &node{k: nNeg, args: []*node{x}} }), true
	case nAdd:
		var acc *node
		for _, a := range n.args {
			m, ok := foldMatrix(a)
			if !ok || acc != nil && !sameShape(acc, m) {
				return nil, false
			}
			if acc == nil {
				acc = m
				continue
			}
			sum := &node{k: nMatrix, rows: make([][]*node, len(m.rows))}
			for i := range m.rows {
				sum.rows[i] = make([]*node, len(m.rows[i]))
				for j := range m.rows[i] {
					sum.rows[i][j] = &node{k: nAdd, args: []*node{acc.rows[i][j], m.rows[i][j]}}
				}
			}
			acc = sum
		}
		return acc, acc != nil
	case nMul:
		var acc *node // a matrix, once one has been seen
		var scalars []*node
		for _, a := range n.args {
			if !hasMatrix(a) {
				scalars = append(scalars, a)
				continue
			}
			m, ok := foldMatrix(a)
			if !ok {
				return nil, false
			}
			if acc == nil {
				acc = m
				continue
			}
			if acc, ok = matMul(acc, m); !ok {
				return nil, false
			}
		}
		if acc == nil {
			return nil, false
		}
		for _, s := range scalars {
			acc = entrywise(acc, func(x *node) *node { return &node{k: nMul, args: []*node{s, x}} })
		}
		return acc, true
	}
	return nil, false
}

func sameShape(a, b *node) bool {
	return len(a.rows) == len(b.rows) && len(a.rows[0]) == len(b.rows[0])
}

func entrywise(m *node, f func(*node) *node) *node {
	out := &node{k: nMatrix, rows: make([][]*node, len(m.rows))}
	for i, r := range m.rows {
		out.rows[i] = make([]*node, len(r))
		for j, x := range r {
			out.rows[i][j] = f(x)
		}
	}
	return out
}

// matMul multiplies two matrices whose shapes fit.
func matMul(a, b *node) (*node, bool) {
	n, k, m := len(a.rows), len(a.rows[0]), len(b.rows[0])
	if len(b.rows) != k {
		return nil, false
	}
	out := &node{k: nMatrix, rows: make([][]*node, n)}
	for i := range n {
		out.rows[i] = make([]*node, m)
		for j := range m {
			sum := &node{k: nAdd}
			for t := range k {
				sum.args = append(sum.args, &node{k: nMul, args: []*node{a.rows[i][t], b.rows[t][j]}})
			}
			out.rows[i][j] = sum
		}
	}
	return out, true
}
