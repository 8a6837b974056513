package train

import (
	"math/rand/v2"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// lin is a training-only nn.Linear (the transient auxiliary heads, which
// are not part of the saved model), addressed by its tensor names: W
// (out, in), B (out).
type lin struct {
	w, b    string
	in, out int
}

// addLinear creates name.weight (N(0, 0.02²)) and name.bias (0).
func addLinear(ps *Params, r *rand.Rand, name string, out, in int) *lin {
	ps.add(name+".weight", []int{out, in}, Normal(r, 0.02), false)
	ps.add(name+".bias", []int{out}, Const(0), true)
	return &lin{w: name + ".weight", b: name + ".bias", in: in, out: out}
}

// addNorm creates a LayerNorm's name.weight (1) and name.bias (0).
func addNorm(ps *Params, name string, d int) {
	ps.add(name+".weight", []int{d}, Const(1), true)
	ps.add(name+".bias", []int{d}, Const(0), true)
}

// forward returns x·Wᵀ + b for rows rows.
func (l *lin) forward(ps *Params, x []float32, rows int) []float32 {
	y := make([]float32, rows*l.out)
	kernels.Gemm(false, true, rows, l.out, l.in, 1, x, l.in, ps.Weight(l.w), l.in, 0, y, l.out)
	kernels.AddBiasAct(y, rows, l.out, l.out, ps.Weight(l.b), kernels.ActNone)
	return y
}

// backward accumulates the parameter gradients and dx (rows×in, nil to
// skip) += dy·W.
func (l *lin) backward(ps *Params, dy, x, dx []float32, rows int) {
	kernels.LinearBackward(dx, ps.Grad(l.w), ps.Grad(l.b), dy, x, ps.Weight(l.w), rows, l.in, l.out)
}

func addInto(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}
