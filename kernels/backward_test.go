package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The backward passes are checked against central finite differences of
// float64 reference forwards on small shapes: the loss is Σ out·R for a
// fixed random R, so the analytic input to each backward is dy = R.

func bwRand(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(scale * (2*r.Float64() - 1))
	}
	return x
}

func bwTo64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// numGrad returns ∂f/∂x[i] for every i by central differences in float64.
func numGrad(x []float64, f func() float64) []float64 {
	g := make([]float64, len(x))
	const h = 1e-6
	for i := range x {
		old := x[i]
		x[i] = old + h
		fp := f()
		x[i] = old - h
		fm := f()
		x[i] = old
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

func dot64(a []float64, b []float32) float64 {
	var s float64
	for i := range a {
		s += a[i] * float64(b[i])
	}
	return s
}

func checkGrad(t *testing.T, name string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d gradient values, want %d", name, len(got), len(want))
	}
	var scale float64
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > 1e-3*scale+1e-4 {
			t.Fatalf("%s[%d] = %g, finite differences give %g (max |grad| %g)", name, i, got[i], want[i], scale)
		}
	}
}

func TestLinearBackward(t *testing.T) {
	for _, sz := range []struct{ rows, in, out int }{{1, 3, 2}, {5, 7, 4}, {9, 16, 33}} {
		r := rand.New(rand.NewPCG(1, uint64(sz.in)))
		x, w, b := bwRand(r, sz.rows*sz.in, 1), bwRand(r, sz.out*sz.in, 1), bwRand(r, sz.out, 1)
		R := bwRand(r, sz.rows*sz.out, 1)
		x64, w64, b64 := bwTo64(x), bwTo64(w), bwTo64(b)
		f := func() float64 {
			var s float64
			for i := 0; i < sz.rows; i++ {
				for o := 0; o < sz.out; o++ {
					y := b64[o]
					for k := 0; k < sz.in; k++ {
						y += x64[i*sz.in+k] * w64[o*sz.in+k]
					}
					s += y * float64(R[i*sz.out+o])
				}
			}
			return s
		}
		dx, dW, db := make([]float32, len(x)), make([]float32, len(w)), make([]float32, len(b))
		LinearBackward(dx, dW, db, R, x, w, sz.rows, sz.in, sz.out)
		checkGrad(t, "dx", dx, numGrad(x64, f))
		checkGrad(t, "dW", dW, numGrad(w64, f))
		checkGrad(t, "db", db, numGrad(b64, f))
	}
}

func TestLayerNormBackward(t *testing.T) {
	for _, sz := range []struct{ rows, d int }{{1, 4}, {3, 16}, {2, 37}} {
		r := rand.New(rand.NewPCG(2, uint64(sz.d)))
		x, g, b := bwRand(r, sz.rows*sz.d, 2), bwRand(r, sz.d, 1), bwRand(r, sz.d, 1)
		R := bwRand(r, sz.rows*sz.d, 1)
		const eps = 1e-5
		x64, g64, b64 := bwTo64(x), bwTo64(g), bwTo64(b)
		f := func() float64 {
			var s float64
			for i := 0; i < sz.rows; i++ {
				row := x64[i*sz.d : (i+1)*sz.d]
				var m, v float64
				for _, u := range row {
					m += u
				}
				m /= float64(sz.d)
				for _, u := range row {
					v += (u - m) * (u - m)
				}
				v /= float64(sz.d)
				for j, u := range row {
					s += ((u-m)/math.Sqrt(v+eps)*g64[j] + b64[j]) * float64(R[i*sz.d+j])
				}
			}
			return s
		}
		dx, dg, db := make([]float32, len(x)), make([]float32, len(g)), make([]float32, len(b))
		LayerNormBackward(dx, dg, db, R, x, g, sz.rows, sz.d, eps)
		checkGrad(t, "dx", dx, numGrad(x64, f))
		checkGrad(t, "dgamma", dg, numGrad(g64, f))
		checkGrad(t, "dbeta", db, numGrad(b64, f))
	}
}

func TestActivationBackward(t *testing.T) {
	for _, a := range []Activation{ActGELU, ActGELUTanh, ActQuickGELU, ActTanh, ActReLU, ActNone} {
		r := rand.New(rand.NewPCG(3, uint64(a)))
		x := bwRand(r, 40, 4)
		R := bwRand(r, 40, 1)
		x64 := bwTo64(x)
		f := func() float64 {
			var s float64
			for i, v := range x64 {
				var y float64
				switch a {
				case ActGELU:
					y = 0.5 * v * math.Erfc(-v/math.Sqrt2)
				case ActGELUTanh:
					y = 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
				case ActQuickGELU:
					y = v / (1 + math.Exp(-1.702*v))
				case ActTanh:
					y = math.Tanh(v)
				case ActReLU:
					y = math.Max(v, 0)
				default:
					y = v
				}
				s += y * float64(R[i])
			}
			return s
		}
		dx := make([]float32, len(x))
		ActivationBackward(a, dx, x, R)
		checkGrad(t, a.String(), dx, numGrad(x64, f))
		// The derivative matches the forward kernel too (act1 is what serves).
		for _, v := range []float32{-2, -0.3, 0.7, 3} {
			h := float32(1e-2)
			num := (float64(act1(a, v+h)) - float64(act1(a, v-h))) / float64(2*h)
			if d := math.Abs(num - actDeriv(a, float64(v))); d > 1e-3 {
				t.Errorf("%s'(%g) = %g, the forward kernel's slope is %g", a, v, actDeriv(a, float64(v)), num)
			}
		}
	}
}

// refAttention is a float64 attention with the same masking semantics.
func refAttention(p AttentionParams, q []float64, qLen int, k, v []float64, kLen int) []float64 {
	w := p.Heads * p.HeadDim
	out := make([]float64, qLen*w)
	for h := 0; h < p.Heads; h++ {
		off := h * p.HeadDim
		for i := 0; i < qLen; i++ {
			lim := kLen
			if p.Causal {
				lim = min(i+(kLen-qLen)+1, kLen)
			}
			s := make([]float64, lim)
			m := math.Inf(-1)
			for j := 0; j < lim; j++ {
				var d float64
				for t := 0; t < p.HeadDim; t++ {
					d += q[i*w+off+t] * k[j*w+off+t]
				}
				s[j] = d * float64(p.Scale)
				if p.KeyBias != nil {
					s[j] += float64(p.KeyBias[j])
				}
				m = math.Max(m, s[j])
			}
			var sum float64
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				sum += s[j]
			}
			for j := range s {
				for t := 0; t < p.HeadDim; t++ {
					out[i*w+off+t] += s[j] / sum * v[j*w+off+t]
				}
			}
		}
	}
	return out
}

func TestAttentionBackward(t *testing.T) {
	cases := []struct {
		name             string
		heads, hd        int
		qLen, kLen       int
		causal, withBias bool
	}{
		{"self", 2, 4, 5, 5, false, false},
		{"causal", 2, 3, 6, 6, true, false},
		{"causal with cache", 1, 4, 2, 5, true, false},
		{"cross masked", 3, 2, 4, 7, false, true},
		{"padding and causal", 2, 4, 5, 5, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(4, uint64(tc.qLen*31+tc.kLen)))
			w := tc.heads * tc.hd
			p := AttentionParams{Heads: tc.heads, HeadDim: tc.hd, Scale: float32(1 / math.Sqrt(float64(tc.hd))), Causal: tc.causal}
			if tc.withBias {
				p.KeyBias = make([]float32, tc.kLen)
				p.KeyBias[tc.kLen-1] = -10000
				p.KeyBias[tc.kLen-2] = -math.MaxFloat32
			}
			q, k, v := bwRand(r, tc.qLen*w, 1.5), bwRand(r, tc.kLen*w, 1.5), bwRand(r, tc.kLen*w, 1)
			R := bwRand(r, tc.qLen*w, 1)
			out := make([]float32, tc.qLen*w)
			probs := AttentionTrain(p, q, tc.qLen, k, v, tc.kLen, out)
			q64, k64, v64 := bwTo64(q), bwTo64(k), bwTo64(v)
			ref := refAttention(p, q64, tc.qLen, k64, v64, tc.kLen)
			for i := range ref {
				if math.Abs(ref[i]-float64(out[i])) > 1e-5 {
					t.Fatalf("out[%d] = %g, float64 reference %g", i, out[i], ref[i])
				}
			}
			// The training forward agrees with the serving kernel.
			serve := make([]float32, tc.qLen*w)
			Attention(p, q, tc.qLen, w, k, w, v, w, tc.kLen, serve, w)
			for i := range serve {
				if math.Abs(float64(serve[i]-out[i])) > 1e-5 {
					t.Fatalf("AttentionTrain out[%d] = %g, Attention gives %g", i, out[i], serve[i])
				}
			}
			f := func() float64 { return dot64(refAttention(p, q64, tc.qLen, k64, v64, tc.kLen), R) }
			dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
			AttentionBackward(p, q, tc.qLen, k, v, tc.kLen, probs, R, dq, dk, dv)
			checkGrad(t, "dq", dq, numGrad(q64, f))
			checkGrad(t, "dk", dk, numGrad(k64, f))
			checkGrad(t, "dv", dv, numGrad(v64, f))
		})
	}
}

func TestCrossEntropy(t *testing.T) {
	for _, eps := range []float32{0, 0.1} {
		r := rand.New(rand.NewPCG(5, 0))
		rows, vocab := 4, 7
		logits := bwRand(r, rows*vocab, 3)
		targets := []int{3, -100, 0, 6}
		l64 := bwTo64(logits)
		f := func() float64 {
			var s float64
			n := 0
			for i := 0; i < rows; i++ {
				if targets[i] == -100 {
					continue
				}
				n++
				row := l64[i*vocab : (i+1)*vocab]
				var z float64
				for _, v := range row {
					z += math.Exp(v)
				}
				for j, v := range row {
					lp := v - math.Log(z)
					if j == targets[i] {
						s -= (1 - float64(eps)) * lp
					}
					s -= float64(eps) / float64(vocab) * lp
				}
			}
			return s / float64(n)
		}
		d := make([]float32, len(logits))
		loss, n := CrossEntropy(logits, rows, vocab, targets, -100, eps, d, 1)
		if n != 3 || math.Abs(loss-f()) > 1e-9 {
			t.Fatalf("eps %g: loss %g over %d rows, reference %g over 3", eps, loss, n, f())
		}
		checkGrad(t, "dlogits", d, numGrad(l64, f))
	}
	if loss, n := CrossEntropy([]float32{1, 2}, 1, 2, []int{-100}, -100, 0, nil, 1); loss != 0 || n != 0 {
		t.Fatalf("all rows ignored: loss %g, n %d", loss, n)
	}
}

func TestEmbeddingBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 0))
	table := bwRand(r, 5*3, 1)
	ids := []int{4, 1, 4, 0}
	R := bwRand(r, len(ids)*3, 1)
	t64 := bwTo64(table)
	f := func() float64 {
		var s float64
		for i, id := range ids {
			for j := 0; j < 3; j++ {
				s += t64[id*3+j] * float64(R[i*3+j])
			}
		}
		return s
	}
	d := make([]float32, len(table))
	EmbeddingBackward(d, R, 3, ids)
	checkGrad(t, "dtable", d, numGrad(t64, f))
}

func TestBackwardSizeErrorsPanic(t *testing.T) {
	for name, fn := range map[string]func(){
		"linear": func() {
			LinearBackward(make([]float32, 2), nil, nil, make([]float32, 1), nil, make([]float32, 4), 1, 2, 2)
		},
		"embedding": func() { EmbeddingBackward(make([]float32, 6), make([]float32, 3), 3, []int{2}) },
		"target":    func() { CrossEntropy(make([]float32, 4), 2, 2, []int{0, 5}, -100, 0, nil, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: bad sizes did not panic", name)
				}
			}()
			fn()
		}()
	}
}
