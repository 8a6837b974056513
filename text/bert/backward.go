package bert

import (
	"fmt"
	"github.com/glimpse-vlm/glimpse/internal/weights"
	"math"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Training support. The serving forward is the training forward: with
// Workspace.Tape set, Forward and Logits run their usual code and keep
// copies of the activations that Backward and LogitsBackward need. The
// Model holds only packed weights, so the backward passes read the fp32
// weights (and write the gradients) through Params, by Hugging Face tensor
// name: a trainer keeps its master weights there and rebuilds (Load) the
// Model from them after each optimiser step.

// Params gives the backward passes the fp32 weights the Model was loaded
// from and the gradient buffers to accumulate into, by full tensor name
// (the Load prefix included, e.g. "text_decoder.bert.embeddings.word_embeddings.weight").
// Tied tensors (an LM-head decoder weight read from the word embeddings)
// are asked for by the name they were read from.
type Params = weights.Params

// Tape holds the activations of one Forward call (and of a following
// Logits call with the same Workspace). The zero value is ready; Forward
// overwrites it.
type Tape struct {
	seqs   []tapeSeq
	rows   int
	causal bool
	cross  *CrossKV // shared by every sequence, or nil
	emb    []float32
	layers []layerTape
	// LM head (Logits)
	headIn, headAct, headN []float32
}

type tapeSeq struct {
	tokens, mask []int
}

// layerTape is one layer's activations (rows = all new tokens).
type layerTape struct {
	x, qkv, ctx, ares []float32 // self-attention: input, projections, context, pre-norm sum
	a, cq, cctx, cres []float32 // cross-attention: input, query, context, pre-norm sum
	f, mid, ores      []float32 // feed-forward: input, act(intermediate), pre-norm sum
}

// start checks that seqs can be recorded and resets the tape.
func (t *Tape) start(m *Model, seqs []Seq, causal bool) error {
	*t = Tape{causal: causal, layers: make([]layerTape, len(m.layers))}
	for i, s := range seqs {
		if s.Cache.n != 0 {
			return fmt.Errorf("bert: sequence %d: a recorded (training) forward runs whole sequences, but its cache already holds %d positions", i, s.Cache.n)
		}
		if i == 0 {
			t.cross = s.Cross
		} else if s.Cross != t.cross {
			return fmt.Errorf("bert: sequence %d: a recorded (training) forward needs every sequence to cross-attend to the same encoder states (or none)", i)
		}
		t.seqs = append(t.seqs, tapeSeq{tokens: append([]int(nil), s.Tokens...), mask: append([]int(nil), s.Mask...)})
		t.rows += len(s.Tokens)
	}
	return nil
}

// Backward accumulates into p's gradients the gradient of a loss whose
// gradient with respect to Forward's output (the recorded sequences'
// hidden states, rows×H) is dHidden. If needEnc, it returns the gradient
// with respect to the encoder states the sequences' CrossKV was computed
// from (encLen×encoder_hidden_size); otherwise nil.
func (m *Model) Backward(t *Tape, dHidden []float32, p Params, needEnc bool) ([]float32, error) {
	c := m.cfg
	h, inter := c.HiddenSize, c.IntermediateSize
	if t == nil || len(t.layers) != len(m.layers) || t.rows == 0 || t.layers[0].x == nil {
		return nil, fmt.Errorf("bert: Backward: the tape was not filled by a Forward of this model")
	}
	rows := t.rows
	if len(dHidden) != rows*h {
		return nil, fmt.Errorf("bert: Backward: dHidden has %d values for %d rows of %d", len(dHidden), rows, h)
	}
	var dEnc []float32
	if needEnc && t.cross != nil {
		dEnc = make([]float32, len(t.cross.enc))
	}
	ap := attentionParams(c)
	L := func(f string, i int) string { return m.body + fmt.Sprintf(f, i) }
	dx := clone(dHidden)
	dmid := make([]float32, rows*inter)
	z := make([]float32, rows*inter)
	for i := len(m.layers) - 1; i >= 0; i-- {
		layer, rec := m.layers[i], &t.layers[i]
		// out = LN(f + Out(act(Inter(f))))
		dores := weights.NormBackward(p, L(names.outNorm, i), dx, rec.ores, rows, c.LayerNormEps)
		clear(dmid)
		weights.LinearBackward(p, []string{L(names.out, i)}, true, dmid, dores, rec.mid, rows, inter, h)
		layer.Inter.Forward(z, rec.f, rows, kernels.ActNone)
		kernels.ActivationBackward(c.Act, dmid, z, dmid)
		df := make([]float32, rows*h)
		weights.LinearBackward(p, []string{L(names.inter, i)}, true, df, dmid, rec.f, rows, h, inter)
		kernels.Add(df, df, dores)

		if rec.cres != nil { // f = LN(a + CrossOut(CrossAttention(Query(a), kv)))
			x := t.cross
			dcres := weights.NormBackward(p, L(names.crossNorm, i), df, rec.cres, rows, c.LayerNormEps)
			dcctx := make([]float32, rows*h)
			weights.LinearBackward(p, []string{L(names.crossOut, i)}, true, dcctx, dcres, rec.cctx, rows, h, h)
			// The keys and values again, as CrossKV computed them (it keeps
			// the keys only in the attention kernel's layout). Folded states
			// (CrossFolded) compute the same function, so its gradient is
			// this one too.
			kv := make([]float32, x.n*2*h)
			layer.Cross.KV.Forward(kv, x.enc, x.n, kernels.ActNone)
			k, v := make([]float32, x.n*h), make([]float32, x.n*h)
			weights.SplitColumns(kv, x.n, 2*h, h, k, v)
			dk, dv := make([]float32, x.n*h), make([]float32, x.n*h)
			dcq := make([]float32, rows*h)
			r := 0
			for _, s := range t.seqs {
				n := len(s.tokens)
				cp := ap
				cp.KeyBias = x.bias
				q := rec.cq[r*h : (r+n)*h]
				probs := kernels.AttentionTrain(cp, q, n, k, v, x.n, make([]float32, n*h))
				kernels.AttentionBackward(cp, q, n, k, v, x.n, probs, dcctx[r*h:(r+n)*h], dcq[r*h:(r+n)*h], dk, dv)
				r += n
			}
			da := make([]float32, rows*h)
			weights.LinearBackward(p, []string{L(names.cq, i)}, true, da, dcq, rec.a, rows, h, h)
			kernels.Add(da, da, dcres)
			dkv := make([]float32, x.n*2*h)
			weights.JoinColumns(dkv, x.n, 2*h, h, dk, dv)
			weights.LinearBackward(p, []string{L(names.ck, i), L(names.cv, i)}, true, dEnc, dkv, x.enc, x.n, c.EncoderHiddenSize, h)
			df = da
		}

		// a = LN(x + SelfOut(SelfAttention(QKV(x))))
		dares := weights.NormBackward(p, L(names.attnNorm, i), df, rec.ares, rows, c.LayerNormEps)
		dctx := make([]float32, rows*h)
		weights.LinearBackward(p, []string{L(names.attnOut, i)}, true, dctx, dares, rec.ctx, rows, h, h)
		dqkv := make([]float32, rows*3*h)
		r := 0
		for _, s := range t.seqs {
			n := len(s.tokens)
			q, k, v := make([]float32, n*h), make([]float32, n*h), make([]float32, n*h)
			weights.SplitColumns(rec.qkv[r*3*h:(r+n)*3*h], n, 3*h, h, q, k, v)
			sp := ap
			sp.Causal = t.causal
			if s.mask != nil {
				sp.KeyBias = maskBias(s.mask)
			}
			probs := kernels.AttentionTrain(sp, q, n, k, v, n, make([]float32, n*h))
			dq, dk, dv := make([]float32, n*h), make([]float32, n*h), make([]float32, n*h)
			kernels.AttentionBackward(sp, q, n, k, v, n, probs, dctx[r*h:(r+n)*h], dq, dk, dv)
			weights.JoinColumns(dqkv[r*3*h:(r+n)*3*h], n, 3*h, h, dq, dk, dv)
			r += n
		}
		dxn := make([]float32, rows*h)
		weights.LinearBackward(p, []string{L(names.q, i), L(names.k, i), L(names.v, i)}, true, dxn, dqkv, rec.x, rows, h, h)
		kernels.Add(dxn, dxn, dares)
		dx = dxn
	}
	// embeddings: LN(word[ids] + pos[0…n−1])
	demb := weights.NormBackward(p, m.body+names.embNorm, dx, t.emb, rows, c.LayerNormEps)
	gw, gp := p.Grad(m.body+names.wordEmb), p.Grad(m.body+names.posEmb)
	r := 0
	for _, s := range t.seqs {
		n := len(s.tokens)
		if gw != nil {
			kernels.EmbeddingBackward(gw, demb[r*h:(r+n)*h], h, s.tokens)
		}
		if gp != nil {
			kernels.Add(gp[:n*h], gp[:n*h], demb[r*h:(r+n)*h])
		}
		r += n
	}
	return dEnc, nil
}

// LogitsBackward accumulates the LM head's gradients given the gradient
// dLogits (rows×vocab) of the recorded Logits call's output and returns
// the gradient with respect to its hidden-state input (rows×H).
func (m *Model) LogitsBackward(t *Tape, dLogits []float32, p Params) ([]float32, error) {
	if m.head == nil {
		return nil, fmt.Errorf("bert: this text model has no LM head (cls.predictions)")
	}
	c := m.cfg
	h, v := c.HiddenSize, c.VocabSize
	if t == nil || t.headN == nil {
		return nil, fmt.Errorf("bert: LogitsBackward: the tape holds no Logits call")
	}
	rows := len(t.headIn) / h
	if len(dLogits) != rows*v {
		return nil, fmt.Errorf("bert: LogitsBackward: dLogits has %d values for %d rows of %d", len(dLogits), rows, v)
	}
	dn := make([]float32, rows*h)
	kernels.LinearBackward(dn, p.Grad(m.decW), p.Grad(m.decB), dLogits, t.headN, p.Weight(m.decW), rows, h, v)
	dact := weights.NormBackward(p, m.prefix+names.transformNorm, dn, t.headAct, rows, c.LayerNormEps)
	z := make([]float32, rows*h)
	m.head.Transform.Forward(z, t.headIn, rows, kernels.ActNone)
	kernels.ActivationBackward(c.Act, dact, z, dact)
	dh := make([]float32, rows*h)
	weights.LinearBackward(p, []string{m.prefix + names.transform}, true, dh, dact, t.headIn, rows, h, h)
	return dh, nil
}

// attentionParams are the layers' attention settings.
func attentionParams(c Config) kernels.AttentionParams {
	hd := c.HiddenSize / c.NumHeads
	return kernels.AttentionParams{Heads: c.NumHeads, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd)))}
}

// maskBias is Forward's additive self-attention key bias for a mask.
func maskBias(mask []int) []float32 {
	b := make([]float32, len(mask))
	for j, v := range mask {
		if v == 0 {
			b[j] = -10000
		}
	}
	return b
}

func clone(x []float32) []float32 { return append([]float32(nil), x...) }
