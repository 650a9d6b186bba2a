package record

import (
	"fmt"
	"unicode/utf8"
)

// parser is a small JSON scanner that finds the extent of values without
// building them; the values themselves are kept as raw bytes.
type parser struct {
	b []byte
	i int
}

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 10000

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: p.i, Msg: fmt.Sprintf(format, args...)}
}

// SyntaxError is a malformed row; Offset is the byte offset in the line.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset+1, e.Msg)
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) consume(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) end() error {
	p.ws()
	if p.i != len(p.b) {
		return p.errorf("unexpected data after the object")
	}
	return nil
}

func (p *parser) skipString() error {
	if !p.consume('"') {
		return p.errorf("expected a string")
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return nil
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return p.errorf("unterminated string")
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return p.errorf("bad \\u escape")
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !isHex(h) {
						return p.errorf("bad \\u escape")
					}
				}
				p.i += 6
			default:
				return p.errorf("bad escape \\%c", p.b[p.i+1])
			}
		case c < 0x20:
			return p.errorf("control character in string")
		case c < 0x80:
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return p.errorf("invalid UTF-8")
			}
			p.i += size
		}
	}
	return p.errorf("unterminated string")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (p *parser) skipValue(depth int) error {
	if depth > maxDepth {
		return p.errorf("nested too deeply")
	}
	if p.i >= len(p.b) {
		return p.errorf("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.skipString()
	case c == '{':
		p.i++
		p.ws()
		if p.consume('}') {
			return nil
		}
		for {
			p.ws()
			if err := p.skipString(); err != nil {
				return err
			}
			p.ws()
			if !p.consume(':') {
				return p.errorf("expected ':'")
			}
			p.ws()
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
			p.ws()
			if p.consume(',') {
				continue
			}
			if p.consume('}') {
				return nil
			}
			return p.errorf("expected ',' or '}' in object")
		}
	case c == '[':
		p.i++
		p.ws()
		if p.consume(']') {
			return nil
		}
		for {
			p.ws()
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
			p.ws()
			if p.consume(',') {
				continue
			}
			if p.consume(']') {
				return nil
			}
			return p.errorf("expected ',' or ']' in array")
		}
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	default:
		return p.errorf("unexpected character %q", c)
	}
}

func (p *parser) literal(s string) error {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return nil
	}
	return p.errorf("invalid literal")
}

func (p *parser) number() error {
	p.consume('-')
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.consume('0') {
		// a leading zero stands alone
	} else if digits() == 0 {
		return p.errorf("invalid number")
	}
	if p.consume('.') && digits() == 0 {
		return p.errorf("invalid number")
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if !p.consume('+') {
			p.consume('-')
		}
		if digits() == 0 {
			return p.errorf("invalid number")
		}
	}
	return nil
}
