//go:build !purego && amd64

#include "textflag.h"

// Hand-written AVX2+FMA kernels for GEMM, GEMV and the machine-peak probes.
// Every output element is accumulated by one VFMADD231PS chain in
// increasing p, starting from +0: acc = a[p]*b[p] + acc (single rounding).
// The GEMM micro-kernel and the GEMV kernels share this order so that a row's
// result does not depend on the number of rows in the product.

// STEP performs one k-step of the 6x16 micro-kernel: two 8-wide loads of the
// packed B row at BX+bo, six broadcasts of the packed A column at AX+ao, and
// twelve FMAs into Y4..Y15.
#define STEP(ao, bo) \
	VMOVUPS      bo(BX), Y0;          \
	VMOVUPS      bo+32(BX), Y1;       \
	VBROADCASTSS ao(AX), Y2;          \
	VFMADD231PS  Y0, Y2, Y4;          \
	VFMADD231PS  Y1, Y2, Y5;          \
	VBROADCASTSS ao+4(AX), Y3;        \
	VFMADD231PS  Y0, Y3, Y6;          \
	VFMADD231PS  Y1, Y3, Y7;          \
	VBROADCASTSS ao+8(AX), Y2;        \
	VFMADD231PS  Y0, Y2, Y8;          \
	VFMADD231PS  Y1, Y2, Y9;          \
	VBROADCASTSS ao+12(AX), Y3;       \
	VFMADD231PS  Y0, Y3, Y10;         \
	VFMADD231PS  Y1, Y3, Y11;         \
	VBROADCASTSS ao+16(AX), Y2;       \
	VFMADD231PS  Y0, Y2, Y12;         \
	VFMADD231PS  Y1, Y2, Y13;         \
	VBROADCASTSS ao+20(AX), Y3;       \
	VFMADD231PS  Y0, Y3, Y14;         \
	VFMADD231PS  Y1, Y3, Y15

// func kern6x16(np, k int, a *float32, astride int, b, p *float32, ldp int, c *float32, ldc int, alpha float32, flags int)
//
// Runs the 6x16 micro-kernel on np consecutive row panels against one B
// micro-panel. For panel i: a + i*astride floats is the packed A
// micro-panel (k steps of 6 floats), b the packed B micro-panel (k steps
// of 16 floats), p + 6*i*ldp and c + 6*i*ldc its partial sums and output.
// flags&1: start from the partial sums at p (row stride ldp floats), else
// from zero. flags&2: final block, write C = alpha*acc (+ C when flags&4)
// at c (row stride ldc floats); otherwise store the raw sums back to p.
TEXT ·kern6x16(SB), NOSPLIT, $0-88
	MOVQ np+0(FP), R11
	MOVQ a+16(FP), R12
	MOVQ astride+24(FP), R13
	SHLQ $2, R13
	MOVQ b+32(FP), R14
	MOVQ p+40(FP), DX
	MOVQ ldp+48(FP), SI
	SHLQ $2, SI
	MOVQ c+56(FP), DI
	MOVQ ldc+64(FP), R8
	SHLQ $2, R8
	MOVQ flags+80(FP), R9
	TESTQ R11, R11
	JZ    exit

panel:
	MOVQ k+8(FP), CX
	MOVQ R12, AX
	MOVQ R14, BX

	// Prefetch the next panel's partial sums (6 rows below).
	LEAQ (DX)(SI*4), R10
	LEAQ (R10)(SI*2), R10
	PREFETCHT0 (R10)
	PREFETCHT0 (R10)(SI*1)
	PREFETCHT0 (R10)(SI*2)
	LEAQ (R10)(SI*2), R10
	PREFETCHT0 (R10)(SI*1)
	PREFETCHT0 (R10)(SI*2)
	LEAQ (R10)(SI*2), R10
	PREFETCHT0 (R10)(SI*1)

	TESTQ $1, R9
	JZ    zero
	MOVQ  DX, R10
	VMOVUPS (R10), Y4
	VMOVUPS 32(R10), Y5
	ADDQ  SI, R10
	VMOVUPS (R10), Y6
	VMOVUPS 32(R10), Y7
	ADDQ  SI, R10
	VMOVUPS (R10), Y8
	VMOVUPS 32(R10), Y9
	ADDQ  SI, R10
	VMOVUPS (R10), Y10
	VMOVUPS 32(R10), Y11
	ADDQ  SI, R10
	VMOVUPS (R10), Y12
	VMOVUPS 32(R10), Y13
	ADDQ  SI, R10
	VMOVUPS (R10), Y14
	VMOVUPS 32(R10), Y15
	JMP   start

zero:
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

start:
	CMPQ CX, $4
	JL   tail

loop4:
	PREFETCHT0 384(AX)
	STEP(0, 0)
	STEP(24, 64)
	STEP(48, 128)
	STEP(72, 192)
	ADDQ $96, AX
	ADDQ $256, BX
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  loop4

tail:
	TESTQ CX, CX
	JZ    done

loop1:
	STEP(0, 0)
	ADDQ $24, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

done:
	TESTQ $2, R9
	JNZ   final

	// Not the last K block: store the raw sums to p.
	MOVQ    DX, R10
	VMOVUPS Y4, (R10)
	VMOVUPS Y5, 32(R10)
	ADDQ    SI, R10
	VMOVUPS Y6, (R10)
	VMOVUPS Y7, 32(R10)
	ADDQ    SI, R10
	VMOVUPS Y8, (R10)
	VMOVUPS Y9, 32(R10)
	ADDQ    SI, R10
	VMOVUPS Y10, (R10)
	VMOVUPS Y11, 32(R10)
	ADDQ    SI, R10
	VMOVUPS Y12, (R10)
	VMOVUPS Y13, 32(R10)
	ADDQ    SI, R10
	VMOVUPS Y14, (R10)
	VMOVUPS Y15, 32(R10)
	JMP     next

final:
	VBROADCASTSS alpha+72(FP), Y0
	VMULPS       Y0, Y4, Y4
	VMULPS       Y0, Y5, Y5
	VMULPS       Y0, Y6, Y6
	VMULPS       Y0, Y7, Y7
	VMULPS       Y0, Y8, Y8
	VMULPS       Y0, Y9, Y9
	VMULPS       Y0, Y10, Y10
	VMULPS       Y0, Y11, Y11
	VMULPS       Y0, Y12, Y12
	VMULPS       Y0, Y13, Y13
	VMULPS       Y0, Y14, Y14
	VMULPS       Y0, Y15, Y15
	TESTQ        $4, R9
	JZ           storec
	MOVQ         DI, R10
	VADDPS       (R10), Y4, Y4
	VADDPS       32(R10), Y5, Y5
	ADDQ         R8, R10
	VADDPS       (R10), Y6, Y6
	VADDPS       32(R10), Y7, Y7
	ADDQ         R8, R10
	VADDPS       (R10), Y8, Y8
	VADDPS       32(R10), Y9, Y9
	ADDQ         R8, R10
	VADDPS       (R10), Y10, Y10
	VADDPS       32(R10), Y11, Y11
	ADDQ         R8, R10
	VADDPS       (R10), Y12, Y12
	VADDPS       32(R10), Y13, Y13
	ADDQ         R8, R10
	VADDPS       (R10), Y14, Y14
	VADDPS       32(R10), Y15, Y15

storec:
	MOVQ    DI, R10
	VMOVUPS Y4, (R10)
	VMOVUPS Y5, 32(R10)
	ADDQ    R8, R10
	VMOVUPS Y6, (R10)
	VMOVUPS Y7, 32(R10)
	ADDQ    R8, R10
	VMOVUPS Y8, (R10)
	VMOVUPS Y9, 32(R10)
	ADDQ    R8, R10
	VMOVUPS Y10, (R10)
	VMOVUPS Y11, 32(R10)
	ADDQ    R8, R10
	VMOVUPS Y12, (R10)
	VMOVUPS Y13, 32(R10)
	ADDQ    R8, R10
	VMOVUPS Y14, (R10)
	VMOVUPS Y15, 32(R10)

next:
	// Advance to the next row panel: a by astride, p and c by 6 rows.
	ADDQ R13, R12
	LEAQ (DX)(SI*4), DX
	LEAQ (DX)(SI*2), DX
	LEAQ (DI)(R8*4), DI
	LEAQ (DI)(R8*2), DI
	DECQ R11
	JNZ  panel

exit:
	VZEROUPPER
	RET

// GSTEP does one k-step of the 4-panel GEMV: broadcast x[p] (at AX+xo) and
// FMA it with 16 packed weights of each of the four panels R8..R11 (+bo).
#define GSTEP(xo, bo) \
	VBROADCASTSS xo(AX), Y0;       \
	VFMADD231PS  bo(R8), Y0, Y1;   \
	VFMADD231PS  bo+32(R8), Y0, Y2; \
	VFMADD231PS  bo(R9), Y0, Y3;   \
	VFMADD231PS  bo+32(R9), Y0, Y4; \
	VFMADD231PS  bo(R10), Y0, Y5;  \
	VFMADD231PS  bo+32(R10), Y0, Y6; \
	VFMADD231PS  bo(R11), Y0, Y7;  \
	VFMADD231PS  bo+32(R11), Y0, Y8

// func gemv4(k int, x, b *float32, stride int, out *float32)
//
// Raw sums out[16*q+j] = Σ_p x[p]*B_q[p][j] for the four packed panels
// B_q = b + q*stride floats, q = 0..3, each k steps of 16 floats.
TEXT ·gemv4(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), CX
	MOVQ x+8(FP), AX
	MOVQ b+16(FP), R8
	MOVQ stride+24(FP), DX
	SHLQ $2, DX
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	MOVQ out+32(FP), DI

	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8

	CMPQ CX, $2
	JL   gtail

gloop2:
	GSTEP(0, 0)
	GSTEP(4, 64)
	ADDQ $8, AX
	ADDQ $128, R8
	ADDQ $128, R9
	ADDQ $128, R10
	ADDQ $128, R11
	SUBQ $2, CX
	CMPQ CX, $2
	JGE  gloop2

gtail:
	TESTQ CX, CX
	JZ    gdone
	GSTEP(0, 0)

gdone:
	VMOVUPS Y1, (DI)
	VMOVUPS Y2, 32(DI)
	VMOVUPS Y3, 64(DI)
	VMOVUPS Y4, 96(DI)
	VMOVUPS Y5, 128(DI)
	VMOVUPS Y6, 160(DI)
	VMOVUPS Y7, 192(DI)
	VMOVUPS Y8, 224(DI)
	VZEROUPPER
	RET

// func gemv1(k int, x, b *float32, out *float32)
//
// Raw sums out[j] = Σ_p x[p]*B[p][j] for one packed panel (k steps of 16).
TEXT ·gemv1(SB), NOSPLIT, $0-32
	MOVQ   k+0(FP), CX
	MOVQ   x+8(FP), AX
	MOVQ   b+16(FP), BX
	MOVQ   out+24(FP), DI
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	TESTQ  CX, CX
	JZ     g1done

g1loop:
	VBROADCASTSS (AX), Y0
	VFMADD231PS  (BX), Y0, Y1
	VFMADD231PS  32(BX), Y0, Y2
	ADDQ         $4, AX
	ADDQ         $64, BX
	DECQ         CX
	JNZ          g1loop

g1done:
	VMOVUPS Y1, (DI)
	VMOVUPS Y2, 32(DI)
	VZEROUPPER
	RET

// func peakFMA(iters int) float32
//
// iters rounds of 12 independent 8-wide FMAs (192 flops per round).
TEXT ·peakFMA(SB), NOSPLIT, $0-12
	MOVQ   iters+0(FP), CX
	MOVL   $0x3f800000, AX
	MOVQ   AX, X0
	VBROADCASTSS X0, Y0
	VMOVAPS Y0, Y1
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	TESTQ  CX, CX
	JZ     pdone

ploop:
	VFMADD231PS Y0, Y1, Y4
	VFMADD231PS Y0, Y1, Y5
	VFMADD231PS Y0, Y1, Y6
	VFMADD231PS Y0, Y1, Y7
	VFMADD231PS Y0, Y1, Y8
	VFMADD231PS Y0, Y1, Y9
	VFMADD231PS Y0, Y1, Y10
	VFMADD231PS Y0, Y1, Y11
	VFMADD231PS Y0, Y1, Y12
	VFMADD231PS Y0, Y1, Y13
	VFMADD231PS Y0, Y1, Y14
	VFMADD231PS Y0, Y1, Y15
	DECQ        CX
	JNZ         ploop

pdone:
	VADDPS Y4, Y5, Y4
	VADDPS Y6, Y7, Y6
	VADDPS Y8, Y9, Y8
	VADDPS Y10, Y11, Y10
	VADDPS Y12, Y13, Y12
	VADDPS Y14, Y15, Y14
	VADDPS Y4, Y6, Y4
	VADDPS Y8, Y10, Y8
	VADDPS Y12, Y14, Y12
	VADDPS Y4, Y8, Y4
	VADDPS Y4, Y12, Y4
	MOVSS  X4, ret+8(FP)
	VZEROUPPER
	RET

// func readSum(p *float32, n int) float32
//
// Streams n floats (n a multiple of 64) from p and returns their sum (in an
// unspecified order), to measure read bandwidth. The buffer is read as four
// concurrent sequential streams (its four quarters), like the GEMV reads
// four weight panels, so that the hardware prefetchers run in parallel.
TEXT ·readSum(SB), NOSPLIT, $0-20
	MOVQ   p+0(FP), SI
	MOVQ   n+8(FP), CX
	SHRQ   $6, CX
	MOVQ   CX, DX
	SHLQ   $6, DX          // 16 floats per stream per iteration = 64 bytes
	LEAQ   (SI)(DX*1), R8
	LEAQ   (R8)(DX*1), R9
	LEAQ   (R9)(DX*1), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ  CX, CX
	JZ     rdone

rloop:
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS (R8), Y2, Y2
	VADDPS 32(R8), Y3, Y3
	VADDPS (R9), Y4, Y4
	VADDPS 32(R9), Y5, Y5
	VADDPS (R10), Y6, Y6
	VADDPS 32(R10), Y7, Y7
	ADDQ   $64, SI
	ADDQ   $64, R8
	ADDQ   $64, R9
	ADDQ   $64, R10
	DECQ   CX
	JNZ    rloop

rdone:
	VADDPS Y0, Y1, Y0
	VADDPS Y2, Y3, Y2
	VADDPS Y4, Y5, Y4
	VADDPS Y6, Y7, Y6
	VADDPS Y0, Y2, Y0
	VADDPS Y4, Y6, Y4
	VADDPS Y0, Y4, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X0, X1, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS  X0, ret+16(FP)
	VZEROUPPER
	RET

// TR8 transposes the 8×8 block in Y0..Y7 (row i = Yi) into Y8..Y15
// (Y8+p holds column p), clobbering Y0..Y7.
#define TR8 \
	VUNPCKLPS  Y1, Y0, Y8;        \
	VUNPCKHPS  Y1, Y0, Y9;        \
	VUNPCKLPS  Y3, Y2, Y10;       \
	VUNPCKHPS  Y3, Y2, Y11;       \
	VUNPCKLPS  Y5, Y4, Y12;       \
	VUNPCKHPS  Y5, Y4, Y13;       \
	VUNPCKLPS  Y7, Y6, Y14;       \
	VUNPCKHPS  Y7, Y6, Y15;       \
	VSHUFPS    $0x44, Y10, Y8, Y0; \
	VSHUFPS    $0xEE, Y10, Y8, Y1; \
	VSHUFPS    $0x44, Y11, Y9, Y2; \
	VSHUFPS    $0xEE, Y11, Y9, Y3; \
	VSHUFPS    $0x44, Y14, Y12, Y4; \
	VSHUFPS    $0xEE, Y14, Y12, Y5; \
	VSHUFPS    $0x44, Y15, Y13, Y6; \
	VSHUFPS    $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// LOAD8 loads 8 floats of 8 rows: base0 + {0, BX, 2BX, R11}, base1 + same.
#define LOAD8(base0, base1) \
	VMOVUPS (base0), Y0;        \
	VMOVUPS (base0)(BX*1), Y1;  \
	VMOVUPS (base0)(BX*2), Y2;  \
	VMOVUPS (base0)(R11*1), Y3; \
	VMOVUPS (base1), Y4;        \
	VMOVUPS (base1)(BX*1), Y5;  \
	VMOVUPS (base1)(BX*2), Y6;  \
	VMOVUPS (base1)(R11*1), Y7

#define STORE8(off) \
	VMOVUPS Y8, off(DX);      \
	VMOVUPS Y9, off+64(DX);   \
	VMOVUPS Y10, off+128(DX); \
	VMOVUPS Y11, off+192(DX); \
	VMOVUPS Y12, off+256(DX); \
	VMOVUPS Y13, off+320(DX); \
	VMOVUPS Y14, off+384(DX); \
	VMOVUPS Y15, off+448(DX)

// func packT16(k8 int, src *float32, ld int, dst *float32)
//
// Packs columns p < k8 (k8 a multiple of 8) of the 16 rows src + r·ld,
// r = 0..15, into dst[p*16 + r] (one transposed B panel).
TEXT ·packT16(SB), NOSPLIT, $0-32
	MOVQ k8+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), BX
	SHLQ $2, BX
	MOVQ dst+24(FP), DX
	LEAQ (BX)(BX*2), R11 // 3 rows
	LEAQ (SI)(BX*4), DI  // row 4
	LEAQ (DI)(BX*4), R12 // row 8
	LEAQ (R12)(BX*4), R13 // row 12
	SHRQ $3, CX
	TESTQ CX, CX
	JZ   tdone

tloop:
	LOAD8(SI, DI)
	TR8
	STORE8(0)
	LOAD8(R12, R13)
	TR8
	STORE8(32)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R12
	ADDQ $32, R13
	ADDQ $512, DX
	DECQ CX
	JNZ  tloop

tdone:
	VZEROUPPER
	RET

// func packN16(k int, src *float32, ld int, dst *float32)
//
// Copies 16 floats from each of the k rows src + p·ld to dst[p*16:].
TEXT ·packN16(SB), NOSPLIT, $0-32
	MOVQ  k+0(FP), CX
	MOVQ  src+8(FP), SI
	MOVQ  ld+16(FP), BX
	SHLQ  $2, BX
	MOVQ  dst+24(FP), DX
	TESTQ CX, CX
	JZ    ndone

nloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	ADDQ    BX, SI
	ADDQ    $64, DX
	DECQ    CX
	JNZ     nloop

ndone:
	VZEROUPPER
	RET

// STORE6(p) stores the first 6 floats of Y(8+p) (column p of the
// transposed block: rows 0..5) to DX + p*24.
#define STORE6(yr, xr, off) \
	VMOVUPS      xr, off(DX);       \
	VEXTRACTF128 $1, yr, X0;        \
	MOVQ         X0, off+16(DX)

// func packA6(k8 int, src *float32, ld int, dst *float32)
//
// Packs columns p < k8 (k8 a multiple of 8) of the 6 rows src + r·ld,
// r = 0..5, into dst[p*6 + r] (one A row panel). Rows 6 and 7 of each
// transposed 8×8 block are never stored.
TEXT ·packA6(SB), NOSPLIT, $0-32
	MOVQ k8+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), BX
	SHLQ $2, BX
	MOVQ dst+24(FP), DX
	LEAQ (BX)(BX*2), R11 // 3 rows
	LEAQ (SI)(BX*4), DI  // row 4
	SHRQ $3, CX
	TESTQ CX, CX
	JZ   adone

aloop:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(BX*1), Y1
	VMOVUPS (SI)(BX*2), Y2
	VMOVUPS (SI)(R11*1), Y3
	VMOVUPS (DI), Y4
	VMOVUPS (DI)(BX*1), Y5
	VXORPS  Y6, Y6, Y6
	VXORPS  Y7, Y7, Y7
	TR8
	STORE6(Y8, X8, 0)
	STORE6(Y9, X9, 24)
	STORE6(Y10, X10, 48)
	STORE6(Y11, X11, 72)
	STORE6(Y12, X12, 96)
	STORE6(Y13, X13, 120)
	STORE6(Y14, X14, 144)
	STORE6(Y15, X15, 168)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $192, DX
	DECQ CX
	JNZ  aloop

adone:
	VZEROUPPER
	RET
