package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
)

// patchConfigJSON sets top-level keys of a config.json object, keeping the
// rest of the file byte for byte (key order, formatting, and the
// non-standard Infinity that hub configs carry in time_step_limit): a key
// present is replaced in place, a new one is appended before the closing
// brace; a nil value deletes nothing but is written as null.
func patchConfigJSON(raw []byte, set map[string]any) ([]byte, error) {
	// Offsets are found on a copy whose non-standard tokens are replaced by
	// standard ones of the same length.
	clean := sameLengthSanitize(raw)
	dec := json.NewDecoder(bytes.NewReader(clean))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: config.json is not a JSON object", errConfig)
	}
	type span struct{ start, end int }
	spans := map[string]span{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errConfig, err)
		}
		key, _ := tok.(string)
		start := int(dec.InputOffset())
		for start < len(clean) && (clean[start] == ' ' || clean[start] == '\t' || clean[start] == '\n' || clean[start] == '\r' || clean[start] == ':') {
			start++
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", errConfig, key, err)
		}
		spans[key] = span{start, int(dec.InputOffset())}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, fmt.Errorf("%w: config.json: unterminated object", errConfig)
	}
	closing := int(dec.InputOffset()) - 1
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: config.json: data after the object", errConfig)
	}
	type edit struct {
		span
		text []byte
	}
	var edits []edit
	var appended bytes.Buffer
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		val, err := json.MarshalIndent(set[k], "  ", "  ")
		if err != nil {
			return nil, fmt.Errorf("config.json: %s: %w", k, err)
		}
		if sp, ok := spans[k]; ok {
			edits = append(edits, edit{sp, val})
			continue
		}
		kb, _ := json.Marshal(k)
		appended.WriteString(",\n  ")
		appended.Write(kb)
		appended.WriteString(": ")
		appended.Write(val)
	}
	// Apply from the end, so that earlier offsets stay valid.
	out := append([]byte(nil), raw...)
	if appended.Len() > 0 {
		end := closing
		for end > 0 && (out[end-1] == ' ' || out[end-1] == '\n' || out[end-1] == '\r' || out[end-1] == '\t') {
			end--
		}
		tail := appended.Bytes()
		if len(spans) == 0 {
			tail = tail[1:] // no comma before the first key
		}
		out = append(out[:end:end], append(append(tail, '\n'), out[closing:]...)...)
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	for _, e := range edits {
		out = append(out[:e.start:e.start], append(e.text, out[e.end:]...)...)
	}
	return out, nil
}

// sameLengthSanitize replaces Infinity, -Infinity and NaN outside strings
// by standard JSON numbers of the same length.
func sameLengthSanitize(b []byte) []byte {
	out := append([]byte(nil), b...)
	inStr := false
	for i := 0; i < len(out); i++ {
		ch := out[i]
		if inStr {
			if ch == '\\' {
				i++
			} else if ch == '"' {
				inStr = false
			}
			continue
		}
		switch {
		case ch == '"':
			inStr = true
		case bytes.HasPrefix(out[i:], []byte("-Infinity")):
			copy(out[i:], "-0       ")
			i += 8
		case bytes.HasPrefix(out[i:], []byte("Infinity")):
			copy(out[i:], "0       ")
			i += 7
		case bytes.HasPrefix(out[i:], []byte("NaN")):
			copy(out[i:], "0  ")
			i += 2
		}
	}
	return out
}
