// Package gguf reads and writes GGUF files (version 3), the format of
// llama.cpp and ollama, and exports Hugging Face checkpoints of the
// engine's four architectures to it with llama.cpp's tensor names and
// metadata keys (Export).
//
//	err := gguf.Export("models/Qwen2.5-0.5B", "qwen.gguf")
//	f, err := gguf.Open("qwen.gguf")
//	arch := f.String("general.architecture")
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Magic is "GGUF" read as a little-endian uint32.
const Magic = 0x46554747

// Version is the GGUF version written.
const Version = 3

// Alignment is the default data alignment (general.alignment).
const Alignment = 32

// ErrFormat marks a malformed GGUF file.
var ErrFormat = errors.New("gguf: bad format")

// ValueType is a metadata value's type.
type ValueType uint32

// Metadata value types.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

// TensorType is a ggml tensor type.
type TensorType uint32

// Tensor types used here (ggml's numbering).
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q8_0 TensorType = 8
	BF16 TensorType = 30
)

func (t TensorType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case Q8_0:
		return "Q8_0"
	case BF16:
		return "BF16"
	}
	return fmt.Sprintf("type%d", uint32(t))
}

// size is the bytes of n elements (n a multiple of the block size).
func (t TensorType) size(n uint64) (uint64, error) {
	switch t {
	case F32:
		return 4 * n, nil
	case F16, BF16:
		return 2 * n, nil
	case Q8_0:
		if n%32 != 0 {
			return 0, fmt.Errorf("Q8_0 tensor of %d elements", n)
		}
		return n / 32 * 34, nil
	}
	return 0, fmt.Errorf("unsupported tensor type %d", uint32(t))
}

// KV is one metadata entry. Value is one of uint8, int8, uint16, int16,
// uint32, int32, float32, bool, string, uint64, int64, float64, or a slice
// of one of them ([]string, []int32, []float32, ...).
type KV struct {
	Key   string
	Value any
}

// Tensor is a tensor's description and bytes. Dims are in ggml order: the
// first is the innermost (a PyTorch [rows, cols] matrix has Dims
// [cols, rows]).
type Tensor struct {
	Name string
	Type TensorType
	Dims []uint64
	Data []byte
}

// Elements is the product of the dims.
func (t *Tensor) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Write writes a GGUF file: the metadata in order, then the tensors, each
// aligned to Alignment.
func Write(w io.Writer, kvs []KV, tensors []Tensor) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{w: bw}
	e.u32(Magic)
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		if err := e.value(kv.Value); err != nil {
			return fmt.Errorf("gguf: key %s: %w", kv.Key, err)
		}
	}
	var off uint64
	for i := range tensors {
		t := &tensors[i]
		want, err := t.Type.size(t.Elements())
		if err != nil {
			return fmt.Errorf("gguf: tensor %s: %w", t.Name, err)
		}
		if uint64(len(t.Data)) != want {
			return fmt.Errorf("gguf: tensor %s: %d bytes for %v of %s", t.Name, len(t.Data), t.Dims, t.Type)
		}
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(off)
		off = align(off + want)
	}
	e.pad()
	for i := range tensors {
		e.bytes(tensors[i].Data)
		e.pad()
	}
	if e.err != nil {
		return fmt.Errorf("gguf: write: %w", e.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguf: write: %w", err)
	}
	return nil
}

func align(n uint64) uint64 { return (n + Alignment - 1) / Alignment * Alignment }

type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	b   [8]byte
}

func (e *encoder) bytes(p []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(p)
	e.n += uint64(len(p))
}

func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.b[:], v); e.bytes(e.b[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.b[:], v); e.bytes(e.b[:8]) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.bytes([]byte(s)) }
func (e *encoder) pad() {
	if r := e.n % Alignment; r != 0 {
		e.bytes(make([]byte, Alignment-r))
	}
}

func (e *encoder) value(v any) error {
	put := func(t ValueType) { e.u32(uint32(t)) }
	arr := func(t ValueType, n int) { put(TypeArray); e.u32(uint32(t)); e.u64(uint64(n)) }
	switch x := v.(type) {
	case uint8:
		put(TypeUint8)
		e.bytes([]byte{x})
	case int8:
		put(TypeInt8)
		e.bytes([]byte{byte(x)})
	case uint16:
		put(TypeUint16)
		binary.LittleEndian.PutUint16(e.b[:], x)
		e.bytes(e.b[:2])
	case int16:
		put(TypeInt16)
		binary.LittleEndian.PutUint16(e.b[:], uint16(x))
		e.bytes(e.b[:2])
	case uint32:
		put(TypeUint32)
		e.u32(x)
	case int32:
		put(TypeInt32)
		e.u32(uint32(x))
	case float32:
		put(TypeFloat32)
		e.u32(math.Float32bits(x))
	case bool:
		put(TypeBool)
		if x {
			e.bytes([]byte{1})
		} else {
			e.bytes([]byte{0})
		}
	case string:
		put(TypeString)
		e.str(x)
	case uint64:
		put(TypeUint64)
		e.u64(x)
	case int64:
		put(TypeInt64)
		e.u64(uint64(x))
	case float64:
		put(TypeFloat64)
		e.u64(math.Float64bits(x))
	case []string:
		arr(TypeString, len(x))
		for _, s := range x {
			e.str(s)
		}
	case []int32:
		arr(TypeInt32, len(x))
		for _, s := range x {
			e.u32(uint32(s))
		}
	case []uint32:
		arr(TypeUint32, len(x))
		for _, s := range x {
			e.u32(s)
		}
	case []float32:
		arr(TypeFloat32, len(x))
		for _, s := range x {
			e.u32(math.Float32bits(s))
		}
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
	return nil
}

// File is a GGUF file read into memory.
type File struct {
	Version uint32
	KVs     []KV // in file order
	Tensors []Tensor
	kv      map[string]any
	byName  map[string]*Tensor
}

// Open reads a GGUF file.
func Open(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	return f, nil
}

// Parse reads a GGUF image; tensor data aliases b. Sizes are checked
// against len(b) before anything is allocated for them.
func Parse(b []byte) (*File, error) {
	d := &decoder{b: b}
	if d.u32() != Magic {
		return nil, fmt.Errorf("%w: not a GGUF file", ErrFormat)
	}
	f := &File{Version: d.u32(), kv: map[string]any{}, byName: map[string]*Tensor{}}
	if f.Version < 2 || f.Version > 3 {
		return nil, fmt.Errorf("%w: version %d", ErrFormat, f.Version)
	}
	nt, nkv := d.u64(), d.u64()
	if d.err != nil || nt > uint64(len(b))/8 || nkv > uint64(len(b))/8 {
		return nil, fmt.Errorf("%w: counts %d tensors, %d keys", ErrFormat, nt, nkv)
	}
	for i := uint64(0); i < nkv && d.err == nil; i++ {
		k := d.str()
		v := d.value(ValueType(d.u32()), 0)
		f.KVs = append(f.KVs, KV{k, v})
		f.kv[k] = v
	}
	alignment := uint64(Alignment)
	if a, ok := f.kv["general.alignment"].(uint32); ok && a > 0 && a&(a-1) == 0 {
		alignment = uint64(a)
	}
	type info struct {
		t   Tensor
		off uint64
	}
	infos := make([]info, 0, min(nt, 1<<16))
	for i := uint64(0); i < nt && d.err == nil; i++ {
		var in info
		in.t.Name = d.str()
		nd := d.u32()
		if nd > 8 {
			return nil, fmt.Errorf("%w: tensor %s has %d dims", ErrFormat, in.t.Name, nd)
		}
		for j := uint32(0); j < nd; j++ {
			in.t.Dims = append(in.t.Dims, d.u64())
		}
		in.t.Type = TensorType(d.u32())
		in.off = d.u64()
		infos = append(infos, in)
	}
	if d.err != nil {
		return nil, d.err
	}
	start := (d.off + alignment - 1) / alignment * alignment
	for _, in := range infos {
		t := in.t
		n := uint64(1)
		for _, dim := range t.Dims {
			if dim != 0 && n > math.MaxUint64/dim {
				return nil, fmt.Errorf("%w: tensor %s dims %v overflow", ErrFormat, t.Name, t.Dims)
			}
			n *= dim
		}
		size, err := t.Type.size(n)
		if err != nil {
			return nil, fmt.Errorf("%w: tensor %s: %v", ErrFormat, t.Name, err)
		}
		if in.off > uint64(len(b)) || start+in.off > uint64(len(b)) || size > uint64(len(b))-start-in.off {
			return nil, fmt.Errorf("%w: tensor %s data [%d, +%d) past the end (%d)", ErrFormat, t.Name, start+in.off, size, len(b))
		}
		t.Data = b[start+in.off : start+in.off+size]
		f.Tensors = append(f.Tensors, t)
	}
	for i := range f.Tensors {
		f.byName[f.Tensors[i].Name] = &f.Tensors[i]
	}
	return f, nil
}

// Value returns a metadata value (nil if absent).
func (f *File) Value(key string) any { return f.kv[key] }

// String returns a string value ("" if absent or not a string).
func (f *File) String(key string) string { s, _ := f.kv[key].(string); return s }

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (*Tensor, bool) { t, ok := f.byName[name]; return t, ok }

// Keys lists the metadata keys, sorted.
func (f *File) Keys() []string {
	ks := make([]string, 0, len(f.kv))
	for k := range f.kv {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

type decoder struct {
	b   []byte
	off uint64
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b))-d.off {
		d.err = fmt.Errorf("%w: truncated at byte %d", ErrFormat, d.off)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}
func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}
func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}
func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}
func (d *decoder) str() string { return string(d.take(d.u64())) }

// value reads one value of type t; arrays hold scalars or strings (nested
// arrays are refused).
func (d *decoder) value(t ValueType, depth int) any {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeBool:
		return d.u8() != 0
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	case TypeArray:
		et, n := ValueType(d.u32()), d.u64()
		if depth > 0 || et == TypeArray {
			d.err = fmt.Errorf("%w: nested array", ErrFormat)
			return nil
		}
		if n > uint64(len(d.b))-d.off { // every element takes at least a byte
			d.err = fmt.Errorf("%w: array of %d elements past the end", ErrFormat, n)
			return nil
		}
		switch et {
		case TypeString:
			out := make([]string, 0, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				out = append(out, d.str())
			}
			return out
		case TypeInt32:
			out := make([]int32, 0, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				out = append(out, int32(d.u32()))
			}
			return out
		case TypeUint32:
			out := make([]uint32, 0, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				out = append(out, d.u32())
			}
			return out
		case TypeFloat32:
			out := make([]float32, 0, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				out = append(out, math.Float32frombits(d.u32()))
			}
			return out
		default:
			out := make([]any, 0, min(n, 1<<20))
			for i := uint64(0); i < n && d.err == nil; i++ {
				out = append(out, d.value(et, depth+1))
			}
			return out
		}
	}
	d.err = fmt.Errorf("%w: value type %d", ErrFormat, uint32(t))
	return nil
}
