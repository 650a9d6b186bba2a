package prompt

import (
	"fmt"
	"strings"
)

// Template is a compiled Python str.format template: `{field}` is replaced by
// the field's text, `{{` and `}}` stand for literal braces. Conversions
// (`{x!r}`), format specs (`{x:>4}`), positional fields (`{}`, `{0}`) and
// attribute or index lookups (`{x.y}`, `{x[0]}`) are rejected when the
// template is compiled, so a template either renders the way Python would or
// fails at load time.
type Template struct {
	src   string
	parts []part
}

type part struct {
	lit   string
	field string // "" for a literal part
}

// Compile parses a template.
func Compile(src string) (*Template, error) {
	t := &Template{src: src}
	var lit strings.Builder
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '{':
			if i+1 < len(src) && src[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(src[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("template: expected '}' before end of string (the '{' at byte %d; write '{{' for a literal brace)", i)
			}
			name := src[i+1 : i+1+end]
			if err := checkField(name); err != nil {
				return nil, fmt.Errorf("template: field {%s} at byte %d: %w", name, i, err)
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, part{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, part{field: name})
			i += end + 1
		case '}':
			if i+1 < len(src) && src[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return nil, fmt.Errorf("template: single '}' encountered at byte %d (write '}}' for a literal brace)", i)
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t, nil
}

func checkField(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("positional fields are not supported; name the field")
	case strings.ContainsAny(name, "{"):
		return fmt.Errorf("unexpected '{' in field name")
	case strings.ContainsAny(name, "!:"):
		return fmt.Errorf("conversions and format specs are not supported")
	case strings.ContainsAny(name, ".["):
		return fmt.Errorf("attribute and index lookups are not supported")
	case name[0] >= '0' && name[0] <= '9':
		return fmt.Errorf("positional fields are not supported; name the field")
	}
	return nil
}

// Fields supplies the values of template fields; *record.Row satisfies it.
type Fields interface {
	// Text returns the field's text as Python's str() would show it.
	Text(name string) (string, bool)
}

// MissingFieldError reports a template field absent from the row.
type MissingFieldError struct {
	Field string
}

func (e *MissingFieldError) Error() string { return fmt.Sprintf("missing field %q", e.Field) }

// Fieldnames returns the fields the template uses, in order of first use.
func (t *Template) Fieldnames() []string {
	var names []string
	seen := map[string]bool{}
	for _, p := range t.parts {
		if p.field != "" && !seen[p.field] {
			seen[p.field] = true
			names = append(names, p.field)
		}
	}
	return names
}

// Render fills the template. extra values take precedence over row fields.
func (t *Template) Render(row Fields, extra map[string]string) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.field == "" {
			b.WriteString(p.lit)
			continue
		}
		if v, ok := extra[p.field]; ok {
			b.WriteString(v)
			continue
		}
		v, ok := "", false
		if row != nil {
			v, ok = row.Text(p.field)
		}
		if !ok {
			return "", &MissingFieldError{Field: p.field}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// String returns the template source.
func (t *Template) String() string { return t.src }
