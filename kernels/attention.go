package kernels

import "math"

// AttentionParams describes one multi-head scaled-dot-product attention.
type AttentionParams struct {
	// Heads is the number of heads; HeadDim the width of each.
	Heads, HeadDim int
	// Scale multiplies q·k (usually 1/√HeadDim).
	Scale float32
	// Causal masks key j for query i when j > i + (kLen − qLen), so that
	// with a KV cache the last query sees every key.
	Causal bool
	// KeyBias, if not nil, has kLen additive values added to every query's
	// score for key j (0 to attend; −10000 or −3.4e38 to mask padding).
	KeyBias []float32
}

// Attention computes, for every head h and query i,
//
//	out[i, h] = Σ_j softmax_j(Scale·q[i,h]·k[j,h] + KeyBias[j]) · v[j,h]
//
// where x[i,h] is the HeadDim-wide slice at columns h·HeadDim of row i.
// q has qLen rows (leading dimension ldq); k and v have kLen rows (ldk,
// ldv); out has qLen rows (ldo). Causally masked keys get weight exactly 0.
func Attention(p AttentionParams, q []float32, qLen, ldq int, k []float32, ldk int, v []float32, ldv int, kLen int, out []float32, ldo int) {
	d := p.HeadDim
	scores := make([]float32, kLen)
	for h := 0; h < p.Heads; h++ {
		for i := 0; i < qLen; i++ {
			lim := kLen
			if p.Causal {
				lim = i + (kLen - qLen) + 1
				if lim > kLen {
					lim = kLen
				}
			}
			qi := q[i*ldq+h*d : i*ldq+h*d+d]
			for j := 0; j < lim; j++ {
				kj := k[j*ldk+h*d : j*ldk+h*d+d]
				var s float32
				for t := 0; t < d; t++ {
					s += qi[t] * kj[t]
				}
				s *= p.Scale
				if p.KeyBias != nil {
					s += p.KeyBias[j]
				}
				scores[j] = s
			}
			Softmax(scores[:lim])
			o := out[i*ldo+h*d : i*ldo+h*d+d]
			for t := range o {
				o[t] = 0
			}
			for j := 0; j < lim; j++ {
				w := scores[j]
				vj := v[j*ldv+h*d : j*ldv+h*d+d]
				for t := 0; t < d; t++ {
					o[t] += w * vj[t]
				}
			}
		}
	}
	_ = math.Inf
}
