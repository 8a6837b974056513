package kernels

import "runtime"

// Linear is a dense layer y = x·Wᵀ + b with its weight pre-packed once.
type Linear struct {
	W    *PackedB  // packed Wᵀ: K = in, N = out
	Bias []float32 // (out) or nil
}

// NewLinear packs a weight stored as Hugging Face nn.Linear does
// ([out, in] row-major). bias may be nil. The weight slice is not
// retained. The packed copy is PackB's, placed outside the Go heap on
// Linux (see OffHeapBytes) and released when the Linear is unreachable.
func NewLinear(weight []float32, out, in int, bias []float32) *Linear {
	return &Linear{W: packWeight(true, in, out, weight, in), Bias: bias}
}

// NewLinearInOut packs a weight stored [in, out] (GPT-2's Conv1D). bias may
// be nil. Like NewLinear, the packed copy may live outside the Go heap.
func NewLinearInOut(weight []float32, in, out int, bias []float32) *Linear {
	return &Linear{W: packWeight(false, in, out, weight, out), Bias: bias}
}

// In returns the input width; Out the output width.
func (l *Linear) In() int { return l.W.K() }

// Out returns the output width.
func (l *Linear) Out() int { return l.W.N() }

// Forward computes y = act(x·Wᵀ + b) for rows rows of x (contiguous, In()
// wide), writing rows×Out() values into y. Scalar definition: y[r][o] =
// act(s + b[o]) with s = Σ_i x[r][i]·W[o][i] accumulated as GemmPacked does
// (one fixed order over i), so each row's output is bit for bit the same
// whatever rows is. rows = 1 is the decode-time GEMV. It panics, like
// GemmPacked, if x or y is too short for rows.
func (l *Linear) Forward(y, x []float32, rows int, act Activation) {
	w := l.W
	GemmPacked(rows, 1, x, w.K(), w, 0, y, w.N())
	// The packed data may be mapped memory released by a cleanup when w is
	// unreachable: keep w alive until the product is done.
	runtime.KeepAlive(w)
	if l.Bias != nil || act != ActNone {
		AddBiasAct(y, rows, w.N(), w.N(), l.Bias, act)
	}
}
