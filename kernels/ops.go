package kernels

import (
	"fmt"
	"math"
)

// Activation names an element-wise nonlinearity used by checkpoints.
type Activation int

const (
	// ActNone is the identity.
	ActNone Activation = iota
	// ActGELU is exact GELU: x·Φ(x) = 0.5x(1+erf(x/√2)) (HF "gelu").
	ActGELU
	// ActGELUTanh is the tanh approximation 0.5x(1+tanh(√(2/π)(x+0.044715x³)))
	// (HF "gelu_new", "gelu_pytorch_tanh", "gelu_fast").
	ActGELUTanh
	// ActQuickGELU is x·sigmoid(1.702x) (HF "quick_gelu").
	ActQuickGELU
	// ActReLU is max(x, 0).
	ActReLU
	// ActTanh is tanh(x).
	ActTanh
)

// String returns the canonical Hugging Face name of a.
func (a Activation) String() string {
	switch a {
	case ActNone:
		return "linear"
	case ActGELU:
		return "gelu"
	case ActGELUTanh:
		return "gelu_new"
	case ActQuickGELU:
		return "quick_gelu"
	case ActReLU:
		return "relu"
	case ActTanh:
		return "tanh"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// ParseActivation maps a Hugging Face hidden_act name to an Activation.
func ParseActivation(name string) (Activation, error) {
	switch name {
	case "gelu":
		return ActGELU, nil
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return ActGELUTanh, nil
	case "quick_gelu":
		return ActQuickGELU, nil
	case "relu":
		return ActReLU, nil
	case "tanh":
		return ActTanh, nil
	case "linear", "identity":
		return ActNone, nil
	}
	return ActNone, fmt.Errorf("kernels: unsupported activation %q (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu, tanh, linear)", name)
}

// act1 is the scalar definition of every activation, evaluated in float64
// and rounded once. The pure-Go path uses it for every element (and the
// assembly build for ActTanh, which has no vector kernel).
func act1(a Activation, x float32) float32 {
	switch a {
	case ActGELU:
		v := float64(x)
		return float32(0.5 * v * math.Erfc(-v/math.Sqrt2))
	case ActGELUTanh:
		v := float64(x)
		return float32(0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))))
	case ActQuickGELU:
		v := float64(x)
		return float32(v / (1 + math.Exp(-1.702*v)))
	case ActReLU:
		if x < 0 {
			return 0
		}
		return x
	case ActTanh:
		return float32(math.Tanh(float64(x)))
	}
	return x
}

// actKernel returns the assembly kernel for a, or nil when a has none
// (or the assembly is not in use).
func actKernel(a Activation) func(x, b *float32, n int) {
	if !hasAVX2FMA {
		return nil
	}
	switch a {
	case ActGELU:
		return geluErfAVX2
	case ActGELUTanh:
		return geluTanhAVX2
	case ActQuickGELU:
		return quickGeluAVX2
	case ActReLU:
		return reluAVX2
	}
	return nil
}

// actRow sets x[c] = act(x[c] + bias[c]) for c < len(x); bias may be nil.
// With the assembly kernels, the last n mod 8 elements go through the same
// kernel via a padded buffer, so an element's result never depends on its
// position or on the length of the slice (element-wise batch invariance).
func actRow(a Activation, x, bias []float32) {
	n := len(x)
	if n == 0 {
		return
	}
	if bias != nil {
		bias = bias[:n]
	}
	if a == ActNone {
		if bias != nil {
			Add(x, x, bias)
		}
		return
	}
	if kern := actKernel(a); kern != nil {
		n8 := n &^ 7
		var bp *float32
		if n8 > 0 {
			if bias != nil {
				bp = &bias[0]
			}
			kern(&x[0], bp, n8)
		}
		if n8 < n {
			var buf, bb [8]float32
			copy(buf[:], x[n8:])
			bp = nil
			if bias != nil {
				copy(bb[:], bias[n8:])
				bp = &bb[0]
			}
			kern(&buf[0], bp, 8)
			copy(x[n8:], buf[:n-n8])
		}
		return
	}
	for c := range x {
		v := x[c]
		if bias != nil {
			v += bias[c]
		}
		x[c] = act1(a, v)
	}
}

// elementwiseGrain is the number of elements below which element-wise ops
// stay on the calling goroutine.
const elementwiseGrain = 1 << 15

// Activate applies a in place to every element of x: x[i] = act(x[i]), with
// act the scalar definition given on each Activation constant. The AVX2
// kernels (GELU, tanh-GELU, quick-GELU, ReLU) evaluate it in float32 with
// a vector exp (Cody–Waite reduction, degree-7 polynomial) and, for exact
// GELU, a fitted erfc (act_erfcfit.go), within 6e-7 relative or 1e-7
// absolute error of the float64 definition (tested); the portable build and
// tanh use the float64 definition rounded once. Either way an element's
// result depends only on its value, never on its position or on len(x).
// NaN stays NaN.
func Activate(a Activation, x []float32) {
	n := len(x)
	parallelFor(n, elementwiseGrain, func(lo, hi int) {
		actRow(a, x[lo:hi], nil)
	})
}

// AddBiasAct sets x[r][c] = act(x[r][c] + bias[c]) for a rows×cols matrix
// with leading dimension ld (the addition is rounded to float32 before the
// activation, which is evaluated as in Activate). bias may be nil (no
// bias). Rows are independent: a row's result does not depend on rows.
func AddBiasAct(x []float32, rows, cols, ld int, bias []float32, a Activation) {
	if rows <= 0 || cols <= 0 {
		return
	}
	checkMatrix("AddBiasAct", "x", len(x), rows, cols, ld)
	if bias != nil && len(bias) < cols {
		panic(fmt.Sprintf("kernels.AddBiasAct: len(bias) = %d < cols = %d", len(bias), cols))
	}
	grain := max(1, elementwiseGrain/cols)
	parallelFor(rows, grain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			actRow(a, x[r*ld:r*ld+cols], bias)
		}
	})
}

// Add sets dst[i] = a[i] + b[i] for i < len(dst) (residual connection).
// dst may alias a or b (exactly, not shifted); a and b must be at least as
// long as dst.
func Add(dst, a, b []float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	a, b = a[:n], b[:n]
	done := 0
	if hasAVX2FMA && n >= 8 {
		addAVX2(&dst[0], &a[0], &b[0], n)
		done = n &^ 7
	}
	for i := done; i < n; i++ {
		dst[i] = a[i] + b[i]
	}
}

// LayerNorm normalises each of rows rows of x (cols wide, leading dimension
// ld) and applies gamma and beta, writing out (same layout; out may alias x
// exactly). beta may be nil. Scalar definition (PyTorch/HF semantics:
// biased variance, eps inside the square root), with mean and variance
// accumulated in float64:
//
//	mean = Σ_c x[c] / cols
//	var  = Σ_c (x[c] − mean)² / cols
//	out[c] = float32((x[c] − mean) / √(var + eps)) · gamma[c] + beta[c]
func LayerNorm(out, x []float32, rows, cols, ld int, gamma, beta []float32, eps float32) {
	if rows <= 0 || cols <= 0 {
		return
	}
	checkMatrix("LayerNorm", "x", len(x), rows, cols, ld)
	checkMatrix("LayerNorm", "out", len(out), rows, cols, ld)
	if len(gamma) < cols || (beta != nil && len(beta) < cols) {
		panic(fmt.Sprintf("kernels.LayerNorm: gamma/beta shorter than cols = %d (len(gamma) = %d, len(beta) = %d)", cols, len(gamma), len(beta)))
	}
	grain := max(1, elementwiseGrain/cols)
	parallelFor(rows, grain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			layerNormRow(out[r*ld:r*ld+cols], x[r*ld:r*ld+cols], gamma, beta, eps)
		}
	})
}

func layerNormRow(o, x, gamma, beta []float32, eps float32) {
	n := len(x)
	gamma = gamma[:n]
	if beta != nil {
		beta = beta[:n]
	}
	vec := hasAVX2FMA && n >= 8
	n8 := 0
	if vec {
		n8 = n &^ 7
	}
	var sum float64
	if vec {
		sum = sumF64AVX2(&x[0], n)
	}
	for c := n8; c < n; c++ {
		sum += float64(x[c])
	}
	mean := sum / float64(n)
	var sq float64
	if vec {
		sq = sqDevF64AVX2(&x[0], n, mean)
	}
	for c := n8; c < n; c++ {
		d := float64(x[c]) - mean
		sq += d * d
	}
	inv := 1 / math.Sqrt(sq/float64(n)+float64(eps))
	if vec {
		var bp *float32
		if beta != nil {
			bp = &beta[0]
		}
		lnApplyAVX2(&o[0], &x[0], &gamma[0], bp, n, mean, inv)
	}
	for c := n8; c < n; c++ {
		y := float32((float64(x[c]) - mean) * inv)
		y *= gamma[c]
		if beta != nil {
			y += beta[c]
		}
		o[c] = y
	}
}

// maxF32 returns the largest element of x (len(x) > 0); NaNs may or may not
// be ignored (a NaN input still makes softmax NaN through exp).
func maxF32(x []float32) float32 {
	n := len(x)
	m := x[0]
	done := 0
	if hasAVX2FMA && n >= 8 {
		m = maxAVX2(&x[0], n)
		done = n &^ 7
	}
	for _, v := range x[done:] {
		if v > m {
			m = v
		}
	}
	return m
}

// expShiftSum sets x[i] = exp(x[i] − m) (the difference rounded to float32)
// and returns Σ x[i] accumulated in float64. With the assembly, the last
// len(x) mod 8 elements go through the same vector code in a buffer padded
// with −Inf (whose exp is exactly 0).
func expShiftSum(x []float32, m float32) float64 {
	n := len(x)
	if !hasAVX2FMA {
		var s float64
		for i, v := range x {
			e := float32(math.Exp(float64(v - m)))
			x[i] = e
			s += float64(e)
		}
		return s
	}
	var s float64
	n8 := n &^ 7
	if n8 > 0 {
		s = expShiftSumVec(&x[0], n8, m)
	}
	if n8 < n {
		buf := [8]float32{negInf, negInf, negInf, negInf, negInf, negInf, negInf, negInf}
		copy(buf[:], x[n8:])
		s += expShiftSumAVX2(&buf[0], 8, m)
		copy(x[n8:], buf[:n-n8])
	}
	return s
}

var negInf = float32(math.Inf(-1))

// expShiftSumVec is expShiftSumAVX2, or on CPUs with AVX-512 its zmm
// version, which gives the same bits.
var expShiftSumVec = expShiftSumAVX2

// scaleF32 sets x[i] *= s.
func scaleF32(x []float32, s float32) {
	n := len(x)
	done := 0
	if hasAVX2FMA && n >= 8 {
		scaleAVX2(&x[0], n, s)
		done = n &^ 7
	}
	for i := done; i < n; i++ {
		x[i] *= s
	}
}

// Softmax replaces x with softmax(x), computed stably. Scalar definition:
//
//	m = max_i x[i];  e[i] = exp(x[i] − m);  x[i] = e[i] · float32(1/Σ_j e[j])
//
// with the sum accumulated in float64. An input of all −Inf (or any NaN or
// +Inf) gives NaN, as in PyTorch; −3.4e38 (finfo.min) masks work.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := maxF32(x)
	s := expShiftSum(x, m)
	scaleF32(x, float32(1/s))
}

// SoftmaxRows applies Softmax to each of rows rows (cols wide, leading
// dimension ld) of x.
func SoftmaxRows(x []float32, rows, cols, ld int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	checkMatrix("SoftmaxRows", "x", len(x), rows, cols, ld)
	grain := max(1, elementwiseGrain/cols)
	parallelFor(rows, grain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			Softmax(x[r*ld : r*ld+cols])
		}
	})
}

// LogSoftmax replaces x with log(softmax(x)), computed stably. Scalar
// definition, with lse in float64:
//
//	m = max_i x[i];  lse = m + log(Σ_j exp(x[j] − m));  x[i] = x[i] − lse
//
// The subtraction keeps lse's float64 precision (it is applied as two
// float32 parts), so small log-probabilities next to a large lse stay
// accurate.
func LogSoftmax(x []float32) {
	n := len(x)
	if n == 0 {
		return
	}
	m := maxF32(x)
	var s float64
	done := 0
	if hasAVX2FMA && n >= 8 {
		s = sumExpShiftAVX2(&x[0], n, m)
		done = n &^ 7
	}
	for _, v := range x[done:] {
		s += math.Exp(float64(v - m))
	}
	lse := float64(m) + math.Log(s)
	hi := float32(lse)
	lo := float32(lse - float64(hi))
	done = 0
	if hasAVX2FMA && n >= 8 {
		addConstAVX2(&x[0], n, -hi)
		addConstAVX2(&x[0], n, -lo)
		done = n &^ 7
	}
	for i := done; i < n; i++ {
		x[i] = (x[i] - hi) - lo
	}
}

// Gather copies rows ids of a table with dim columns into out (len(ids)×dim):
// out[i][c] = table[ids[i]][c]. It panics if an id is out of range or a
// slice is too short; callers validate ids (e.g. against the vocabulary
// size) first and report their own error.
func Gather(out, table []float32, dim int, ids []int) {
	if len(out) < len(ids)*dim {
		panic(fmt.Sprintf("kernels.Gather: len(out) = %d < len(ids)·dim = %d", len(out), len(ids)*dim))
	}
	rows := 0
	if dim > 0 {
		rows = len(table) / dim
	}
	for i, id := range ids {
		if id < 0 || id >= rows {
			panic(fmt.Sprintf("kernels.Gather: ids[%d] = %d out of range [0, %d)", i, id, rows))
		}
		copy(out[i*dim:(i+1)*dim], table[id*dim:(id+1)*dim])
	}
}

// checkMatrix panics with a clear message when a rows×cols matrix with
// leading dimension ld does not fit in a slice of length n.
func checkMatrix(op, name string, n, rows, cols, ld int) {
	if ld < cols {
		panic(fmt.Sprintf("kernels.%s: leading dimension of %s = %d < cols = %d", op, name, ld, cols))
	}
	if need := (rows-1)*ld + cols; n < need {
		panic(fmt.Sprintf("kernels.%s: len(%s) = %d < (rows−1)·ld + cols = %d (rows %d, cols %d, ld %d)", op, name, n, need, rows, cols, ld))
	}
}
