package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// Write writes tensors in safetensors format: their names must be unique and
// each Data must hold exactly its shape's bytes. The header is padded to a
// multiple of 8 bytes, so that every tensor stays aligned when mapped.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	sorted := make([]Tensor, len(tensors))
	copy(sorted, tensors)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	enc, err := NewEncoder(w, sorted, metadata)
	if err != nil {
		return err
	}
	for _, t := range sorted {
		if int64(len(t.Data)) != int64(t.NumElements())*int64(t.DType.Size()) {
			return fmt.Errorf("safetensors: write %s: %d bytes for shape %v of %s", t.Name, len(t.Data), t.Shape, t.DType)
		}
		if _, err := enc.Write(t.Data); err != nil {
			return err
		}
	}
	return enc.Close()
}

// Encoder streams a safetensors file whose tensors are known by name, dtype
// and shape before their bytes: NewEncoder writes the header, then the
// tensors' bytes follow through Write in the order given, in pieces of any
// size, so that a writer never holds more than it chooses to.
//
//	enc, err := safetensors.NewEncoder(f, []safetensors.Tensor{{Name: "w", DType: safetensors.BF16, Shape: []int{4096, 4096}}}, nil)
//	... enc.Write(rows) as often as needed ...
//	err = enc.Close() // checks that every byte was written
type Encoder struct {
	w         io.Writer
	remaining int64 // body bytes still to write
}

// NewEncoder writes the header of a file holding tensors (Data is ignored)
// laid out in the order given; names must be unique.
func NewEncoder(w io.Writer, tensors []Tensor, metadata map[string]string) (*Encoder, error) {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range tensors {
		if _, dup := header[t.Name]; dup || t.Name == "__metadata__" {
			return nil, fmt.Errorf("safetensors: write: duplicate or reserved name %q", t.Name)
		}
		if t.DType.Size() == 0 {
			return nil, fmt.Errorf("safetensors: write %s: unknown dtype %q", t.Name, t.DType)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors: write %s: bad shape %v", t.Name, t.Shape)
			}
		}
		size := int64(t.NumElements()) * int64(t.DType.Size())
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: [2]int64{off, off + size}}
		off += size
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("safetensors: write: %w", err)
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(hb)))
	if _, err := w.Write(n[:]); err != nil {
		return nil, fmt.Errorf("safetensors: write: %w", err)
	}
	if _, err := w.Write(hb); err != nil {
		return nil, fmt.Errorf("safetensors: write: %w", err)
	}
	return &Encoder{w: w, remaining: off}, nil
}

// Write writes the next bytes of the tensors' data, in header order.
func (e *Encoder) Write(p []byte) (int, error) {
	if int64(len(p)) > e.remaining {
		return 0, fmt.Errorf("safetensors: write: %d bytes past the %d the header announces", int64(len(p))-e.remaining, e.remaining)
	}
	n, err := e.w.Write(p)
	e.remaining -= int64(n)
	if err != nil {
		return n, fmt.Errorf("safetensors: write: %w", err)
	}
	return n, nil
}

// Close checks that all the data the header announces was written (it does
// not close the underlying writer).
func (e *Encoder) Close() error {
	if e.remaining != 0 {
		return fmt.Errorf("safetensors: write: %d bytes of tensor data missing", e.remaining)
	}
	return nil
}
