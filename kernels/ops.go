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

func act1(a Activation, x float32) float32 {
	switch a {
	case ActGELU:
		return float32(0.5 * float64(x) * (1 + math.Erf(float64(x)/math.Sqrt2)))
	case ActGELUTanh:
		v := float64(x)
		return float32(0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))))
	case ActQuickGELU:
		return x / (1 + float32(math.Exp(-1.702*float64(x))))
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

// Activate applies a in place to every element of x.
func Activate(a Activation, x []float32) {
	for i, v := range x {
		x[i] = act1(a, v)
	}
}

// AddBiasAct sets x[r][c] = act(x[r][c] + bias[c]) for a rows×cols matrix
// with leading dimension ld. bias may be nil (no bias).
func AddBiasAct(x []float32, rows, cols, ld int, bias []float32, a Activation) {
	for r := 0; r < rows; r++ {
		row := x[r*ld : r*ld+cols]
		for c := range row {
			v := row[c]
			if bias != nil {
				v += bias[c]
			}
			row[c] = act1(a, v)
		}
	}
}

// Add sets dst[i] = a[i] + b[i] (residual connection). dst may alias a or b.
func Add(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// LayerNorm normalises each of rows rows of x (cols wide, leading dimension
// ld) to zero mean and unit variance (biased variance, eps added inside the
// square root) and applies gamma and beta, writing out (same layout; out
// may alias x). beta may be nil.
func LayerNorm(out, x []float32, rows, cols, ld int, gamma, beta []float32, eps float32) {
	for r := 0; r < rows; r++ {
		row := x[r*ld : r*ld+cols]
		var mean float64
		for _, v := range row {
			mean += float64(v)
		}
		mean /= float64(cols)
		var vr float64
		for _, v := range row {
			d := float64(v) - mean
			vr += d * d
		}
		vr /= float64(cols)
		inv := 1 / math.Sqrt(vr+float64(eps))
		o := out[r*ld : r*ld+cols]
		for c, v := range row {
			y := float32((float64(v) - mean) * inv)
			y *= gamma[c]
			if beta != nil {
				y += beta[c]
			}
			o[c] = y
		}
	}
}

// Softmax replaces x with softmax(x), computed stably (max subtracted).
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var s float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		s += float64(e)
	}
	inv := float32(1 / s)
	for i := range x {
		x[i] *= inv
	}
}

// LogSoftmax replaces x with log(softmax(x)), computed stably.
func LogSoftmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v - m))
	}
	lse := m + float32(math.Log(s))
	for i := range x {
		x[i] -= lse
	}
}

// Gather copies rows ids of a table with dim columns into out (len(ids)×dim).
// It panics if an id is out of range; callers validate ids first.
func Gather(out, table []float32, dim int, ids []int) {
	for i, id := range ids {
		copy(out[i*dim:(i+1)*dim], table[id*dim:(id+1)*dim])
	}
}
