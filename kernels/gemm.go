package kernels

// Gemm computes C = alpha·op(A)·op(B) + beta·C where op(X) is X or Xᵀ.
//
// op(A) is m×k, op(B) is k×n and C is m×n, all row-major with leading
// dimensions lda, ldb and ldc. When transA is false, A is m×k (lda ≥ k);
// when true, A is stored k×m (lda ≥ m). Likewise B is k×n (ldb ≥ n) or,
// transposed, n×k (ldb ≥ k). When beta is 0, C is not read (NaN in C does
// not propagate); otherwise it is scaled. Scalar definition:
//
//	C[i][j] = alpha * Σ_p opA[i][p]*opB[p][j] + beta*C[i][j]
//
// with the sum accumulated in float32 in increasing p.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
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
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// PackedB is a constant k×n right-hand operand packed once (typically a
// weight matrix at model load) for repeated products with GemmPacked.
type PackedB struct {
	k, n int
	data []float32 // k×n row-major copy (reference layout)
}

// PackB packs op(B) (k×n; B stored n×k when transB) for reuse. The input
// slice is not retained.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	p := &PackedB{k: k, n: n, data: make([]float32, k*n)}
	for i := 0; i < k; i++ {
		for j := 0; j < n; j++ {
			if transB {
				p.data[i*n+j] = b[j*ldb+i]
			} else {
				p.data[i*n+j] = b[i*ldb+j]
			}
		}
	}
	return p
}

// K returns the inner dimension of the packed operand.
func (p *PackedB) K() int { return p.k }

// N returns the number of columns of the packed operand.
func (p *PackedB) N() int { return p.n }

// GemmPacked computes C = alpha·A·B + beta·C with A m×k (not transposed,
// leading dimension lda) and B packed by PackB. With m = 1 it is the
// decode-time matrix–vector product. Row i of the result is bit-for-bit
// the same whatever m is (batch invariance).
func GemmPacked(m int, alpha float32, a []float32, lda int, b *PackedB, beta float32, c []float32, ldc int) {
	Gemm(false, false, m, b.n, b.k, alpha, a, lda, b.data, b.n, beta, c, ldc)
}
