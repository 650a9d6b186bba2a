package safetensors

import (
	"bytes"
	"errors"
	"testing"
)

// TestFP8DTypes writes and reads back the FP8 dtypes, one byte each.
func TestFP8DTypes(t *testing.T) {
	for _, dt := range []DType{F8E4M3, F8E5M2} {
		if dt.Size() != 1 || !dt.IsFP8() {
			t.Fatalf("%s: size %d, IsFP8 %v", dt, dt.Size(), dt.IsFP8())
		}
		data := []byte{0x00, 0x38, 0x7e, 0xfe, 0x01, 0x7f}
		var buf bytes.Buffer
		if err := Write(&buf, []Tensor{{Name: "w", DType: dt, Shape: []int{2, 3}, Data: data}}, nil); err != nil {
			t.Fatal(err)
		}
		f, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		w, ok := f.Tensor("w")
		if !ok || w.DType != dt || !bytes.Equal(w.Data, data) {
			t.Fatalf("%s: read back %+v", dt, w)
		}
	}
	if BF16.IsFP8() || U8.IsFP8() {
		t.Error("BF16 or U8 reported as FP8")
	}
	// A dtype we do not know (e.g. the fnuz variant) stays a format error.
	var buf bytes.Buffer
	hdr := []byte(`{"w":{"dtype":"F8_E4M3FNUZ","shape":[1],"data_offsets":[0,1]}}`)
	buf.Write([]byte{byte(len(hdr)), 0, 0, 0, 0, 0, 0, 0})
	buf.Write(hdr)
	buf.WriteByte(0)
	if _, err := Parse(buf.Bytes()); !errors.Is(err, ErrFormat) {
		t.Errorf("F8_E4M3FNUZ: error %v, want ErrFormat", err)
	}
}
