package curate

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
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

// buckets hash-partitions records: each record goes to the bucket its key
// picks, records are buffered in memory and appended to one file per bucket
// when the buffers pass the budget. Each bucket is then read back whole,
// small enough to sort in memory.
type buckets struct {
	dir    string
	bufs   [][]byte
	held   int // bytes buffered
	budget int
	onDisk []bool
}

func newBuckets(dir string, n, budget int) (*buckets, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &buckets{dir: dir, bufs: make([][]byte, max(1, n)), budget: budget, onDisk: make([]bool, max(1, n))}, nil
}

func (b *buckets) path(i int) string { return filepath.Join(b.dir, fmt.Sprintf("bucket-%04d", i)) }

// add appends one record to the bucket key picks.
func (b *buckets) add(key uint64, rec []byte) error {
	i, _ := bits.Mul64(key, uint64(len(b.bufs)))
	n := len(b.bufs[i])
	b.bufs[i] = binary.AppendUvarint(b.bufs[i], uint64(len(rec)))
	b.bufs[i] = append(b.bufs[i], rec...)
	b.held += len(b.bufs[i]) - n
	if b.held > b.budget {
		return b.spill()
	}
	return nil
}

func (b *buckets) spill() error {
	for i, buf := range b.bufs {
		if len(buf) == 0 {
			continue
		}
		f, err := os.OpenFile(b.path(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
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
		b.onDisk[i] = true
		b.bufs[i] = buf[:0]
	}
	b.held = 0
	return nil
}

// each calls fn with every bucket's records, bucket by bucket, then
// removes the files.
func (b *buckets) each(fn func(recs [][]byte) error) error {
	defer os.RemoveAll(b.dir)
	for i := range b.bufs {
		recs := b.bufs[i]
		if b.onDisk[i] {
			disk, err := os.ReadFile(b.path(i))
			if err != nil {
				return err
			}
			recs = append(disk, recs...)
		}
		b.bufs[i] = nil
		var list [][]byte
		for len(recs) > 0 {
			n, k := binary.Uvarint(recs)
			if k <= 0 || uint64(len(recs)-k) < n {
				return fmt.Errorf("%s: truncated record", b.path(i))
			}
			list = append(list, recs[k:k+int(n)])
			recs = recs[k+int(n):]
		}
		if err := fn(list); err != nil {
			return err
		}
	}
	return nil
}
