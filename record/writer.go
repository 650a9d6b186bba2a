package record

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Writer appends rows to a JSON Lines file and knows which (id, sample) keys
// the file already holds, so that a stage can resume where a previous run
// stopped. It is safe for concurrent use.
//
// Rows are buffered and written as whole lines, so a crash can leave at most
// one torn line at the end of the file; Create cuts it off. Rows buffered but
// not yet written when a process dies are simply produced again by the rerun.
type Writer struct {
	path string

	mu        sync.Mutex
	f         *os.File
	buf       []byte
	lastFlush time.Time
	done      map[Key]struct{}
	existing  int
	written   int
	repaired  int64 // bytes cut from a torn last line
	needNL    bool  // the file ends in a complete row without its newline
	err       error
}

const (
	flushBytes    = 256 << 10
	flushInterval = 200 * time.Millisecond
)

// Create opens path for appending, creating it (and nothing else) if needed.
// An existing file is read first: its rows' (ID, sample) keys become Done,
// and a torn or unparsable last line — what a crash leaves — is cut off. Any
// other malformed line is an error naming the line, and the file is left as
// it is.
func Create(path string) (*Writer, error) {
	return CreateWith(path, CreateOptions{})
}

// CreateOptions adjust how Create resumes an output.
type CreateOptions struct {
	// RetryErrors drops rows that carry an `error` field (a request that
	// failed after its retries) from the existing output, so that their keys
	// are produced again. The file is rewritten atomically without them.
	RetryErrors bool
}

// CreateWith is Create with options.
func CreateWith(path string, opts CreateOptions) (*Writer, error) {
	if opts.RetryErrors {
		if err := dropErrorRows(path); err != nil {
			return nil, err
		}
	}
	w := &Writer{path: path, done: map[Key]struct{}{}, lastFlush: time.Now()}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	// One writer per output: a second process appending to the same file
	// would interleave and duplicate rows.
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("output %s is being written by another process (%w)", path, err)
	}
	good, err := w.scan(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	if st.Size() > good {
		w.repaired = st.Size() - good
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, fmt.Errorf("output %s: cut torn last line: %w", path, err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	w.f = f
	if w.needNL {
		w.buf = append(w.buf, '\n')
	}
	return w, nil
}

// scan reads the existing output and returns the length of its good prefix.
func (w *Writer) scan(f *os.File) (int64, error) {
	br := bufio.NewReaderSize(f, 1<<20)
	var off int64
	line := 0
	var pendingErr error // a bad line that is fine only if it is the last one
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			line++
			if pendingErr != nil {
				return 0, pendingErr
			}
			if b[len(b)-1] != '\n' {
				// The last line has no newline. A complete row (the newline
				// alone was lost) is kept; a torn one is cut.
				if row, perr := ParseRow(bytes.TrimRight(b, "\r")); perr == nil {
					w.done[KeyOf(row)] = struct{}{}
					w.existing++
					w.needNL = true
					return off + int64(len(b)), nil
				}
				return off, nil
			}
			body := bytes.TrimRight(b, "\r\n")
			if len(bytes.TrimSpace(body)) > 0 {
				row, perr := ParseRow(body)
				if perr != nil {
					pendingErr = fmt.Errorf("output %s:%d: %w (only a torn last line is repaired; fix or remove this file)", w.path, line, perr)
					// off is not advanced: if this is the last line, it is cut.
					continue
				}
				w.done[KeyOf(row)] = struct{}{}
				w.existing++
			}
			off += int64(len(b))
		}
		if err == io.EOF {
			if pendingErr != nil {
				// The unparsable line was the last one: a crash mid-write.
				w.repaired = -1
			}
			return off, nil
		}
		if err != nil {
			return 0, fmt.Errorf("output %s: %w", w.path, err)
		}
	}
}

// KeyOf returns the output key of a row: its ID and its `sample` field (0
// when absent).
func KeyOf(r *Row) Key {
	s, _ := r.Int("sample")
	return Key{ID: r.ID(), Sample: int(s)}
}

// Path returns the output path.
func (w *Writer) Path() string { return w.path }

// Done reports whether the output already holds (id, sample), either from a
// previous run or written by this one.
func (w *Writer) Done(id string, sample int) bool {
	w.mu.Lock()
	_, ok := w.done[Key{id, sample}]
	w.mu.Unlock()
	return ok
}

// Existing returns how many rows the output held when it was opened.
func (w *Writer) Existing() int { return w.existing }

// Written returns how many rows this Writer has accepted.
func (w *Writer) Written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

// Repaired reports whether Create cut a torn last line.
func (w *Writer) Repaired() bool { return w.repaired != 0 }

// Write appends a row. The row's ID is made explicit: a row without an `id`
// field gets one, so that later stages see the same identity. Write returns
// an error if the row's key was already written.
func (w *Writer) Write(r *Row) error {
	if !r.Has("id") {
		r.Set("id", r.ID())
	}
	k := KeyOf(r)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if _, dup := w.done[k]; dup {
		return fmt.Errorf("output %s: row (id %q, sample %d) written twice", w.path, k.ID, k.Sample)
	}
	w.done[k] = struct{}{}
	w.written++
	w.buf = r.AppendJSON(w.buf)
	w.buf = append(w.buf, '\n')
	if len(w.buf) >= flushBytes || time.Since(w.lastFlush) >= flushInterval {
		return w.flushLocked()
	}
	return nil
}

// Flush writes buffered rows to the file.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	w.lastFlush = time.Now()
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = fmt.Errorf("output %s: %w", w.path, err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// Close flushes, syncs and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return w.err
	}
	err := w.flushLocked()
	if serr := w.f.Sync(); err == nil && serr != nil {
		err = serr
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	w.f = nil
	if err != nil && !errors.Is(err, w.err) {
		err = fmt.Errorf("output %s: %w", w.path, err)
	}
	return err
}

// dropErrorRows rewrites path without the rows that have an `error` field.
// A torn last line is dropped too; a malformed line elsewhere is an error.
func dropErrorRows(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	defer f.Close()
	tmp := path + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(out, 1<<20)
	br := bufio.NewReaderSize(f, 1<<20)
	dropped := 0
	for line := 1; ; line++ {
		b, rerr := br.ReadBytes('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			body := bytes.TrimRight(b, "\r\n")
			if len(bytes.TrimSpace(body)) > 0 {
				row, perr := ParseRow(body)
				if perr != nil {
					if _, err := br.Peek(1); err == io.EOF {
						break // an unparsable last line: cut, as Create would
					}
					out.Close()
					return fmt.Errorf("output %s:%d: %w", path, line, perr)
				}
				if row.Has("error") {
					dropped++
					continue
				}
			}
			bw.Write(b)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			out.Close()
			return fmt.Errorf("output %s: %w", path, rerr)
		}
	}
	if dropped == 0 {
		out.Close()
		return nil
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
