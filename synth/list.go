package synth

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// List formats reported by ParseList.
const (
	ListJSON      = "json"
	ListYAML      = "yaml"
	ListNumbered  = "numbered"
	ListBulleted  = "bulleted"
	ListConverted = "converted" // the model was asked to turn its text into a list
)

var (
	numberedRE = regexp.MustCompile(`^(\s*)\(?\d{1,3}[.):]\s+(.*\S)\s*$`)
	bulletRE   = regexp.MustCompile(`^(\s*)[-*•+]\s+(.*\S)\s*$`)
	fenceRE    = regexp.MustCompile("(?s)```[a-zA-Z]*\\s*\n(.*?)```")
)

// ParseList finds the list in a model's free-text answer without asking the
// model: a JSON array of strings (or an object holding one), a numbered
// list ("1." "2)" "(3)"), a YAML sequence of strings, or a bulleted list
// ("-" "*" "•"). Introductions and closing remarks around the list are
// ignored, markdown emphasis is removed, and a line that continues an item
// is joined to it. format says which form was found; ok is false when the
// text holds no list.
func ParseList(text string) (items []string, format string, ok bool) {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if m := fenceRE.FindStringSubmatch(text); m != nil {
		text = m[1]
	}
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{") {
		if items, ok := parseJSONList(t); ok {
			return items, ListJSON, true
		}
	}
	if items, ok := parseMarked(text, true); ok {
		return items, ListNumbered, true
	}
	if items, ok := parseYAMLList(text); ok {
		return items, ListYAML, true
	}
	if items, ok := parseMarked(text, false); ok {
		return items, ListBulleted, true
	}
	// Last, a JSON array after some prose ("The list is [...]").
	if items, ok := parseJSONList(t); ok {
		return items, ListJSON, true
	}
	return nil, "", false
}

func parseJSONList(text string) ([]string, bool) {
	t := strings.TrimSpace(text)
	for _, open := range []byte{'[', '{'} {
		i := strings.IndexByte(t, open)
		if i < 0 {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(t[i:]))
		var v any
		if dec.Decode(&v) != nil {
			continue
		}
		if obj, isObj := v.(map[string]any); isObj {
			if len(obj) != 1 {
				continue
			}
			for _, x := range obj {
				v = x
			}
		}
		if items, ok := stringList(v); ok {
			return items, true
		}
	}
	return nil, false
}

func stringList(v any) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		if s = cleanItem(s); s != "" {
			out = append(out, s)
		}
	}
	return out, len(out) > 0
}

// parseYAMLList accepts text that is, apart from lines before and after it,
// one YAML sequence of scalars.
func parseYAMLList(text string) ([]string, bool) {
	lines := strings.Split(text, "\n")
	start, end := -1, -1
	for i, l := range lines {
		if strings.HasPrefix(l, "- ") {
			if start < 0 {
				start = i
			}
			end = i
		} else if start >= 0 && strings.TrimSpace(l) != "" && !strings.HasPrefix(l, " ") {
			break
		}
	}
	if start < 0 {
		return nil, false
	}
	block := strings.Join(lines[start:end+1], "\n")
	if !strings.Contains(block, `"`) && !strings.Contains(block, `'`) {
		return nil, false // plain bullets: leave them to the bullet parser
	}
	var v []any
	if yaml.Unmarshal([]byte(block), &v) != nil {
		return nil, false
	}
	return stringList(v)
}

// parseMarked collects numbered (or bulleted) items. Only the least
// indented items count; more indented marked lines are sub-items and are
// dropped, and an unmarked line right after an item continues it. A blank
// line followed by unmarked text ends the list.
func parseMarked(text string, numbered bool) ([]string, bool) {
	type item struct {
		indent int
		text   string
	}
	var items []item
	lines := strings.Split(text, "\n")
	blank := false
	ended := false
	match := func(l string) (int, string, bool) {
		if numbered {
			m := numberedRE.FindStringSubmatch(l)
			if m == nil {
				return 0, "", false
			}
			return len(m[1]), m[2], true
		}
		m := bulletRE.FindStringSubmatch(l)
		if m == nil {
			return 0, "", false
		}
		return len(m[1]), m[2], true
	}
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			blank = true
			continue
		}
		if ind, t, ok := match(l); ok {
			if ended {
				// A second list after prose: keep the first one only.
				break
			}
			items = append(items, item{ind, t})
			blank = false
			continue
		}
		if numbered && len(items) > 0 && bulletRE.MatchString(l) {
			continue // a sub-item of a numbered item
		}
		if len(items) > 0 {
			if blank {
				ended = true
			} else if !ended {
				items[len(items)-1].text += " " + strings.TrimSpace(l)
			}
		}
		blank = false
	}
	if len(items) == 0 {
		return nil, false
	}
	minIndent := items[0].indent
	for _, it := range items {
		minIndent = min(minIndent, it.indent)
	}
	var out []string
	for _, it := range items {
		if it.indent == minIndent {
			if s := cleanItem(it.text); s != "" {
				out = append(out, s)
			}
		}
	}
	return out, len(out) > 0
}

var emphasisRE = regexp.MustCompile(`\*\*(.+?)\*\*|__(.+?)__`)

// cleanItem removes markdown emphasis, surrounding quotes and whitespace.
func cleanItem(s string) string {
	s = emphasisRE.ReplaceAllString(s, "$1$2")
	s = strings.TrimSpace(s)
	for _, q := range []string{`"`, "'", "“"} {
		closeQ := q
		if q == "“" {
			closeQ = "”"
		}
		if len(s) >= 2 && strings.HasPrefix(s, q) && strings.HasSuffix(s, closeQ) {
			s = strings.TrimSpace(s[len(q) : len(s)-len(closeQ)])
		}
	}
	return s
}

// ListResult is a list read from a model's answer.
type ListResult struct {
	Items  []string
	Format string // ListJSON, ListNumbered, ... or ListConverted
	// Dropped counts items of a converted list that were not found in the
	// original text (the model invented them) and were left out.
	Dropped int
	// Err says why no list could be read; Items is then empty.
	Err string
}

// Lister reads lists from model answers, asking the model to convert its
// text only when ParseList finds no list.
type Lister struct {
	Backend backend.Backend
	// Convert is the conversion prompt (field `llm_response`); nil means
	// the built-in list/convert.
	Convert *prompt.Prompt
}

// Read returns the list in text. req is the request that produced text; its
// sampling settings (made greedy) and seed are reused for the conversion
// call, so that reruns send identical requests. A failed conversion call is
// an error; a conversion that yields no list is a ListResult with Err.
func (l *Lister) Read(ctx context.Context, req *backend.Request, text string) (ListResult, error) {
	if items, format, ok := ParseList(text); ok {
		return ListResult{Items: items, Format: format}, nil
	}
	if strings.TrimSpace(text) == "" {
		return ListResult{Err: "empty answer"}, nil
	}
	p := orDefault(l.Convert, "list/convert")
	creq := *req
	var err error
	if req.IsChat() {
		creq.Messages, err = p.Messages(fieldMap{"llm_response": text})
	} else {
		creq.Prompt, err = p.Text(fieldMap{"llm_response": text})
	}
	if err != nil {
		return ListResult{}, fmt.Errorf("list conversion prompt: %w", err)
	}
	creq.Temperature, creq.TopP, creq.TopK, creq.MinP = 0, 0, 0, 0
	creq.Stop = p.Config.Stop
	creq.Seed, creq.HasSeed = (req.Seed+1)&0x7fffffff, true
	resp, err := l.Backend.Generate(ctx, &creq)
	if err != nil {
		return ListResult{}, fmt.Errorf("list conversion: %w", err)
	}
	items, _, ok := ParseList(resp.Text)
	if !ok {
		return ListResult{Format: ListConverted, Err: "no list found, and the model's conversion held none either"}, nil
	}
	// Keep only items the original text contains (the conversion must not
	// invent items).
	norm := normSpace(text)
	res := ListResult{Format: ListConverted}
	for _, it := range items {
		if strings.Contains(norm, normSpace(it)) {
			res.Items = append(res.Items, it)
		} else {
			res.Dropped++
		}
	}
	if len(res.Items) == 0 {
		res.Err = fmt.Sprintf("no list found; the model's conversion gave %d items, none of them in the original text", len(items))
	}
	return res, nil
}

func normSpace(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// fieldMap supplies template fields from a map.
type fieldMap map[string]string

// Text returns a field; fieldMap satisfies prompt.Fields.
func (m fieldMap) Text(k string) (string, bool) { v, ok := m[k]; return v, ok }

// setList records a list on a row: the items under key, and list_format,
// n_requested, count_mismatch (only when the count differs from n) and
// list_error (only when no list was read).
func setList(out *record.Row, key string, n int, res ListResult) {
	if res.Items == nil {
		res.Items = []string{}
	}
	out.Set(key, res.Items)
	if res.Format != "" {
		out.Set("list_format", res.Format)
	}
	out.Set("n_requested", n)
	if res.Err != "" {
		out.Set("list_error", res.Err)
		return
	}
	if n > 0 && len(res.Items) != n {
		out.Set("count_mismatch", fmt.Sprintf("asked for %d, got %d", n, len(res.Items)))
	}
	if res.Dropped > 0 {
		out.Set("list_dropped_items", res.Dropped)
	}
}
