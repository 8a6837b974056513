package kernels

import (
	"fmt"
	"math/rand"
	"testing"
)

// GEMM benchmark shapes (M, K, N): ViT-B/16 at 224 px (M = 197), 384 px
// (M = 577, BLIP) and a batch of 8 (M = 1576), plus 1024³.
var benchGemmShapes = func() [][3]int {
	var s [][3]int
	for _, m := range []int{197, 577, 1576} {
		for _, kn := range [][2]int{{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}} {
			s = append(s, [3]int{m, kn[0], kn[1]})
		}
	}
	return append(s, [3]int{1024, 1024, 1024})
}()

// Decode shapes (1 × K · K × N).
var benchGemvShapes = [][2]int{{768, 768}, {768, 3072}, {768, 30524}}

func withThreads(b *testing.B, n int) {
	prev := SetThreads(n)
	b.Cleanup(func() { SetThreads(prev) })
}

// BenchmarkGemmPacked: C = A·W with W pre-packed (how Linear runs).
func BenchmarkGemmPacked(b *testing.B) {
	for _, s := range benchGemmShapes {
		m, k, n := s[0], s[1], s[2]
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d/t%d", m, k, n, th), func(b *testing.B) {
				withThreads(b, th)
				rng := rand.New(rand.NewSource(1))
				a, w := randMat(rng, m*k), randMat(rng, k*n)
				pb := PackB(true, k, n, w, k)
				c := make([]float32, m*n)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					GemmPacked(m, 1, a, k, pb, 0, c, n)
				}
				b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkGemm: C = A·Wᵀ with W ([N, K], nn.Linear layout) packed on
// every call, like a BLAS sgemm.
func BenchmarkGemm(b *testing.B) {
	for _, s := range benchGemmShapes {
		m, k, n := s[0], s[1], s[2]
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d/t%d", m, k, n, th), func(b *testing.B) {
				withThreads(b, th)
				rng := rand.New(rand.NewSource(1))
				a, w := randMat(rng, m*k), randMat(rng, k*n)
				c := make([]float32, m*n)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					Gemm(false, true, m, n, k, 1, a, k, w, k, 0, c, n)
				}
				b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkGemv: decode step 1×K·K×N with packed weights not in cache;
// GB/s counts the packed weight bytes read.
func BenchmarkGemv(b *testing.B) {
	for _, s := range benchGemvShapes {
		k, n := s[0], s[1]
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("1x%dx%d/t%d", k, n, th), func(b *testing.B) {
				withThreads(b, th)
				rng := rand.New(rand.NewSource(1))
				x, w := randMat(rng, k), randMat(rng, k*n)
				// Cycle through copies of the weights totalling 256 MiB so
				// that they come from DRAM, as in a decode step.
				pbs := []*PackedB{PackB(true, k, n, w, k)}
				pb := pbs[0]
				for total := pb.Bytes(); total < 256<<20; total += pb.Bytes() {
					pbs = append(pbs, PackB(true, k, n, w, k))
				}
				c := make([]float32, n)
				b.SetBytes(int64(pb.Bytes()))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					GemmPacked(1, 1, x, k, pbs[i%len(pbs)], 0, c, n)
				}
				sec := b.Elapsed().Seconds()
				b.ReportMetric(2*float64(n)*float64(k)*float64(b.N)/sec/1e9, "GFLOP/s")
				b.ReportMetric(float64(pb.Bytes())*float64(b.N)/sec/1e9, "GB/s")
			})
		}
	}
}

// BenchmarkPeakFMA measures the register-only FMA peak of one thread.
func BenchmarkPeakFMA(b *testing.B) {
	const iters = 1 << 16
	var flops float64
	for i := 0; i < b.N; i++ {
		flops += PeakFMALoop(iters)
	}
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
