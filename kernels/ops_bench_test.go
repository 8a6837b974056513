package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Benchmarks for the transformer ops at BLIP/ViT-B sizes (577 tokens at
// 384 px, width 768, MLP 3072, vocabulary 30524). Compare the assembly and
// portable paths with
//
//	go test -run '^$' -bench 'Ops|Attention' -benchtime 20x ./kernels/
//	go test -tags purego -run '^$' -bench 'Ops|Attention' -benchtime 20x ./kernels/

func BenchmarkOpsLayerNorm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	rows, cols := 577, 768
	x := randVec(r, rows*cols, 1, 0.5)
	out := make([]float32, len(x))
	gamma, beta := randVec(r, cols, 1, 1), randVec(r, cols, 1, 0)
	b.SetBytes(int64(8 * len(x)))
	b.ResetTimer()
	for range b.N {
		LayerNorm(out, x, rows, cols, cols, gamma, beta, 1e-5)
	}
}

func BenchmarkOpsAddBiasAct(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	rows, cols := 577, 3072
	src := randVec(r, rows*cols, 2, 0)
	bias := randVec(r, cols, 1, 0)
	x := make([]float32, len(src))
	for _, a := range []Activation{ActGELU, ActGELUTanh, ActQuickGELU, ActReLU} {
		b.Run(a.String(), func(b *testing.B) {
			b.SetBytes(int64(8 * len(x)))
			for range b.N {
				b.StopTimer()
				copy(x, src)
				b.StartTimer()
				AddBiasAct(x, rows, cols, cols, bias, a)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x)), "ns/elem")
		})
	}
}

func BenchmarkOpsSoftmax(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	src := randVec(r, 30524, 3, 0)
	x := make([]float32, len(src))
	for _, log := range []bool{false, true} {
		name := "softmax"
		if log {
			name = "logsoftmax"
		}
		b.Run(fmt.Sprintf("%s_30524", name), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for range b.N {
				copy(x, src)
				if log {
					LogSoftmax(x)
				} else {
					Softmax(x)
				}
			}
		})
	}
}

func BenchmarkAttention(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, c := range []struct {
		name                 string
		heads, d, qLen, kLen int
	}{
		{"self_12x64_577x577", 12, 64, 577, 577},
		{"self_12x64_197x197", 12, 64, 197, 197},
		{"decode_cross_12x64_1x577", 12, 64, 1, 577},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := c.heads * c.d
			q := randVec(r, c.qLen*w, 1, 0)
			k := randVec(r, c.kLen*w, 1, 0)
			v := randVec(r, c.kLen*w, 1, 0)
			out := make([]float32, c.qLen*w)
			p := AttentionParams{Heads: c.heads, HeadDim: c.d, Scale: float32(1 / math.Sqrt(float64(c.d)))}
			b.ResetTimer()
			for range b.N {
				Attention(p, q, c.qLen, w, k, w, v, w, c.kLen, out, w)
			}
			flops := 4 * float64(c.qLen) * float64(c.kLen) * float64(w)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
