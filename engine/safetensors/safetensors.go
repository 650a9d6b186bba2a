// Package safetensors reads Hugging Face .safetensors checkpoints by mapping
// them into memory: a tensor's bytes are a slice of the mapped file, kept in
// the dtype they were stored in (no float32 copy of a bf16 checkpoint). On
// systems without mmap (Windows) a file is read into memory instead.
//
// A folder holds either one model.safetensors or shards listed in
// model.safetensors.index.json; OpenDir handles both.
//
//	ck, err := safetensors.OpenDir("models/qwen")
//	if err != nil { ... }
//	defer ck.Close()
//	t, ok := ck.Tensor("model.norm.weight")
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"unsafe"
)

// DType is a tensor element type as spelled in safetensors headers.
type DType string

// The element types that the engine understands.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
	// F8E4M3 and F8E5M2 are the OCP 8-bit floats (torch.float8_e4m3fn and
	// torch.float8_e5m2) of FP8 checkpoints; their scales are separate
	// tensors (see engine.DecodeE4M3).
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
)

// IsFP8 reports whether d is one of the 8-bit float dtypes.
func (d DType) IsFP8() bool { return d == F8E4M3 || d == F8E5M2 }

// Size returns the size in bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool, F8E4M3, F8E5M2:
		return 1
	}
	return 0
}

// Tensor is one named tensor: its dtype, shape and raw little-endian bytes.
// Data aliases the mapped file and is valid until the File is closed.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements is the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// ErrFormat marks a file that is not a valid safetensors file.
var ErrFormat = errors.New("safetensors: bad format")

// maxHeader bounds the JSON header (the format caps it at 100 MB).
const maxHeader = 100 << 20

// File is one mapped .safetensors file.
type File struct {
	path     string
	data     []byte // the whole mapping (nil for an empty file)
	tensors  map[string]*Tensor
	Metadata map[string]string
}

// Open maps path (or reads it into memory where there is no mmap) and
// parses its header.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors %s: %w: file of %d bytes", path, ErrFormat, size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("safetensors %s: file too large", path)
	}
	data, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: map: %w", path, err)
	}
	sf, err := parse(data)
	if err != nil {
		unmapFile(data)
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	sf.path = path
	sf.data = data
	return sf, nil
}

// readFile reads the first size bytes of f into memory: the fallback where
// there is no mmap. Go allocates large slices page-aligned, so the tensors
// stay as aligned as in a mapping.
func readFile(f *os.File, size int) ([]byte, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

// Parse reads a safetensors image held in memory. The tensors alias buf.
func Parse(buf []byte) (*File, error) {
	return parse(buf)
}

type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

func parse(buf []byte) (*File, error) {
	if len(buf) < 8 {
		return nil, fmt.Errorf("%w: %d bytes", ErrFormat, len(buf))
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > maxHeader || n > uint64(len(buf)-8) {
		return nil, fmt.Errorf("%w: header length %d for a file of %d bytes", ErrFormat, n, len(buf))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(buf[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	body := buf[8+n:]
	f := &File{tensors: make(map[string]*Tensor, len(raw))}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%w: __metadata__: %v", ErrFormat, err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		es := e.DType.Size()
		if es == 0 {
			return nil, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, name, e.DType)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && count > int64(len(body))/int64(d)) {
				return nil, fmt.Errorf("%w: tensor %q: bad shape %v", ErrFormat, name, e.Shape)
			}
			count *= int64(d)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > int64(len(body)) {
			return nil, fmt.Errorf("%w: tensor %q: offsets %v outside %d bytes of data", ErrFormat, name, e.DataOffsets, len(body))
		}
		if end-begin != count*int64(es) {
			return nil, fmt.Errorf("%w: tensor %q: %d bytes for shape %v of %s", ErrFormat, name, end-begin, e.Shape, e.DType)
		}
		f.tensors[name] = &Tensor{Name: name, DType: e.DType, Shape: e.Shape, Data: body[begin:end:end]}
	}
	return f, nil
}

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (*Tensor, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// Names lists the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.tensors))
	for n := range f.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close unmaps the file; tensors read from it must no longer be used.
func (f *File) Close() error {
	if f.data == nil {
		return nil
	}
	err := unmapFile(f.data)
	f.data = nil
	if err != nil {
		return fmt.Errorf("safetensors %s: munmap: %w", f.path, err)
	}
	return nil
}

// Checkpoint is a model's weights, from one file or several shards.
type Checkpoint struct {
	files   []*File
	tensors map[string]*Tensor
}

// OpenDir opens dir/model.safetensors, or the shards that
// dir/model.safetensors.index.json lists.
func OpenDir(dir string) (*Checkpoint, error) {
	index := filepath.Join(dir, "model.safetensors.index.json")
	if b, err := os.ReadFile(index); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("read %s: %w", index, err)
		}
		var shards []string
		seen := map[string]bool{}
		for _, s := range idx.WeightMap {
			if !seen[s] {
				seen[s] = true
				shards = append(shards, s)
			}
		}
		sort.Strings(shards)
		for i, s := range shards {
			if filepath.Base(s) != s {
				return nil, fmt.Errorf("read %s: shard name %q is not a plain file name", index, s)
			}
			shards[i] = filepath.Join(dir, s)
		}
		return OpenFiles(shards...)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", index, err)
	}
	return OpenFiles(filepath.Join(dir, "model.safetensors"))
}

// OpenFiles maps the given files as one checkpoint; a tensor name may occur
// in only one of them.
func OpenFiles(paths ...string) (*Checkpoint, error) {
	c := &Checkpoint{tensors: map[string]*Tensor{}}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.files = append(c.files, f)
		for name, t := range f.tensors {
			if _, dup := c.tensors[name]; dup {
				c.Close()
				return nil, fmt.Errorf("safetensors %s: tensor %q also in another shard", p, name)
			}
			c.tensors[name] = t
		}
	}
	return c, nil
}

// FromTensors makes a checkpoint of tensors held in memory (e.g. random
// weights for a benchmark); names must be unique. Data should be aligned
// to its dtype's size, as Go allocations are.
func FromTensors(tensors []Tensor) (*Checkpoint, error) {
	c := &Checkpoint{tensors: map[string]*Tensor{}}
	for i := range tensors {
		t := &tensors[i]
		if _, dup := c.tensors[t.Name]; dup {
			return nil, fmt.Errorf("safetensors: tensor %q given twice", t.Name)
		}
		if want := t.NumElements() * t.DType.Size(); len(t.Data) != want {
			return nil, fmt.Errorf("safetensors: tensor %s: %d bytes for shape %v of %s", t.Name, len(t.Data), t.Shape, t.DType)
		}
		c.tensors[t.Name] = t
	}
	return c, nil
}

// Tensor returns the named tensor.
func (c *Checkpoint) Tensor(name string) (*Tensor, bool) {
	t, ok := c.tensors[name]
	return t, ok
}

// Names lists all tensor names in sorted order.
func (c *Checkpoint) Names() []string {
	names := make([]string, 0, len(c.tensors))
	for n := range c.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Bytes is the total size of the tensors' data.
func (c *Checkpoint) Bytes() int64 {
	var n int64
	for _, t := range c.tensors {
		n += int64(len(t.Data))
	}
	return n
}

// Evict drops the mapped pages from this process's resident memory
// (MADV_DONTNEED): a reader that copied the tensors it needs calls it so
// that the copy is not counted twice. The mapping stays valid: a later
// read of a tensor faults its pages back in from the page cache. Where
// files are read into memory rather than mapped, it does nothing.
func (c *Checkpoint) Evict() {
	for _, f := range c.files {
		if f.data != nil {
			evict(f.data)
		}
	}
}

// EvictTensor drops the mapped pages that lie wholly inside t's bytes
// from this process's resident memory, like Evict for one tensor: a
// loader that copied t (packed, quantized or converted it) calls it at
// once, so that the file's pages and the copy are never resident
// together. Pages shared with a neighbouring tensor stay. It does nothing
// for a tensor that is not in one of c's mapped files (FromTensors, or
// where files are read into memory).
func (c *Checkpoint) EvictTensor(t *Tensor) { c.EvictRange(t, 0, len(t.Data)) }

// EvictRange is EvictTensor for the bytes t.Data[lo:hi] (a loader that
// copies a tensor piece by piece releases each piece); it is safe to call
// from several goroutines at once.
func (c *Checkpoint) EvictRange(t *Tensor, lo, hi int) {
	if t == nil || lo < 0 || hi > len(t.Data) || lo >= hi {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(t.Data))) + uintptr(lo)
	for _, f := range c.files {
		if len(f.data) == 0 {
			continue
		}
		base := uintptr(unsafe.Pointer(unsafe.SliceData(f.data)))
		if p < base || p >= base+uintptr(len(f.data)) {
			continue
		}
		page := uintptr(os.Getpagesize())
		a := (p - base + page - 1) &^ (page - 1)
		b := (p - base + uintptr(hi-lo)) &^ (page - 1)
		if a < b {
			evict(f.data[a:b])
		}
		return
	}
}

// Close unmaps every file.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.files = nil
	return first
}
