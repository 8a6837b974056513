package kernels

import (
	"math/bits"
	"sync"
	"unsafe"
)

// Packed layouts.
//
// A (m×k) is packed into ⌈m/mr⌉ row panels; panel r holds rows
// r·mr … r·mr+mr-1 as k consecutive groups of mr floats (column p of the
// panel), rows past m padded with zeros. B (k×n) is packed into ⌈n/nr⌉
// column panels; panel q holds columns q·nr … q·nr+nr-1 as k consecutive
// groups of nr floats (row p of the panel), columns past n padded with
// zeros. A K block [pc, pc+kc) of a panel is then the contiguous run
// starting at p = pc, which is what the micro-kernel streams.

// alignedFloats returns a zeroed slice of n float32s whose first element
// is 64-byte aligned (one cache line).
func alignedFloats(n int) []float32 {
	buf := make([]float32, n+16)
	off := 0
	if n > 0 {
		addr := uintptr(unsafe.Pointer(&buf[0]))
		off = int((64-addr%64)%64) / 4
	}
	return buf[off : off+n : off+n]
}

// floatPools recycle the packing and scratch buffers so that steady-state
// products do not allocate them. Pool c holds buffers of capacity 1<<c
// floats, so a request never receives (and drops) a buffer too small for
// it.
var floatPools [48]sync.Pool

type floatBuf struct {
	f     []float32
	class int
}

// getFloats returns a pooled 64-byte aligned buffer of at least n floats
// (contents unspecified). Release it with putFloats.
func getFloats(n int) *floatBuf {
	c := bits.Len(uint(max(n, 1) - 1))
	if v, ok := floatPools[c].Get().(*floatBuf); ok {
		v.f = v.f[:n]
		return v
	}
	b := &floatBuf{f: alignedFloats(1 << c), class: c}
	b.f = b.f[:n]
	return b
}

func putFloats(b *floatBuf) { floatPools[b.class].Put(b) }

// packAPanels packs row panels [r0, r1) of op(A) (m×k) into dst, whose
// panel r starts at r·k·mr.
func packAPanels(dst []float32, transA bool, m, k int, a []float32, lda int, r0, r1 int) {
	for r := r0; r < r1; r++ {
		d := dst[r*k*mr : (r+1)*k*mr]
		i0 := r * mr
		rows := min(mr, m-i0)
		switch {
		case transA:
			// A stored k×m: the mr values of column p are contiguous.
			for p := 0; p < k; p++ {
				src := a[p*lda+i0 : p*lda+i0+rows]
				g := d[p*mr : p*mr+mr : p*mr+mr]
				copy(g, src)
				for i := rows; i < mr; i++ {
					g[i] = 0
				}
			}
		case rows == mr:
			p0 := 0
			if packA6N != nil {
				p0 = packA6N(k, a[i0*lda:], lda, d)
			}
			a0 := a[(i0+0)*lda : (i0+0)*lda+k]
			a1 := a[(i0+1)*lda : (i0+1)*lda+k]
			a2 := a[(i0+2)*lda : (i0+2)*lda+k]
			a3 := a[(i0+3)*lda : (i0+3)*lda+k]
			a4 := a[(i0+4)*lda : (i0+4)*lda+k]
			a5 := a[(i0+5)*lda : (i0+5)*lda+k]
			for p := p0; p < k; p++ {
				g := d[p*mr : p*mr+mr : p*mr+mr]
				g[0], g[1], g[2], g[3], g[4], g[5] = a0[p], a1[p], a2[p], a3[p], a4[p], a5[p]
			}
		default:
			for p := 0; p < k; p++ {
				g := d[p*mr : p*mr+mr : p*mr+mr]
				for i := 0; i < mr; i++ {
					if i < rows {
						g[i] = a[(i0+i)*lda+p]
					} else {
						g[i] = 0
					}
				}
			}
		}
	}
}

// packBPanels packs column panels [q0, q1) of op(B) (k×n) into dst, whose
// panel q starts at (q-q0)·k·nr.
func packBPanels(dst []float32, transB bool, k, n int, b []float32, ldb int, q0, q1 int) {
	for q := q0; q < q1; q++ {
		d := dst[(q-q0)*k*nr : (q-q0+1)*k*nr]
		j0 := q * nr
		cols := min(nr, n-j0)
		switch {
		case !transB && cols == nr && packB16N != nil:
			packB16N(k, b[j0:], ldb, d)
		case !transB:
			// B stored k×n: the nr values of row p are contiguous.
			for p := 0; p < k; p++ {
				g := d[p*nr : p*nr+nr : p*nr+nr]
				copy(g, b[p*ldb+j0:p*ldb+j0+cols])
				for j := cols; j < nr; j++ {
					g[j] = 0
				}
			}
		case cols == nr:
			// B stored n×k: transpose 16 rows, in 8×8 blocks with the
			// assembly, else four rows at a time so that each pass
			// reads four contiguous streams.
			p0 := 0
			if packB16T != nil {
				p0 = packB16T(k, b[j0*ldb:], ldb, d)
			}
			for jj := 0; jj < nr && p0 < k; jj += 4 {
				b0 := b[(j0+jj+0)*ldb : (j0+jj+0)*ldb+k]
				b1 := b[(j0+jj+1)*ldb : (j0+jj+1)*ldb+k]
				b2 := b[(j0+jj+2)*ldb : (j0+jj+2)*ldb+k]
				b3 := b[(j0+jj+3)*ldb : (j0+jj+3)*ldb+k]
				for p := p0; p < k; p++ {
					g := d[p*nr+jj : p*nr+jj+4 : p*nr+jj+4]
					g[0], g[1], g[2], g[3] = b0[p], b1[p], b2[p], b3[p]
				}
			}
		default:
			for p := 0; p < k; p++ {
				g := d[p*nr : p*nr+nr : p*nr+nr]
				for j := 0; j < nr; j++ {
					if j < cols {
						g[j] = b[(j0+j)*ldb+p]
					} else {
						g[j] = 0
					}
				}
			}
		}
	}
}
