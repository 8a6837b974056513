package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"
)

// randMat returns n random floats in ±[0.1, 1) (never zero).
func randMat(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		v := 0.1 + 0.9*rng.Float32()
		if rng.Intn(2) == 0 {
			v = -v
		}
		x[i] = v
	}
	return x
}

func nanMat(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.NaN())
	}
	return x
}

// refGemm is the float64 reference: C = alpha·op(A)·op(B) + beta·C.
func refGemm(transA, transB bool, m, n, k int, alpha float64, a []float32, lda int, b []float32, ldb int, beta float64, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			v := alpha * s
			if beta != 0 {
				v += beta * float64(c[i*ldc+j])
			}
			out[i*n+j] = v
		}
	}
	return out
}

// relErr returns ‖out−ref‖/‖ref‖ over the m×n view of out (ld ldc); NaN
// anywhere makes it +Inf.
func relErr(out []float32, ldc int, ref []float64, m, n int) float64 {
	var num, den float64
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			o := float64(out[i*ldc+j])
			if math.IsNaN(o) || math.IsInf(o, 0) {
				return math.Inf(1)
			}
			d := o - ref[i*n+j]
			num += d * d
			den += ref[i*n+j] * ref[i*n+j]
		}
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

type gemmCase struct {
	m, n, k     int
	pad         int // extra leading-dimension padding (strided views)
	alpha, beta float32
}

// storeDims returns the stored rows, cols of op(X) rows×cols.
func storeDims(trans bool, rows, cols int) (int, int) {
	if trans {
		return cols, rows
	}
	return rows, cols
}

func runGemmCase(t *testing.T, rng *rand.Rand, tc gemmCase, transA, transB, packed bool) {
	t.Helper()
	m, n, k := tc.m, tc.n, tc.k
	ar, ac := storeDims(transA, m, k)
	br, bc := storeDims(transB, k, n)
	lda, ldb, ldc := ac+tc.pad, bc+tc.pad, n+tc.pad
	a := randMat(rng, max(ar*lda, 1))
	b := randMat(rng, max(br*ldb, 1))
	var c []float32
	if tc.beta == 0 {
		c = nanMat(m * ldc) // must not be read
	} else {
		c = randMat(rng, m*ldc)
		for i := 0; i < m; i++ { // poison the gaps between rows
			for j := n; j < ldc; j++ {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	ref := refGemm(transA, transB, m, n, k, float64(tc.alpha), a, lda, b, ldb, float64(tc.beta), c, ldc)
	if packed {
		pb := PackB(transB, k, n, b, ldb)
		GemmPacked(m, tc.alpha, a, lda, pb, tc.beta, c, ldc)
	} else {
		Gemm(transA, transB, m, n, k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	}
	if e := relErr(c, ldc, ref, m, n); !(e <= 1e-5) {
		t.Fatalf("m=%d n=%d k=%d transA=%v transB=%v packed=%v alpha=%v beta=%v pad=%d: rel err %g > 1e-5",
			m, n, k, transA, transB, packed, tc.alpha, tc.beta, tc.pad, e)
	}
	for i := 0; i < m; i++ { // padding between rows untouched
		for j := n; j < ldc; j++ {
			if v := c[i*ldc+j]; !math.IsNaN(float64(v)) {
				t.Fatalf("m=%d n=%d k=%d: wrote C[%d][%d] = %v outside the view", m, n, k, i, j, v)
			}
		}
	}
}

func TestGemmShapes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	cases := []gemmCase{
		{1, 1, 1, 0, 1, 0},
		{1, 3, 7, 2, 1, 0},
		{3, 7, 17, 1, 0.5, 0},
		{7, 17, 3, 0, 1, 1},
		{6, 16, 256, 0, 1, 0},
		{12, 32, 257, 3, -1.5, 0.25},
		{17, 64, 197, 5, 1, 0},
		{64, 197, 577, 0, 1, 0},
		{197, 769, 64, 3, 2, -1},
		{13, 70, 769, 1, 1, 0},
		{145, 33, 300, 2, 0.75, 0},
		{5, 3072, 17, 1, 1, 0.5},
		{2, 300, 3072, 0, 1, 0},
		{0, 5, 5, 0, 1, 0},
		{5, 0, 5, 0, 1, 0},
	}
	for _, tc := range cases {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				t.Run(fmt.Sprintf("%dx%dx%d_tA%v_tB%v_b%v", tc.m, tc.n, tc.k, ta, tb, tc.beta), func(t *testing.T) {
					runGemmCase(t, rng, tc, ta, tb, false)
					if !ta {
						runGemmCase(t, rng, tc, ta, tb, true)
					}
				})
			}
		}
	}
}

// TestGemmLarge covers the long-K and wide-N shapes once each.
func TestGemmLarge(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	runGemmCase(t, rng, gemmCase{197, 200, 3072, 1, 1, 0}, false, true, false)
	runGemmCase(t, rng, gemmCase{1, 30524, 64, 0, 1, 0}, false, false, true)
	runGemmCase(t, rng, gemmCase{3, 30524, 33, 2, 1, 0.5}, false, true, true)
	runGemmCase(t, rng, gemmCase{1, 769, 4096, 0, 1, 0}, false, true, true)
	runGemmCase(t, rng, gemmCase{577, 96, 97, 0, 1, 0}, true, false, false)
}

func TestGemmZeroK(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Gemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0.5, c, 2)
	for i, want := range []float32{0.5, 1, 1.5, 2} {
		if c[i] != want {
			t.Fatalf("k=0: C[%d] = %v, want %v", i, c[i], want)
		}
	}
	c = nanMat(4)
	Gemm(true, true, 2, 2, 0, 1, nil, 2, nil, 1, 0, c, 2)
	for i, v := range c {
		if v != 0 {
			t.Fatalf("k=0 beta=0: C[%d] = %v, want 0", i, v)
		}
	}
}

// TestGemmNaNInf checks that NaN and Inf in A or B propagate, including
// through zero multipliers (0·Inf = NaN), in the GEMM and GEMV paths.
func TestGemmNaNInf(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, m := range []int{1, 7} {
		m, n, k := m, 40, 300
		a := randMat(rng, m*k)
		b := randMat(rng, k*n)
		a[0*k+5] = float32(math.NaN()) // row 0 → NaN
		b[7*n+3] = float32(math.Inf(1))
		a[(m-1)*k+7] = 0 // 0·Inf in row m-1, column 3
		if m > 1 {
			a[1*k+7] = 1 // row 1 sees +Inf in column 3
		}
		c := nanMat(m * n)
		GemmPacked(m, 1, a, k, PackB(false, k, n, b, n), 0, c, n)
		c2 := nanMat(m * n)
		Gemm(false, false, m, n, k, 1, a, k, b, n, 0, c2, n)
		for _, out := range [][]float32{c, c2} {
			for j := 0; j < n; j++ {
				if !math.IsNaN(float64(out[j])) {
					t.Fatalf("m=%d: C[0][%d] = %v, want NaN from A", m, j, out[j])
				}
			}
			if v := out[(m-1)*n+3]; !math.IsNaN(float64(v)) {
				t.Fatalf("m=%d: 0·Inf gave C[%d][3] = %v, want NaN", m, m-1, v)
			}
			if m > 1 {
				if v := out[1*n+3]; !math.IsInf(float64(v), 0) && !math.IsNaN(float64(v)) {
					t.Fatalf("m=%d: C[1][3] = %v, want ±Inf", m, v)
				}
				if v := out[1*n+4]; math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("m=%d: C[1][4] = %v, want finite", m, v)
				}
			}
		}
	}
}

// TestBatchInvariance: row i of an M-row product equals, bit for bit, the
// 1-row product of row i, for Gemm (all transposes) and GemmPacked, and
// Gemm equals GemmPacked. K spans several K blocks plus a tail; N has an
// edge panel.
func TestBatchInvariance(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	n, k := 50, 2*kc+77
	for _, tb := range []bool{false, true} {
		br, bc := storeDims(tb, k, n)
		b := randMat(rng, br*bc)
		pb := PackB(tb, k, n, b, bc)
		for _, beta := range []float32{0, 0.5} {
			for _, m := range []int{1, 2, 5, 6, 7, 13, 64, 197} {
				a := randMat(rng, m*k)
				c0 := randMat(rng, m*n)
				full := append([]float32(nil), c0...)
				GemmPacked(m, 1.25, a, k, pb, beta, full, n)
				viaGemm := append([]float32(nil), c0...)
				Gemm(false, tb, m, n, k, 1.25, a, k, b, bc, beta, viaGemm, n)
				// transposed A holding the same op(A)
				at := make([]float32, k*m)
				for i := 0; i < m; i++ {
					for p := 0; p < k; p++ {
						at[p*m+i] = a[i*k+p]
					}
				}
				viaGemmT := append([]float32(nil), c0...)
				Gemm(true, tb, m, n, k, 1.25, at, m, b, bc, beta, viaGemmT, n)
				for i := 0; i < m; i++ {
					row := append([]float32(nil), c0[i*n:(i+1)*n]...)
					GemmPacked(1, 1.25, a[i*k:(i+1)*k], k, pb, beta, row, n)
					for j := 0; j < n; j++ {
						want := math.Float32bits(row[j])
						for name, got := range map[string]float32{"GemmPacked": full[i*n+j], "Gemm": viaGemm[i*n+j], "Gemm(transA)": viaGemmT[i*n+j]} {
							if math.Float32bits(got) != want {
								t.Fatalf("transB=%v beta=%v m=%d: %s row %d col %d = %v, 1-row GEMV gives %v",
									tb, beta, m, name, i, j, got, row[j])
							}
						}
					}
				}
			}
		}
	}
}

// TestThreadsInvariance: the result does not depend on the thread count.
func TestThreadsInvariance(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	m, n, k := 150, 300, 600
	a := randMat(rng, m*k)
	b := randMat(rng, k*n)
	prev := SetThreads(1)
	defer SetThreads(prev)
	c1 := nanMat(m * n)
	Gemm(false, true, m, n, k, 1, a, k, b, k, 0, c1, n)
	SetThreads(3)
	if Threads() != 3 {
		t.Fatalf("Threads() = %d after SetThreads(3)", Threads())
	}
	c3 := nanMat(m * n)
	Gemm(false, true, m, n, k, 1, a, k, b, k, 0, c3, n)
	for i := range c1 {
		if math.Float32bits(c1[i]) != math.Float32bits(c3[i]) {
			t.Fatalf("element %d: %v with 1 thread, %v with 3", i, c1[i], c3[i])
		}
	}
}

// TestGemmConcurrent: many goroutines multiplying at once get the results
// a lone caller gets (run with -race).
func TestGemmConcurrent(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	type prob struct {
		m, n, k int
		a, b    []float32
		pb      *PackedB
		want    []float32
	}
	var probs []prob
	for _, s := range [][3]int{{1, 700, 300}, {3, 64, 40}, {70, 130, 300}, {200, 90, 64}, {9, 9, 9}} {
		p := prob{m: s[0], n: s[1], k: s[2]}
		p.a = randMat(rng, p.m*p.k)
		p.b = randMat(rng, p.k*p.n)
		p.pb = PackB(false, p.k, p.n, p.b, p.n)
		p.want = make([]float32, p.m*p.n)
		Gemm(false, false, p.m, p.n, p.k, 1, p.a, p.k, p.b, p.n, 0, p.want, p.n)
		probs = append(probs, p)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for it := 0; it < 6; it++ {
				p := probs[(g+it)%len(probs)]
				c := nanMat(p.m * p.n)
				if (g+it)%2 == 0 {
					GemmPacked(p.m, 1, p.a, p.k, p.pb, 0, c, p.n)
				} else {
					Gemm(false, false, p.m, p.n, p.k, 1, p.a, p.k, p.b, p.n, 0, c, p.n)
				}
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(p.want[i]) {
						errs <- fmt.Sprintf("goroutine %d, %dx%dx%d: element %d = %v, want %v", g, p.m, p.n, p.k, i, c[i], p.want[i])
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestGemmBadInputPanics(t *testing.T) {
	a := make([]float32, 12)
	cases := []struct {
		name string
		want string
		f    func()
	}{
		{"negative", "negative dimension", func() { Gemm(false, false, -1, 2, 2, 1, a, 2, a, 2, 0, a, 2) }},
		{"lda", "lda", func() { Gemm(false, false, 2, 2, 3, 1, a, 2, a, 2, 0, a, 2) }},
		{"short B", "B has 12 elements", func() { Gemm(false, true, 2, 5, 3, 1, a, 3, a, 3, 0, a, 5) }},
		{"short C", "C has", func() { GemmPacked(3, 1, a, 2, PackB(false, 2, 5, a, 5), 0, a[:10], 5) }},
		{"nil packed", "nil *PackedB", func() { GemmPacked(1, 1, a, 2, nil, 0, a, 2) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatalf("no panic")
				}
				if !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Fatalf("panic %q does not mention %q", r, tc.want)
				}
			}()
			tc.f()
		})
	}
}

func TestLinearForward(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	in, out, rows := 37, 53, 5
	w := randMat(rng, out*in) // [out, in]
	bias := randMat(rng, out)
	x := randMat(rng, rows*in)
	for _, l := range []*Linear{NewLinear(w, out, in, bias), NewLinearInOut(transpose(w, out, in), in, out, bias)} {
		if l.In() != in || l.Out() != out {
			t.Fatalf("In/Out = %d/%d, want %d/%d", l.In(), l.Out(), in, out)
		}
		y := nanMat(rows * out)
		l.Forward(y, x, rows, ActNone)
		ref := refGemm(false, true, rows, out, in, 1, x, in, w, in, 0, nil, out)
		for r := 0; r < rows; r++ {
			for j := 0; j < out; j++ {
				ref[r*out+j] += float64(bias[j])
			}
		}
		if e := relErr(y, out, ref, rows, out); !(e <= 1e-5) {
			t.Fatalf("Linear.Forward rel err %g", e)
		}
	}
}

// TestLinearForwardLD: strided rows in and out give, row for row, the
// bits of Forward on contiguous copies, and leave the gaps alone.
func TestLinearForwardLD(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	in, out := 24, 40
	l := NewLinear(randMat(rng, out*in), out, in, randMat(rng, out))
	for _, rows := range []int{1, 3, 13} {
		ldx, ldy := in+9, out+5
		xs := randMat(rng, rows*ldx)
		x := make([]float32, rows*in)
		for r := 0; r < rows; r++ {
			copy(x[r*in:(r+1)*in], xs[r*ldx:])
		}
		want := make([]float32, rows*out)
		l.Forward(want, x, rows, ActGELU)
		ys := nanMat(rows * ldy)
		l.ForwardLD(ys, ldy, xs, ldx, rows, ActGELU)
		for r := 0; r < rows; r++ {
			for j := 0; j < ldy; j++ {
				got := ys[r*ldy+j]
				if j >= out {
					if !math.IsNaN(float64(got)) {
						t.Fatalf("rows %d: gap (%d,%d) written", rows, r, j)
					}
					continue
				}
				if math.Float32bits(got) != math.Float32bits(want[r*out+j]) {
					t.Fatalf("rows %d: (%d,%d) = %v, Forward gives %v", rows, r, j, got, want[r*out+j])
				}
			}
		}
	}
}

func transpose(x []float32, r, c int) []float32 {
	t := make([]float32, r*c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			t[j*r+i] = x[i*c+j]
		}
	}
	return t
}

func TestProbes(t *testing.T) {
	if got := PeakFMALoop(1000); got != 1000*FlopsPerPeakIter {
		t.Fatalf("PeakFMALoop(1000) = %v flops, want %v", got, 1000*FlopsPerPeakIter)
	}
	if got := PeakFMALoop(0); got != 0 {
		t.Fatalf("PeakFMALoop(0) = %v", got)
	}
	for _, n := range []int{0, 5, 64, 1000, 4099} {
		buf := make([]float32, n)
		for i := range buf {
			buf[i] = float32(i%7) + 0.5
		}
		var want float64
		for _, v := range buf {
			want += float64(v)
		}
		if got := ReadBandwidthLoop(buf); float64(got) != want {
			t.Fatalf("ReadBandwidthLoop(len %d) = %v, want %v", n, got, want)
		}
	}
	if KernelName() == "" {
		t.Fatal("empty KernelName")
	}
}

// TestPackLayouts checks the packed layouts element by element (the
// assembly packers handle 8-column blocks, Go the tails and edges).
func TestPackLayouts(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	for _, s := range [][2]int{{13, 21}, {6, 8}, {17, 3}, {33, 40}} {
		rows, k := s[0], s[1]
		for _, trans := range []bool{false, true} {
			// A: op(A) rows×k.
			sr, sc := storeDims(trans, rows, k)
			a := randMat(rng, sr*(sc+2))
			np := (rows + mr - 1) / mr
			dst := nanMat(np * k * mr)
			packAPanels(dst, trans, rows, k, a, sc+2, 0, np)
			for r := 0; r < np; r++ {
				for p := 0; p < k; p++ {
					for i := 0; i < mr; i++ {
						var want float32
						if row := r*mr + i; row < rows {
							if trans {
								want = a[p*(sc+2)+row]
							} else {
								want = a[row*(sc+2)+p]
							}
						}
						if got := dst[r*k*mr+p*mr+i]; got != want {
							t.Fatalf("A %dx%d trans=%v: panel %d p %d row %d = %v, want %v", rows, k, trans, r, p, i, got, want)
						}
					}
				}
			}
			// B: op(B) k×cols with cols = rows+7.
			cols := rows + 7
			br, bc := storeDims(trans, k, cols)
			b := randMat(rng, br*(bc+1))
			nq := (cols + nr - 1) / nr
			dstB := nanMat(nq * k * nr)
			packBPanels(dstB, trans, k, cols, b, bc+1, 0, nq)
			for q := 0; q < nq; q++ {
				for p := 0; p < k; p++ {
					for j := 0; j < nr; j++ {
						var want float32
						if col := q*nr + j; col < cols {
							if trans {
								want = b[col*(bc+1)+p]
							} else {
								want = b[p*(bc+1)+col]
							}
						}
						if got := dstB[q*k*nr+p*nr+j]; got != want {
							t.Fatalf("B %dx%d trans=%v: panel %d p %d col %d = %v, want %v", k, cols, trans, q, p, j, got, want)
						}
					}
				}
			}
		}
	}
}

// TestWideKernelSameBits: the two-panel micro-kernel and the eight-panel
// GEMV (AVX-512 where the CPU has it) give the same bits as the 6×16 and
// AVX2 GEMV kernels alone, on shapes
// that exercise odd row panels, odd column panels, edges, long K and beta.
func TestWideKernelSameBits(t *testing.T) {
	if microKernel2 == nil {
		t.Skip("no two-panel micro-kernel on this CPU/build")
	}
	rng := rand.New(rand.NewSource(9))
	for _, s := range []struct {
		m, n, k     int
		alpha, beta float32
	}{
		{2, 32, 5, 1, 0}, {6, 32, 256, 1, 0}, {12, 64, 257, 1.5, 0.5}, {13, 47, 300, 1, 1},
		{18, 96, 768, 1, 0}, {31, 200, 1100, -0.5, 2}, {197, 2304, 64, 1, 0}, {577, 80, 3072, 1, 0},
		{1, 300, 700, 1, 0}, {1, 2304, 768, 0.5, 1}, // GEMV: eight-panel zmm kernel
	} {
		a, b := randMat(rng, s.m*s.k), randMat(rng, s.k*s.n)
		c0 := randMat(rng, s.m*s.n)
		pb := PackB(true, s.k, s.n, b, s.k)
		run := func() ([]float32, []float32) {
			c1 := append([]float32(nil), c0...)
			GemmPacked(s.m, s.alpha, a, s.k, pb, s.beta, c1, s.n)
			c2 := append([]float32(nil), c0...)
			Gemm(false, true, s.m, s.n, s.k, s.alpha, a, s.k, b, s.k, s.beta, c2, s.n)
			return c1, c2
		}
		wide1, wide2 := run()
		saved, saved512 := microKernel2, hasAVX512
		microKernel2, hasAVX512 = nil, false
		narrow1, narrow2 := run()
		microKernel2, hasAVX512 = saved, saved512
		for i := range wide1 {
			if math.Float32bits(wide1[i]) != math.Float32bits(narrow1[i]) || math.Float32bits(wide2[i]) != math.Float32bits(narrow2[i]) {
				t.Fatalf("%dx%dx%d beta %v: element %d: wide kernel %v/%v, 6x16 kernel %v/%v",
					s.m, s.n, s.k, s.beta, i, wide1[i], wide2[i], narrow1[i], narrow2[i])
			}
		}
	}
}

// TestLinearWeightRows: the weights read back from the packed copy are the
// ones packed, bit for bit, for both weight layouts and edge panels.
func TestLinearWeightRows(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	out, in := 37, 70
	w := randMat(rng, out*in) // [out, in]
	wt := make([]float32, in*out)
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			wt[i*out+o] = w[o*in+i]
		}
	}
	ids := []int{0, 5, 15, 16, 36, 5}
	for name, l := range map[string]*Linear{"NewLinear": NewLinear(w, out, in, nil), "NewLinearInOut": NewLinearInOut(wt, in, out, nil)} {
		dst := nanMat(len(ids) * in)
		l.WeightRows(dst, ids)
		for r, o := range ids {
			for i := 0; i < in; i++ {
				if math.Float32bits(dst[r*in+i]) != math.Float32bits(w[o*in+i]) {
					t.Fatalf("%s: row %d (id %d) col %d = %v, want %v", name, r, o, i, dst[r*in+i], w[o*in+i])
				}
			}
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: id out of range did not panic", name)
				}
			}()
			l.WeightRows(dst, []int{out})
		}()
	}
}
