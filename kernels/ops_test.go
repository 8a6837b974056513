package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// opsCols are the awkward row widths every row-wise op is swept over.
var opsCols = []int{1, 3, 7, 8, 17, 64, 197, 577, 769, 3072, 30524}

// randVec returns n non-zero values scale·N(0,1) + shift.
func randVec(r *rand.Rand, n int, scale, shift float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		for x[i] == 0 {
			x[i] = float32(r.NormFloat64()*scale + shift)
		}
	}
	return x
}

func poison(x []float32) {
	for i := range x {
		x[i] = float32(math.NaN())
	}
}

// relNorm returns ‖got − ref‖ / ‖ref‖ (NaN in got gives +Inf).
func relNorm(got []float32, ref []float64) float64 {
	var num, den float64
	for i, g := range got {
		d := float64(g) - ref[i]
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		num += d * d
		den += ref[i] * ref[i]
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// actRef is the float64 definition of each activation.
func actRef(a Activation, x float64) float64 {
	switch a {
	case ActGELU:
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case ActGELUTanh:
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	case ActQuickGELU:
		return x * (1 / (1 + math.Exp(-1.702*x)))
	case ActReLU:
		return math.Max(x, 0)
	case ActTanh:
		return math.Tanh(x)
	}
	return x
}

// actOK reports whether got is within 1e-6 relative or 1e-7 absolute of ref.
func actOK(got float32, ref float64) bool {
	d := math.Abs(float64(got) - ref)
	return d <= 1e-7 || d <= 1e-6*math.Abs(ref)
}

var allActs = []Activation{ActNone, ActGELU, ActGELUTanh, ActQuickGELU, ActReLU, ActTanh}

func TestOpsParseActivation(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Activation
	}{
		{"gelu", ActGELU}, {"gelu_new", ActGELUTanh}, {"gelu_pytorch_tanh", ActGELUTanh},
		{"gelu_fast", ActGELUTanh}, {"quick_gelu", ActQuickGELU}, {"relu", ActReLU},
		{"tanh", ActTanh}, {"linear", ActNone}, {"identity", ActNone},
	} {
		got, err := ParseActivation(tc.name)
		if err != nil || got != tc.want {
			t.Errorf("ParseActivation(%q) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := ParseActivation("swish"); err == nil {
		t.Error("ParseActivation(swish): want an error")
	}
}

// TestOpsActivationSweep checks every activation on a dense grid of inputs
// (and extremes) against the float64 definition.
func TestOpsActivationSweep(t *testing.T) {
	var xs []float32
	for x := -30.0; x <= 30; x += 0.00731 {
		xs = append(xs, float32(x))
	}
	for x := -0.01; x <= 0.01; x += 0.0000731 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 1e-30, -1e-30, 1e-6, -1e-6, 80, -80, 90, -90, 1e4, -1e4, 3e38, -3e38, float32(math.Inf(1)))
	for _, a := range allActs {
		x := append([]float32(nil), xs...)
		Activate(a, x)
		worst, worstAbs, bad := 0.0, 0.0, 0
		for i, v := range xs {
			ref := actRef(a, float64(v))
			if math.IsNaN(ref) || math.IsInf(ref, 0) {
				if math.IsInf(ref, 1) && !math.IsInf(float64(x[i]), 1) {
					t.Errorf("%v(%g) = %g, want +Inf", a, v, x[i])
				}
				continue
			}
			if !actOK(x[i], ref) {
				if bad < 5 {
					t.Errorf("%v(%.9g) = %.9g, want %.9g", a, v, x[i], ref)
				}
				bad++
			}
			d := math.Abs(float64(x[i]) - ref)
			if math.Abs(ref) >= 1e-3 {
				worst = math.Max(worst, d/math.Abs(ref))
			} else {
				worstAbs = math.Max(worstAbs, d)
			}
		}
		t.Logf("%v: worst relative error %.3g where |ref| ≥ 1e-3, worst absolute error %.3g elsewhere, over %d points (asm=%v)", a, worst, worstAbs, len(xs), hasAVX2FMA)
	}
}

// TestOpsActivationInvariance: an element's result does not depend on its
// position or on the length of the slice it is activated in.
func TestOpsActivationInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	src := randVec(r, 1000, 3, 0)
	for _, a := range allActs {
		for _, n := range []int{1, 3, 7, 9, 17, 1000} {
			x := append([]float32(nil), src[:n]...)
			Activate(a, x)
			for i := range x {
				one := []float32{src[i]}
				Activate(a, one)
				if math.Float32bits(one[0]) != math.Float32bits(x[i]) {
					t.Fatalf("%v: element %d of %d gives %g, alone %g", a, i, n, x[i], one[0])
				}
			}
		}
	}
}

// TestOpsActivationNaN: NaN inputs give NaN outputs (as in PyTorch), at
// every position of a vector.
func TestOpsActivationNaN(t *testing.T) {
	for _, a := range allActs {
		for pos := 0; pos < 11; pos++ {
			x := []float32{0.5, -1, 2, -3, 0.25, 1, -0.5, 3, 1.5, -2, 0.75}
			x[pos] = float32(math.NaN())
			Activate(a, x)
			if !math.IsNaN(float64(x[pos])) {
				t.Errorf("%v(NaN) at position %d = %g, want NaN", a, pos, x[pos])
			}
		}
	}
}

func TestOpsAddBiasAct(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, a := range allActs {
		for _, cols := range opsCols {
			for _, withBias := range []bool{false, true} {
				rows, ld := 3, cols+5
				if cols > 3072 {
					rows = 1
				}
				x := randVec(r, rows*ld, 3, 0)
				in := append([]float32(nil), x...)
				var bias []float32
				if withBias {
					bias = randVec(r, cols, 1, 0)
				}
				AddBiasAct(x, rows, cols, ld, bias, a)
				for i := range x {
					row, c := i/ld, i%ld
					if c >= cols {
						if math.Float32bits(x[i]) != math.Float32bits(in[i]) {
							t.Fatalf("%v cols %d: padding element (%d,%d) changed", a, cols, row, c)
						}
						continue
					}
					v := in[i]
					if withBias {
						v += bias[c]
					}
					ref := actRef(a, float64(v))
					if !actOK(x[i], ref) {
						t.Fatalf("%v cols %d bias %v: x[%d][%d]: act(%g) = %.9g, want %.9g", a, cols, withBias, row, c, v, x[i], ref)
					}
				}
			}
		}
	}
}

func TestOpsLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, cols := range opsCols {
		for _, tc := range []struct {
			eps          float32
			shift        float64
			beta, inPlce bool
		}{{1e-12, 0, true, false}, {1e-5, 7, false, false}, {1e-6, -3, true, true}} {
			name := fmt.Sprintf("cols%d/eps%g/shift%g/beta%v/inplace%v", cols, tc.eps, tc.shift, tc.beta, tc.inPlce)
			rows, ld := 4, cols+3
			if cols > 3072 {
				rows = 2
			}
			x := randVec(r, rows*ld, 2, tc.shift)
			gamma := randVec(r, cols, 1, 1)
			var beta []float32
			if tc.beta {
				beta = randVec(r, cols, 1, 0)
			}
			in := append([]float32(nil), x...)
			out := x
			if !tc.inPlce {
				out = make([]float32, len(x))
				poison(out)
			}
			LayerNorm(out, x, rows, cols, ld, gamma, beta, tc.eps)
			for row := 0; row < rows; row++ {
				xr := in[row*ld : row*ld+cols]
				var mean, vr float64
				for _, v := range xr {
					mean += float64(v)
				}
				mean /= float64(cols)
				for _, v := range xr {
					vr += (float64(v) - mean) * (float64(v) - mean)
				}
				vr /= float64(cols)
				ref := make([]float64, cols)
				for c, v := range xr {
					ref[c] = (float64(v) - mean) / math.Sqrt(vr+float64(tc.eps)) * float64(gamma[c])
					if beta != nil {
						ref[c] += float64(beta[c])
					}
				}
				if e := relNorm(out[row*ld:row*ld+cols], ref); e > 1e-5 {
					t.Fatalf("%s: row %d relative error %.3g > 1e-5", name, row, e)
				}
				for c := range ref {
					if d := math.Abs(float64(out[row*ld+c]) - ref[c]); d > 1e-5*(1+math.Abs(ref[c])) {
						t.Fatalf("%s: out[%d][%d] = %g, want %g", name, row, c, out[row*ld+c], ref[c])
					}
				}
			}
		}
	}
}

// softmaxRef returns softmax and log-softmax of x in float64; the shift
// x − max is rounded to float32 as in the kernels' (and PyTorch's)
// definition, which matters for elements far below the maximum.
func softmaxRef(x []float32) (sm, lsm []float64) {
	m := x[0]
	for _, v := range x {
		m = max(m, v)
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v - m))
	}
	sm = make([]float64, len(x))
	lsm = make([]float64, len(x))
	for i, v := range x {
		sm[i] = math.Exp(float64(v-m)) / s
		lsm[i] = float64(v) - float64(m) - math.Log(s)
	}
	return sm, lsm
}

func TestOpsSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, cols := range opsCols {
		for _, mask := range []float32{0, -10000, -math.MaxFloat32} {
			x := randVec(r, cols, 4, 2)
			if mask != 0 && cols > 1 {
				for i := range x {
					if i%3 == 1 {
						x[i] = mask
					}
				}
			}
			sm, lsm := softmaxRef(x)
			got := append([]float32(nil), x...)
			Softmax(got)
			if e := relNorm(got, sm); e > 1e-5 {
				t.Errorf("Softmax cols %d mask %g: relative error %.3g", cols, mask, e)
			}
			for i, g := range got {
				if math.Abs(float64(g)-sm[i]) > 1e-6*sm[i]+1e-30 {
					t.Fatalf("Softmax cols %d mask %g: [%d] = %g, want %g", cols, mask, i, g, sm[i])
				}
			}
			got = append(got[:0], x...)
			LogSoftmax(got)
			if e := relNorm(got, lsm); e > 1e-5 {
				t.Errorf("LogSoftmax cols %d mask %g: relative error %.3g", cols, mask, e)
			}
			for i, g := range got {
				if d := math.Abs(float64(g) - lsm[i]); d > 1e-6*math.Abs(lsm[i])+1e-6 {
					t.Fatalf("LogSoftmax cols %d mask %g: [%d] = %g, want %g", cols, mask, i, g, lsm[i])
				}
			}
		}
	}
	// All equal finfo.min (a fully padded row) is uniform, not NaN.
	x := []float32{-math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32}
	Softmax(x)
	for i, v := range x {
		if math.Abs(float64(v)-1.0/9) > 1e-7 {
			t.Fatalf("Softmax of all finfo.min: [%d] = %g, want 1/9", i, v)
		}
	}
}

// TestOpsExpShiftSumWideSameBits: the AVX-512 exp-and-sum gives the same
// bits as the AVX2 one, element by element and in the float64 sum, over
// lengths with and without a last group of eight and over the clamps'
// edges (overflow to +Inf, flush to 0, −Inf, NaN).
func TestOpsExpShiftSumWideSameBits(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512")
	}
	r := rand.New(rand.NewPCG(31, 32))
	special := []float32{float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN()), 88.3, 88.8, -87.3, -87.4, -104, 0, -0.0, -math.MaxFloat32}
	for _, n := range []int{8, 16, 24, 64, 72, 576, 3072, 30520} {
		for _, c := range []struct {
			m        float32
			specials bool // with NaN and +Inf the sum is NaN or +Inf: the finite runs check it
		}{{0, true}, {3.5, true}, {0, false}, {-5, false}} {
			m := c.m
			x := randVec(r, n, 30, -10)
			if !c.specials {
				x = randVec(r, n, 8, 0) // many terms far below the sum: its rounding shows any change of order
			}
			for i := 0; c.specials && i < n; i += 7 {
				x[i] = special[(i/7)%len(special)]
			}
			if !c.specials {
				m += maxF32(x) // as softmax shifts: every exponent ≤ 5
			}
			a, b := append([]float32(nil), x...), append([]float32(nil), x...)
			sa := expShiftSumAVX2(&a[0], n, m)
			sb := expShiftSumAVX512(&b[0], n, m)
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("n %d m %g: exp(x[%d] − m) of %g: AVX-512 %g, AVX2 %g", n, m, i, x[i], b[i], a[i])
				}
			}
			if !c.specials && (math.IsNaN(sa) || math.IsInf(sa, 0)) {
				t.Fatalf("n %d m %g: sum %v of finite scores", n, m, sa)
			}
			if math.Float64bits(sa) != math.Float64bits(sb) && !(math.IsNaN(sa) && math.IsNaN(sb)) {
				t.Fatalf("n %d m %g: sum AVX-512 %v, AVX2 %v", n, m, sb, sa)
			}
		}
	}
}

func TestOpsSoftmaxRows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	rows, cols, ld := 5, 197, 200
	x := randVec(r, rows*ld, 3, 0)
	in := append([]float32(nil), x...)
	SoftmaxRows(x, rows, cols, ld)
	for row := 0; row < rows; row++ {
		sm, _ := softmaxRef(in[row*ld : row*ld+cols])
		if e := relNorm(x[row*ld:row*ld+cols], sm); e > 1e-5 {
			t.Fatalf("row %d: relative error %.3g", row, e)
		}
		for c := cols; c < ld && row*ld+c < len(x); c++ {
			if x[row*ld+c] != in[row*ld+c] {
				t.Fatalf("row %d: padding column %d changed", row, c)
			}
		}
	}
}

func TestOpsAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range opsCols {
		a, b := randVec(r, n, 1, 0), randVec(r, n, 1, 0)
		dst := make([]float32, n)
		poison(dst)
		Add(dst, a, b)
		for i := range dst {
			if dst[i] != a[i]+b[i] {
				t.Fatalf("n %d: dst[%d] = %g, want %g", n, i, dst[i], a[i]+b[i])
			}
		}
		want := append([]float32(nil), dst...)
		Add(a, a, b) // aliasing dst == a
		for i := range a {
			if a[i] != want[i] {
				t.Fatalf("n %d aliased: [%d] = %g, want %g", n, i, a[i], want[i])
			}
		}
	}
}

func TestOpsGather(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	dim, vocab := 17, 50
	table := randVec(r, vocab*dim, 1, 0)
	ids := []int{3, 0, 49, 3, 17}
	out := make([]float32, len(ids)*dim)
	poison(out)
	Gather(out, table, dim, ids)
	for i, id := range ids {
		for c := 0; c < dim; c++ {
			if out[i*dim+c] != table[id*dim+c] {
				t.Fatalf("out[%d][%d] = %g, want table[%d][%d] = %g", i, c, out[i*dim+c], id, c, table[id*dim+c])
			}
		}
	}
	for _, bad := range []int{-1, vocab} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Gather with id %d: want a panic", bad)
				}
			}()
			Gather(out, table, dim, []int{bad})
		}()
	}
}
