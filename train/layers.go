package train

import (
	"math"
	"math/rand/v2"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// lin is an nn.Linear: W (out, in), B (out).
type lin struct {
	W, B    *Param
	in, out int
}

func newLin(ps *Params, r *rand.Rand, name string, out, in int) *lin {
	return &lin{
		W:  ps.add(name+".weight", []int{out, in}, Normal(r, 0.02), false),
		B:  ps.add(name+".bias", []int{out}, Const(0), true),
		in: in, out: out,
	}
}

// forward returns x·Wᵀ + b for rows rows (the serving Linear's arithmetic:
// Gemm then bias).
func (l *lin) forward(x []float32, rows int) []float32 {
	y := make([]float32, rows*l.out)
	kernels.Gemm(false, true, rows, l.out, l.in, 1, x, l.in, l.W.W, l.in, 0, y, l.out)
	kernels.AddBiasAct(y, rows, l.out, l.out, l.B.W, kernels.ActNone)
	return y
}

// backward accumulates parameter gradients and returns dx (nil if !needDX).
func (l *lin) backward(dy, x []float32, rows int, needDX bool) []float32 {
	var dx []float32
	if needDX {
		dx = make([]float32, rows*l.in)
	}
	kernels.LinearBackward(dx, l.W.G, l.B.G, dy, x, l.W.W, rows, l.in, l.out)
	return dx
}

// norm is a LayerNorm.
type norm struct {
	G, B *Param
	eps  float32
}

func newNorm(ps *Params, name string, d int, eps float32) *norm {
	return &norm{
		G:   ps.add(name+".weight", []int{d}, Const(1), true),
		B:   ps.add(name+".bias", []int{d}, Const(0), true),
		eps: eps,
	}
}

func (n *norm) forward(x []float32, rows int) []float32 {
	d := len(n.G.W)
	y := make([]float32, len(x))
	kernels.LayerNorm(y, x, rows, d, d, n.G.W, n.B.W, n.eps)
	return y
}

func (n *norm) backward(dy, x []float32, rows int) []float32 {
	d := len(n.G.W)
	dx := make([]float32, len(x))
	kernels.LayerNormBackward(dx, n.G.G, n.B.G, dy, x, n.G.W, rows, d, n.eps)
	return dx
}

// act applies activation a to a copy of x.
func act(a kernels.Activation, x []float32) []float32 {
	y := append([]float32(nil), x...)
	kernels.Activate(a, y)
	return y
}

func actBack(a kernels.Activation, dy, x []float32) []float32 {
	dx := make([]float32, len(x))
	kernels.ActivationBackward(a, dx, x, dy)
	return dx
}

func addInto(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}

func sum(a, b []float32) []float32 {
	y := make([]float32, len(a))
	for i := range a {
		y[i] = a[i] + b[i]
	}
	return y
}

// split copies columns [c0, c0+w) of a rows×ld matrix.
func split(x []float32, rows, ld, c0, w int) []float32 {
	y := make([]float32, rows*w)
	for r := 0; r < rows; r++ {
		copy(y[r*w:(r+1)*w], x[r*ld+c0:r*ld+c0+w])
	}
	return y
}

// join writes src (rows×w) into columns [c0, c0+w) of dst (rows×ld).
func join(dst, src []float32, rows, ld, c0, w int) {
	for r := 0; r < rows; r++ {
		copy(dst[r*ld+c0:r*ld+c0+w], src[r*w:(r+1)*w])
	}
}

// attn is multi-head attention with saved probabilities.
type attnCtx struct {
	q, k, v, probs []float32
	qLen, kLen     int
	p              kernels.AttentionParams
}

func attention(heads, d int, q, k, v []float32, qLen, kLen int, causal bool, keyBias []float32) ([]float32, *attnCtx) {
	hd := d / heads
	p := kernels.AttentionParams{Heads: heads, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd))), Causal: causal, KeyBias: keyBias}
	out := make([]float32, qLen*d)
	probs := kernels.AttentionTrain(p, q, qLen, k, v, kLen, out)
	return out, &attnCtx{q: q, k: k, v: v, probs: probs, qLen: qLen, kLen: kLen, p: p}
}

func (c *attnCtx) backward(dout []float32) (dq, dk, dv []float32) {
	dq, dk, dv = make([]float32, len(c.q)), make([]float32, len(c.k)), make([]float32, len(c.v))
	kernels.AttentionBackward(c.p, c.q, c.qLen, c.k, c.v, c.kLen, c.probs, dout, dq, dk, dv)
	return
}
