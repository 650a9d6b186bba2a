package inspect

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"regexp"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/util"
)

// Markdown renders a model's text as HTML a person can read: Markdown
// (goldmark, CommonMark with tables), LaTeX math left in
// <span class="math"> for KaTeX to typeset in the browser, and code blocks
// — ```python fences or <llm-code> tags — with the sandbox's output blocks
// marked. Raw HTML in the text is shown as text, never passed through: a
// generation holding <script> displays those characters.
func Markdown(text string) template.HTML {
	text = codeTags.Replace(text)
	src, maths := extractMath(text)
	var buf bytes.Buffer
	if err := md.Convert([]byte(src), &buf); err != nil {
		return template.HTML("<pre>" + html.EscapeString(text) + "</pre>")
	}
	out := buf.String()
	if len(maths) > 0 {
		out = mathToken.ReplaceAllStringFunc(out, func(tok string) string {
			i, err := strconv.Atoi(tok[len(mathPrefix) : len(tok)-1])
			if err != nil || i >= len(maths) {
				return tok
			}
			m := maths[i]
			class := "math inline"
			if m.display {
				class = "math display"
			}
			return `<span class="` + class + `">` + html.EscapeString(m.tex) + `</span>`
		})
	}
	return template.HTML(out)
}

// codeTags turns the code-interpreter tags of math/code prompts into
// fences goldmark renders as code blocks.
var codeTags = tagReplacer{regexp.MustCompile(`<llm-code>\n?|\n?</llm-code>|<llm-code-output>\n?|\n?</llm-code-output>`)}

type tagReplacer struct{ re *regexp.Regexp }

func (t tagReplacer) Replace(s string) string {
	if !strings.Contains(s, "<llm-code") {
		return s
	}
	return t.re.ReplaceAllStringFunc(s, func(tag string) string {
		switch strings.TrimSpace(tag) {
		case "<llm-code>":
			return "\n```python\n"
		case "<llm-code-output>":
			return "\n```output\n"
		}
		return "\n```\n"
	})
}

var md = goldmark.New(
	goldmark.WithExtensions(extension.Table, extension.Strikethrough),
	goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(literalHTML{}, 100))),
)

// literalHTML renders raw HTML (inline and blocks) as escaped text, and
// images as their text and address (a page never loads what a row names).
type literalHTML struct{}

func (literalHTML) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindRawHTML, func(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			segs := n.(*ast.RawHTML).Segments
			for i := range segs.Len() {
				s := segs.At(i)
				w.WriteString(html.EscapeString(string(s.Value(source))))
			}
		}
		return ast.WalkSkipChildren, nil
	})
	reg.Register(ast.KindHTMLBlock, func(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		b := n.(*ast.HTMLBlock)
		if entering {
			w.WriteString(`<p class="rawhtml">`)
			lines := b.Lines()
			for i := range lines.Len() {
				s := lines.At(i)
				w.WriteString(html.EscapeString(string(s.Value(source))))
			}
			if b.HasClosure() {
				w.WriteString(html.EscapeString(string(b.ClosureLine.Value(source))))
			}
			w.WriteString("</p>\n")
		}
		return ast.WalkSkipChildren, nil
	})
	reg.Register(ast.KindImage, func(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			img := n.(*ast.Image)
			fmt.Fprintf(w, `<span class="image">[image: %s]</span>`, html.EscapeString(string(img.Destination)))
		}
		return ast.WalkSkipChildren, nil
	})
}

type mathSpan struct {
	tex     string
	display bool
}

const mathPrefix = "CRUCIBLEMATH"

var mathToken = regexp.MustCompile(mathPrefix + `[0-9]+X`)

// extractMath replaces the math of text outside code blocks with tokens
// that Markdown leaves alone ($$…$$, \[…\], \(…\), $…$), so that _ and \\
// inside formulas do not turn into emphasis and line breaks.
func extractMath(text string) (string, []mathSpan) {
	var out strings.Builder
	var maths []mathSpan
	inFence := false
	var prose strings.Builder
	flush := func() {
		out.WriteString(mathIn(prose.String(), &maths))
		prose.Reset()
	}
	for _, line := range strings.SplitAfter(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			if !inFence {
				flush()
			}
			inFence = !inFence
			out.WriteString(line)
			continue
		}
		if inFence {
			out.WriteString(line)
		} else {
			prose.WriteString(line)
		}
	}
	flush()
	return out.String(), maths
}

func mathIn(s string, maths *[]mathSpan) string {
	if !strings.ContainsAny(s, `$\`) {
		return s
	}
	var b strings.Builder
	add := func(tex string, display bool) {
		fmt.Fprintf(&b, "%s%dX", mathPrefix, len(*maths))
		*maths = append(*maths, mathSpan{tex, display})
	}
	for i := 0; i < len(s); {
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, "$$"):
			if j := strings.Index(rest[2:], "$$"); j >= 0 {
				add(rest[2:2+j], true)
				i += 4 + j
				continue
			}
		case strings.HasPrefix(rest, `\[`):
			if j := strings.Index(rest[2:], `\]`); j >= 0 {
				add(rest[2:2+j], true)
				i += 4 + j
				continue
			}
		case strings.HasPrefix(rest, `\(`):
			if j := strings.Index(rest[2:], `\)`); j >= 0 {
				add(rest[2:2+j], false)
				i += 4 + j
				continue
			}
		case strings.HasPrefix(rest, `\$`):
			b.WriteString(`\$`)
			i += 2
			continue
		case rest[0] == '$' && len(rest) > 1 && rest[1] != ' ' && rest[1] != '\n':
			// $…$ on one line, not closed by a space-preceded $ nor
			// followed by a digit ($5 and $10 are money).
			end := -1
			for j := 1; j < len(rest); j++ {
				if rest[j] == '\n' {
					break
				}
				if rest[j] == '\\' {
					j++
					continue
				}
				if rest[j] == '$' {
					if rest[j-1] != ' ' && (j+1 >= len(rest) || rest[j+1] < '0' || rest[j+1] > '9') {
						end = j
					}
					break
				}
			}
			if end > 0 {
				add(rest[1:end], false)
				i += end + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}
