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
		microKernel(1, kc, &a[0], kc*mr, &bp[0], &c[0], nr, &c[0], nr, 1, flagLoad)
	}
	b.ReportMetric(2*mr*nr*kc*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkPackBT packs a 768×2304 weight stored [N, K] (nn.Linear).
func BenchmarkPackBT(b *testing.B) {
	k, n := 768, 2304
	rng := rand.New(rand.NewSource(1))
	w := randMat(rng, k*n)
	dst := make([]float32, k*n)
	for i := 0; i < b.N; i++ {
		packBPanels(dst, true, k, n, w, k, 0, n/nr)
	}
	b.ReportMetric(float64(k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gfloat/s")
}

// BenchmarkPackA packs a 197×768 activation.
func BenchmarkPackA(b *testing.B) {
	m, k := 197, 768
	rng := rand.New(rand.NewSource(1))
	a := randMat(rng, m*k)
	dst := make([]float32, (m+mr)*k)
	for i := 0; i < b.N; i++ {
		packAPanels(dst, false, m, k, a, k, 0, (m+mr-1)/mr)
	}
	b.ReportMetric(float64(m*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gfloat/s")
}
