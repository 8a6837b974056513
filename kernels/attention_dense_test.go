package kernels

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAttentionDense checks AttentionDense against the float64 definition
// over heads, head widths, sequence lengths (vision's 50, 197 and 577
// included), strided operands and key biases.
func TestAttentionDense(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	cases := []attnCase{
		{1, 8, 1, 1, false, 0, 0},
		{2, 16, 5, 9, false, 0, 3},
		{3, 24, 17, 17, false, -10000, 0},
		{4, 64, 50, 50, false, 0, 0},
		{12, 64, 197, 197, false, 0, 5},
		{2, 64, 577, 577, false, 0, 0},
		{1, 40, 70, 33, false, float32(-math.MaxFloat32), 1},
		{2, 7, 13, 29, false, 0, 2}, // head width not a multiple of 8
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			a := newAttnData(r, c)
			AttentionDense(a.p, a.q, c.qLen, a.ldq, a.k, a.ldk, a.v, a.ldv, c.kLen, a.out, a.ldo)
			checkAttn(t, c.String(), a, c.qLen, c.kLen)
		})
	}
}

// TestAttentionDenseRowInvariance: query i's output is the same bits
// whether it is computed with all queries, alone, or with a few others,
// and whatever the number of threads; padding between rows is left
// alone.
func TestAttentionDenseRowInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	c := attnCase{heads: 4, d: 32, qLen: 61, kLen: 61, pad: 3}
	a := newAttnData(r, c)
	w := c.heads * c.d
	for i := range a.out {
		a.out[i] = float32(math.NaN())
	}
	AttentionDense(a.p, a.q, c.qLen, a.ldq, a.k, a.ldk, a.v, a.ldv, c.kLen, a.out, a.ldo)
	all := append([]float32(nil), a.out...)
	for i := 0; i < c.qLen; i++ {
		for j := w; j < a.ldo && i*a.ldo+j < len(all); j++ {
			if !math.IsNaN(float64(all[i*a.ldo+j])) {
				t.Fatalf("padding (%d,%d) written", i, j)
			}
		}
	}
	prev := SetThreads(1)
	defer SetThreads(prev)
	for _, part := range [][2]int{{0, 1}, {7, 8}, {5, 19}, {60, 61}} {
		i0, n := part[0], part[1]-part[0]
		out := make([]float32, n*a.ldo)
		AttentionDense(a.p, a.q[i0*a.ldq:], n, a.ldq, a.k, a.ldk, a.v, a.ldv, c.kLen, out, a.ldo)
		for i := 0; i < n; i++ {
			for j := 0; j < w; j++ {
				if got, want := out[i*a.ldo+j], all[(i0+i)*a.ldo+j]; math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("queries [%d,%d), one thread: (%d,%d) = %v, all queries on the pool gave %v", part[0], part[1], i0+i, j, got, want)
				}
			}
		}
	}
}

// TestAttentionDenseEdges: no queries, no keys (zero rows), and the
// programming errors Attention also rejects.
func TestAttentionDenseEdges(t *testing.T) {
	p := AttentionParams{Heads: 2, HeadDim: 4, Scale: 0.5}
	out := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	AttentionDense(p, make([]float32, 8), 1, 8, nil, 8, nil, 8, 0, out, 8)
	for i, v := range out {
		if v != 0 {
			t.Fatalf("kLen 0: out[%d] = %v, want 0", i, v)
		}
	}
	AttentionDense(p, nil, 0, 8, nil, 8, nil, 8, 3, nil, 8) // no queries: nothing to do
	for _, tc := range []struct {
		name string
		p    AttentionParams
		q    []float32
		want string
	}{
		{"causal", AttentionParams{Heads: 2, HeadDim: 4, Causal: true}, make([]float32, 8), "causal"},
		{"no heads", AttentionParams{HeadDim: 4}, make([]float32, 8), "must be positive"},
		{"short q", p, make([]float32, 5), "len(q)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if msg, _ := recover().(string); !strings.Contains(msg, tc.want) {
					t.Fatalf("panic %q, want one mentioning %q", msg, tc.want)
				}
			}()
			AttentionDense(tc.p, tc.q, 1, 8, make([]float32, 8), 8, make([]float32, 8), 8, 1, make([]float32, 8), 8)
		})
	}
}
