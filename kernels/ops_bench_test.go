package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// opsBench runs fn b.N times and, when the kernels use one thread, also
// reports ns of thread CPU time per op ("cpu-ns/op"), which stays
// meaningful on a machine shared with other work. It returns the time per
// op to use for rates: CPU time when available, else wall time.
func opsBench(b *testing.B, fn func()) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	single := Threads() == 1
	c0, ok := opsThreadCPU()
	b.ResetTimer()
	for range b.N {
		fn()
	}
	b.StopTimer()
	perOp := b.Elapsed().Seconds() / float64(b.N)
	if c1, ok1 := opsThreadCPU(); ok && ok1 && single {
		cpu := float64(c1-c0) / 1e9 / float64(b.N)
		b.ReportMetric(cpu*1e9, "cpu-ns/op")
		perOp = cpu
	}
	return perOp
}

// Benchmarks for the transformer ops at BLIP/ViT-B sizes (577 tokens at
// 384 px, width 768, MLP 3072, vocabulary 30524). Compare the assembly and
// portable paths with
//
//	go test -run '^$' -bench 'Ops|Attention' -benchtime 20x ./kernels/
//	go test -tags purego -run '^$' -bench 'Ops|Attention' -benchtime 20x ./kernels/

func BenchmarkOpsLayerNorm(b *testing.B) {
	defer SetThreads(SetThreads(1))
	r := rand.New(rand.NewPCG(1, 1))
	rows, cols := 577, 768
	x := randVec(r, rows*cols, 1, 0.5)
	out := make([]float32, len(x))
	gamma, beta := randVec(r, cols, 1, 1), randVec(r, cols, 1, 0)
	t := opsBench(b, func() { LayerNorm(out, x, rows, cols, cols, gamma, beta, 1e-5) })
	b.ReportMetric(t*1e9/float64(len(x)), "ns/elem")
}

// BenchmarkOpsAddBiasAct times act(x + bias) on a fresh copy of the input
// each time; "copy" is the copy alone.
func BenchmarkOpsAddBiasAct(b *testing.B) {
	defer SetThreads(SetThreads(1))
	r := rand.New(rand.NewPCG(2, 2))
	rows, cols := 577, 3072
	src := randVec(r, rows*cols, 2, 0)
	bias := randVec(r, cols, 1, 0)
	x := make([]float32, len(src))
	b.Run("copy", func(b *testing.B) {
		t := opsBench(b, func() { copy(x, src) })
		b.ReportMetric(t*1e9/float64(len(x)), "ns/elem")
	})
	for _, a := range []Activation{ActGELU, ActGELUTanh, ActQuickGELU, ActReLU, ActTanh} {
		b.Run(a.String(), func(b *testing.B) {
			t := opsBench(b, func() {
				copy(x, src)
				AddBiasAct(x, rows, cols, cols, bias, a)
			})
			b.ReportMetric(t*1e9/float64(len(x)), "ns/elem")
		})
	}
}

func BenchmarkOpsSoftmax(b *testing.B) {
	defer SetThreads(SetThreads(1))
	r := rand.New(rand.NewPCG(3, 3))
	src := randVec(r, 30524, 3, 0)
	x := make([]float32, len(src))
	b.Run("softmax_30524", func(b *testing.B) {
		opsBench(b, func() { copy(x, src); Softmax(x) })
	})
	b.Run("logsoftmax_30524", func(b *testing.B) {
		opsBench(b, func() { copy(x, src); LogSoftmax(x) })
	})
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
		// Folded cross-attention of one BLIP-base decode step: the 12 heads'
		// queries in the image states' space (one head of 768) over 577
		// image tokens, whose keys are prepared once per request.
		{"folded_1x768_12x577_prepared", 1, 768, 12, 577},
	} {
		w := c.heads * c.d
		q := randVec(r, c.qLen*w, 1, 0)
		k := randVec(r, c.kLen*w, 1, 0)
		v := randVec(r, c.kLen*w, 1, 0)
		out := make([]float32, c.qLen*w)
		p := AttentionParams{Heads: c.heads, HeadDim: c.d, Scale: float32(1 / math.Sqrt(float64(c.d)))}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", c.name, threads), func(b *testing.B) {
				defer SetThreads(SetThreads(threads))
				call := func() { Attention(p, q, c.qLen, w, k, w, v, w, c.kLen, out, w) }
				if strings.HasSuffix(c.name, "_prepared") {
					keys := PrepareKeys(p, k, w, c.kLen)
					seq := []AttentionSeq{{Q: q, QLen: c.qLen, LDQ: w, Keys: keys, V: v, LDV: w, KLen: c.kLen, Out: out, LDO: w}}
					call = func() { AttentionBatch(p, seq) }
				}
				t := opsBench(b, call)
				flops := 4 * float64(c.qLen) * float64(c.kLen) * float64(w)
				b.ReportMetric(flops/t/1e9, "GFLOP/s")
			})
		}
	}
}
