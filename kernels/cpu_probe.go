package kernels

import (
	"math"
	"sync/atomic"
)

// Machine probes used by the kernel benchmarks (internal/kbench) to put
// GEMM and GEMV speeds next to what this machine can do.

// peakSink keeps the probes' results observable.
var peakSink atomic.Uint32

// FlopsPerPeakIter is the number of floating-point operations one
// iteration of PeakFMALoop performs: 12 independent 8-wide fused
// multiply-adds (2 flops per lane), or, with the AVX-512 kernels, 6
// 16-wide ones.
const FlopsPerPeakIter = 12 * 8 * 2

// PeakFMALoop runs iters iterations of 12 independent 8-wide multiply-adds
// on registers only (no memory traffic) and returns the number of flops
// done, iters·FlopsPerPeakIter. Timed on one thread, flops/second is the
// core's float32 FMA peak, the ceiling for GEMM. With the AVX2+FMA kernels
// it is an assembly loop of VFMADD231PS (on zmm registers when the GEMM
// uses the AVX-512 micro-kernel); otherwise a scalar Go loop of
// the same arithmetic (a much lower ceiling, matching the pure-Go GEMM).
// Scalar definition: for it < iters, for r < 12, lane < 8:
// s[r][lane] = s[r][lane] + 1·1.
func PeakFMALoop(iters int) float64 {
	if iters <= 0 {
		return 0
	}
	peakSink.Store(math.Float32bits(peakLoop(iters)))
	return float64(iters) * FlopsPerPeakIter
}

// ReadBandwidthLoop streams every element of buf once and returns their
// float32 sum, added in an unspecified order (several partial sums).
// Timed over a buffer far larger than the caches, len(buf)·4 bytes per
// second is the memory read bandwidth one thread reaches.
func ReadBandwidthLoop(buf []float32) float32 {
	n := len(buf) &^ 63
	var s float32
	if n > 0 {
		s = readLoop(buf[:n])
	}
	for _, v := range buf[n:] {
		s += v
	}
	return s
}

// KernelName describes the GEMM micro-kernel in use, e.g. "avx2-fma 6x16"
// or "pure-Go 6x16".
func KernelName() string { return kernelName }
