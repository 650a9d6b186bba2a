package engine

import (
	"math"
	"sort"
)

// FP8 formats of the OCP 8-bit floating point specification (OFP8, v1.0,
// 2023), as torch.float8_e4m3fn and torch.float8_e5m2 store them and
// safetensors names them F8_E4M3 and F8_E5M2:
//
//	E4M3: sign, 4 exponent bits (bias 7), 3 mantissa bits. No infinities;
//	      S.1111.111 is NaN; the largest finite value is S.1111.110 = ±448;
//	      exponent 0 holds the subnormals m/8·2⁻⁶ (the smallest is 2⁻⁹).
//	E5M2: sign, 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like:
//	      S.11111.00 is ±Inf, S.11111.{01,10,11} are NaN; the largest
//	      finite value is ±57344; the smallest subnormal is 2⁻¹⁶.
//
// Conversion from float32 rounds to nearest, ties to even, as if the
// exponent range were unbounded; a result beyond the largest finite value
// then overflows: to NaN (E4M3) or ±Inf (E5M2) when not saturating, to the
// largest finite value of that sign when saturating (as the spec's
// saturating mode, and quantizers that clamp first, do). Infinities
// become NaN / ±Inf, or ±max when saturating; NaN stays NaN (sign kept);
// zero keeps its sign.

// fp8Format is one FP8 format's decode table and its finite positive
// values in order.
type fp8Format struct {
	decode [256]float32
	// pos[i] is the value of byte i for i <= maxCode: the finite
	// non-negative codes, which increase with the value.
	pos     []float64
	maxCode byte // the largest finite positive code
	nan     byte // the canonical positive NaN
	inf     byte // the positive infinity (0 when the format has none)
}

var (
	fp8E4M3 = newFP8Format(4, 3, false)
	fp8E5M2 = newFP8Format(5, 2, true)
)

// newFP8Format builds the tables of a format with ebits exponent bits and
// mbits mantissa bits, from the definition: bias 2^(ebits-1)-1; exponent 0
// is subnormal (m·2^(1-bias-mbits)); the top exponent is Inf/NaN when
// ieee, otherwise only its all-ones mantissa is NaN.
func newFP8Format(ebits, mbits int, ieee bool) *fp8Format {
	f := &fp8Format{}
	bias := 1<<(ebits-1) - 1
	emax := 1<<ebits - 1
	for b := 0; b < 256; b++ {
		sign := 1.0
		if b&0x80 != 0 {
			sign = -1
		}
		e := (b >> mbits) & emax
		m := b & (1<<mbits - 1)
		var v float64
		switch {
		case ieee && e == emax && m == 0:
			v = math.Inf(1)
		case ieee && e == emax, !ieee && e == emax && m == 1<<mbits-1:
			v = math.NaN()
		case e == 0:
			v = float64(m) * math.Ldexp(1, 1-bias-mbits)
		default:
			v = (1 + float64(m)/float64(int(1)<<mbits)) * math.Ldexp(1, e-bias)
		}
		f.decode[b] = float32(sign * v)
	}
	if ieee {
		f.inf = byte(emax << mbits)
		f.maxCode = f.inf - 1
		f.nan = f.inf | 1<<(mbits-1) // quiet NaN: top mantissa bit
	} else {
		f.nan = 0x7f
		f.maxCode = 0x7e
	}
	for b := 0; b <= int(f.maxCode); b++ {
		f.pos = append(f.pos, float64(f.decode[b]))
	}
	return f
}

// encode rounds x to the format (see the package comment on FP8 formats).
func (f *fp8Format) encode(x float32, saturate bool) byte {
	bits := math.Float32bits(x)
	sign := byte(bits >> 31 << 7)
	a := math.Abs(float64(x))
	switch {
	case math.IsNaN(float64(x)):
		return sign | f.nan
	case math.IsInf(a, 1):
		if saturate {
			return sign | f.maxCode
		}
		if f.inf != 0 {
			return sign | f.inf
		}
		return sign | f.nan
	}
	top := f.pos[f.maxCode]
	if a > top {
		// The next value up would be top + one ulp of the top binade; a
		// tie at the midpoint goes to the even code.
		ulp := top - f.pos[f.maxCode-1]
		mid := top + ulp/2
		overflow := a > mid || (a == mid && f.maxCode&1 == 1)
		switch {
		case !overflow || saturate:
			return sign | f.maxCode
		case f.inf != 0:
			return sign | f.inf
		default:
			return sign | f.nan
		}
	}
	// pos[i-1] < a <= pos[i]
	i := sort.SearchFloat64s(f.pos, a)
	if f.pos[i] == a || i == 0 {
		return sign | byte(i)
	}
	lo, hi := f.pos[i-1], f.pos[i]
	switch d1, d2 := a-lo, hi-a; {
	case d1 < d2:
		return sign | byte(i-1)
	case d2 < d1:
		return sign | byte(i)
	case (i-1)&1 == 0: // tie: the even code (its mantissa's last bit is 0)
		return sign | byte(i-1)
	default:
		return sign | byte(i)
	}
}

// DecodeE4M3 returns the value of an OCP E4M3 byte (torch.float8_e4m3fn).
func DecodeE4M3(b byte) float32 { return fp8E4M3.decode[b] }

// DecodeE5M2 returns the value of an OCP E5M2 byte (torch.float8_e5m2).
func DecodeE5M2(b byte) float32 { return fp8E5M2.decode[b] }

// EncodeE4M3 rounds x to the nearest E4M3 value, ties to even. Beyond ±448
// (after rounding) the result is NaN, or ±448 when saturate is set; NaN
// stays NaN and ±Inf becomes NaN (±448 when saturating).
func EncodeE4M3(x float32, saturate bool) byte { return fp8E4M3.encode(x, saturate) }

// EncodeE5M2 rounds x to the nearest E5M2 value, ties to even. Beyond
// ±57344 (after rounding) the result is ±Inf, or ±57344 when saturate is
// set; NaN stays NaN.
func EncodeE5M2(x float32, saturate bool) byte { return fp8E5M2.encode(x, saturate) }

// Max finite magnitudes of the FP8 formats.
const (
	MaxE4M3 = 448
	MaxE5M2 = 57344
)
