package kernels

import (
	"fmt"
	"runtime"
	"sync"
)

// Blocking parameters, chosen for Zen 3 (L1d 32 KiB, L2 512 KiB, L3 32 MiB).
const (
	mr = 6   // micro-tile rows: 6×16 floats = 12 ymm accumulators
	nr = 16  // micro-tile columns: two ymm registers
	kc = 256 // K block: a kc×nr B micro-panel (16 KiB) stays in L1
	mc = 144 // maximum rows per tile: a mc×kc A block (144 KiB) stays in L2
	nc = 64  // columns per tile (4 panels): the k×nc B tile stays in L2 across row blocks

	// Columns per task when Gemm packs B as it goes: the packed k×ncLazy
	// tile (192 KiB at k = 768) stays in L2 while all row blocks use it.
	ncLazy = 64

	// For k > ncLongK the k×nc B tile cannot stay in L2 anyway; wider
	// tiles then cut how often each A block is fetched again.
	ncLongK = 1024
	ncLong  = 256

	// Products below this many flops (2·m·n·k) run on the calling
	// goroutine: a hand-off to the pool costs a few microseconds.
	parallelFlops = 1 << 21
	// GEMV over fewer weight bytes than this runs on the calling goroutine.
	parallelGemvBytes = 1 << 18
)

// Gemm computes C = alpha·op(A)·op(B) + beta·C where op(X) is X or Xᵀ.
//
// op(A) is m×k, op(B) is k×n and C is m×n, all row-major with leading
// dimensions lda, ldb and ldc. When transA is false, A is stored m×k
// (lda ≥ k); when true, A is stored k×m (lda ≥ m). Likewise B is stored k×n
// (ldb ≥ n) or, transposed, n×k (ldb ≥ k); ldc ≥ n. Scalar definition:
//
//	s = 0
//	for p = 0 … k-1:  s = s + opA[i][p]·opB[p][j]
//	C[i][j] = fl(alpha·s) + fl(beta·C[i][j])   (beta ≠ 0)
//	C[i][j] = fl(alpha·s)                      (beta = 0: C is not read)
//
// The sum runs in float32 in increasing p, one fixed order whatever m is:
// with the AVX2+FMA kernels each step is one fused multiply-add (single
// rounding); in the pure-Go build (-tags purego, or other CPUs) the product
// is rounded, then added. So row i of the result is bit for bit the same as
// the 1-row product of row i of op(A) (batch invariance), also through
// GemmPacked and its m = 1 GEMV path. NaN and Inf in A or B propagate.
//
// Gemm packs op(B) on every call; for a constant B (a weight) use PackB
// once and GemmPacked. Large products run on the worker pool (see
// SetThreads). Gemm panics, with a message naming the argument, if a
// dimension is negative, a leading dimension is too small, or a slice is
// too short for the dimensions (a programming error, like an index out of
// range).
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkDims("Gemm", m, n, k)
	checkMat("Gemm", "A", "lda", transA, m, k, a, lda)
	checkMat("Gemm", "B", "ldb", transB, k, n, b, ldb)
	checkMat("Gemm", "C", "ldc", false, m, n, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleOnly(m, n, alpha, beta, c, ldc)
		return
	}
	if m > 1 && 2*m*n*k >= parallelFlops {
		// Large product: each task packs the B columns it needs into a
		// small cache-resident buffer right before using them.
		gemmDriver(m, n, k, alpha, transA, a, lda, nil, &bSource{transB, b, ldb}, beta, c, ldc)
		return
	}
	np := (n + nr - 1) / nr
	bb := getFloats(np * k * nr)
	packBPanels(bb.f, transB, k, n, b, ldb, 0, np)
	gemmDriver(m, n, k, alpha, transA, a, lda, bb.f, nil, beta, c, ldc)
	putFloats(bb)
}

// bSource is an unpacked op(B) that Gemm packs tile by tile.
type bSource struct {
	trans bool
	b     []float32
	ld    int
}

// PackedB is a constant k×n right-hand operand packed once (typically a
// weight matrix at model load) for repeated products with GemmPacked. It
// holds op(B) in the micro-kernel's column-panel layout: ⌈n/16⌉ panels of
// k rows × 16 floats, zero-padded. It is immutable and safe for concurrent
// use.
type PackedB struct {
	k, n int
	data []float32
}

// PackB packs op(B) (k×n; B stored k×n with ldb ≥ n, or n×k with ldb ≥ k
// when transB) for reuse: GemmPacked(…, PackB(transB, k, n, b, ldb), …)
// computes exactly what Gemm(false, transB, …, b, ldb, …) computes. The
// input slice is not retained. PackB panics on bad dimensions like Gemm.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	checkDims("PackB", 1, n, k)
	checkMat("PackB", "B", "ldb", transB, k, n, b, ldb)
	np := (n + nr - 1) / nr
	p := &PackedB{k: k, n: n, data: alignedFloats(np * k * nr)}
	if k > 0 {
		parallelFor(np, 8, func(lo, hi int) { packBPanels(p.data[lo*k*nr:], transB, k, n, b, ldb, lo, hi) })
	}
	return p
}

// K returns the inner dimension of the packed operand.
func (p *PackedB) K() int { return p.k }

// N returns the number of columns of the packed operand.
func (p *PackedB) N() int { return p.n }

// Bytes returns the size of the packed data in bytes (what one GEMV reads).
func (p *PackedB) Bytes() int { return 4 * len(p.data) }

// GemmPacked computes C = alpha·A·B + beta·C with A m×k (not transposed,
// leading dimension lda ≥ k), B = b packed by PackB (k×n) and C m×n
// (ldc ≥ n), with the scalar definition of Gemm. With m = 1 it is the
// decode-time matrix–vector product: a GEMV that streams each packed weight
// once, in parallel over column panels. Row i of the result is bit for bit
// the same whatever m is (batch invariance), and the same as Gemm's.
// GemmPacked panics on bad dimensions like Gemm.
func GemmPacked(m int, alpha float32, a []float32, lda int, b *PackedB, beta float32, c []float32, ldc int) {
	if b == nil {
		panic("kernels: GemmPacked: nil *PackedB (pack the weight with PackB first)")
	}
	n, k := b.n, b.k
	checkDims("GemmPacked", m, n, k)
	checkMat("GemmPacked", "A", "lda", false, m, k, a, lda)
	checkMat("GemmPacked", "C", "ldc", false, m, n, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleOnly(m, n, alpha, beta, c, ldc)
		return
	}
	gemmDriver(m, n, k, alpha, false, a, lda, b.data, nil, beta, c, ldc)
	// b's data may be mapped memory released by a cleanup once b is
	// unreachable (weights packed by NewLinear): keep b alive until here.
	runtime.KeepAlive(b)
}

func checkDims(fn string, m, n, k int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: %s: negative dimension (m=%d n=%d k=%d)", fn, m, n, k))
	}
}

// checkMat checks that x holds op(X), rows×cols, stored with leading
// dimension ld (stored cols×rows when trans).
func checkMat(fn, name, ldName string, trans bool, rows, cols int, x []float32, ld int) {
	sr, sc := rows, cols
	if trans {
		sr, sc = cols, rows
	}
	if sr == 0 || sc == 0 {
		return // empty: nothing is read or written
	}
	if ld < sc {
		panic(fmt.Sprintf("kernels: %s: %s = %d is smaller than the %d columns of %s as stored (transposed=%v); pass %s ≥ %d",
			fn, ldName, ld, sc, name, trans, ldName, sc))
	}
	if need := (sr-1)*ld + sc; len(x) < need {
		panic(fmt.Sprintf("kernels: %s: %s has %d elements, need %d for %d×%d stored with %s = %d",
			fn, name, len(x), need, sr, sc, ldName, ld))
	}
}

// scaleOnly handles k = 0: C = fl(alpha·0) + fl(beta·C).
func scaleOnly(m, n int, alpha, beta float32, c []float32, ldc int) {
	z := float32(alpha * 0)
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			if beta == 0 {
				row[j] = z
			} else {
				row[j] = z + float32(beta*row[j])
			}
		}
	}
}

// epilogue writes C = fl(alpha·s) (+ fl(beta·C)) for one row segment from
// raw sums s. It performs the same float32 operations as the micro-kernel's
// final block, so either may produce any element.
func epilogue(c, s []float32, alpha, beta float32) {
	c = c[:len(s)]
	switch {
	case beta == 0:
		for j, v := range s {
			c[j] = float32(alpha * v)
		}
	case beta == 1:
		for j, v := range s {
			c[j] = float32(alpha*v) + c[j]
		}
	default:
		for j, v := range s {
			c[j] = float32(alpha*v) + float32(beta*c[j])
		}
	}
}

// gemmDriver is the driver: C = alpha·op(A)·B + beta·C with B packed in
// panels (bp), or, when bp is nil, packed from src one column tile at a
// time (then m > 1). m, n, k > 0.
func gemmDriver(m, n, k int, alpha float32, transA bool, a []float32, lda int, bp []float32, src *bSource, beta float32, c []float32, ldc int) {
	if m == 1 && !transA {
		gemv(n, k, alpha, a[:k], bp, beta, c[:n])
		return
	}
	if m == 1 { // op(A) is a strided column of A: gather it.
		x := getFloats(k)
		for p := range x.f {
			x.f[p] = a[p*lda]
		}
		gemv(n, k, alpha, x.f, bp, beta, c[:n])
		putFloats(x)
		return
	}

	serial := 2*m*n*k < parallelFlops

	// op(A) is packed once, row block by row block, by the first tile
	// that needs each block (see ensureA).
	nPanA := (m + mr - 1) / mr
	ab := getFloats(nPanA * k * mr)

	// Tiles: row blocks of ≤ mc rows (balanced, multiples of mr) × column
	// tiles of nc columns. K is never split across tiles.
	nRB := (m + mc - 1) / mc
	rbPanels := ((m+nRB-1)/nRB + mr - 1) / mr // panels per row block
	nRB = (nPanA + rbPanels - 1) / rbPanels
	np := (n + nr - 1) / nr
	ctPanels := nc / nr
	switch {
	case src != nil:
		ctPanels = ncLazy / nr // tasks span all rows: keep them many
	case k > ncLongK:
		ctPanels = ncLong / nr
	}
	nCT := (np + ctPanels - 1) / ctPanels

	t := &gemmTask{
		m: m, n: n, k: k, alpha: alpha, beta: beta,
		ap: ab.f, bp: bp, src: src, c: c, ldc: ldc,
		rbPanels: rbPanels, ctPanels: ctPanels, nRB: nRB, nPanA: nPanA, np: np,
		transA: transA, a: a, lda: lda, aDone: make([]sync.Once, nRB),
	}
	switch {
	case src != nil:
		// One task per column tile, over all row blocks.
		parallelTiles(nCT, t.lazyTiles)
	case serial:
		t.tiles(0, nRB*nCT)
	default:
		parallelTiles(nRB*nCT, t.tiles)
	}
	putFloats(ab)
}

type gemmTask struct {
	m, n, k     int
	alpha, beta float32
	ap, bp      []float32
	src         *bSource
	c           []float32
	ldc         int

	rbPanels, ctPanels int
	nRB, nPanA, np     int

	// Unpacked op(A), packed into ap one row block at a time.
	transA bool
	a      []float32
	lda    int
	aDone  []sync.Once
}

// ensureA packs row block rb of op(A) into t.ap unless that is done; a
// tile that needs a block another goroutine is packing waits for it.
func (t *gemmTask) ensureA(rb int) {
	t.aDone[rb].Do(func() {
		r0 := rb * t.rbPanels
		packAPanels(t.ap, t.transA, t.m, t.k, t.a, t.lda, r0, min(r0+t.rbPanels, t.nPanA))
	})
}

// tiles computes tiles [lo, hi). Tile t covers row block t%nRB and column
// tile t/nRB (row blocks innermost, so consecutive tiles share B).
func (t *gemmTask) tiles(lo, hi int) {
	scratch := getFloats(t.rbPanels * mr * t.ctPanels * nr)
	for ti := lo; ti < hi; ti++ {
		rb, ct := ti%t.nRB, ti/t.nRB
		r0 := rb * t.rbPanels
		r1 := min(r0+t.rbPanels, t.nPanA)
		q0 := ct * t.ctPanels
		q1 := min(q0+t.ctPanels, t.np)
		t.ensureA(rb)
		t.tile(r0, r1, q0, q1, t.bp, 0, scratch.f)
	}
	putFloats(scratch)
}

// lazyTiles computes column tiles [lo, hi) over all rows, packing each
// tile's B panels first (Gemm's path: the packed tile, k × ncLazy floats,
// stays in L2 while every row block uses it).
func (t *gemmTask) lazyTiles(lo, hi int) {
	scratch := getFloats(t.rbPanels * mr * t.ctPanels * nr)
	bt := getFloats(t.k * t.ctPanels * nr)
	for ct := lo; ct < hi; ct++ {
		q0 := ct * t.ctPanels
		q1 := min(q0+t.ctPanels, t.np)
		packBPanels(bt.f, t.src.trans, t.k, t.n, t.src.b, t.src.ld, q0, q1)
		for i := 0; i < t.nRB; i++ {
			rb := (i + ct) % t.nRB // staggered, so tasks pack different A blocks first
			r0 := rb * t.rbPanels
			t.ensureA(rb)
			t.tile(r0, min(r0+t.rbPanels, t.nPanA), q0, q1, bt.f, q0, scratch.f)
		}
	}
	putFloats(bt)
	putFloats(scratch)
}

// tile computes C for row panels [r0, r1) × column panels [q0, q1); B
// panel q is at bp[(q-bq0)·k·nr].
//
// scratch holds (r1-r0)·mr × (q1-q0 rounded up to even)·nr floats: the
// partial sums between K blocks, kept for each pair of column panels
// (q0+2j, q0+2j+1) as a contiguous block of (r1-r0)·mr rows × 2·nr floats.
// Keeping them out of C matters: C's rows are ldc floats apart, and with
// ldc a multiple of 1 KiB (768, 2304, 3072) the rows of a tile fall into a
// handful of cache sets, so partial sums kept in C evict each other. C is
// written once, by the final K block (when beta ≠ 0, C holds fl(beta·C)
// until then and the final block adds to it).
//
// Pairs of full column panels run on microKernel2 when the CPU has one
// (AVX-512: 12×32 tiles); the other panels on microKernel (6×16).
func (t *gemmTask) tile(r0, r1, q0, q1 int, bp []float32, bq0 int, scratch []float32) {
	m, n, k, ldc, c := t.m, t.n, t.k, t.ldc, t.c
	i0, i1 := r0*mr, min(r1*mr, m)
	j0, j1 := q0*nr, min(q1*nr, n)
	if t.beta != 0 && t.beta != 1 {
		for i := i0; i < i1; i++ {
			row := c[i*ldc+j0 : i*ldc+j1]
			for j := range row {
				row[j] = float32(t.beta * row[j])
			}
		}
	}
	const sld = 2 * nr      // scratch row stride
	prows := (r1 - r0) * mr // rows of partial sums per column panel pair
	// Row panels [r0, rf) are full height; rf < r1 means the last one is
	// cut by the bottom edge of C.
	rf := r1
	if r1*mr > m {
		rf = r1 - 1
	}
	astride := k * mr
	for pc := 0; pc < k; pc += kc {
		kb := min(kc, k-pc)
		flags := 0
		if pc > 0 {
			flags |= flagLoad
		}
		last := pc+kb == k
		fin := flags
		if last {
			fin |= flagFinal
			if t.beta != 0 {
				fin |= flagAddC // C holds fl(beta·C)
			}
		}
		for q := q0; q < q1; {
			w := 1 // column panels in this step
			if microKernel2 != nil && q+1 < q1 && (q+2)*nr <= n {
				w = 2
			}
			bptr := &bp[(q-bq0)*k*nr+pc*nr]
			jj := q * nr
			off := (q-q0)/2*prows*sld + (q-q0)%2*nr
			ps := scratch[off : off+(prows-1)*sld+w*nr] // partial sums of panels q…q+w-1
			aptr := &t.ap[r0*astride+pc*mr]
			rEdge := r0 // first panel needing the scratch epilogue
			if jj+w*nr <= n && rf > r0 {
				// Full micro-tiles, all in one kernel call.
				cp := &c[r0*mr*ldc+jj]
				if w == 2 {
					microKernel2(rf-r0, kb, aptr, astride, bptr, k*nr, &ps[0], sld, cp, ldc, t.alpha, fin)
				} else {
					microKernel(rf-r0, kb, aptr, astride, bptr, &ps[0], sld, cp, ldc, t.alpha, fin)
				}
				rEdge = rf
			}
			if rEdge < r1 {
				// Micro-tiles cut by the edge of C: raw sums in scratch,
				// then the same epilogue arithmetic in Go.
				ae, pe := &t.ap[rEdge*astride+pc*mr], &ps[(rEdge-r0)*mr*sld]
				if w == 2 {
					microKernel2(r1-rEdge, kb, ae, astride, bptr, k*nr, pe, sld, nil, 0, 0, flags)
				} else {
					microKernel(r1-rEdge, kb, ae, astride, bptr, pe, sld, nil, 0, 0, flags)
				}
				if last {
					cols := min(w*nr, n-jj)
					for i := rEdge * mr; i < min(r1*mr, m); i++ {
						s := ps[(i-r0*mr)*sld:][:cols]
						cr := c[i*ldc+jj:][:cols]
						if t.beta == 0 {
							epilogue(cr, s, t.alpha, 0)
						} else { // C already holds fl(beta·C)
							epilogue(cr, s, t.alpha, 1)
						}
					}
				}
			}
			q += w
		}
	}
}

// gemv computes c = alpha·x·B + beta·c for one row x (k) and B packed in
// panels, parallel over column panels.
func gemv(n, k int, alpha float32, x []float32, bp []float32, beta float32, c []float32) {
	np := (n + nr - 1) / nr
	run := func(lo, hi int) {
		var buf [8 * nr]float32
		for q := lo; q < hi; q += 8 {
			qe := min(q+8, hi)
			gemvPanels(k, x, bp, q, qe, buf[:])
			j0 := q * nr
			j1 := min(qe*nr, n)
			epilogue(c[j0:j1], buf[:j1-j0], alpha, beta)
		}
	}
	if k*n*4 < parallelGemvBytes {
		run(0, np)
		return
	}
	parallelFor(np, 8, run)
}
