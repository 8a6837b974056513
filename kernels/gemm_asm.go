//go:build !purego && amd64

package kernels

// Assembly kernels (gemm_amd64.s). See the comments there for the contract
// of each; the Go drivers in gemm.go guarantee every pointer covers the
// memory the kernel touches.

//go:noescape
func kern6x16(np, k int, a *float32, astride int, b, p *float32, ldp int, c *float32, ldc int, alpha float32, flags int)

//go:noescape
func kern12x32(np, k int, a *float32, astride int, b *float32, bstride int, p *float32, ldp int, c *float32, ldc int, alpha float32, flags int)

//go:noescape
func peakFMA512(iters int) float32

//go:noescape
func gemv8z(k int, x, b *float32, stride int, out *float32)

//go:noescape
func attnDotsT2AVX512(s0, s1, q0, q1, kt *float32, d, groups int, scale float32, bias *float32)

//go:noescape
func attnAxpy2AVX512(o0, o1, p0, p1, v *float32, ldv, n, d int)

// attnDotsT4AVX512 computes the scores of four queries (rows ldq floats
// apart from q) for groups ≤ 8 groups of 8 keys of one transposed key
// block, into four rows of 64 floats from s; attnAxpy4AVX512 adds n
// probability-weighted value rows into four output rows (ldo floats
// apart), the probabilities in four rows of 64 floats from p. Each query's
// arithmetic is that of attnDotsT2AVX512 and attnAxpy2AVX512.
//
//go:noescape
func attnDotsT4AVX512(s, q *float32, ldq int, kt *float32, d, groups int, scale float32, bias *float32)

//go:noescape
func attnAxpy4AVX512(o *float32, ldo int, p, v *float32, ldv, n, d int)

//go:noescape
func gemv4(k int, x, b *float32, stride int, out *float32)

//go:noescape
func gemv1(k int, x, b *float32, out *float32)

//go:noescape
func packT16(k8 int, src *float32, ld int, dst *float32)

//go:noescape
func packA6(k8 int, src *float32, ld int, dst *float32)

//go:noescape
func packN16(k int, src *float32, ld int, dst *float32)

//go:noescape
func peakFMA(iters int) float32

//go:noescape
func readSum(p *float32, n int) float32

func init() {
	if !hasAVX2FMA {
		return
	}
	microKernel = kern6x16
	gemvPanels = gemvPanelsAsm
	peakLoop = peakFMA
	readLoop = func(buf []float32) float32 {
		n := len(buf) &^ 63
		if n == 0 {
			return 0
		}
		return readSum(&buf[0], n)
	}
	kernelName = "avx2-fma 6x16"
	if hasAVX512 {
		microKernel2 = kern12x32
		peakLoop = peakFMA512
		attnDots2 = attnDotsT2AVX512
		attnAxpy2 = attnAxpy2AVX512
		attnDots4 = attnDotsT4AVX512
		expShiftSumVec = expShiftSumAVX512
		attnAxpy4 = attnAxpy4AVX512
		kernelName = "avx512 12x32 + avx2-fma 6x16"
	}
	packB16T = func(k int, src []float32, ld int, dst []float32) int {
		k8 := k &^ 7
		if k8 > 0 {
			_ = src[15*ld+k8-1] // bounds: 16 rows of k8
			_ = dst[k8*nr-1]
			packT16(k8, &src[0], ld, &dst[0])
		}
		return k8
	}
	packA6N = func(k int, src []float32, ld int, dst []float32) int {
		k8 := k &^ 7
		if k8 > 0 {
			_ = src[5*ld+k8-1] // bounds: 6 rows of k8
			_ = dst[k8*mr-1]
			packA6(k8, &src[0], ld, &dst[0])
		}
		return k8
	}
	packB16N = func(k int, src []float32, ld int, dst []float32) {
		_ = src[(k-1)*ld+nr-1]
		_ = dst[k*nr-1]
		packN16(k, &src[0], ld, &dst[0])
	}
}

// gemvPanelsAsm computes raw sums for panels [q0, q1) of the packed B:
// out[(q-q0)*nr + j] = Σ_p x[p]·B_q[p][j].
func gemvPanelsAsm(k int, x []float32, b []float32, q0, q1 int, out []float32) {
	stride := k * nr
	q := q0
	if hasAVX512 {
		for ; q+8 <= q1; q += 8 {
			gemv8z(k, &x[0], &b[q*stride], stride, &out[(q-q0)*nr : (q-q0+8)*nr][0])
		}
	}
	for ; q+4 <= q1; q += 4 {
		gemv4(k, &x[0], &b[q*stride], stride, &out[(q-q0)*nr : (q-q0+4)*nr][0])
	}
	for ; q < q1; q++ {
		gemv1(k, &x[0], &b[q*stride], &out[(q-q0)*nr : (q-q0+1)*nr][0])
	}
}
