//go:build !purego && amd64

#include "textflag.h"

// AVX2+FMA element-wise kernels for ops.go. Every routine processes only
// the first n&^7 elements (whole 8-float vectors); the Go wrappers finish
// the tail with the scalar definitions. See ops_amd64.go for contracts.

#define VEC8(name, bits) \
	DATA name<>+0(SB)/4, $bits; \
	DATA name<>+4(SB)/4, $bits; \
	DATA name<>+8(SB)/4, $bits; \
	DATA name<>+12(SB)/4, $bits; \
	DATA name<>+16(SB)/4, $bits; \
	DATA name<>+20(SB)/4, $bits; \
	DATA name<>+24(SB)/4, $bits; \
	DATA name<>+28(SB)/4, $bits; \
	GLOBL name<>(SB), RODATA|NOPTR, $32

VEC8(kLog2e, 0x3fb8aa3b)
VEC8(kLn2hi, 0x3f317218)
VEC8(kLn2lo, 0xb102e308)
VEC8(kExpHi, 0x42b0999a)
VEC8(kExpLo, 0xc2aea8f6)
VEC8(kOne, 0x3f800000)
VEC8(kHalf, 0x3f000000)
VEC8(kNegHalf, 0xbf000000)
VEC8(kC3, 0x3e2aaaab)
VEC8(kC4, 0x3d2aaaab)
VEC8(kC5, 0x3c088889)
VEC8(kC6, 0x3ab60b61)
VEC8(kC7, 0x39500d01)
VEC8(kBias127, 0x0000007f)
VEC8(kAbs, 0x7fffffff)
VEC8(kTwenty, 0x41a00000)
VEC8(kInf, 0x7f800000)
VEC8(kQuick, 0xbfd9db23)
VEC8(kGtK1, 0xbfcc422a)
VEC8(kGtK2, 0xbd922279)
VEC8(kErfS, 0x3eb504f3)
VEC8(kErf0, 0x3e906a8c)
VEC8(kErf1, 0x3e90d77c)
VEC8(kErf2, 0x3e7401d4)
VEC8(kErf3, 0x3e68e77a)
VEC8(kErf4, 0xbdd61307)
VEC8(kErf5, 0x3ede4928)
VEC8(kErf6, 0xbf2fe23c)
VEC8(kErf7, 0x3ee2b824)
VEC8(kErf8, 0xbe04b98c)
VEC8(kErf9, 0x3c5dc06f)

// EXPCONST loads the registers EXP relies on: Y15 = upper clamp, Y14 =
// lower clamp (below it the result is flushed to exactly 0).
#define EXPCONST \
	VMOVUPS kExpHi<>(SB), Y15; \
	VMOVUPS kExpLo<>(SB), Y14

// EXP replaces x with exp(x): n = round(x·log2 e), r = x − n·ln2 (two-part
// Cody–Waite), e^r by its degree-7 Taylor polynomial (|r| ≤ ln2/2, truncation
// < 6e-9), times 2^n built in the exponent field. NaN propagates; inputs
// above 88.3 give +Inf (exp(88.72) is float32's largest; the few inputs in
// between overflow early, which no caller can tell from a true +Inf after
// adding 1 and dividing); inputs below −87.33 give exactly 0. n, p, m and
// big are scratch registers.
#define EXP(x, n, p, m, big) \
	VCMPPS $14, Y15, x, big; \
	VMINPS x, Y15, x; \
	VCMPPS $1, Y14, x, m; \
	VMAXPS x, Y14, x; \
	VMULPS kLog2e<>(SB), x, n; \
	VROUNDPS $0, n, n; \
	VFNMADD231PS kLn2hi<>(SB), n, x; \
	VFNMADD231PS kLn2lo<>(SB), n, x; \
	VMOVUPS kC7<>(SB), p; \
	VFMADD213PS kC6<>(SB), x, p; \
	VFMADD213PS kC5<>(SB), x, p; \
	VFMADD213PS kC4<>(SB), x, p; \
	VFMADD213PS kC3<>(SB), x, p; \
	VFMADD213PS kHalf<>(SB), x, p; \
	VFMADD213PS kOne<>(SB), x, p; \
	VFMADD213PS kOne<>(SB), x, p; \
	VCVTTPS2DQ n, n; \
	VPADDD kBias127<>(SB), n, n; \
	VPSLLD $23, n, n; \
	VMULPS n, p, x; \
	VANDNPS x, m, x; \
	VBLENDVPS big, kInf<>(SB), x, x

// ACTLOOP runs BODY (which maps Y0 in place, may clobber Y1–Y13) over x,
// first adding bias when the bias pointer (SI) is not nil.
#define ACTLOOP(BODY) \
	MOVQ x+0(FP), DI; \
	MOVQ b+8(FP), SI; \
	MOVQ n+16(FP), CX; \
	EXPCONST; \
	TESTQ SI, SI; \
	JZ   nobias; \
bloop:; \
	CMPQ CX, $8; \
	JL   done; \
	VMOVUPS (DI), Y0; \
	VADDPS (SI), Y0, Y0; \
	BODY; \
	VMOVUPS Y0, (DI); \
	ADDQ $32, DI; \
	ADDQ $32, SI; \
	SUBQ $8, CX; \
	JMP  bloop; \
nobias:; \
	CMPQ CX, $8; \
	JL   done; \
	VMOVUPS (DI), Y0; \
	BODY; \
	VMOVUPS Y0, (DI); \
	ADDQ $32, DI; \
	SUBQ $8, CX; \
	JMP  nobias; \
done:; \
	VZEROUPPER; \
	RET

// GELUERF: y = x·Φ(x) with Φ(x) = h for x < 0 and 1 − h otherwise, where
// h = ½·erfc(|x|/√2) = ½·exp(−x²/2)·s·g(s), s = 1/(1 + |x|/(2√2)) and g a
// degree-9 polynomial fitted to erfc(t)·exp(t²)/s on t ∈ [0, 10]
// (act_erfcfit.go). x² is split exactly (hi + lo via FMA) so exp(−x²/2)
// keeps full relative accuracy.
#define GELUERF \
	VANDPS kAbs<>(SB), Y0, Y1; \
	VMOVUPS kTwenty<>(SB), Y2; \
	VMINPS Y1, Y2, Y1; \
	VMULPS kErfS<>(SB), Y1, Y2; \
	VADDPS kOne<>(SB), Y2, Y2; \
	VMOVUPS kOne<>(SB), Y3; \
	VDIVPS Y2, Y3, Y2; \
	VMOVUPS kErf9<>(SB), Y3; \
	VFMADD213PS kErf8<>(SB), Y2, Y3; \
	VFMADD213PS kErf7<>(SB), Y2, Y3; \
	VFMADD213PS kErf6<>(SB), Y2, Y3; \
	VFMADD213PS kErf5<>(SB), Y2, Y3; \
	VFMADD213PS kErf4<>(SB), Y2, Y3; \
	VFMADD213PS kErf3<>(SB), Y2, Y3; \
	VFMADD213PS kErf2<>(SB), Y2, Y3; \
	VFMADD213PS kErf1<>(SB), Y2, Y3; \
	VFMADD213PS kErf0<>(SB), Y2, Y3; \
	VMULPS Y2, Y3, Y3; \
	VMULPS Y1, Y1, Y4; \
	VMOVAPS Y4, Y5; \
	VFMSUB231PS Y1, Y1, Y5; \
	VMULPS kNegHalf<>(SB), Y4, Y4; \
	VMULPS kNegHalf<>(SB), Y5, Y5; \
	EXP(Y4, Y6, Y7, Y8, Y9); \
	VFMADD231PS Y4, Y5, Y4; \
	VMULPS kHalf<>(SB), Y4, Y4; \
	VMULPS Y3, Y4, Y4; \
	VMOVUPS kOne<>(SB), Y5; \
	VSUBPS Y4, Y5, Y5; \
	VBLENDVPS Y0, Y4, Y5, Y5; \
	VMULPS Y5, Y0, Y0

// SIGMUL: y = x / (1 + exp(Y1)) with Y1 prepared by the caller.
#define SIGMUL \
	EXP(Y1, Y2, Y3, Y4, Y5); \
	VADDPS kOne<>(SB), Y1, Y1; \
	VDIVPS Y1, Y0, Y0

// GELUTANH: 0.5x(1+tanh(u)) = x·sigmoid(2u) = x / (1 + exp(−2u)),
// −2u = x·(k1 + k2·x²), k1 = −2√(2/π), k2 = 0.044715·k1.
#define GELUTANH \
	VMULPS Y0, Y0, Y1; \
	VMOVUPS kGtK1<>(SB), Y2; \
	VFMADD231PS kGtK2<>(SB), Y1, Y2; \
	VMULPS Y2, Y0, Y1; \
	SIGMUL

// QUICKGELU: x·sigmoid(1.702x) = x / (1 + exp(−1.702x)).
#define QUICKGELU \
	VMULPS kQuick<>(SB), Y0, Y1; \
	SIGMUL

// RELU: max(x, 0) with NaN propagated.
#define RELU \
	VXORPS Y1, Y1, Y1; \
	VMAXPS Y0, Y1, Y0

// func expShiftSumAVX2(x *float32, n int, m float32) float64
// x[i] = exp(x[i] − m); returns Σ x[i] accumulated in float64 (two 4-lane
// accumulators, fixed order).
TEXT ·expShiftSumAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y13
	EXPCONST
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
esloop:
	CMPQ CX, $8
	JL   esdone
	VMOVUPS (DI), Y0
	VSUBPS Y13, Y0, Y0
	EXP(Y0, Y1, Y2, Y3, Y6)
	VMOVUPS Y0, (DI)
	VCVTPS2PD X0, Y4
	VEXTRACTF128 $1, Y0, X5
	VCVTPS2PD X5, Y5
	VADDPD Y4, Y10, Y10
	VADDPD Y5, Y11, Y11
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  esloop
esdone:
	VADDPD Y11, Y10, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPD X11, X10, X10
	VHADDPD X10, X10, X10
	VMOVSD X10, ret+24(FP)
	VZEROUPPER
	RET

// func sumExpShiftAVX2(x *float32, n int, m float32) float64
// Returns Σ exp(x[i] − m) in float64 without writing x.
TEXT ·sumExpShiftAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y13
	EXPCONST
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
seloop:
	CMPQ CX, $8
	JL   sedone
	VMOVUPS (DI), Y0
	VSUBPS Y13, Y0, Y0
	EXP(Y0, Y1, Y2, Y3, Y6)
	VCVTPS2PD X0, Y4
	VEXTRACTF128 $1, Y0, X5
	VCVTPS2PD X5, Y5
	VADDPD Y4, Y10, Y10
	VADDPD Y5, Y11, Y11
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  seloop
sedone:
	VADDPD Y11, Y10, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPD X11, X10, X10
	VHADDPD X10, X10, X10
	VMOVSD X10, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32   (n ≥ 8; max of x[:n&^7])
// Four independent accumulators, so the vmaxps latency does not serialise
// the loop.
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VMOVUPS (DI), Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3
	ADDQ $32, DI
	SUBQ $8, CX
mx32:
	CMPQ CX, $32
	JL   mx8
	VMAXPS (DI), Y0, Y0
	VMAXPS 32(DI), Y1, Y1
	VMAXPS 64(DI), Y2, Y2
	VMAXPS 96(DI), Y3, Y3
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  mx32
mx8:
	CMPQ CX, $8
	JL   mxdone
	VMAXPS (DI), Y0, Y0
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  mx8
mxdone:
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX2(x *float32, n int, s float32)   x[i] *= s
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1
scloop:
	CMPQ CX, $8
	JL   scdone
	VMULPS (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  scloop
scdone:
	VZEROUPPER
	RET

// func scaleToAVX2(dst, x *float32, n int, s float32)   dst[i] = x[i]·s
TEXT ·scaleToAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DX
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y1
stloop:
	CMPQ CX, $8
	JL   stdone
	VMULPS (DI), Y1, Y0
	VMOVUPS Y0, (DX)
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  stloop
stdone:
	VZEROUPPER
	RET

// func addConstAVX2(x *float32, n int, s float32)   x[i] += s
TEXT ·addConstAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1
acloop:
	CMPQ CX, $8
	JL   acdone
	VADDPS (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  acloop
acdone:
	VZEROUPPER
	RET

// func addAVX2(dst, a, b *float32, n int)   dst[i] = a[i] + b[i]
TEXT ·addAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ n+24(FP), CX
adloop:
	CMPQ CX, $8
	JL   addone
	VMOVUPS (SI), Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DX)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  adloop
addone:
	VZEROUPPER
	RET

// func sumF64AVX2(x *float32, n int) float64   Σ x[i] in float64
TEXT ·sumF64AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
smloop:
	CMPQ CX, $8
	JL   smdone
	VCVTPS2PD (DI), Y0
	VCVTPS2PD 16(DI), Y1
	VADDPD Y0, Y10, Y10
	VADDPD Y1, Y11, Y11
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  smloop
smdone:
	VADDPD Y11, Y10, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPD X11, X10, X10
	VHADDPD X10, X10, X10
	VMOVSD X10, ret+16(FP)
	VZEROUPPER
	RET

// func sqDevF64AVX2(x *float32, n int, mean float64) float64
// Σ (x[i] − mean)² in float64.
TEXT ·sqDevF64AVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSD mean+16(FP), Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
sqloop:
	CMPQ CX, $8
	JL   sqdone
	VCVTPS2PD (DI), Y0
	VCVTPS2PD 16(DI), Y1
	VSUBPD Y9, Y0, Y0
	VSUBPD Y9, Y1, Y1
	VFMADD231PD Y0, Y0, Y10
	VFMADD231PD Y1, Y1, Y11
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  sqloop
sqdone:
	VADDPD Y11, Y10, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPD X11, X10, X10
	VHADDPD X10, X10, X10
	VMOVSD X10, ret+24(FP)
	VZEROUPPER
	RET

// func lnApplyAVX2(out, x, gamma, beta *float32, n int, mean, inv float64)
// out[i] = float32((x[i] − mean)·inv)·gamma[i] + beta[i] (beta may be nil:
// then no addition).
TEXT ·lnApplyAVX2(SB), NOSPLIT, $0-56
	MOVQ out+0(FP), DX
	MOVQ x+8(FP), DI
	MOVQ gamma+16(FP), SI
	MOVQ beta+24(FP), BX
	MOVQ n+32(FP), CX
	VBROADCASTSD mean+40(FP), Y9
	VBROADCASTSD inv+48(FP), Y8
	TESTQ BX, BX
	JZ   lnnob
lnloop:
	CMPQ CX, $8
	JL   lndone
	VCVTPS2PD (DI), Y0
	VCVTPS2PD 16(DI), Y1
	VSUBPD Y9, Y0, Y0
	VSUBPD Y9, Y1, Y1
	VMULPD Y8, Y0, Y0
	VMULPD Y8, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VINSERTF128 $1, X1, Y0, Y0
	VMOVUPS (BX), Y2
	VFMADD231PS (SI), Y0, Y2
	VMOVUPS Y2, (DX)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, BX
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  lnloop
lnnob:
	CMPQ CX, $8
	JL   lndone
	VCVTPS2PD (DI), Y0
	VCVTPS2PD 16(DI), Y1
	VSUBPD Y9, Y0, Y0
	VSUBPD Y9, Y1, Y1
	VMULPD Y8, Y0, Y0
	VMULPD Y8, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VINSERTF128 $1, X1, Y0, Y0
	VMULPS (SI), Y0, Y0
	VMOVUPS Y0, (DX)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  lnnob
lndone:
	VZEROUPPER
	RET

// func geluErfAVX2(x, b *float32, n int)
TEXT ·geluErfAVX2(SB), NOSPLIT, $0-24
	ACTLOOP(GELUERF)

// func geluTanhAVX2(x, b *float32, n int)
TEXT ·geluTanhAVX2(SB), NOSPLIT, $0-24
	ACTLOOP(GELUTANH)

// func quickGeluAVX2(x, b *float32, n int)
TEXT ·quickGeluAVX2(SB), NOSPLIT, $0-24
	ACTLOOP(QUICKGELU)

// func reluAVX2(x, b *float32, n int)
TEXT ·reluAVX2(SB), NOSPLIT, $0-24
	ACTLOOP(RELU)


// func expShiftSumAVX512(x *float32, n int, m float32) float64   (n a multiple of 8)
// expShiftSumAVX2 sixteen lanes at a time: each lane runs EXP's operations
// in its EVEX form (the compares into mask registers, the flush to 0 and the
// +Inf blend as masked moves), so every x[i] gets the same bits; the sum
// keeps AVX2's two four-lane float64 accumulators as the halves of Z10 and
// adds into them in the same order (eight elements at a time), so the
// result is the same float64. A last group of eight goes through EXP itself.
TEXT ·expShiftSumAVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Z13
	VBROADCASTSS kExpHi<>(SB), Z15
	VBROADCASTSS kExpLo<>(SB), Z14
	VBROADCASTSS kLog2e<>(SB), Z16
	VBROADCASTSS kLn2hi<>(SB), Z17
	VBROADCASTSS kLn2lo<>(SB), Z18
	VBROADCASTSS kC7<>(SB), Z19
	VBROADCASTSS kC6<>(SB), Z20
	VBROADCASTSS kC5<>(SB), Z21
	VBROADCASTSS kC4<>(SB), Z22
	VBROADCASTSS kC3<>(SB), Z23
	VBROADCASTSS kHalf<>(SB), Z24
	VBROADCASTSS kOne<>(SB), Z25
	VPBROADCASTD kBias127<>(SB), Z26
	VBROADCASTSS kInf<>(SB), Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z10, Z10, Z10
ez16:
	CMPQ CX, $16
	JL   ez8
	VMOVUPS (DI), Z0
	VSUBPS Z13, Z0, Z0
	VCMPPS $14, Z15, Z0, K1
	VMINPS Z0, Z15, Z0
	VCMPPS $1, Z14, Z0, K2
	VMAXPS Z0, Z14, Z0
	VMULPS Z16, Z0, Z1
	VRNDSCALEPS $0, Z1, Z1
	VFNMADD231PS Z17, Z1, Z0
	VFNMADD231PS Z18, Z1, Z0
	VMOVAPS Z19, Z2
	VFMADD213PS Z20, Z0, Z2
	VFMADD213PS Z21, Z0, Z2
	VFMADD213PS Z22, Z0, Z2
	VFMADD213PS Z23, Z0, Z2
	VFMADD213PS Z24, Z0, Z2
	VFMADD213PS Z25, Z0, Z2
	VFMADD213PS Z25, Z0, Z2
	VCVTTPS2DQ Z1, Z1
	VPADDD Z26, Z1, Z1
	VPSLLD $23, Z1, Z1
	VMULPS Z1, Z2, Z0
	VMOVAPS Z28, K2, Z0
	VMOVAPS Z27, K1, Z0
	VMOVUPS Z0, (DI)
	VCVTPS2PD Y0, Z4
	VEXTRACTF64X4 $1, Z0, Y5
	VCVTPS2PD Y5, Z5
	VADDPD Z4, Z10, Z10
	VADDPD Z5, Z10, Z10
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  ez16
ez8:
	CMPQ CX, $8
	JL   ezdone
	VMOVUPS (DI), Y0
	VSUBPS Y13, Y0, Y0
	EXP(Y0, Y1, Y2, Y3, Y6)
	VMOVUPS Y0, (DI)
	VCVTPS2PD Y0, Z4
	VADDPD Z4, Z10, Z10
ezdone:
	VEXTRACTF64X4 $1, Z10, Y11
	VADDPD Y11, Y10, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPD X11, X10, X10
	VHADDPD X10, X10, X10
	VMOVSD X10, ret+24(FP)
	VZEROUPPER
	RET
