package vit

import (
	"fmt"
	"github.com/glimpse-vlm/glimpse/internal/weights"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Training support. The serving forward is the training forward:
// ForwardTape runs exactly Forward's code and, given a Tape, keeps copies
// of the activations that Backward needs. The Encoder holds only packed
// weights, so Backward reads the fp32 weights (and writes the gradients)
// through Params, by Hugging Face tensor name: a trainer keeps its master
// weights there and rebuilds (Load) the Encoder from them after each
// optimiser step.

// Params gives Backward the fp32 weights the Encoder was loaded from and
// the gradient buffers to accumulate into, by full tensor name (the Load
// prefix included, e.g. "vision_model.encoder.layers.0.mlp.fc1.weight").
type Params = weights.Params

// Tape holds the activations of one ForwardTape call. The zero value is
// ready; ForwardTape overwrites it.
type Tape struct {
	batch  int
	cols   []float32   // (batch·N, C·P·P) patch rows (im2col)
	emb    []float32   // embeddings before pre_layrnorm (CLIP only)
	layers []blockTape // per block
	last   []float32   // encoder output before the final norm (BLIP, ViT)
}

// blockTape is one block's activations (rows = batch·tokens).
type blockTape struct {
	x   []float32 // block input (rows, D)
	n1  []float32 // LN1(x)
	qkv []float32 // (rows, 3D)
	ctx []float32 // attention output before the projection
	h1  []float32 // x + attention
	n2  []float32 // LN2(h1)
	mid []float32 // act(fc1(n2)) (rows, I)
}

// Backward accumulates into p's gradients the gradient of a loss whose
// gradient with respect to the output of ForwardTape (last_hidden_state,
// batch×Tokens×Dim) is dOut. The gradient with respect to the pixels is
// not computed.
func (e *Encoder) Backward(tape *Tape, dOut []float32, p Params) error {
	c := e.cfg
	if tape == nil || len(tape.layers) != len(e.layers) || tape.batch <= 0 {
		return fmt.Errorf("vit: Backward: the tape was not filled by ForwardTape of this encoder")
	}
	batch, t, d := tape.batch, e.Tokens(), c.HiddenSize
	rows := batch * t
	if len(dOut) != rows*d {
		return fmt.Errorf("vit: Backward: dOut has %d values, expected batch %d × %d tokens × %d = %d", len(dOut), batch, t, d, rows*d)
	}
	nm := names[c.Variant]
	pre := e.prefix
	at := func(f string, i int) string { return pre + fmt.Sprintf(f, i) }

	dh := clone(dOut)
	if c.Variant != CLIP { // last_hidden_state = final_norm(encoder output)
		dh = weights.NormBackward(p, pre+nm.postNorm, dh, tape.last, rows, c.LayerNormEps)
	}
	dmid := make([]float32, rows*c.IntermediateSize)
	for i := len(e.layers) - 1; i >= 0; i-- {
		l, rec := e.layers[i], &tape.layers[i]
		// h = h1 + fc2(act(fc1(n2)))
		clear(dmid)
		weights.LinearBackward(p, []string{at(nm.fc2, i)}, true, dmid, dh, rec.mid, rows, c.IntermediateSize, d)
		z := make([]float32, rows*c.IntermediateSize) // fc1 output before the activation
		l.fc1.Forward(z, rec.n2, rows, kernels.ActNone)
		kernels.ActivationBackward(c.Act, dmid, z, dmid)
		dn2 := make([]float32, rows*d)
		weights.LinearBackward(p, []string{at(nm.fc1, i)}, true, dn2, dmid, rec.n2, rows, d, c.IntermediateSize)
		dh1 := weights.NormBackward(p, at(nm.norm2, i), dn2, rec.h1, rows, c.LayerNormEps)
		kernels.Add(dh1, dh1, dh)

		// h1 = x + out(attention(qkv(LN1(x))))
		dctx := make([]float32, rows*d)
		weights.LinearBackward(p, []string{at(nm.attnOut, i)}, true, dctx, dh1, rec.ctx, rows, d, d)
		dqkv := attentionBackward(c, rec.qkv, dctx, batch, t)
		dn1 := make([]float32, rows*d)
		qkvNames := []string{at(nm.qkv, i)}
		bias := true
		if nm.qkv == "" {
			qkvNames = []string{at(nm.q, i), at(nm.k, i), at(nm.v, i)}
			bias = c.Variant != ViT || c.QKVBias
		}
		weights.LinearBackward(p, qkvNames, bias, dn1, dqkv, rec.n1, rows, d, 3*d/len(qkvNames))
		dx := weights.NormBackward(p, at(nm.norm1, i), dn1, rec.x, rows, c.LayerNormEps)
		kernels.Add(dx, dx, dh1)
		dh = dx
	}
	if e.preNorm != nil {
		dh = weights.NormBackward(p, pre+nm.preNorm, dh, tape.emb, rows, c.LayerNormEps)
	}
	// embeddings: h[b] = [cls; patch(cols[b])] + pos
	if g := p.Grad(pre + nm.pos); g != nil {
		for b := 0; b < batch; b++ {
			kernels.Add(g, g, dh[b*t*d:(b+1)*t*d])
		}
	}
	if g := p.Grad(pre + nm.cls); g != nil {
		for b := 0; b < batch; b++ {
			kernels.Add(g, g, dh[b*t*d:b*t*d+d])
		}
	}
	n := t - 1
	dp := make([]float32, batch*n*d)
	for b := 0; b < batch; b++ {
		copy(dp[b*n*d:(b+1)*n*d], dh[b*t*d+d:(b+1)*t*d])
	}
	k := c.NumChannels * c.PatchSize * c.PatchSize
	wName := pre + nm.patchW
	if gw := p.Grad(wName); gw != nil {
		kernels.LinearBackward(nil, gw, nil, dp, tape.cols, nil, batch*n, k, d)
	}
	if nm.patchB != "" {
		if gb := p.Grad(pre + nm.patchB); gb != nil {
			kernels.LinearBackward(nil, nil, gb, dp, nil, nil, batch*n, k, d)
		}
	}
	return nil
}

// attentionBackward returns d(qkv) (rows×3D) from d(ctx) for every
// image's self-attention over its t tokens; the probabilities are
// recomputed from the recorded q, k, v.
func attentionBackward(c Config, qkv, dctx []float32, batch, t int) []float32 {
	d := c.HiddenSize
	ap := attentionParams(c)
	dqkv := make([]float32, batch*t*3*d)
	q, k, v := make([]float32, t*d), make([]float32, t*d), make([]float32, t*d)
	dq, dk, dv := make([]float32, t*d), make([]float32, t*d), make([]float32, t*d)
	out := make([]float32, t*d)
	for b := 0; b < batch; b++ {
		weights.SplitColumns(qkv[b*t*3*d:], t, 3*d, d, q, k, v)
		probs := kernels.AttentionTrain(ap, q, t, k, v, t, out)
		clear(dq)
		clear(dk)
		clear(dv)
		kernels.AttentionBackward(ap, q, t, k, v, t, probs, dctx[b*t*d:(b+1)*t*d], dq, dk, dv)
		weights.JoinColumns(dqkv[b*t*3*d:], t, 3*d, d, dq, dk, dv)
	}
	return dqkv
}
