package kernels

import "fmt"

// AttentionDense computes what Attention computes, for every head h and
// query i,
//
//	out[i, h] = Σ_j softmax_j(Scale·q[i,h]·k[j,h] + KeyBias[j]) · v[j,h]
//
// (same layout and arguments; Causal is not supported), evaluated as two
// matrix products per head with the scores materialised:
//
//	S = Scale·Q_h·K_hᵀ (+ KeyBias),  P = softmax rows of S,  O_h = P·V_h
//
// each product by Gemm (a fixed order of float32 sums per element) and
// each row of P by Softmax. Row i of the result depends only on query i,
// the keys and the values (Gemm and Softmax are row by row), so it is the
// same bit for bit whatever qLen is and whatever the number of threads —
// but not the same bits as Attention, whose online softmax sums in
// another order: a model uses one or the other throughout. The heads run
// in parallel on the worker pool, each holding qLen×kLen scores: it suits
// full self-attention over a few hundred tokens (vision encoders), where
// the products run at GEMM speed; decoding against a KV cache, where the
// scores of one query are a row, stays with Attention.
//
// It panics on inconsistent sizes, like Attention, and if p.Causal is set.
func AttentionDense(p AttentionParams, q []float32, qLen, ldq int, k []float32, ldk int, v []float32, ldv int, kLen int, out []float32, ldo int) {
	if p.Heads <= 0 || p.HeadDim <= 0 {
		panic(fmt.Sprintf("kernels.AttentionDense: Heads = %d and HeadDim = %d must be positive", p.Heads, p.HeadDim))
	}
	if p.Causal {
		panic("kernels.AttentionDense: causal attention is not supported; use Attention")
	}
	if qLen < 0 || kLen < 0 {
		panic(fmt.Sprintf("kernels.AttentionDense: qLen = %d and kLen = %d must not be negative", qLen, kLen))
	}
	if qLen == 0 {
		return
	}
	width := p.Heads * p.HeadDim
	checkMatrix("AttentionDense", "q", len(q), qLen, width, ldq)
	checkMatrix("AttentionDense", "out", len(out), qLen, width, ldo)
	if kLen == 0 { // no key to attend to: zero rows, as Attention gives
		for i := 0; i < qLen; i++ {
			clear(out[i*ldo : i*ldo+width])
		}
		return
	}
	checkMatrix("AttentionDense", "k", len(k), kLen, width, ldk)
	checkMatrix("AttentionDense", "v", len(v), kLen, width, ldv)
	if p.KeyBias != nil && len(p.KeyBias) < kLen {
		panic(fmt.Sprintf("kernels.AttentionDense: len(KeyBias) = %d < kLen = %d", len(p.KeyBias), kLen))
	}
	d := p.HeadDim
	parallelFor(p.Heads, 1, func(lo, hi int) {
		buf := getFloats(qLen * kLen)
		defer putFloats(buf)
		s := buf.f[:qLen*kLen]
		for h := lo; h < hi; h++ {
			col := h * d
			Gemm(false, true, qLen, kLen, d, p.Scale, q[col:], ldq, k[col:], ldk, 0, s, kLen)
			if p.KeyBias != nil {
				AddBiasAct(s, qLen, kLen, kLen, p.KeyBias, ActNone)
			}
			SoftmaxRows(s, qLen, kLen, kLen)
			Gemm(false, false, qLen, d, kLen, 1, s, kLen, v[col:], ldv, 0, out[col:], ldo)
		}
	})
}
