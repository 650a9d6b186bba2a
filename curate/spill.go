package curate

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/crucible-ml/crucible/record"
)

// Run files hold rows tagged with their input position: each entry is
// uvarint(index), uvarint(length) and the row's JSON. A file is written in
// increasing index order, so files merge by index.

// runWriter appends indexed rows to a run file.
type runWriter struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
	n   int
}

func createRun(path string) (*runWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &runWriter{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (w *runWriter) write(idx int64, r *record.Row) error {
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(idx))
	n := len(w.buf)
	w.buf = r.AppendJSON(w.buf)
	body := len(w.buf) - n
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(body))
	if _, err := w.w.Write(w.buf[:n]); err != nil {
		return err
	}
	if _, err := w.w.Write(hdr[:h]); err != nil {
		return err
	}
	_, err := w.w.Write(w.buf[n:])
	w.n++
	return err
}

func (w *runWriter) close() error {
	err := w.w.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// runReader reads a run file written by runWriter.
type runReader struct {
	path string
	f    *os.File
	r    *bufio.Reader
	buf  []byte
	idx  int64
	row  *record.Row
	err  error
}

func openRun(path string) (*runReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &runReader{path: path, f: f, r: bufio.NewReaderSize(f, 1<<20)}, nil
}

// next reads the next entry; false at the end or on an error (see err).
func (r *runReader) next() bool {
	idx, err := binary.ReadUvarint(r.r)
	if err == io.EOF {
		return false
	}
	if err == nil {
		var n uint64
		if n, err = binary.ReadUvarint(r.r); err == nil {
			if cap(r.buf) < int(n) {
				r.buf = make([]byte, n)
			}
			r.buf = r.buf[:n]
			if _, err = io.ReadFull(r.r, r.buf); err == nil {
				// ParseRow keeps slices of its input: give it its own copy.
				r.row, err = record.ParseRow(bytes.Clone(r.buf))
			}
		}
	}
	if err != nil {
		r.err = fmt.Errorf("%s: %w", r.path, err)
		return false
	}
	r.idx = int64(idx)
	return true
}

func (r *runReader) close() error { return r.f.Close() }

// mergeRuns calls fn for every row of the run files in increasing index
// order. Missing files count as empty.
func mergeRuns(paths []string, fn func(idx int64, r *record.Row) error) error {
	h := &runHeap{}
	defer func() {
		for _, r := range *h {
			r.close()
		}
	}()
	for _, p := range paths {
		r, err := openRun(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if r.next() {
			heap.Push(h, r)
			continue
		}
		r.close()
		if r.err != nil {
			return r.err
		}
	}
	for h.Len() > 0 {
		r := (*h)[0]
		if err := fn(r.idx, r.row); err != nil {
			return err
		}
		if r.next() {
			heap.Fix(h, 0)
			continue
		}
		heap.Pop(h)
		r.close()
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return h[i].idx < h[j].idx }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// bucketWriter hash-partitions records: each record goes to the bucket its
// key picks, records are buffered in memory and appended to one file per
// bucket when the buffers pass the budget, and at flush. Each bucket is
// later read back whole (readBuckets), from the folders of every writer,
// small enough to sort in memory.
type bucketWriter struct {
	dir    string
	bufs   [][]byte
	held   int // bytes buffered
	budget int
}

func newBucketWriter(dir string, n, budget int) (*bucketWriter, error) {
	os.RemoveAll(dir) // a rerun of the same task starts over
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &bucketWriter{dir: dir, bufs: make([][]byte, max(1, n)), budget: budget}, nil
}

func bucketPath(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("bucket-%04d", i)) }

// add appends one record to the bucket key picks.
func (b *bucketWriter) add(key uint64, rec []byte) error {
	i, _ := bits.Mul64(key, uint64(len(b.bufs)))
	n := len(b.bufs[i])
	b.bufs[i] = binary.AppendUvarint(b.bufs[i], uint64(len(rec)))
	b.bufs[i] = append(b.bufs[i], rec...)
	b.held += len(b.bufs[i]) - n
	if b.held > b.budget {
		return b.flush()
	}
	return nil
}

// flush appends the buffered records to the bucket files.
func (b *bucketWriter) flush() error {
	for i, buf := range b.bufs {
		if len(buf) == 0 {
			continue
		}
		f, err := os.OpenFile(bucketPath(b.dir, i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		b.bufs[i] = buf[:0]
	}
	b.held = 0
	return nil
}

// readBuckets calls fn with the records of each of n buckets, gathered
// from the bucket files in every folder of dirs.
func readBuckets(dirs []string, n int, fn func(recs [][]byte) error) error {
	for i := range max(1, n) {
		var data []byte
		for _, d := range dirs {
			b, err := os.ReadFile(bucketPath(d, i))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			data = append(data, b...)
		}
		var list [][]byte
		for len(data) > 0 {
			m, k := binary.Uvarint(data)
			if k <= 0 || uint64(len(data)-k) < m {
				return fmt.Errorf("bucket %d: truncated record", i)
			}
			list = append(list, data[k:k+int(m)])
			data = data[k+int(m):]
		}
		if err := fn(list); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes v to path atomically.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readJSON reads what writeJSON wrote.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
