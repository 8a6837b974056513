// Package vit is the Vision Transformer image encoder shared by Glimpse's
// model families: BLIP's vision model, HF ViTModel (the encoder of
// VisionEncoderDecoder ViT-GPT2 checkpoints) and CLIP's vision tower.
//
// An image is cut into PatchSize×PatchSize patches, each patch is projected
// to HiddenSize (a convolution with stride = patch size, computed as a
// patch rearrangement plus one GEMM), a class token is prepended, position
// embeddings are added, and the tokens go through NumLayers pre-norm
// transformer blocks:
//
//	x = x + Attention(LN1(x));  x = x + MLP(LN2(x))
//
// The variants differ only in tensor names, in where the extra layer norms
// sit and in pooling (see Variant). Weights are bound by explicit tables of
// Hugging Face tensor names, so a missing or mis-shaped tensor fails in
// Load with its HF name.
package vit

import (
	"fmt"
	"math"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Encoder is a loaded ViT. It holds its own copies of the weights (packed
// for the GEMM kernels), so the checkpoint may be closed after Load. It is
// immutable: Forward and Pool may be called from several goroutines at once.
type Encoder struct {
	cfg    Config
	prefix string // the checkpoint prefix Load bound the weights under (Backward names gradients with it)

	embed    *embeddings
	preNorm  *layerNorm // CLIP pre_layrnorm; nil otherwise
	layers   []*block
	postNorm *layerNorm      // BLIP post_layernorm, ViT layernorm, CLIP post_layernorm (pooling only)
	pooler   *kernels.Linear // ViT pooler.dense (D, D); nil when absent or not ViT
}

// embeddings turns pixels into the token sequence (class token first).
type embeddings struct {
	patch *kernels.Linear // conv kernel as a Linear: (D, C·P·P), bias (D) or nil (CLIP)
	cls   []float32       // (D) class token
	pos   []float32       // (N+1, D) position embeddings
}

// layerNorm is a LayerNorm's parameters.
type layerNorm struct {
	gamma []float32 // (D)
	beta  []float32 // (D)
	eps   float32
}

// block is one pre-norm transformer layer.
type block struct {
	norm1 *layerNorm      // (D)
	qkv   *kernels.Linear // (3D, D): rows [q; k; v], bias (3D) or nil (ViT qkv_bias=false)
	out   *kernels.Linear // (D, D) attention output projection
	norm2 *layerNorm      // (D)
	fc1   *kernels.Linear // (I, D) MLP up, followed by the activation
	fc2   *kernels.Linear // (D, I) MLP down
}

// Config returns the configuration the encoder was loaded with.
func (e *Encoder) Config() Config { return e.cfg }

// Tokens returns the sequence length: (ImageSize/PatchSize)² patches + 1.
func (e *Encoder) Tokens() int { return e.cfg.tokens() }

// Dim returns the hidden size D.
func (e *Encoder) Dim() int { return e.cfg.HiddenSize }

// HasPooler reports whether Pool can run: always for BLIP and CLIP, for ViT
// only when the checkpoint has pooler.dense weights.
func (e *Encoder) HasPooler() bool { return e.cfg.Variant != ViT || e.pooler != nil }

// Forward runs batch images (pixels: batch×C×H×W float32, H = W = ImageSize)
// and returns last_hidden_state (batch×Tokens×Dim) as HF's vision model
// returns it for the variant: after post_layernorm (BLIP), after the final
// layernorm (ViT), or the encoder output without a final norm (CLIP).
// Each image's result is bit-for-bit the same whatever the batch size.
func (e *Encoder) Forward(pixels []float32, batch int) ([]float32, error) {
	return e.ForwardTape(pixels, batch, nil)
}

// ForwardTape is Forward (the same computation, bit for bit) that, when
// tape is not nil, also records in tape the activations Backward needs.
// Serving passes nil (Forward) and pays nothing for it.
func (e *Encoder) ForwardTape(pixels []float32, batch int, tape *Tape) ([]float32, error) {
	h, err := e.run(pixels, batch, nil, tape)
	if err != nil {
		return nil, err
	}
	if e.cfg.Variant != CLIP {
		if tape != nil {
			tape.last = clone(h)
		}
		e.postNorm.forward(h, h, batch*e.Tokens())
	}
	return h, nil
}

// HiddenStates returns what HF returns with output_hidden_states=True:
// NumLayers+1 arrays of batch×Tokens×Dim, index 0 the input of the first
// layer (embeddings; for CLIP after pre_layrnorm) and index i the output of
// layer i (before any final norm).
func (e *Encoder) HiddenStates(pixels []float32, batch int) ([][]float32, error) {
	var all [][]float32
	_, err := e.run(pixels, batch, func(h []float32) {
		all = append(all, append([]float32(nil), h...))
	}, nil)
	return all, err
}

// Pool returns the variant's pooled output (batch×Dim) from
// last_hidden_state as returned by Forward: BLIP post_layernorm applied
// again to the CLS token, CLIP post_layernorm of the CLS token, ViT
// tanh(pooler.dense(CLS)) (an error if the checkpoint has no pooler).
func (e *Encoder) Pool(hidden []float32, batch int) ([]float32, error) {
	t, d := e.Tokens(), e.Dim()
	if batch <= 0 {
		return nil, fmt.Errorf("vit: Pool: batch %d, must be ≥ 1", batch)
	}
	if len(hidden) != batch*t*d {
		return nil, fmt.Errorf("vit: Pool: hidden has %d values, expected batch %d × %d tokens × %d = %d",
			len(hidden), batch, t, d, batch*t*d)
	}
	cls := make([]float32, batch*d)
	for b := 0; b < batch; b++ {
		copy(cls[b*d:(b+1)*d], hidden[b*t*d:b*t*d+d])
	}
	switch e.cfg.Variant {
	case BLIP, CLIP:
		e.postNorm.forward(cls, cls, batch)
		return cls, nil
	default:
		if e.pooler == nil {
			return nil, fmt.Errorf("vit: Pool: the checkpoint has no pooler.dense weights (ViTModel built with add_pooling_layer=False)")
		}
		out := make([]float32, batch*d)
		e.pooler.Forward(out, cls, batch, kernels.ActTanh)
		return out, nil
	}
}

// run computes the encoder stack (no final norm), calling record (if not
// nil) with the input of the first layer and the output of every layer,
// and filling tape (if not nil) for Backward.
func (e *Encoder) run(pixels []float32, batch int, record func([]float32), tape *Tape) ([]float32, error) {
	c := e.cfg
	if batch <= 0 {
		return nil, fmt.Errorf("vit: batch %d, must be ≥ 1", batch)
	}
	per := c.NumChannels * c.ImageSize * c.ImageSize
	if len(pixels) != batch*per {
		return nil, fmt.Errorf("vit: pixels has %d values, expected batch %d × %d channels × %d × %d = %d (resize images to %d×%d first)",
			len(pixels), batch, c.NumChannels, c.ImageSize, c.ImageSize, batch*per, c.ImageSize, c.ImageSize)
	}
	h := e.embed.forward(c, pixels, batch, tape)
	rows := batch * e.Tokens()
	if tape != nil {
		tape.batch = batch
		tape.layers = make([]blockTape, len(e.layers))
	}
	if e.preNorm != nil {
		if tape != nil {
			tape.emb = clone(h)
		}
		e.preNorm.forward(h, h, rows)
	}
	if record != nil {
		record(h)
	}
	// Serving runs each block one image at a time: every row's arithmetic
	// is the same (the kernels are batch-invariant and attention is per
	// image anyway), the products keep M = Tokens() rows, which is plenty
	// for the GEMM, and the scratch stays one image's size (≈ 15 MB for
	// BLIP-base) instead of growing with the batch (≈ 140 MB for 8 images),
	// which kept the collector busy under a memory limit. Training records
	// whole batches for Backward.
	t := e.Tokens()
	perImage := tape == nil && batch > 1
	wsRows := rows
	if perImage {
		wsRows = t
	}
	ws := newWorkspace(c, wsRows)
	d := c.HiddenSize
	for i, l := range e.layers {
		var rec *blockTape
		if tape != nil {
			rec = &tape.layers[i]
		}
		if perImage {
			for b := 0; b < batch; b++ {
				l.forward(c, h[b*t*d:(b+1)*t*d], 1, t, ws, nil)
			}
		} else {
			l.forward(c, h, batch, t, ws, rec)
		}
		if record != nil {
			record(h)
		}
	}
	return h, nil
}

// forward computes the token embeddings (batch×(N+1)×D): class token and
// patch projections, plus position embeddings.
func (m *embeddings) forward(c Config, pixels []float32, batch int, tape *Tape) []float32 {
	g, p, ch, s, d := c.grid(), c.PatchSize, c.NumChannels, c.ImageSize, c.HiddenSize
	n, t := g*g, g*g+1
	k := ch * p * p

	// Patch rearrangement (im2col): row b·N + gy·G + gx holds the patch's
	// pixels in the conv weight's order (channel, ky, kx).
	cols := make([]float32, batch*n*k)
	for b := 0; b < batch; b++ {
		img := pixels[b*ch*s*s : (b+1)*ch*s*s]
		for gy := 0; gy < g; gy++ {
			for gx := 0; gx < g; gx++ {
				row := cols[(b*n+gy*g+gx)*k : (b*n+gy*g+gx+1)*k]
				for cc := 0; cc < ch; cc++ {
					for ky := 0; ky < p; ky++ {
						src := img[cc*s*s+(gy*p+ky)*s+gx*p : cc*s*s+(gy*p+ky)*s+gx*p+p]
						copy(row[(cc*p+ky)*p:(cc*p+ky)*p+p], src)
					}
				}
			}
		}
	}
	if tape != nil {
		tape.cols = cols
	}
	patches := make([]float32, batch*n*d)
	m.patch.Forward(patches, cols, batch*n, kernels.ActNone) // conv(x) + bias

	h := make([]float32, batch*t*d)
	for b := 0; b < batch; b++ {
		seq := h[b*t*d : (b+1)*t*d]
		copy(seq[:d], m.cls)
		copy(seq[d:], patches[b*n*d:(b+1)*n*d])
		kernels.Add(seq, seq, m.pos) // + position embeddings
	}
	return h
}

// workspace holds one Forward call's scratch buffers.
type workspace struct {
	x   []float32 // (rows, D) normed input
	qkv []float32 // (rows, 3D)
	ctx []float32 // (rows, D) attention output before projection
	tmp []float32 // (rows, D) sublayer output
	mid []float32 // (rows, I) MLP hidden
}

func newWorkspace(c Config, rows int) *workspace {
	d := c.HiddenSize
	return &workspace{
		x:   make([]float32, rows*d),
		qkv: make([]float32, rows*3*d),
		ctx: make([]float32, rows*d),
		tmp: make([]float32, rows*d),
		mid: make([]float32, rows*c.IntermediateSize),
	}
}

// forward applies the block in place to h (batch sequences of t tokens),
// recording into rec (if not nil) what backward needs.
func (l *block) forward(c Config, h []float32, batch, t int, ws *workspace, rec *blockTape) {
	d, rows := c.HiddenSize, batch*t

	// x = x + out(Attention(qkv(LN1(x))))
	if rec != nil {
		rec.x = clone(h)
	}
	l.norm1.forward(ws.x, h, rows)
	l.qkv.Forward(ws.qkv, ws.x, rows, kernels.ActNone)
	ap := attentionParams(c)
	for b := 0; b < batch; b++ { // attention within each image only
		q := ws.qkv[b*t*3*d:]
		kernels.Attention(ap, q, t, 3*d, q[d:], 3*d, q[2*d:], 3*d, t, ws.ctx[b*t*d:], d)
	}
	l.out.Forward(ws.tmp, ws.ctx, rows, kernels.ActNone)
	kernels.Add(h, h, ws.tmp)
	if rec != nil {
		rec.n1, rec.qkv, rec.ctx, rec.h1 = clone(ws.x), clone(ws.qkv), clone(ws.ctx), clone(h)
	}

	// x = x + fc2(act(fc1(LN2(x))))
	l.norm2.forward(ws.x, h, rows)
	l.fc1.Forward(ws.mid, ws.x, rows, c.Act)
	l.fc2.Forward(ws.tmp, ws.mid, rows, kernels.ActNone)
	kernels.Add(h, h, ws.tmp)
	if rec != nil {
		rec.n2, rec.mid = clone(ws.x), clone(ws.mid)
	}
}

// attentionParams are the encoder's self-attention settings.
func attentionParams(c Config) kernels.AttentionParams {
	hd := c.HiddenSize / c.NumHeads
	return kernels.AttentionParams{Heads: c.NumHeads, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd)))}
}

func clone(x []float32) []float32 { return append([]float32(nil), x...) }

// forward normalises rows rows of x (D wide) into out (may alias x).
func (n *layerNorm) forward(out, x []float32, rows int) {
	d := len(n.gamma)
	kernels.LayerNorm(out, x, rows, d, d, n.gamma, n.beta, n.eps)
}
