package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// attnCase is one attention problem; pad is added to every leading
// dimension (strided views).
type attnCase struct {
	heads, d, qLen, kLen int
	causal               bool
	mask                 float32 // bias of masked keys (0: no KeyBias)
	pad                  int
}

func (c attnCase) String() string {
	return fmt.Sprintf("h%d_d%d_q%d_k%d_causal%v_mask%g_pad%d", c.heads, c.d, c.qLen, c.kLen, c.causal, c.mask, c.pad)
}

type attnData struct {
	p                  AttentionParams
	q, k, v, out       []float32
	ldq, ldk, ldv, ldo int
}

func newAttnData(r *rand.Rand, c attnCase) *attnData {
	w := c.heads * c.d
	a := &attnData{ldq: w + c.pad, ldk: w + 2*c.pad, ldv: w + 3*c.pad, ldo: w + c.pad}
	a.p = AttentionParams{Heads: c.heads, HeadDim: c.d, Scale: float32(1 / math.Sqrt(float64(c.d))), Causal: c.causal}
	a.q = randVec(r, max(c.qLen, 1)*a.ldq, 1.5, 0)
	a.k = randVec(r, max(c.kLen, 1)*a.ldk, 1.5, 0)
	a.v = randVec(r, max(c.kLen, 1)*a.ldv, 1, 0)
	a.out = make([]float32, max(c.qLen, 1)*a.ldo)
	if c.mask != 0 {
		a.p.KeyBias = make([]float32, c.kLen)
		for j := range a.p.KeyBias {
			// Mask about a third of the keys, never key 0 (unless kLen is 1
			// and the mask is the point of the case).
			if j%3 == 2 || (c.kLen > 4 && j >= c.kLen-2) {
				a.p.KeyBias[j] = c.mask
			}
		}
	}
	return a
}

// attnRef is the float64 definition: scores in float64 from the float32
// inputs; a non-zero bias is added to the float32-rounded score (as
// PyTorch adds the mask to float32 scores); causally masked keys and keys
// with −Inf score are excluded; a query with no key gets zeros.
func attnRef(a *attnData, qLen, kLen int) [][]float64 {
	d, H := a.p.HeadDim, a.p.Heads
	res := make([][]float64, qLen)
	for i := range res {
		res[i] = make([]float64, H*d)
		for h := 0; h < H; h++ {
			lim := kLen
			if a.p.Causal {
				lim = max(0, min(kLen, i+kLen-qLen+1))
			}
			s := make([]float64, lim)
			m := math.Inf(-1)
			for j := 0; j < lim; j++ {
				var dot float64
				for t := 0; t < d; t++ {
					dot += float64(a.q[i*a.ldq+h*d+t]) * float64(a.k[j*a.ldk+h*d+t])
				}
				s[j] = dot * float64(a.p.Scale)
				if a.p.KeyBias != nil && a.p.KeyBias[j] != 0 {
					s[j] = float64(float32(s[j]) + a.p.KeyBias[j])
				}
				m = math.Max(m, s[j])
			}
			if math.IsInf(m, -1) {
				continue
			}
			var sum float64
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				sum += s[j]
			}
			for j := range s {
				for t := 0; t < d; t++ {
					res[i][h*d+t] += s[j] / sum * float64(a.v[j*a.ldv+h*d+t])
				}
			}
		}
	}
	return res
}

func checkAttn(t *testing.T, name string, a *attnData, qLen, kLen int) {
	t.Helper()
	ref := attnRef(a, qLen, kLen)
	w := a.p.Heads * a.p.HeadDim
	got := make([]float32, 0, qLen*w)
	flat := make([]float64, 0, qLen*w)
	for i := 0; i < qLen; i++ {
		row := a.out[i*a.ldo : i*a.ldo+w]
		got = append(got, row...)
		flat = append(flat, ref[i]...)
		if e := relNorm(row, ref[i]); e > 1e-5 && e*normOf(ref[i]) > 1e-6 {
			t.Fatalf("%s: query %d: relative error %.3g > 1e-5\n got %v\nwant %v", name, i, e, row[:min(8, w)], ref[i][:min(8, w)])
		}
	}
	if e := relNorm(got, flat); e > 1e-5 {
		t.Fatalf("%s: relative error %.3g > 1e-5", name, e)
	}
}

func normOf(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s)
}

func runAttn(a *attnData, qLen, kLen int) {
	Attention(a.p, a.q, qLen, a.ldq, a.k, a.ldk, a.v, a.ldv, kLen, a.out, a.ldo)
}

func TestAttentionSweep(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	cases := []attnCase{
		{1, 8, 1, 1, false, 0, 0},
		{1, 8, 3, 7, false, 0, 1},
		{2, 16, 17, 17, true, 0, 3},
		{4, 8, 7, 7, true, -10000, 0},
		{3, 24, 5, 65, false, -math.MaxFloat32, 2},
		{12, 64, 1, 577, false, 0, 0}, // decode cross-attention
		{12, 64, 1, 577, false, -math.MaxFloat32, 0},
		{12, 64, 1, 130, true, -10000, 8}, // decode with KV cache
		{12, 64, 197, 197, false, 0, 0},   // ViT-B/16 at 224
		{6, 64, 64, 64, true, -10000, 4},
		{5, 32, 33, 100, true, 0, 1},      // causal with offset 67
		{8, 40, 23, 64, false, -10000, 0}, // d = 40: 32+8 column chunks
		{2, 72, 9, 129, true, -math.MaxFloat32, 0},
		{2, 12, 19, 70, true, -10000, 1}, // d not a multiple of 8 (portable path)
		{3, 20, 40, 37, false, float32(math.Inf(-1)), 0},
		{2, 8, 10, 4, true, 0, 0}, // qLen > kLen: first queries see no key
		{12, 64, 197, 577, false, -math.MaxFloat32, 0},
	}
	if !testing.Short() {
		cases = append(cases, attnCase{12, 64, 577, 577, false, 0, 0})
	}
	for _, c := range cases {
		a := newAttnData(r, c)
		poison(a.out)
		for i := 0; i < c.qLen; i++ {
			for col := c.heads * c.d; col < a.ldo && i*a.ldo+col < len(a.out); col++ {
				a.out[i*a.ldo+col] = 42 // padding must survive
			}
		}
		runAttn(a, c.qLen, c.kLen)
		checkAttn(t, c.String(), a, c.qLen, c.kLen)
		for i := 0; i < c.qLen; i++ {
			for col := c.heads * c.d; col < a.ldo && i*a.ldo+col < len(a.out); col++ {
				if a.out[i*a.ldo+col] != 42 {
					t.Fatalf("%s: padding out[%d][%d] overwritten", c, i, col)
				}
			}
		}
	}
}

// TestAttentionRandomShapes covers heads 1..12, headDim 8..64, qLen 1..197
// and kLen 1..577 with random causal flags and masks.
func TestAttentionRandomShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	masks := []float32{0, -10000, -math.MaxFloat32}
	n := 30
	if testing.Short() {
		n = 10
	}
	for it := 0; it < n; it++ {
		c := attnCase{
			heads:  1 + r.IntN(12),
			d:      8 * (1 + r.IntN(8)),
			qLen:   1 + r.IntN(197),
			kLen:   1 + r.IntN(577),
			causal: r.IntN(2) == 0,
			mask:   masks[r.IntN(3)],
			pad:    r.IntN(5),
		}
		if it%5 == 4 {
			c.d = 8 + r.IntN(57) // any width, portable path when not a multiple of 8
		}
		if c.causal && c.qLen > c.kLen {
			c.qLen = c.kLen
		}
		a := newAttnData(r, c)
		poison(a.out)
		runAttn(a, c.qLen, c.kLen)
		checkAttn(t, c.String(), a, c.qLen, c.kLen)
	}
}

// TestAttentionMaskedRows: a query whose keys all carry finfo.min attends
// uniformly (as in PyTorch) without NaN; all −Inf gives a zero row.
func TestAttentionMaskedRows(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, c := range []struct {
		mask float32
		d    int
	}{{-math.MaxFloat32, 16}, {float32(math.Inf(-1)), 16}, {-math.MaxFloat32, 12}} {
		a := newAttnData(r, attnCase{2, c.d, 3, 70, false, 0, 0})
		a.p.KeyBias = make([]float32, 70)
		for j := range a.p.KeyBias {
			a.p.KeyBias[j] = c.mask
		}
		poison(a.out)
		runAttn(a, 3, 70)
		w := 2 * c.d
		for i := 0; i < 3; i++ {
			for h := 0; h < 2; h++ {
				for tt := 0; tt < c.d; tt++ {
					want := 0.0
					if !math.IsInf(float64(c.mask), -1) {
						for j := 0; j < 70; j++ {
							want += float64(a.v[j*a.ldv+h*c.d+tt]) / 70
						}
					}
					got := a.out[i*a.ldo+h*c.d+tt]
					if math.Abs(float64(got)-want) > 1e-5 {
						t.Fatalf("mask %g d %d: out[%d][%d] = %g, want %g", c.mask, c.d, i, h*c.d+tt, got, want)
					}
				}
			}
		}
		_ = w
	}
}

// TestAttentionBatchInvariance: query i computed alone (qLen 1, with the
// keys it may see) equals its value in the full call bit for bit, as does
// any sub-range of queries; AttentionBatch equals separate calls.
func TestAttentionBatchInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, c := range []attnCase{
		{12, 64, 45, 300, false, -10000, 0},
		{4, 64, 70, 200, true, -math.MaxFloat32, 3},
		{3, 12, 20, 90, true, 0, 0},
		{2, 8, 33, 33, true, 0, 1},
	} {
		a := newAttnData(r, c)
		runAttn(a, c.qLen, c.kLen)
		full := append([]float32(nil), a.out...)
		w := c.heads * c.d
		one := make([]float32, w)
		for i := 0; i < c.qLen; i++ {
			kLen := c.kLen
			if c.causal {
				kLen = i + c.kLen - c.qLen + 1 // what a KV cache holds at this step
			}
			poison(one)
			p := a.p
			if p.KeyBias != nil {
				p.KeyBias = p.KeyBias[:kLen]
			}
			Attention(p, a.q[i*a.ldq:], 1, a.ldq, a.k, a.ldk, a.v, a.ldv, kLen, one, w)
			for col := 0; col < w; col++ {
				if math.Float32bits(one[col]) != math.Float32bits(full[i*a.ldo+col]) {
					t.Fatalf("%s: query %d alone: out[%d] = %g, in the batch %g", c, i, col, one[col], full[i*a.ldo+col])
				}
			}
		}
		// Sub-range [lo, hi) of the queries, against the full call.
		lo, hi := c.qLen/3, c.qLen-1
		sub := make([]float32, (hi-lo)*w)
		poison(sub)
		kLen := c.kLen
		if c.causal {
			kLen = c.kLen - (c.qLen - hi)
		}
		p := a.p
		if p.KeyBias != nil {
			p.KeyBias = p.KeyBias[:kLen]
		}
		Attention(p, a.q[lo*a.ldq:], hi-lo, a.ldq, a.k, a.ldk, a.v, a.ldv, kLen, sub, w)
		for i := lo; i < hi; i++ {
			for col := 0; col < w; col++ {
				if math.Float32bits(sub[(i-lo)*w+col]) != math.Float32bits(full[i*a.ldo+col]) {
					t.Fatalf("%s: queries [%d,%d): query %d col %d differs", c, lo, hi, i, col)
				}
			}
		}
	}

	// AttentionBatch over three sequences of different lengths.
	p := AttentionParams{Heads: 4, HeadDim: 16, Scale: 0.25}
	var seqs []AttentionSeq
	var datas []*attnData
	for s, c := range []attnCase{{4, 16, 10, 50, false, -10000, 0}, {4, 16, 1, 7, false, 0, 2}, {4, 16, 40, 130, false, -math.MaxFloat32, 1}} {
		a := newAttnData(r, c)
		a.p.Scale = p.Scale
		runAttn(a, c.qLen, c.kLen)
		datas = append(datas, a)
		out := make([]float32, len(a.out))
		poison(out)
		seqs = append(seqs, AttentionSeq{Q: a.q, QLen: c.qLen, LDQ: a.ldq, K: a.k, LDK: a.ldk, V: a.v, LDV: a.ldv, KLen: c.kLen, KeyBias: a.p.KeyBias, Out: out, LDO: a.ldo})
		_ = s
	}
	AttentionBatch(p, seqs)
	for s, seq := range seqs {
		w := p.Heads * p.HeadDim
		for i := 0; i < seq.QLen; i++ {
			for col := 0; col < w; col++ {
				if math.Float32bits(seq.Out[i*seq.LDO+col]) != math.Float32bits(datas[s].out[i*seq.LDO+col]) {
					t.Fatalf("AttentionBatch seq %d query %d col %d differs from Attention", s, i, col)
				}
			}
		}
	}
}

// TestAttentionPreparedKeys: keys prepared once give bit-for-bit the
// results of plain calls, for every query count and with causal offsets.
func TestAttentionPreparedKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, c := range []attnCase{
		{12, 64, 3, 577, false, -math.MaxFloat32, 0},
		{4, 16, 70, 130, true, -10000, 2},
		{3, 12, 9, 40, false, -10000, 1}, // portable path
		{2, 8, 1, 5, false, 0, 0},
	} {
		a := newAttnData(r, c)
		runAttn(a, c.qLen, c.kLen)
		want := append([]float32(nil), a.out...)
		ak := PrepareKeys(a.p, a.k, a.ldk, c.kLen)
		if ak.KLen() != c.kLen {
			t.Fatalf("%s: KLen() = %d", c, ak.KLen())
		}
		poison(a.out)
		AttentionBatch(AttentionParams{Heads: c.heads, HeadDim: c.d, Scale: a.p.Scale, Causal: c.causal}, []AttentionSeq{{
			Q: a.q, QLen: c.qLen, LDQ: a.ldq, Keys: ak, V: a.v, LDV: a.ldv, KLen: c.kLen, KeyBias: a.p.KeyBias, Out: a.out, LDO: a.ldo,
		}})
		w := c.heads * c.d
		for i := 0; i < c.qLen; i++ {
			for col := 0; col < w; col++ {
				if math.Float32bits(a.out[i*a.ldo+col]) != math.Float32bits(want[i*a.ldo+col]) {
					t.Fatalf("%s: prepared keys: query %d col %d = %g, want %g", c, i, col, a.out[i*a.ldo+col], want[i*a.ldo+col])
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("prepared keys with a different kLen: want a panic")
		}
	}()
	q := make([]float32, 64)
	ak := PrepareKeys(AttentionParams{Heads: 1, HeadDim: 8}, q, 8, 4)
	AttentionBatch(AttentionParams{Heads: 1, HeadDim: 8}, []AttentionSeq{{Q: q, QLen: 1, LDQ: 8, Keys: ak, V: q, LDV: 8, KLen: 5, Out: q, LDO: 8}})
}

// TestAttentionOutAliasesQ: out may be the q buffer itself.
func TestAttentionOutAliasesQ(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	c := attnCase{4, 32, 50, 80, true, -10000, 0}
	a := newAttnData(r, c)
	a.ldo = a.ldq
	a.out = make([]float32, len(a.q))
	runAttn(a, c.qLen, c.kLen)
	want := append([]float32(nil), a.out...)
	Attention(a.p, a.q, c.qLen, a.ldq, a.k, a.ldk, a.v, a.ldv, c.kLen, a.q, a.ldq)
	for i := range want {
		if math.Float32bits(a.q[i]) != math.Float32bits(want[i]) {
			t.Fatalf("out aliasing q: element %d = %g, want %g", i, a.q[i], want[i])
		}
	}
}

// TestAttentionConcurrent runs attention from several goroutines at once.
func TestAttentionConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	c := attnCase{8, 64, 70, 150, true, -10000, 0}
	a := newAttnData(r, c)
	runAttn(a, c.qLen, c.kLen)
	want := append([]float32(nil), a.out...)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float32, len(want))
			Attention(a.p, a.q, c.qLen, a.ldq, a.k, a.ldk, a.v, a.ldv, c.kLen, out, a.ldo)
			for i := range out {
				if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
					errs <- fmt.Sprintf("element %d = %g, want %g", i, out[i], want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestAttentionThreadsInvariance: the result does not depend on the
// number of threads.
func TestAttentionThreadsInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	c := attnCase{12, 64, 150, 150, true, -10000, 0}
	a := newAttnData(r, c)
	defer SetThreads(SetThreads(1))
	runAttn(a, c.qLen, c.kLen)
	want := append([]float32(nil), a.out...)
	for _, threads := range []int{2, 3} {
		SetThreads(threads)
		poison(a.out)
		runAttn(a, c.qLen, c.kLen)
		for i := range want {
			if math.Float32bits(a.out[i]) != math.Float32bits(want[i]) {
				t.Fatalf("threads %d: element %d = %g, with 1 thread %g", threads, i, a.out[i], want[i])
			}
		}
	}
}

// TestAttentionEmpty: no queries writes nothing; no keys gives zero rows.
func TestAttentionEmpty(t *testing.T) {
	p := AttentionParams{Heads: 2, HeadDim: 8, Scale: 0.3}
	q := make([]float32, 3*16)
	for i := range q {
		q[i] = float32(i) + 1
	}
	out := make([]float32, 3*16)
	poison(out)
	Attention(p, q, 0, 16, nil, 16, nil, 16, 0, out, 16)
	if !math.IsNaN(float64(out[0])) {
		t.Fatal("qLen 0 wrote the output")
	}
	Attention(p, q, 3, 16, nil, 16, nil, 16, 0, out, 16)
	for i, v := range out {
		if v != 0 {
			t.Fatalf("kLen 0: out[%d] = %g, want 0", i, v)
		}
	}
	poison(out)
	ak := PrepareKeys(p, nil, 16, 0)
	AttentionBatch(p, []AttentionSeq{{Q: q, QLen: 3, LDQ: 16, Keys: ak, Out: out, LDO: 16}})
	for i, v := range out {
		if v != 0 {
			t.Fatalf("kLen 0, prepared keys: out[%d] = %g, want 0", i, v)
		}
	}
}

func TestAttentionBadInput(t *testing.T) {
	q := make([]float32, 64)
	for _, tc := range []struct {
		name string
		call func()
	}{
		{"zero heads", func() { Attention(AttentionParams{HeadDim: 8}, q, 1, 8, q, 8, q, 8, 1, q, 8) }},
		{"short k", func() { Attention(AttentionParams{Heads: 1, HeadDim: 8}, q, 1, 8, q[:7], 8, q, 8, 1, q, 8) }},
		{"ld too small", func() { Attention(AttentionParams{Heads: 2, HeadDim: 8}, q, 1, 8, q, 16, q, 16, 1, q, 16) }},
		{"short bias", func() {
			Attention(AttentionParams{Heads: 1, HeadDim: 8, KeyBias: []float32{0}}, q, 1, 8, q, 8, q, 8, 2, q, 8)
		}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: want a panic", tc.name)
				}
			}()
			tc.call()
		}()
	}
}

// TestAttentionWideKernelsSameBits: the AVX-512 two-query kernels (where
// the CPU has them) give the same bits as the AVX2 ones.
func TestAttentionWideKernelsSameBits(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("no assembly kernels")
	}
	d2, a2, d4, a4 := attnDots2, attnAxpy2, attnDots4, attnAxpy4
	defer func() { attnDots2, attnAxpy2, attnDots4, attnAxpy4 = d2, a2, d4, a4 }()
	rng := rand.New(rand.NewPCG(11, 12))
	randMat := func(_ *rand.Rand, n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	for _, c := range []struct {
		heads, hd, qLen, kLen int
		causal, bias          bool
	}{
		{12, 64, 577, 577, false, false}, {2, 8, 5, 9, false, true}, {3, 24, 17, 130, true, false},
		{4, 40, 66, 66, true, true}, {1, 16, 2, 1, false, false}, {2, 72, 9, 200, false, true},
		// Folded cross-attention: one head of 768 over image states, and
		// causal runs of queries that do not fill groups of four.
		{1, 768, 12, 577, false, false}, {1, 768, 13, 100, true, true}, {2, 64, 7, 70, true, true},
		{3, 56, 23, 23, true, false},
	} {
		d := c.heads * c.hd
		q, k, v := randMat(rng, c.qLen*d), randMat(rng, c.kLen*d), randMat(rng, c.kLen*d)
		p := AttentionParams{Heads: c.heads, HeadDim: c.hd, Scale: 0.125, Causal: c.causal}
		if c.bias {
			p.KeyBias = make([]float32, c.kLen)
			for j := range p.KeyBias {
				if j%3 == 1 {
					p.KeyBias[j] = -10000
				}
			}
		}
		run := func() []float32 {
			out := make([]float32, c.qLen*d)
			Attention(p, q, c.qLen, d, k, d, v, d, c.kLen, out, d)
			return out
		}
		wide := run()
		attnDots2, attnAxpy2, attnDots4, attnAxpy4 = attnDotsT2AVX2, attnAxpy2AVX2, nil, nil
		narrow := run()
		attnDots2, attnAxpy2, attnDots4, attnAxpy4 = d2, a2, d4, a4
		for i := range wide {
			if math.Float32bits(wide[i]) != math.Float32bits(narrow[i]) {
				t.Fatalf("%+v: element %d: %v with the current kernels, %v with AVX2", c, i, wide[i], narrow[i])
			}
		}
	}
}
