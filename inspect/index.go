package inspect

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Index holds the byte offset of every complete line of a JSON Lines file,
// so that row i is one ReadAt away however large the file. It is built by
// one sequential read, saved in a cache folder (keyed by the file's path,
// checked against its size and modification time) and extended, not
// rebuilt, when the file grows — a stage still writing its output.
//
// Memory is 8 bytes a row: 8 MB for a million rows.
type Index struct {
	path     string
	cacheDir string

	mu      sync.RWMutex
	offs    []int64 // offs[i] is where line i starts; offs[len-1] is the end of the last complete line
	size    int64   // bytes of the file covered (== offs[len-1])
	modTime time.Time
	gen     int // bumped whenever the lines change (grow or rebuild)
}

const indexMagic = "CRUCIBLE-INSPECT-INDEX-1\n"

// OpenIndex indexes path, reusing and saving an index in cacheDir ("" for
// none). It reads the file only past what a cached index already covers.
func OpenIndex(path, cacheDir string) (*Index, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ix := &Index{path: abs, cacheDir: cacheDir, offs: []int64{0}}
	ix.load()
	if err := ix.Refresh(); err != nil {
		return nil, err
	}
	return ix, nil
}

// Path returns the indexed file.
func (ix *Index) Path() string { return ix.path }

// Len returns the number of complete lines.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.offs) - 1
}

// Gen changes whenever the indexed lines change.
func (ix *Index) Gen() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.gen
}

// Size returns the bytes of the file that the index covers.
func (ix *Index) Size() int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.size
}

// Refresh brings the index up to date with the file: lines appended since
// are added; a file that shrank or was rewritten is indexed again.
func (ix *Index) Refresh() error {
	fi, err := os.Stat(ix.path)
	if err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if fi.Size() == ix.size && fi.ModTime().Equal(ix.modTime) {
		return nil
	}
	f, err := os.Open(ix.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi.Size() < ix.size || !ix.endsLine(f) {
		ix.offs, ix.size = []int64{0}, 0
	}
	if err := ix.scan(f); err != nil {
		return err
	}
	ix.modTime = fi.ModTime()
	ix.gen++
	ix.save()
	return nil
}

// endsLine checks that the indexed prefix still ends with a newline, the
// cheap sign that the file was appended to rather than replaced.
func (ix *Index) endsLine(f *os.File) bool {
	if ix.size == 0 {
		return true
	}
	var b [1]byte
	_, err := f.ReadAt(b[:], ix.size-1)
	return err == nil && b[0] == '\n'
}

// scan adds the complete lines after ix.size.
func (ix *Index) scan(f *os.File) error {
	if _, err := f.Seek(ix.size, io.SeekStart); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	pos := ix.size
	for {
		n, err := f.Read(buf)
		chunk := buf[:n]
		base := pos
		for {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				break
			}
			end := base + int64(i) + 1
			ix.offs = append(ix.offs, end)
			base = end
			chunk = chunk[i+1:]
		}
		pos += int64(n)
		if errors.Is(err, io.EOF) || n == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	ix.size = ix.offs[len(ix.offs)-1]
	return nil
}

func (ix *Index) cachePath() string {
	if ix.cacheDir == "" {
		return ""
	}
	h := sha256.Sum256([]byte(ix.path))
	return filepath.Join(ix.cacheDir, hex.EncodeToString(h[:12])+".idx")
}

// The cache file: magic, the path's length and bytes, the covered size,
// the file's modification time, the line count, then the offsets, all
// little-endian.
func (ix *Index) save() {
	p := ix.cachePath()
	if p == "" || len(ix.offs) < 2 {
		return
	}
	if err := os.MkdirAll(ix.cacheDir, 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(ix.cacheDir, ".idx-*")
	if err != nil {
		return
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	w.WriteString(indexMagic)
	binary.Write(w, binary.LittleEndian, int64(len(ix.path)))
	w.WriteString(ix.path)
	binary.Write(w, binary.LittleEndian, []int64{ix.size, ix.modTime.UnixNano(), int64(len(ix.offs))})
	binary.Write(w, binary.LittleEndian, ix.offs)
	err = w.Flush()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), p) != nil {
		os.Remove(tmp.Name())
	}
}

// load reads a cached index; a missing or foreign one leaves ix empty.
// The modification time is not restored unless the file still has it, so
// Refresh extends an index whose file grew since.
func (ix *Index) load() {
	p := ix.cachePath()
	if p == "" {
		return
	}
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(indexMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != indexMagic {
		return
	}
	var n int64
	if binary.Read(r, binary.LittleEndian, &n) != nil || n != int64(len(ix.path)) {
		return
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil || string(name) != ix.path {
		return
	}
	var hdr [3]int64
	if binary.Read(r, binary.LittleEndian, &hdr) != nil || hdr[2] < 1 || hdr[2] > 1<<34 {
		return
	}
	offs := make([]int64, hdr[2])
	if binary.Read(r, binary.LittleEndian, offs) != nil || offs[len(offs)-1] != hdr[0] {
		return
	}
	ix.offs, ix.size = offs, hdr[0]
	if fi, err := os.Stat(ix.path); err == nil && fi.Size() == ix.size && fi.ModTime().UnixNano() == hdr[1] {
		ix.modTime = fi.ModTime()
	}
}

// Line returns line i without its newline.
func (ix *Index) Line(i int) ([]byte, error) {
	ix.mu.RLock()
	if i < 0 || i >= len(ix.offs)-1 {
		ix.mu.RUnlock()
		return nil, fmt.Errorf("row %d out of range", i)
	}
	start, end := ix.offs[i], ix.offs[i+1]
	ix.mu.RUnlock()
	f, err := os.Open(ix.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, end-start)
	if _, err := f.ReadAt(b, start); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// Scan calls fn for lines from, from+1, ... (without their newlines) until
// fn returns false or the indexed lines end. The slice passed to fn is
// reused after fn returns.
func (ix *Index) Scan(from int, fn func(i int, line []byte) bool) error {
	ix.mu.RLock()
	n := len(ix.offs) - 1
	if from < 0 {
		from = 0
	}
	if from >= n {
		ix.mu.RUnlock()
		return nil
	}
	start, end := ix.offs[from], ix.offs[n]
	ix.mu.RUnlock()
	f, err := os.Open(ix.path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.NewSectionReader(f, start, end-start), 1<<20)
	var long []byte
	for i := from; i < n; i++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if !fn(i, bytes.TrimRight(line, "\r\n")) {
			return nil
		}
	}
	return nil
}
