package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// fp8Spec describes a format by its OCP parameters, for the independent
// reference used below.
type fp8Spec struct {
	name         string
	ebits, mbits int
	ieee         bool // Inf and NaN as IEEE (E5M2); else only S.1111.111 is NaN (E4M3)
	max          float64
	decode       func(byte) float32
	encode       func(float32, bool) byte
}

var fp8Specs = []fp8Spec{
	{"E4M3", 4, 3, false, 448, DecodeE4M3, EncodeE4M3},
	{"E5M2", 5, 2, true, 57344, DecodeE5M2, EncodeE5M2},
}

// specValue builds a byte's value by assembling float32 bits (normals) or
// by exact scaling (subnormals): a second derivation, independent of the
// tables in fp8.go.
func (s fp8Spec) specValue(b byte) (v float32, nan bool) {
	bias := 1<<(s.ebits-1) - 1
	emax := 1<<s.ebits - 1
	e := int(b>>s.mbits) & emax
	m := uint32(b) & (1<<s.mbits - 1)
	neg := b&0x80 != 0
	switch {
	case s.ieee && e == emax && m == 0:
		v = float32(math.Inf(1))
	case s.ieee && e == emax, !s.ieee && e == emax && m == 1<<s.mbits-1:
		return 0, true
	case e == 0:
		v = float32(m) * float32(math.Ldexp(1, 1-bias-s.mbits))
	default:
		v = math.Float32frombits(uint32(e-bias+127)<<23 | m<<(23-s.mbits))
	}
	if neg {
		v = -v
	}
	return v, false
}

// refEncode is an arithmetic reference: round |x| to a multiple of the
// quantum of its binade (ties to even) in float64, then apply the overflow
// rule.
func (s fp8Spec) refEncode(x float32, sat bool) float64 {
	a := math.Abs(float64(x))
	sign := 1.0
	if math.Signbit(float64(x)) {
		sign = -1
	}
	if math.IsNaN(a) {
		return math.NaN()
	}
	bias := 1<<(s.ebits-1) - 1
	emin := 1 - bias
	var r float64
	if !math.IsInf(a, 1) && a != 0 {
		_, e := math.Frexp(a) // a = f·2^e, f in [0.5, 1): binade exponent e-1
		q := math.Ldexp(1, max(e-1, emin)-s.mbits)
		r = math.RoundToEven(a/q) * q
	} else {
		r = a
	}
	if r > s.max {
		switch {
		case sat:
			r = s.max
		case s.ieee:
			r = math.Inf(1)
		default:
			return math.NaN()
		}
	}
	return sign * r
}

func TestFP8DecodeEveryByte(t *testing.T) {
	for _, s := range fp8Specs {
		for b := 0; b < 256; b++ {
			want, nan := s.specValue(byte(b))
			got := s.decode(byte(b))
			if nan {
				if !math.IsNaN(float64(got)) {
					t.Errorf("%s 0x%02x = %v, want NaN", s.name, b, got)
				}
				continue
			}
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Errorf("%s 0x%02x = %v, want %v", s.name, b, got, want)
			}
		}
	}
}

// TestFP8SpecTable checks the values the OCP spec tabulates.
func TestFP8SpecTable(t *testing.T) {
	for _, c := range []struct {
		name string
		b    byte
		want float64
	}{
		{"E4M3", 0x7e, 448}, {"E4M3", 0xfe, -448}, {"E4M3", 0x08, math.Ldexp(1, -6)},
		{"E4M3", 0x07, 0.875 * math.Ldexp(1, -6)}, {"E4M3", 0x01, math.Ldexp(1, -9)},
		{"E4M3", 0x38, 1}, {"E4M3", 0x00, 0}, {"E4M3", 0x77, 240}, {"E4M3", 0x40, 2},
		{"E5M2", 0x7b, 57344}, {"E5M2", 0x04, math.Ldexp(1, -14)}, {"E5M2", 0x03, 0.75 * math.Ldexp(1, -14)},
		{"E5M2", 0x01, math.Ldexp(1, -16)}, {"E5M2", 0x3c, 1}, {"E5M2", 0x7c, math.Inf(1)},
		{"E5M2", 0xfc, math.Inf(-1)}, {"E5M2", 0xbc, -1},
	} {
		dec := DecodeE4M3
		if c.name == "E5M2" {
			dec = DecodeE5M2
		}
		if got := float64(dec(c.b)); got != c.want {
			t.Errorf("%s 0x%02x = %v, want %v", c.name, c.b, got, c.want)
		}
	}
	for _, b := range []byte{0x7f, 0xff} {
		if !math.IsNaN(float64(DecodeE4M3(b))) {
			t.Errorf("E4M3 0x%02x is not NaN", b)
		}
	}
	for _, b := range []byte{0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff} {
		if !math.IsNaN(float64(DecodeE5M2(b))) {
			t.Errorf("E5M2 0x%02x is not NaN", b)
		}
	}
	if b := DecodeE4M3(0x80); b != 0 || !math.Signbit(float64(b)) {
		t.Errorf("E4M3 0x80 = %v, want -0", b)
	}
}

func TestFP8RoundTripEveryByte(t *testing.T) {
	for _, s := range fp8Specs {
		for _, sat := range []bool{false, true} {
			for b := 0; b < 256; b++ {
				v := s.decode(byte(b))
				got := s.encode(v, sat)
				switch {
				case math.IsNaN(float64(v)):
					if !math.IsNaN(float64(s.decode(got))) {
						t.Errorf("%s NaN 0x%02x encodes to 0x%02x", s.name, b, got)
					}
				case math.IsInf(float64(v), 0) && sat:
					if want := byte(b&0x80) | 0x7b; got != want {
						t.Errorf("%s sat Inf 0x%02x -> 0x%02x, want 0x%02x", s.name, b, got, want)
					}
				case got != byte(b):
					t.Errorf("%s sat=%v 0x%02x (%v) -> 0x%02x", s.name, sat, b, v, got)
				}
			}
		}
	}
}

// boundaryInputs lists the float32 inputs where rounding can go wrong:
// every value, every midpoint between neighbours (a tie) and the float32
// values just beside each, on both signs, around the overflow threshold,
// and the float32 specials.
func boundaryInputs(s fp8Spec) []float32 {
	var xs []float32
	var pos []float32
	for b := 0; b < 128; b++ {
		if v := s.decode(byte(b)); !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			pos = append(pos, v)
		}
	}
	up := float32(math.Inf(1))
	add := func(v float32) {
		xs = append(xs, v, -v, math.Nextafter32(v, up), -math.Nextafter32(v, up), math.Nextafter32(v, 0), -math.Nextafter32(v, 0))
	}
	for i, v := range pos {
		add(v)
		if i+1 < len(pos) {
			add((v + pos[i+1]) / 2) // exact in float32
		}
	}
	top := pos[len(pos)-1]
	ulp := top - pos[len(pos)-2]
	for _, v := range []float32{top + ulp/2, top + ulp, top + 3*ulp/2, 2 * top, math.MaxFloat32,
		math.SmallestNonzeroFloat32, float32(math.Ldexp(1, -126)), pos[1] / 2, pos[1] / 4} {
		add(v)
	}
	return append(xs, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0, float32(math.Copysign(0, -1)))
}

func checkEncode(t *testing.T, s fp8Spec, x float32, sat bool) {
	t.Helper()
	got := s.decode(s.encode(x, sat))
	want := s.refEncode(x, sat)
	if math.IsNaN(want) {
		if !math.IsNaN(float64(got)) {
			t.Errorf("%s sat=%v encode(%v) = %v, want NaN", s.name, sat, x, got)
		}
		return
	}
	if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
		t.Errorf("%s sat=%v encode(%v) = %v, want %v", s.name, sat, x, got, want)
	}
}

func TestFP8EncodeBoundaries(t *testing.T) {
	for _, s := range fp8Specs {
		xs := boundaryInputs(s)
		for _, sat := range []bool{false, true} {
			for _, x := range xs {
				checkEncode(t, s, x, sat)
			}
		}
	}
	// The spec's named cases.
	for _, c := range []struct {
		name string
		x    float32
		sat  bool
		want byte
	}{
		{"E4M3", 464, false, 0x7e},   // tie between 448 and (480): to even 448
		{"E4M3", 465, false, 0x7f},   // overflow: NaN
		{"E4M3", 465, true, 0x7e},    // saturated
		{"E4M3", -1e9, true, 0xfe},   // saturated negative
		{"E4M3", 17, false, 0x58},    // 17 is a tie between 16 (0x58) and 18 (0x59): even 16
		{"E4M3", 19, false, 0x5a},    // tie between 18 (0x59) and 20 (0x5a): even 20
		{"E5M2", 61440, false, 0x7c}, // tie between 57344 and (65536): to even, i.e. Inf
		{"E5M2", 61439, false, 0x7b},
		{"E5M2", 61440, true, 0x7b},
		{"E5M2", float32(math.Ldexp(1, -17)), false, 0x00}, // half the smallest subnormal: tie to 0
	} {
		s := fp8Specs[0]
		if c.name == "E5M2" {
			s = fp8Specs[1]
		}
		if got := s.encode(c.x, c.sat); got != c.want {
			t.Errorf("%s sat=%v encode(%v) = 0x%02x, want 0x%02x", c.name, c.sat, c.x, got, c.want)
		}
	}
}

// TestFP8EncodeRandom compares the encoder with the arithmetic reference on
// random float32 bit patterns, and on random values in each format's range.
func TestFP8EncodeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	for _, s := range fp8Specs {
		for i := 0; i < n; i++ {
			x := math.Float32frombits(r.Uint32())
			y := float32(r.NormFloat64() * math.Ldexp(1, r.IntN(40)-20))
			for _, sat := range []bool{false, true} {
				checkEncode(t, s, x, sat)
				checkEncode(t, s, y, sat)
			}
		}
	}
}
