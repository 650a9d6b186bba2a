package record

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Reader yields the rows of one or more input files in order.
//
//	for r.Next() { row := r.Row(); ... }
//	if err := r.Err(); err != nil { ... }
type Reader struct {
	paths []string
	next  int // index of the next path to open

	name  string // current file name, for errors
	line  int    // current line (JSONL) or row (Parquet), 1-based
	close func() error
	nextf func() (*Row, error) // reads the next row of the current file; io.EOF at its end

	row *Row
	err error
}

// Open returns a Reader over the rows of spec: a file, a glob pattern, a
// comma-separated list of those, or "-" for standard input. Files ending in
// .parquet are read as Parquet, others as JSON Lines (optionally .gz).
// A glob that matches nothing is an error.
func Open(spec string) (*Reader, error) {
	var paths []string
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if part == "-" {
			paths = append(paths, part)
			continue
		}
		if strings.ContainsAny(part, "*?[") {
			m, err := filepath.Glob(part)
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", part, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("input %q: no files match", part)
			}
			sort.Strings(m)
			paths = append(paths, m...)
			continue
		}
		if _, err := os.Stat(part); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		paths = append(paths, part)
	}
	if len(paths) == 0 {
		return nil, errors.New("input: no file given")
	}
	return &Reader{paths: paths}, nil
}

// Paths returns the files the reader reads, in order.
func (r *Reader) Paths() []string { return r.paths }

// Next advances to the next row. It returns false at the end of the input or
// on an error (see Err).
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	for {
		if r.nextf == nil {
			if r.next >= len(r.paths) {
				return false
			}
			if err := r.openNext(); err != nil {
				r.err = err
				return false
			}
		}
		row, err := r.nextf()
		if err == io.EOF {
			if cerr := r.close(); cerr != nil {
				r.err = fmt.Errorf("%s: %w", r.name, cerr)
				return false
			}
			r.nextf = nil
			continue
		}
		if err != nil {
			r.err = fmt.Errorf("%s:%d: %w", r.name, r.line, err)
			return false
		}
		r.row = row
		return true
	}
}

// Row returns the current row.
func (r *Reader) Row() *Row { return r.row }

// Pos returns the file and line (or Parquet row number) of the current row.
func (r *Reader) Pos() (file string, line int) { return r.name, r.line }

// Err returns the first error met, naming the file and line.
func (r *Reader) Err() error { return r.err }

// Close releases the current file.
func (r *Reader) Close() error {
	if r.nextf != nil && r.close != nil {
		r.nextf = nil
		return r.close()
	}
	return nil
}

func (r *Reader) openNext() error {
	path := r.paths[r.next]
	r.next++
	r.name, r.line = path, 0
	if path == "-" {
		r.name = "<stdin>"
		r.jsonl(os.Stdin, func() error { return nil })
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	switch {
	case strings.HasSuffix(path, ".parquet"):
		return r.parquet(f)
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		r.jsonl(zr, func() error { zr.Close(); return f.Close() })
	default:
		r.jsonl(f, f.Close)
	}
	return nil
}

func (r *Reader) jsonl(src io.Reader, closef func() error) {
	br := bufio.NewReaderSize(src, 1<<20)
	r.close = closef
	r.nextf = func() (*Row, error) {
		for {
			line, err := br.ReadBytes('\n')
			if len(line) == 0 && err != nil {
				return nil, err
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			r.line++
			line = bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			row, perr := ParseRow(line)
			if perr != nil {
				return nil, perr
			}
			return row, nil
		}
	}
}

func (r *Reader) parquet(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", r.name, err)
	}
	fields := pf.Schema().Fields()
	pr := parquet.NewReader(pf)
	r.close = func() error { pr.Close(); return f.Close() }
	r.nextf = func() (*Row, error) {
		m := map[string]any{}
		if err := pr.Read(&m); err != nil {
			return nil, err
		}
		r.line++
		row := &Row{}
		for _, fl := range fields {
			v, ok := m[fl.Name()]
			if !ok {
				continue
			}
			raw, err := parquetJSON(nil, fl, v)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", fl.Name(), err)
			}
			row.SetRaw(fl.Name(), raw)
		}
		return row, nil
	}
	return nil
}

// CountRows counts the rows of spec cheaply (lines for JSON Lines, metadata
// for Parquet), for progress bars. It returns -1 when it cannot tell (stdin).
func CountRows(spec string) int64 {
	rd, err := Open(spec)
	if err != nil {
		return -1
	}
	var total int64
	for _, p := range rd.paths {
		if p == "-" || strings.HasSuffix(p, ".gz") {
			return -1
		}
		f, err := os.Open(p)
		if err != nil {
			return -1
		}
		if strings.HasSuffix(p, ".parquet") {
			st, _ := f.Stat()
			pf, err := parquet.OpenFile(f, st.Size())
			if err == nil {
				total += pf.NumRows()
			}
			f.Close()
			continue
		}
		n, err := countLines(f)
		f.Close()
		if err != nil {
			return -1
		}
		total += n
	}
	return total
}

func countLines(f io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	var last byte = '\n'
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if err == io.EOF {
			if last != '\n' {
				n++
			}
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// parquetJSON encodes a value read from Parquet, keeping the schema's field
// order in nested groups (a Go map would sort them).
func parquetJSON(b []byte, node parquet.Node, v any) ([]byte, error) {
	switch x := v.(type) {
	case map[string]any:
		if node.Leaf() {
			break
		}
		b = append(b, '{')
		n := 0
		for _, fl := range node.Fields() {
			fv, ok := x[fl.Name()]
			if !ok {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = appendString(b, fl.Name())
			b = append(b, ':')
			var err error
			if b, err = parquetJSON(b, fl, fv); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		elem := node
		if lt := node.Type().LogicalType(); lt != nil && isListType(lt.Value) && len(node.Fields()) == 1 && len(node.Fields()[0].Fields()) == 1 {
			elem = node.Fields()[0].Fields()[0] // LIST -> repeated group list -> element
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = parquetJSON(b, elem, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

func isListType(v format.LogicalTypeValue) bool {
	_, ok := v.(*format.ListType)
	return ok
}
