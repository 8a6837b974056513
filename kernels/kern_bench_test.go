package kernels

import (
	"math/rand"
	"testing"
)

// BenchmarkMicroKernelL1 runs the micro-kernel on L1-resident panels
// (the ceiling the blocked GEMM can reach).
func BenchmarkMicroKernelL1(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	a, bp := randMat(rng, kc*mr), randMat(rng, kc*nr)
	c := make([]float32, mr*nr)
	for i := 0; i < b.N; i++ {
		microKernel(kc, &a[0], &bp[0], &c[0], nr, &c[0], nr, 1, flagLoad)
	}
	b.ReportMetric(2*mr*nr*kc*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
