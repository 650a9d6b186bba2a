package grade

import (
	"slices"
	"strings"
)

// canon prints n in a canonical form: the arguments of + and × sorted, so that
// structurally equal answers print the same. It is the last resort of the
// comparison and the parsed form shown by --explain.
func canon(n *node) string {
	var b strings.Builder
	writeCanon(&b, n, 0)
	return b.String()
}

func writeCanon(b *strings.Builder, n *node, depth int) {
	if depth > maxDepth*2 {
		b.WriteString("…")
		return
	}
	switch n.k {
	case nNum:
		if n.val.IsInt() {
			b.WriteString(n.val.Num().String())
		} else if n.dec && n.open != "" {
			if n.val.Sign() < 0 {
				b.WriteString("-")
			}
			b.WriteString(strings.TrimLeft(n.open, "0"))
		} else {
			b.WriteString(n.val.RatString())
		}
	case nSym, nConst:
		b.WriteString(n.name)
	case nText:
		b.WriteString(`"` + n.name + `"`)
	case nAdd, nMul:
		parts := make([]string, len(n.args))
		for i, a := range n.args {
			parts[i] = canon(a)
		}
		slices.Sort(parts)
		op := " + "
		if n.k == nMul {
			op = "*"
		}
		b.WriteString("(" + strings.Join(parts, op) + ")")
	case nNeg:
		b.WriteString("-")
		writeCanon(b, n.args[0], depth+1)
	case nDiv:
		b.WriteString("(")
		writeCanon(b, n.args[0], depth+1)
		b.WriteString(")/(")
		writeCanon(b, n.args[1], depth+1)
		b.WriteString(")")
	case nPow:
		b.WriteString("(")
		writeCanon(b, n.args[0], depth+1)
		b.WriteString(")^(")
		writeCanon(b, n.args[1], depth+1)
		b.WriteString(")")
	case nFact:
		writeCanon(b, n.args[0], depth+1)
		b.WriteString("!")
	case nPercent:
		writeCanon(b, n.args[0], depth+1)
		if n.name == "deg" {
			b.WriteString("°")
		} else {
			b.WriteString("%")
		}
	case nPM:
		if len(n.args) == 2 {
			writeCanon(b, n.args[0], depth+1)
		}
		b.WriteString("±")
		writeCanon(b, n.args[len(n.args)-1], depth+1)
	case nFunc:
		b.WriteString(n.name + "(")
		writeList(b, n.args, ", ", depth)
		b.WriteString(")")
	case nRel:
		for i, a := range n.args {
			if i > 0 {
				b.WriteString(" " + n.ops[i-1] + " ")
			}
			writeCanon(b, a, depth+1)
		}
	case nUnion:
		for i, a := range n.args {
			if i > 0 {
				b.WriteString(" " + n.ops[i-1] + " ")
			}
			writeCanon(b, a, depth+1)
		}
	case nSeq:
		open, close, sep := n.open, n.close, ", "
		switch open {
		case "{s":
			open = "{"
		case ":":
			open, sep = "", ":"
		case "cases":
			open, close, sep = "cases{", "}", "; "
		case "":
			open, close = "list[", "]"
		}
		b.WriteString(open)
		writeList(b, n.args, sep, depth)
		b.WriteString(close)
	case nMatrix:
		b.WriteString("matrix[")
		for i, r := range n.rows {
			if i > 0 {
				b.WriteString("; ")
			}
			writeList(b, r, ", ", depth)
		}
		b.WriteString("]")
	}
}

func writeList(b *strings.Builder, xs []*node, sep string, depth int) {
	for i, a := range xs {
		if i > 0 {
			b.WriteString(sep)
		}
		writeCanon(b, a, depth+1)
	}
}
