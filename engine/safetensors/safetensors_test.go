package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func sample() []Tensor {
	return []Tensor{
		{Name: "a", DType: F32, Shape: []int{2, 2}, Data: make([]byte, 16)},
		{Name: "b", DType: BF16, Shape: []int{3}, Data: []byte{1, 2, 3, 4, 5, 6}},
		{Name: "s", DType: I64, Shape: []int{}, Data: make([]byte, 8)},
	}
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, sample(), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := OpenDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if got := ck.Names(); len(got) != 3 {
		t.Fatalf("names %v", got)
	}
	b, _ := ck.Tensor("b")
	if b.DType != BF16 || !bytes.Equal(b.Data, []byte{1, 2, 3, 4, 5, 6}) {
		t.Errorf("b = %+v", b)
	}
	if ck.Bytes() != 16+6+8 {
		t.Errorf("Bytes = %d", ck.Bytes())
	}
}

func TestSharded(t *testing.T) {
	dir := t.TempDir()
	ts := sample()
	for i, part := range [][]Tensor{ts[:1], ts[1:]} {
		var buf bytes.Buffer
		if err := Write(&buf, part, nil); err != nil {
			t.Fatal(err)
		}
		name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, _ := json.Marshal(map[string]any{"weight_map": map[string]string{
		"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "s": "model-00002-of-00002.safetensors"}})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	for _, n := range []string{"a", "b", "s"} {
		if _, ok := ck.Tensor(n); !ok {
			t.Errorf("missing %s", n)
		}
	}
}

func header(h string) []byte {
	b := make([]byte, 8, 8+len(h)+64)
	binary.LittleEndian.PutUint64(b, uint64(len(h)))
	return append(b, h...)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"short", []byte{1, 2, 3}},
		{"header longer than file", header(`{}`)[:9]},
		{"huge header length", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "{}"...)},
		{"not json", header(`{x`)},
		{"unknown dtype", header(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`)},
		{"offsets outside", append(header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`), 0, 0)},
		{"size mismatch", append(header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`), 0, 0, 0, 0)},
		{"negative dim", append(header(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`), 0, 0, 0, 0)},
		{"huge shape", append(header(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}`), 0, 0, 0, 0)},
		{"reversed offsets", append(header(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`), 0, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.data); !errors.Is(err, ErrFormat) {
				t.Errorf("Parse: err = %v, want ErrFormat", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, sample(), map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := Parse(data)
		if err != nil {
			return
		}
		for _, n := range sf.Names() {
			tt, _ := sf.Tensor(n)
			if len(tt.Data) != tt.NumElements()*tt.DType.Size() {
				t.Fatalf("tensor %s: %d bytes for %v %s", n, len(tt.Data), tt.Shape, tt.DType)
			}
		}
	})
}

// TestEncoderPieces streams the tensors in pieces of several sizes and
// checks the file equals Write's, and that a short or long body is an error.
func TestEncoderPieces(t *testing.T) {
	ts := sample() // already sorted by name, as Write lays them out
	var want bytes.Buffer
	if err := Write(&want, ts, nil); err != nil {
		t.Fatal(err)
	}
	var body []byte
	for _, tt := range ts {
		body = append(body, tt.Data...)
	}
	tests := []struct {
		name    string
		piece   int
		body    []byte
		wantErr bool
	}{
		{"one byte at a time", 1, body, false},
		{"pieces of 5", 5, body, false},
		{"all at once", len(body), body, false},
		{"short body", 7, body[:len(body)-1], true},
		{"long body", 7, append(append([]byte{}, body...), 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got bytes.Buffer
			specs := make([]Tensor, len(ts))
			for i, s := range ts {
				specs[i] = Tensor{Name: s.Name, DType: s.DType, Shape: s.Shape}
			}
			enc, err := NewEncoder(&got, specs, nil)
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for b := tt.body; len(b) > 0 && werr == nil; {
				n := min(tt.piece, len(b))
				_, werr = enc.Write(b[:n])
				b = b[n:]
			}
			err = errors.Join(werr, enc.Close())
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("streamed file differs from Write's (%d vs %d bytes)", got.Len(), want.Len())
			}
		})
	}
}

// TestReadFallback checks that the read-into-memory path (the one systems
// without mmap take) gives the same tensors as Open, and that Evict leaves
// the mapped tensors readable.
func TestReadFallback(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, sample(), nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := readFile(f, buf.Len())
	if err != nil {
		t.Fatal(err)
	}
	read, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := OpenFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	ck.Evict()
	for _, n := range read.Names() {
		a, _ := read.Tensor(n)
		b, ok := ck.Tensor(n)
		if !ok || !bytes.Equal(a.Data, b.Data) || a.DType != b.DType {
			t.Errorf("tensor %s: read %v, mapped %v", n, a, b)
		}
	}
}
