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

// ForwardLD is Forward for strided operands: x has rows rows of In()
// values ldx floats apart and y rows of Out() values ldy floats apart (e.g.
// one attention head's columns of a wider matrix). Each output row is bit
// for bit what Forward gives for it. It panics, like GemmPacked, if a
// slice is too short or a leading dimension too small.
func (l *Linear) ForwardLD(y []float32, ldy int, x []float32, ldx int, rows int, act Activation) {
	w := l.W
	GemmPacked(rows, 1, x, ldx, w, 0, y, ldy)
	runtime.KeepAlive(w)
	if l.Bias != nil || act != ActNone {
		AddBiasAct(y, rows, w.N(), ldy, l.Bias, act)
	}
}

// WeightRows copies the weights of outputs ids (row o of NewLinear's
// [out, in] weight; column o of NewLinearInOut's [in, out] one) into dst (len(ids)·In()
// floats), reading them back from the packed copy: the values are exactly
// those packed. A model whose LM head is tied to its word embeddings can so
// look up token embeddings without keeping a second (vocabulary × hidden)
// copy. It panics if dst is too short or an id is outside [0, Out()).
func (l *Linear) WeightRows(dst []float32, ids []int) {
	w := l.W
	k, n := w.K(), w.N()
	if len(dst) < len(ids)*k {
		panic("kernels: Linear.WeightRows: dst is shorter than len(ids)·In()")
	}
	for r, o := range ids {
		if o < 0 || o >= n {
			panic("kernels: Linear.WeightRows: row id out of range")
		}
		panel := w.data[(o/nr)*k*nr+o%nr:]
		row := dst[r*k : (r+1)*k]
		for p := range row {
			row[p] = panel[p*nr]
		}
	}
	runtime.KeepAlive(w)
}
