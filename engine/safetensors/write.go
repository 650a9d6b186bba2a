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
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range sorted {
		if _, dup := header[t.Name]; dup || t.Name == "__metadata__" {
			return fmt.Errorf("safetensors: write: duplicate or reserved name %q", t.Name)
		}
		want := int64(t.NumElements()) * int64(t.DType.Size())
		if t.DType.Size() == 0 || int64(len(t.Data)) != want {
			return fmt.Errorf("safetensors: write %s: %d bytes for shape %v of %s", t.Name, len(t.Data), t.Shape, t.DType)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: [2]int64{off, off + want}}
		off += want
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(hb)))
	if _, err := w.Write(n[:]); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	if _, err := w.Write(hb); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	for _, t := range sorted {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("safetensors: write: %w", err)
		}
	}
	return nil
}
