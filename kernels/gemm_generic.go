package kernels

import "unsafe"

// Kernel selection. The pure-Go versions below are the defaults; on amd64
// with AVX2+FMA (and without the purego tag) gemm_asm.go replaces them with
// the assembly kernels at init.
var (
	microKernel = kern6x16Go
	gemvPanels  = gemvPanelsGo
	peakLoop    = peakGo
	readLoop    = readGo
	kernelName  = "pure-Go 6x16"

	// microKernel2, if set, computes two adjacent B micro-panels at once
	// (kern12x32's contract: B panels at b and b+bstride floats, partial
	// sums and C 32 floats wide); the driver uses it for pairs of full
	// column panels and microKernel for the rest.
	microKernel2 func(np, k int, a *float32, astride int, b *float32, bstride int, p *float32, ldp int, c *float32, ldc int, alpha float32, flags int)

	// packB16T, if set, packs the full transposed panel's first columns
	// (the 16 rows src[r*ld:], r < 16) for p < the returned count; the
	// Go code packs the rest. packB16N, if set, packs a full
	// non-transposed panel (k rows of 16 at src[p*ld:]).
	packB16T func(k int, src []float32, ld int, dst []float32) int
	// packA6N, if set, packs the first columns of a full non-transposed A
	// row panel (the 6 rows src[r*ld:]) for p < the returned count.
	packA6N  func(k int, src []float32, ld int, dst []float32) int
	packB16N func(k int, src []float32, ld int, dst []float32)
)

// Micro-kernel flags (see kern6x16Go).
const (
	flagLoad  = 1 // start from the partial sums at p instead of zero
	flagFinal = 2 // last K block: write alpha*acc (+C) to c instead of raw sums to p
	flagAddC  = 4 // with flagFinal: add the existing C
)

// kern6x16Go is the portable micro-kernel, with the same contract as the
// assembly kern6x16 (np consecutive row panels; panel i uses the A
// micro-panel a + i·astride and rows 6i… of p and c). For each panel,
// acc[i][j] (6×16) starts from zero or from p (row stride ldp),
// accumulates acc = acc + fl(a[p][i]·b[p][j]) for p = 0..k-1 over the
// packed micro-panels a (k×6) and b (k×16), and is then either stored raw
// to p or, on the final block, written as fl(alpha·acc) (+ C) to c (row
// stride ldc). The products are rounded explicitly (float32 conversions)
// so the compiler cannot fuse them into FMAs differently in different
// places: the pure-Go GEMM and GEMV give the same bits.
func kern6x16Go(np, k int, a *float32, astride int, b, p *float32, ldp int, c *float32, ldc int, alpha float32, flags int) {
	for i := 0; i < np; i++ {
		ai := unsafe.Add(unsafe.Pointer(a), 4*i*astride)
		pi := unsafe.Add(unsafe.Pointer(p), 4*i*mr*ldp)
		ci := c
		if flags&flagFinal != 0 {
			ci = (*float32)(unsafe.Add(unsafe.Pointer(c), 4*i*mr*ldc))
		}
		kern6x16Go1(k, (*float32)(ai), b, (*float32)(pi), ldp, ci, ldc, alpha, flags)
	}
}

func kern6x16Go1(k int, a, b, p *float32, ldp int, c *float32, ldc int, alpha float32, flags int) {
	var acc [mr * nr]float32
	if flags&flagLoad != 0 {
		ps := unsafe.Slice(p, (mr-1)*ldp+nr)
		for i := 0; i < mr; i++ {
			copy(acc[i*nr:(i+1)*nr], ps[i*ldp:i*ldp+nr])
		}
	}
	if k > 0 {
		as := unsafe.Slice(a, k*mr)
		bs := unsafe.Slice(b, k*nr)
		for i := 0; i < mr; i += 2 {
			for j := 0; j < nr; j += 4 {
				rowPairGo(as[i:], bs[j:], k, acc[i*nr+j:i*nr+j+4], acc[(i+1)*nr+j:(i+1)*nr+j+4])
			}
		}
	}
	if flags&flagFinal == 0 {
		ps := unsafe.Slice(p, (mr-1)*ldp+nr)
		for i := 0; i < mr; i++ {
			copy(ps[i*ldp:i*ldp+nr], acc[i*nr:(i+1)*nr])
		}
		return
	}
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	for i := 0; i < mr; i++ {
		row := cs[i*ldc : i*ldc+nr]
		for j := range row {
			x := float32(alpha * acc[i*nr+j])
			if flags&flagAddC != 0 {
				x += row[j]
			}
			row[j] = x
		}
	}
}

// rowPairGo accumulates a 2×4 block: r0[c] += fl(a[q·mr]·b[q·nr+c]) and
// r1[c] += fl(a[q·mr+1]·b[q·nr+c]) for q = 0..k-1, c < 4, in increasing q.
// a and b start at the block's first row and column.
func rowPairGo(a, b []float32, k int, r0, r1 []float32) {
	r0, r1 = r0[:4:4], r1[:4:4]
	s00, s01, s02, s03 := r0[0], r0[1], r0[2], r0[3]
	s10, s11, s12, s13 := r1[0], r1[1], r1[2], r1[3]
	for q := 0; q < k; q++ {
		ap := a[q*mr : q*mr+2 : q*mr+2]
		bp := b[q*nr : q*nr+4 : q*nr+4]
		a0, a1 := ap[0], ap[1]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		s00 += float32(a0 * b0)
		s01 += float32(a0 * b1)
		s02 += float32(a0 * b2)
		s03 += float32(a0 * b3)
		s10 += float32(a1 * b0)
		s11 += float32(a1 * b1)
		s12 += float32(a1 * b2)
		s13 += float32(a1 * b3)
	}
	r0[0], r0[1], r0[2], r0[3] = s00, s01, s02, s03
	r1[0], r1[1], r1[2], r1[3] = s10, s11, s12, s13
}

// gemvPanelsGo computes raw sums for panels [q0, q1) of a packed B (k steps
// of nr floats per panel): out[(q-q0)*nr + j] = Σ_p x[p]·B_q[p][j], each
// accumulated as s = s + fl(x[p]·b) in increasing p, exactly as
// kern6x16Go does.
func gemvPanelsGo(k int, x []float32, b []float32, q0, q1 int, out []float32) {
	x = x[:k]
	for q := q0; q < q1; q++ {
		panel := b[q*k*nr : (q+1)*k*nr]
		o := out[(q-q0)*nr : (q-q0+1)*nr]
		for j := 0; j < nr; j += 4 {
			var s0, s1, s2, s3 float32
			for p, xv := range x {
				bq := panel[p*nr+j : p*nr+j+4 : p*nr+j+4]
				s0 += float32(xv * bq[0])
				s1 += float32(xv * bq[1])
				s2 += float32(xv * bq[2])
				s3 += float32(xv * bq[3])
			}
			o[j], o[j+1], o[j+2], o[j+3] = s0, s1, s2, s3
		}
	}
}

// peakGo is the portable FMA-peak probe: iters rounds of 12 independent
// multiply-adds on 8-wide groups (192 flops per round), in scalar Go.
func peakGo(iters int) float32 {
	var s [12][8]float32
	x, y := float32(1), float32(1)
	for it := 0; it < iters; it++ {
		for r := range s {
			for l := range s[r] {
				s[r][l] += x * y
			}
		}
	}
	var t float32
	for r := range s {
		for l := range s[r] {
			t += s[r][l]
		}
	}
	return t
}

// readGo streams buf and returns the sum of its elements (portable
// read-bandwidth probe).
func readGo(buf []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(buf) &^ 3
	for i := 0; i < n; i += 4 {
		s0 += buf[i]
		s1 += buf[i+1]
		s2 += buf[i+2]
		s3 += buf[i+3]
	}
	return s0 + s1 + s2 + s3
}
