package checkpoint

import (
	"encoding/binary"
	"math"
)

// f16ToF32 converts an IEEE 754 half-precision value to float32 exactly
// (every half is representable): signed zeros, subnormals, infinities and
// NaNs (payload kept in the high mantissa bits) included.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign) // ±0
		}
		// Subnormal: mant × 2⁻²⁴, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// bf16ToF32 converts a bfloat16 value (the top half of a float32) exactly.
func bf16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// convertF16 decodes little-endian F16 data.
func convertF16(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = f16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// convertBF16 decodes little-endian BF16 data.
func convertBF16(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = bf16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// convertF64 decodes little-endian F64 data, rounding to nearest float32.
func convertF64(b []byte) []float32 {
	out := make([]float32, len(b)/8)
	for i := range out {
		out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
	}
	return out
}
