//go:build !purego && amd64

package kernels

// AVX2+FMA kernels in ops_amd64.s and attention_amd64.s. Each processes
// only the first n&^7 elements; callers finish the tail in Go. They are
// only called when hasAVX2FMA is true.

//go:noescape
func expShiftSumAVX2(x *float32, n int, m float32) float64

// expShiftSumAVX512 is expShiftSumAVX2 sixteen lanes at a time, with the
// same bits in x and the same sum (AVX-512 CPUs only).
//
//go:noescape
func expShiftSumAVX512(x *float32, n int, m float32) float64

//go:noescape
func sumExpShiftAVX2(x *float32, n int, m float32) float64

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func scaleAVX2(x *float32, n int, s float32)

//go:noescape
func scaleToAVX2(dst, x *float32, n int, s float32)

//go:noescape
func addConstAVX2(x *float32, n int, s float32)

//go:noescape
func addAVX2(dst, a, b *float32, n int)

//go:noescape
func sumF64AVX2(x *float32, n int) float64

//go:noescape
func sqDevF64AVX2(x *float32, n int, mean float64) float64

//go:noescape
func lnApplyAVX2(out, x, gamma, beta *float32, n int, mean, inv float64)

//go:noescape
func geluErfAVX2(x, b *float32, n int)

//go:noescape
func geluTanhAVX2(x, b *float32, n int)

//go:noescape
func quickGeluAVX2(x, b *float32, n int)

//go:noescape
func reluAVX2(x, b *float32, n int)

// attnPackKTAVX2 transposes groups·8 keys (rows of k, ldk apart, d
// columns, d a positive multiple of 8) into dst: dst[t·64 + j] = k[j·ldk+t].
//
//go:noescape
func attnPackKTAVX2(dst, k *float32, ldk, groups, d int)

// attnDotsTAVX2 sets s[j] = (Σ_t q[t]·kt[t·64+j])·scale (+ bias[j] when
// bias is not nil) for j < 8·groups, groups ≤ 8, each an FMA chain over t
// in increasing order: the same arithmetic for every key and any groups.
//
//go:noescape
func attnDotsTAVX2(s, q, kt *float32, d, groups int, scale float32, bias *float32)

// attnDotsT2AVX2 is attnDotsTAVX2 for two queries (q0 → s0, q1 → s1)
// sharing the key loads; every score is the same FMA chain.
//
//go:noescape
func attnDotsT2AVX2(s0, s1, q0, q1, kt *float32, d, groups int, scale float32, bias *float32)

// attnAxpy2AVX2 is attnAxpyAVX2 for two queries over the same n value rows
// (o0 += Σ p0[j]·v[j], o1 += Σ p1[j]·v[j]), each in increasing j.
//
//go:noescape
func attnAxpy2AVX2(o0, o1, p0, p1, v *float32, ldv, n, d int)

// attnAxpyAVX2 sets o[t] += Σ_j p[j]·v[j·ldv+t] for t < d, accumulating
// over j in increasing order with FMA; d must be a positive multiple of 8.
//
//go:noescape
func attnAxpyAVX2(o, p, v *float32, ldv, n, d int)
