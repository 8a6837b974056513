//go:build purego || !amd64

package kernels

// Stubs for the assembly kernels: hasAVX2FMA is false in this build, so
// they are never called.

const noAsm = "kernels: assembly kernel called in a purego build"

func expShiftSumAVX2(x *float32, n int, m float32) float64            { panic(noAsm) }
func expShiftSumAVX512(x *float32, n int, m float32) float64          { panic(noAsm) }
func sumExpShiftAVX2(x *float32, n int, m float32) float64            { panic(noAsm) }
func maxAVX2(x *float32, n int) float32                               { panic(noAsm) }
func scaleAVX2(x *float32, n int, s float32)                          { panic(noAsm) }
func scaleToAVX2(dst, x *float32, n int, s float32)                   { panic(noAsm) }
func addConstAVX2(x *float32, n int, s float32)                       { panic(noAsm) }
func addAVX2(dst, a, b *float32, n int)                               { panic(noAsm) }
func sumF64AVX2(x *float32, n int) float64                            { panic(noAsm) }
func sqDevF64AVX2(x *float32, n int, mean float64) float64            { panic(noAsm) }
func lnApplyAVX2(out, x, gamma, beta *float32, n int, m, inv float64) { panic(noAsm) }
func geluErfAVX2(x, b *float32, n int)                                { panic(noAsm) }
func geluTanhAVX2(x, b *float32, n int)                               { panic(noAsm) }
func quickGeluAVX2(x, b *float32, n int)                              { panic(noAsm) }
func reluAVX2(x, b *float32, n int)                                   { panic(noAsm) }
func attnPackKTAVX2(dst, k *float32, ldk, groups, d int)              { panic(noAsm) }
func attnDotsTAVX2(s, q, kt *float32, d, groups int, scale float32, bias *float32) {
	panic(noAsm)
}
func attnDotsT2AVX2(s0, s1, q0, q1, kt *float32, d, groups int, scale float32, bias *float32) {
	panic(noAsm)
}
func attnAxpy2AVX2(o0, o1, p0, p1, v *float32, ldv, n, d int) { panic(noAsm) }
func attnAxpyAVX2(o, p, v *float32, ldv, n, d int)            { panic(noAsm) }
