package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Row is one JSON object whose fields keep their original order and bytes.
// The zero value is an empty object. A Row is not safe for concurrent
// mutation.
type Row struct {
	keys []string
	vals []json.RawMessage
	id   string // cached ID, "" until computed
}

// ParseRow parses one JSON object. Duplicate keys keep the last value, as
// encoding/json does.
func ParseRow(data []byte) (*Row, error) {
	r := &Row{}
	if err := r.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return r, nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Row) UnmarshalJSON(data []byte) error {
	r.keys, r.vals, r.id = r.keys[:0], r.vals[:0], ""
	p := parser{b: data}
	p.ws()
	if !p.consume('{') {
		return p.errorf("a row must be a JSON object")
	}
	p.ws()
	if p.consume('}') {
		return p.end()
	}
	for {
		p.ws()
		start := p.i
		if err := p.skipString(); err != nil {
			return err
		}
		var key string
		if err := json.Unmarshal(p.b[start:p.i], &key); err != nil {
			return p.errorf("bad key: %v", err)
		}
		p.ws()
		if !p.consume(':') {
			return p.errorf("expected ':' after key %q", key)
		}
		p.ws()
		vs := p.i
		if err := p.skipValue(0); err != nil {
			return err
		}
		val := json.RawMessage(p.b[vs:p.i])
		if i := r.index(key); i >= 0 {
			r.vals[i] = val
		} else {
			r.keys = append(r.keys, key)
			r.vals = append(r.vals, val)
		}
		p.ws()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return p.end()
		}
		return p.errorf("expected ',' or '}'")
	}
}

// MarshalJSON implements json.Marshaler; the output is compact only where the
// input was.
func (r *Row) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends the row as one JSON object (no newline) to b.
func (r *Row) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, k := range r.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = append(b, r.vals[i]...)
	}
	return append(b, '}')
}

// Clone returns a copy that can be changed without affecting r. Values are
// shared (they are never mutated in place).
func (r *Row) Clone() *Row {
	return &Row{
		keys: append([]string(nil), r.keys...),
		vals: append([]json.RawMessage(nil), r.vals...),
		id:   r.id,
	}
}

// Keys returns the field names in order. The slice must not be modified.
func (r *Row) Keys() []string { return r.keys }

// Len returns the number of fields.
func (r *Row) Len() int { return len(r.keys) }

func (r *Row) index(key string) int {
	for i, k := range r.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// Has reports whether the field is present.
func (r *Row) Has(key string) bool { return r.index(key) >= 0 }

// Raw returns the raw JSON of a field, or nil.
func (r *Row) Raw(key string) json.RawMessage {
	if i := r.index(key); i >= 0 {
		return r.vals[i]
	}
	return nil
}

// String returns a string field. ok is false when the field is missing or
// not a JSON string.
func (r *Row) String(key string) (s string, ok bool) {
	raw := r.Raw(key)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	return unquote(raw[1 : len(raw)-1])
}

// unquote decodes the body of a JSON string that the row parser has
// already validated (so every escape is well formed).
func unquote(b []byte) (string, bool) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(b) {
			return "", false
		}
		switch b[i] {
		case '"', '\\', '/':
			out = append(out, b[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(b, i+1)
			if !ok {
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
					r2, ok2 = hex4(b, i+3)
				}
				if d := utf16.DecodeRune(r, r2); ok2 && d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return string(out), true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Text returns a field as text the way Python's str() would show it in a
// prompt: strings as they are, numbers as written, true/false as True/False,
// null as None, arrays and objects as JSON. ok is false when the field is
// missing.
func (r *Row) Text(key string) (string, bool) {
	raw := r.Raw(key)
	if raw == nil {
		return "", false
	}
	switch raw[0] {
	case '"':
		s, _ := r.String(key)
		return s, true
	case 't':
		return "True", true
	case 'f':
		return "False", true
	case 'n':
		return "None", true
	}
	return string(raw), true
}

// Int returns an integer field.
func (r *Row) Int(key string) (int64, bool) {
	raw := r.Raw(key)
	if raw == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// Bool returns a boolean field.
func (r *Row) Bool(key string) (v, ok bool) {
	switch string(r.Raw(key)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// Decode unmarshals a field into v.
func (r *Row) Decode(key string, v any) error {
	raw := r.Raw(key)
	if raw == nil {
		return fmt.Errorf("field %q missing", key)
	}
	return json.Unmarshal(raw, v)
}

// SetRaw sets a field to raw JSON, replacing it in place if present and
// appending it otherwise. raw must be valid JSON.
func (r *Row) SetRaw(key string, raw json.RawMessage) {
	if key == "id" {
		r.id = ""
	}
	if i := r.index(key); i >= 0 {
		r.vals[i] = raw
		return
	}
	r.keys = append(r.keys, key)
	r.vals = append(r.vals, raw)
}

// Set sets a field to the JSON encoding of v. Strings, ints and bools take a
// fast path.
func (r *Row) Set(key string, v any) {
	var raw []byte
	switch x := v.(type) {
	case string:
		raw = appendString(nil, x)
	case int:
		raw = strconv.AppendInt(nil, int64(x), 10)
	case int64:
		raw = strconv.AppendInt(nil, x, 10)
	case bool:
		raw = strconv.AppendBool(nil, x)
	case json.RawMessage:
		raw = x
	default:
		var err error
		raw, err = json.Marshal(v)
		if err != nil {
			// Only unsupported Go values (channels, funcs, NaN) get here: a
			// programming error, recorded rather than panicking.
			raw = appendString(nil, fmt.Sprintf("!unencodable %T: %v", v, err))
		}
	}
	r.SetRaw(key, raw)
}

// Delete removes a field if present.
func (r *Row) Delete(key string) {
	if i := r.index(key); i >= 0 {
		r.keys = append(r.keys[:i], r.keys[i+1:]...)
		r.vals = append(r.vals[:i], r.vals[i+1:]...)
		if key == "id" {
			r.id = ""
		}
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. It escapes like encoding/json
// without HTML escaping.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x80 {
			i++
			continue
		}
		if c < 0x80 {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == 0xFFFD && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
