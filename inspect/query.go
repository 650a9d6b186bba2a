package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/crucible-ml/crucible/record"
)

// Query selects and orders the rows of a file. The zero Query is every row
// in file order.
type Query struct {
	// Text keeps rows whose problem, generation or other text fields contain
	// it, ignoring case.
	Text string
	// Field and Value keep rows whose field reads Value (as record.Row.Text
	// shows it: strings as they are, true/false as True/False, numbers as
	// written).
	Field, Value string
	// Where keeps rows for which an expr-lang expression over the row's
	// fields is true: the same language as curate's `where` step.
	Where string
	// Sort orders by a field (numbers before text, missing last); Desc
	// reverses it.
	Sort string
	Desc bool
}

func (q Query) filtered() bool { return q.Text != "" || q.Field != "" || q.Where != "" }

func (q Query) filterKey() string {
	return fmt.Sprintf("%q|%q|%q|%q", q.Text, q.Field, q.Value, q.Where)
}

// textFields are the fields a full-text search looks in.
var textFields = []string{"problem", "question", "generation", "reasoning", "solution", "generated_solution",
	"prompt", "chosen", "rejected", "messages", "input", "output", "expected_answer", "predicted_answer"}

// Item is one row of a page with its line number in the file.
type Item struct {
	N   int
	Row *record.Row
}

// Page is a slice of the rows a query selects.
type Page struct {
	Items  []Item
	Offset int
	// Total is how many rows match; -1 while the file has not been read to
	// its end for this query (the page was found before that).
	Total int
	// More tells whether rows follow this page.
	More bool
	// Rows is the file's row count.
	Rows int
}

// Table answers queries over one JSON Lines file through its Index,
// remembering the matches of recent filters so that paging on reads only
// what it has not read yet.
type Table struct {
	ix *Index

	mu     sync.Mutex
	rows   int                   // ix.Len() the caches were built at
	scans  map[string]*scanState // filterKey -> matches so far
	sorted map[string][]int32    // filterKey+sort -> line numbers in order
	order  []string              // cache keys, oldest first
}

type scanState struct {
	mu      sync.Mutex
	matches []int32
	next    int // first line not yet tested
}

// NewTable returns a Table over ix.
func NewTable(ix *Index) *Table {
	return &Table{ix: ix, scans: map[string]*scanState{}, sorted: map[string][]int32{}}
}

// Index returns the table's index.
func (t *Table) Index() *Index { return t.ix }

const maxCached = 16

// refresh picks up appended lines; caches of a file that shrank are
// dropped (a scan state simply continues over appended lines).
func (t *Table) refresh() error {
	if err := t.ix.Refresh(); err != nil {
		return err
	}
	n := t.ix.Len()
	t.mu.Lock()
	defer t.mu.Unlock()
	if n < t.rows {
		t.scans, t.sorted, t.order = map[string]*scanState{}, map[string][]int32{}, nil
	}
	if n != t.rows {
		t.sorted = map[string][]int32{}
	}
	t.rows = n
	return nil
}

func (t *Table) remember(key string) {
	t.order = append(t.order, key)
	for len(t.order) > maxCached {
		old := t.order[0]
		t.order = t.order[1:]
		delete(t.scans, old)
		delete(t.sorted, old)
	}
}

// Page returns up to limit rows of the query from offset on.
func (t *Table) Page(ctx context.Context, q Query, offset, limit int) (*Page, error) {
	if err := t.refresh(); err != nil {
		return nil, err
	}
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 {
		limit = 50
	}
	n := t.ix.Len()
	p := &Page{Offset: offset, Rows: n}
	var lines []int
	switch {
	case q.Sort != "":
		order, err := t.sortedLines(ctx, q)
		if err != nil {
			return nil, err
		}
		p.Total = len(order)
		for i := offset; i < min(offset+limit, len(order)); i++ {
			lines = append(lines, int(order[i]))
		}
		p.More = offset+limit < len(order)
	case q.filtered():
		m, done, err := t.matches(ctx, q, offset+limit+1)
		if err != nil {
			return nil, err
		}
		p.Total = -1
		if done {
			p.Total = len(m)
		}
		for i := offset; i < min(offset+limit, len(m)); i++ {
			lines = append(lines, int(m[i]))
		}
		p.More = len(m) > offset+limit
	default:
		p.Total = n
		for i := offset; i < min(offset+limit, n); i++ {
			lines = append(lines, i)
		}
		p.More = offset+limit < n
	}
	for _, i := range lines {
		b, err := t.ix.Line(i)
		if err != nil {
			return nil, err
		}
		row, err := record.ParseRow(b)
		if err != nil {
			row = &record.Row{}
			row.Set("error", fmt.Sprintf("line %d is not a JSON row: %v", i+1, err))
		}
		p.Items = append(p.Items, Item{N: i, Row: row})
	}
	return p, nil
}

// Row returns line n of the file as a row.
func (t *Table) Row(n int) (*record.Row, error) {
	if err := t.refresh(); err != nil {
		return nil, err
	}
	b, err := t.ix.Line(n)
	if err != nil {
		return nil, err
	}
	return record.ParseRow(b)
}

// matches returns the line numbers of rows matching q's filters, at least
// want of them unless the file ends first (done).
func (t *Table) matches(ctx context.Context, q Query, want int) (m []int32, done bool, err error) {
	key := q.filterKey()
	t.mu.Lock()
	st := t.scans[key]
	if st == nil {
		st = &scanState{}
		t.scans[key] = st
		t.remember(key)
	}
	t.mu.Unlock()
	match, err := compileFilter(q)
	if err != nil {
		return nil, false, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := t.ix.Len()
	if len(st.matches) < want && st.next < n {
		var ferr error
		err := t.ix.Scan(st.next, func(i int, line []byte) bool {
			if i%4096 == 0 && ctx.Err() != nil {
				ferr = ctx.Err()
				return false
			}
			ok, err := match(line)
			if err != nil {
				ferr = err
				return false
			}
			if ok {
				st.matches = append(st.matches, int32(i))
			}
			st.next = i + 1
			return len(st.matches) < want
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return nil, false, err
		}
	}
	return st.matches, st.next >= n, nil
}

// sortedLines returns every matching line ordered by q.Sort.
func (t *Table) sortedLines(ctx context.Context, q Query) ([]int32, error) {
	ckey := q.filterKey() + "|sort:" + q.Sort + strconv.FormatBool(q.Desc)
	t.mu.Lock()
	if s, ok := t.sorted[ckey]; ok {
		t.mu.Unlock()
		return s, nil
	}
	t.mu.Unlock()
	var lines []int32
	if q.filtered() {
		m, _, err := t.matches(ctx, q, int(^uint(0)>>1))
		if err != nil {
			return nil, err
		}
		lines = append(lines, m...)
	}
	type key struct {
		num  float64
		text string
		kind int8 // 0 number, 1 text, 2 missing
	}
	n := t.ix.Len()
	keys := make([]key, n)
	all := !q.filtered()
	want := make([]bool, n)
	for _, l := range lines {
		want[l] = true
	}
	var ferr error
	err := t.ix.Scan(0, func(i int, line []byte) bool {
		if i%4096 == 0 && ctx.Err() != nil {
			ferr = ctx.Err()
			return false
		}
		if i >= n {
			return false
		}
		if !all && !want[i] {
			return true
		}
		if all {
			lines = append(lines, int32(i))
		}
		k := key{kind: 2}
		if raw := fieldRaw(line, q.Sort); raw != nil {
			switch {
			case raw[0] == '"':
				var s string
				json.Unmarshal(raw, &s)
				if len(s) > 64 {
					s = s[:64]
				}
				k = key{text: s, kind: 1}
			case string(raw) == "true":
				k = key{num: 1}
			case string(raw) == "false":
				k = key{}
			default:
				if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
					k = key{num: f}
				} else {
					k = key{text: string(raw), kind: 1}
				}
			}
		}
		keys[i] = k
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	less := func(a, b key) bool {
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.kind == 0 {
			return a.num < b.num
		}
		return a.text < b.text
	}
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := keys[lines[i]], keys[lines[j]]
		if q.Desc && a.kind != 2 && b.kind != 2 {
			return less(b, a)
		}
		return less(a, b)
	})
	t.mu.Lock()
	t.sorted[ckey] = lines
	t.remember(ckey)
	t.mu.Unlock()
	return lines, nil
}

// fieldRaw returns one top-level field's raw JSON from a line, or nil.
func fieldRaw(line []byte, field string) json.RawMessage {
	row, err := record.ParseRow(line)
	if err != nil {
		return nil
	}
	return row.Raw(field)
}

// compileFilter turns q's filters into a test of a raw line. Cheap byte
// tests on the raw line reject most rows before any is parsed.
func compileFilter(q Query) (func(line []byte) (bool, error), error) {
	var tests []func(line []byte, row *record.Row) (bool, error)
	var pre [][]byte // byte strings every matching line contains (lower case)
	if q.Text != "" {
		needle := strings.ToLower(q.Text)
		if rawSafe(q.Text) {
			pre = append(pre, []byte(needle))
		}
		tests = append(tests, func(_ []byte, row *record.Row) (bool, error) {
			found := false
			for _, f := range textFields {
				if s, ok := row.Text(f); ok {
					found = true
					if strings.Contains(strings.ToLower(s), needle) {
						return true, nil
					}
				}
			}
			if !found { // a row with none of the usual fields: all of it
				return strings.Contains(strings.ToLower(string(row.AppendJSON(nil))), needle), nil
			}
			return false, nil
		})
	}
	if q.Field != "" {
		if q.Value != "" && rawSafe(q.Value) {
			pre = append(pre, []byte(strings.ToLower(q.Value)))
		}
		tests = append(tests, func(_ []byte, row *record.Row) (bool, error) {
			s, ok := row.Text(q.Field)
			return ok && s == q.Value, nil
		})
	}
	if q.Where != "" {
		w, err := compileWhere(q.Where)
		if err != nil {
			return nil, err
		}
		tests = append(tests, func(_ []byte, row *record.Row) (bool, error) { return w(row) })
	}
	var lower []byte
	return func(line []byte) (bool, error) {
		if len(pre) > 0 {
			lower = appendLowerASCII(lower[:0], line)
			for _, p := range pre {
				if !bytes.Contains(lower, p) {
					return false, nil
				}
			}
		}
		row, err := record.ParseRow(line)
		if err != nil {
			return false, nil
		}
		for _, t := range tests {
			if ok, err := t(line, row); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	}, nil
}

// rawSafe reports whether s appears byte for byte in any JSON encoding of
// a string containing it: printable ASCII that no encoder escapes.
func rawSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || strings.IndexByte(`"\<>&/'`, c) >= 0 {
			return false
		}
	}
	return true
}

func appendLowerASCII(dst, src []byte) []byte {
	for _, c := range src {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// compileWhere compiles an expr-lang expression as curate's `where` step
// does (undefined names allowed, a boolean result). Only the fields the
// expression names are decoded from each row.
func compileWhere(src string) (func(*record.Row) (bool, error), error) {
	prog, err := expr.Compile(src, expr.AllowUndefinedVariables(), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("where %q: %w", src, err)
	}
	names := map[string]bool{}
	node := prog.Node()
	ast.Walk(&node, identifiers(names))
	var machine vm.VM
	return func(r *record.Row) (bool, error) {
		env := map[string]any{}
		for name := range names {
			raw := r.Raw(name)
			if raw == nil {
				continue
			}
			var v any
			if err := json.Unmarshal(raw, &v); err == nil {
				env[name] = v
			}
		}
		out, err := machine.Run(prog, env)
		if err != nil {
			return false, nil // as in curate: a row the expression fails on is not kept
		}
		ok, _ := out.(bool)
		return ok, nil
	}, nil
}

type identifiers map[string]bool

func (ids identifiers) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		ids[id.Value] = true
	}
}
