package kernels

import (
	"fmt"
	"math"
)

// Backward passes (gradients) of the operations Glimpse's models use, for
// training and fine-tuning. Conventions: every gradient output is
// ACCUMULATED into (+=), so a parameter used several times (tied weights,
// shared layers) sums its contributions, and callers zero gradients once
// per step. Reductions run in a fixed order on the calling goroutine (or
// through Gemm, whose summation order is fixed), so results are
// deterministic. Sizes are checked; a mismatch is a programming error and
// panics with a message, as in the forward kernels.

// LinearBackward accumulates the gradients of y = x·Wᵀ + b (W stored
// [out, in] as nn.Linear) given dy (rows×out): dx += dy·W (rows×in; nil to
// skip), dW += dyᵀ·x (out×in; nil to skip) and db += Σ_rows dy (out; nil
// to skip).
func LinearBackward(dx, dW, db, dy, x, w []float32, rows, in, out int) {
	checkMatrix("LinearBackward", "dy", len(dy), rows, out, out)
	if dx != nil {
		checkMatrix("LinearBackward", "dx", len(dx), rows, in, in)
		checkMatrix("LinearBackward", "w", len(w), out, in, in)
		Gemm(false, false, rows, in, out, 1, dy, out, w, in, 1, dx, in)
	}
	if dW != nil {
		checkMatrix("LinearBackward", "x", len(x), rows, in, in)
		checkMatrix("LinearBackward", "dW", len(dW), out, in, in)
		Gemm(true, false, out, in, rows, 1, dy, out, x, in, 1, dW, in)
	}
	if db != nil {
		if len(db) < out {
			panic(fmt.Sprintf("kernels: LinearBackward: db has %d values, need %d", len(db), out))
		}
		for r := 0; r < rows; r++ {
			row := dy[r*out : (r+1)*out]
			for o, v := range row {
				db[o] += v
			}
		}
	}
}

// LayerNormBackward accumulates the gradients of LayerNorm (rows rows of d
// values x, contiguous) given dy: dx += ∂L/∂x (nil to skip), dGamma and
// dBeta (d values each; nil to skip). Mean and variance are recomputed
// from x in float64, as the forward computes them.
func LayerNormBackward(dx, dGamma, dBeta, dy, x, gamma []float32, rows, d int, eps float32) {
	checkMatrix("LayerNormBackward", "x", len(x), rows, d, d)
	checkMatrix("LayerNormBackward", "dy", len(dy), rows, d, d)
	if dx != nil {
		checkMatrix("LayerNormBackward", "dx", len(dx), rows, d, d)
	}
	xhat := make([]float64, d)
	for r := 0; r < rows; r++ {
		xr, gr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d]
		var mean float64
		for _, v := range xr {
			mean += float64(v)
		}
		mean /= float64(d)
		var vr float64
		for _, v := range xr {
			t := float64(v) - mean
			vr += t * t
		}
		vr /= float64(d)
		inv := 1 / math.Sqrt(vr+float64(eps))
		var sg, sgx float64 // Σ g·γ, Σ g·γ·x̂
		for i, v := range xr {
			xhat[i] = (float64(v) - mean) * inv
			g := float64(gr[i]) * float64(gamma[i])
			sg += g
			sgx += g * xhat[i]
			if dGamma != nil {
				dGamma[i] += gr[i] * float32(xhat[i])
			}
			if dBeta != nil {
				dBeta[i] += gr[i]
			}
		}
		if dx == nil {
			continue
		}
		dr := dx[r*d : (r+1)*d]
		n := float64(d)
		for i := range dr {
			g := float64(gr[i]) * float64(gamma[i])
			dr[i] += float32(inv * (g - sg/n - xhat[i]*sgx/n))
		}
	}
}

// ActivationBackward sets dx[i] = dy[i]·a'(x[i]) for the pre-activation
// values x (dx may alias dy).
func ActivationBackward(a Activation, dx, x, dy []float32) {
	if len(dy) < len(x) || len(dx) < len(x) {
		panic(fmt.Sprintf("kernels: ActivationBackward: %d inputs, dy %d, dx %d", len(x), len(dy), len(dx)))
	}
	for i, xv := range x {
		dx[i] = dy[i] * float32(actDeriv(a, float64(xv)))
	}
}

// actDeriv is the derivative of activation a at v.
func actDeriv(a Activation, v float64) float64 {
	switch a {
	case ActGELU:
		cdf := 0.5 * math.Erfc(-v/math.Sqrt2)
		pdf := math.Exp(-0.5*v*v) / math.Sqrt(2*math.Pi)
		return cdf + v*pdf
	case ActGELUTanh:
		c := math.Sqrt(2 / math.Pi)
		u := c * (v + 0.044715*v*v*v)
		t := math.Tanh(u)
		return 0.5*(1+t) + 0.5*v*(1-t*t)*c*(1+3*0.044715*v*v)
	case ActQuickGELU:
		s := 1 / (1 + math.Exp(-1.702*v))
		return s + v*1.702*s*(1-s)
	case ActReLU:
		if v > 0 {
			return 1
		}
		return 0
	case ActTanh:
		t := math.Tanh(v)
		return 1 - t*t
	}
	return 1
}

// AttentionTrain is the training form of Attention: it computes the same
// out (see Attention for the layout and the meaning of Heads, HeadDim,
// Scale, Causal and KeyBias) and also returns the attention probabilities
// (Heads × qLen × kLen, row-major) that AttentionBackward needs. q, k, v
// and out are contiguous here: leading dimension Heads·HeadDim for q, k,
// v and out. Masked keys (causal, or a bias of −Inf) get probability 0; a
// query that can attend to no key gets a zero output.
func AttentionTrain(p AttentionParams, q []float32, qLen int, k, v []float32, kLen int, out []float32) []float32 {
	w := p.Heads * p.HeadDim
	checkMatrix("AttentionTrain", "q", len(q), qLen, w, w)
	checkMatrix("AttentionTrain", "k", len(k), kLen, w, w)
	checkMatrix("AttentionTrain", "v", len(v), kLen, w, w)
	checkMatrix("AttentionTrain", "out", len(out), qLen, w, w)
	if p.KeyBias != nil && len(p.KeyBias) < kLen {
		panic(fmt.Sprintf("kernels: AttentionTrain: KeyBias has %d values for %d keys", len(p.KeyBias), kLen))
	}
	probs := make([]float32, p.Heads*qLen*kLen)
	for h := 0; h < p.Heads; h++ {
		off := h * p.HeadDim
		ph := probs[h*qLen*kLen : (h+1)*qLen*kLen]
		// Scores S = Scale·Q_h·K_hᵀ (qLen×kLen), then a masked softmax per row.
		Gemm(false, true, qLen, kLen, p.HeadDim, p.Scale, q[off:], w, k[off:], w, 0, ph, kLen)
		for i := 0; i < qLen; i++ {
			lim := kLen
			if p.Causal {
				lim = min(max(i+(kLen-qLen)+1, 0), kLen)
			}
			row := ph[i*kLen : (i+1)*kLen]
			m := math.Inf(-1)
			for j := 0; j < lim; j++ {
				if p.KeyBias != nil {
					row[j] += p.KeyBias[j]
				}
				m = math.Max(m, float64(row[j]))
			}
			if lim <= 0 || math.IsInf(m, -1) {
				clear(row)
				continue
			}
			var sum float64
			for j := 0; j < lim; j++ {
				e := math.Exp(float64(row[j]) - m)
				row[j] = float32(e)
				sum += e
			}
			inv := 1 / sum
			for j := 0; j < lim; j++ {
				row[j] = float32(float64(row[j]) * inv)
			}
			clear(row[lim:])
		}
		// O_h = P·V_h
		Gemm(false, false, qLen, p.HeadDim, kLen, 1, ph, kLen, v[off:], w, 0, out[off:], w)
	}
	return probs
}

// AttentionBackward accumulates dq, dk and dv (same layouts as q, k, v in
// AttentionTrain; any may be nil to skip) given dout and the probabilities
// AttentionTrain returned. Through the softmax, dS = P ⊙ (dP − Σ P·dP).
func AttentionBackward(p AttentionParams, q []float32, qLen int, k, v []float32, kLen int, probs, dout, dq, dk, dv []float32) {
	w := p.Heads * p.HeadDim
	checkMatrix("AttentionBackward", "dout", len(dout), qLen, w, w)
	if len(probs) < p.Heads*qLen*kLen {
		panic(fmt.Sprintf("kernels: AttentionBackward: probs has %d values, need %d", len(probs), p.Heads*qLen*kLen))
	}
	dp := make([]float32, qLen*kLen)
	for h := 0; h < p.Heads; h++ {
		off := h * p.HeadDim
		ph := probs[h*qLen*kLen : (h+1)*qLen*kLen]
		if dv != nil { // dV_h += Pᵀ·dO_h
			Gemm(true, false, kLen, p.HeadDim, qLen, 1, ph, kLen, dout[off:], w, 1, dv[off:], w)
		}
		// dP = dO_h·V_hᵀ; dS = P ⊙ (dP − Σ_j P·dP)·Scale
		Gemm(false, true, qLen, kLen, p.HeadDim, 1, dout[off:], w, v[off:], w, 0, dp, kLen)
		for i := 0; i < qLen; i++ {
			pr, dr := ph[i*kLen:(i+1)*kLen], dp[i*kLen:(i+1)*kLen]
			var dot float64
			for j, pv := range pr {
				dot += float64(pv) * float64(dr[j])
			}
			for j, pv := range pr {
				dr[j] = pv * (dr[j] - float32(dot)) * p.Scale
			}
		}
		if dq != nil { // dQ_h += dS·K_h
			Gemm(false, false, qLen, p.HeadDim, kLen, 1, dp, kLen, k[off:], w, 1, dq[off:], w)
		}
		if dk != nil { // dK_h += dSᵀ·Q_h
			Gemm(true, false, kLen, p.HeadDim, qLen, 1, dp, kLen, q[off:], w, 1, dk[off:], w)
		}
	}
}

// CrossEntropy returns the mean cross-entropy of rows rows of logits
// (vocab wide) against targets, skipping rows whose target is ignore
// (PyTorch's ignore_index, −100 in HF), with label smoothing eps (HF
// BLIP's decoder uses 0.1): loss_r = −(1−eps)·log p[t] − eps/vocab·Σ log p.
// If dlogits is not nil the gradient of the mean loss is ADDED to it,
// scaled by weight. It returns the loss and the number of counted rows
// (0 rows: loss 0).
func CrossEntropy(logits []float32, rows, vocab int, targets []int, ignore int, eps float32, dlogits []float32, weight float32) (float64, int) {
	checkMatrix("CrossEntropy", "logits", len(logits), rows, vocab, vocab)
	if len(targets) < rows {
		panic(fmt.Sprintf("kernels: CrossEntropy: %d targets for %d rows", len(targets), rows))
	}
	n := 0
	for r := 0; r < rows; r++ {
		if targets[r] != ignore {
			if targets[r] < 0 || targets[r] >= vocab {
				panic(fmt.Sprintf("kernels: CrossEntropy: target %d of row %d outside [0, %d)", targets[r], r, vocab))
			}
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	var total float64
	lp := make([]float64, vocab)
	e := float64(eps)
	for r := 0; r < rows; r++ {
		t := targets[r]
		if t == ignore {
			continue
		}
		row := logits[r*vocab : (r+1)*vocab]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(sum)
		var sumLP float64
		for j, v := range row {
			lp[j] = float64(v) - lse
			sumLP += lp[j]
		}
		total += -(1-e)*lp[t] - e/float64(vocab)*sumLP
		if dlogits != nil {
			d := dlogits[r*vocab : (r+1)*vocab]
			sc := float64(weight) / float64(n)
			for j := range d {
				g := math.Exp(lp[j]) - e/float64(vocab)
				if j == t {
					g -= 1 - e
				}
				d[j] += float32(g * sc)
			}
		}
	}
	return total / float64(n), n
}

// EmbeddingBackward scatter-adds the gradient rows dOut (len(ids)×dim)
// into dTable at rows ids (in order, so repeated ids sum
// deterministically).
func EmbeddingBackward(dTable, dOut []float32, dim int, ids []int) {
	checkMatrix("EmbeddingBackward", "dOut", len(dOut), len(ids), dim, dim)
	for i, id := range ids {
		if id < 0 || (id+1)*dim > len(dTable) {
			panic(fmt.Sprintf("kernels: EmbeddingBackward: id %d outside a table of %d rows", id, len(dTable)/dim))
		}
		dst := dTable[id*dim : (id+1)*dim]
		for j, v := range dOut[i*dim : (i+1)*dim] {
			dst[j] += v
		}
	}
}
