package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// VisionConfig is a BLIP vision_config.
type VisionConfig struct {
	ImageSize, PatchSize, Hidden, Layers, Heads, Intermediate int
	Eps                                                       float32 // layer_norm_eps (1e-5)
}

func (c VisionConfig) grid() int   { return c.ImageSize / c.PatchSize }
func (c VisionConfig) tokens() int { return c.grid()*c.grid() + 1 }

// Vision is BLIP's vision model (vision_model.*) in training form.
type Vision struct {
	cfg      VisionConfig
	patch    *lin // weight stored (D, 3·P·P), saved as (D, 3, P, P)
	cls, pos *Param
	layers   []*visionLayer
	post     *norm
}

type visionLayer struct {
	ln1, ln2            *norm
	qkv, proj, fc1, fc2 *lin
}

func newVision(ps *Params, r *rand.Rand, c VisionConfig) (*Vision, error) {
	if c.PatchSize <= 0 || c.ImageSize%c.PatchSize != 0 || c.Heads <= 0 || c.Hidden%c.Heads != 0 {
		return nil, fmt.Errorf("train: vision config %+v: image_size must be a multiple of patch_size and hidden_size of num_attention_heads", c)
	}
	pre := "vision_model."
	d, k := c.Hidden, 3*c.PatchSize*c.PatchSize
	v := &Vision{cfg: c}
	v.cls = ps.add(pre+"embeddings.class_embedding", []int{1, 1, d}, Normal(r, 0.02), true)
	v.patch = newLin(ps, r, pre+"embeddings.patch_embedding", d, k)
	v.patch.W.Shape = []int{d, 3, c.PatchSize, c.PatchSize}
	v.pos = ps.add(pre+"embeddings.position_embedding", []int{1, c.tokens(), d}, Normal(r, 0.02), true)
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("%sencoder.layers.%d.", pre, i)
		v.layers = append(v.layers, &visionLayer{
			ln1:  newNorm(ps, p+"layer_norm1", d, c.Eps),
			qkv:  newLin(ps, r, p+"self_attn.qkv", 3*d, d),
			proj: newLin(ps, r, p+"self_attn.projection", d, d),
			ln2:  newNorm(ps, p+"layer_norm2", d, c.Eps),
			fc1:  newLin(ps, r, p+"mlp.fc1", c.Intermediate, d),
			fc2:  newLin(ps, r, p+"mlp.fc2", d, c.Intermediate),
		})
	}
	v.post = newNorm(ps, pre+"post_layernorm", d, c.Eps)
	return v, nil
}

// visionCtx holds one image's activations for backward.
type visionCtx struct {
	cols   []float32 // (N, 3PP) patches
	layers []*vlCtx
	last   []float32 // input of post_layernorm
}

type vlCtx struct {
	x, n1, qkv, ctx, h1, n2, f1, a1 []float32
	at                              *attnCtx
}

// forward encodes one image (3×S×S normalised pixels) into
// last_hidden_state (T×D, after post_layernorm).
func (v *Vision) forward(pixels []float32) ([]float32, *visionCtx) {
	c := v.cfg
	g, p, s, d := c.grid(), c.PatchSize, c.ImageSize, c.Hidden
	n, t, k := g*g, c.tokens(), 3*c.PatchSize*c.PatchSize
	cols := make([]float32, n*k)
	for gy := 0; gy < g; gy++ {
		for gx := 0; gx < g; gx++ {
			row := cols[(gy*g+gx)*k : (gy*g+gx+1)*k]
			for cc := 0; cc < 3; cc++ {
				for ky := 0; ky < p; ky++ {
					src := pixels[cc*s*s+(gy*p+ky)*s+gx*p:]
					copy(row[(cc*p+ky)*p:(cc*p+ky)*p+p], src[:p])
				}
			}
		}
	}
	patches := v.patch.forward(cols, n)
	h := make([]float32, t*d)
	copy(h[:d], v.cls.W)
	copy(h[d:], patches)
	kernels.Add(h, h, v.pos.W)
	ctx := &visionCtx{cols: cols}
	for _, l := range v.layers {
		lc := &vlCtx{x: h}
		lc.n1 = l.ln1.forward(h, t)
		lc.qkv = l.qkv.forward(lc.n1, t)
		q, kk, vv := split(lc.qkv, t, 3*d, 0, d), split(lc.qkv, t, 3*d, d, d), split(lc.qkv, t, 3*d, 2*d, d)
		lc.ctx, lc.at = attention(c.Heads, d, q, kk, vv, t, t, false, nil)
		lc.h1 = sum(h, l.proj.forward(lc.ctx, t))
		lc.n2 = l.ln2.forward(lc.h1, t)
		lc.f1 = l.fc1.forward(lc.n2, t)
		lc.a1 = act(kernels.ActGELU, lc.f1)
		h = sum(lc.h1, l.fc2.forward(lc.a1, t))
		ctx.layers = append(ctx.layers, lc)
	}
	ctx.last = h
	return v.post.forward(h, t), ctx
}

// backward accumulates gradients given d(last_hidden_state).
func (v *Vision) backward(ctx *visionCtx, dout []float32) {
	c := v.cfg
	d, t, n := c.Hidden, c.tokens(), c.grid()*c.grid()
	dh := v.post.backward(dout, ctx.last, t)
	for i := len(v.layers) - 1; i >= 0; i-- {
		l, lc := v.layers[i], ctx.layers[i]
		// h = h1 + fc2(gelu(fc1(ln2(h1))))
		da1 := l.fc2.backward(dh, lc.a1, t, true)
		df1 := actBack(kernels.ActGELU, da1, lc.f1)
		dn2 := l.fc1.backward(df1, lc.n2, t, true)
		dh1 := l.ln2.backward(dn2, lc.h1, t)
		addInto(dh1, dh)
		// h1 = x + proj(attn(qkv(ln1(x))))
		dctx := l.proj.backward(dh1, lc.ctx, t, true)
		dq, dk, dv := lc.at.backward(dctx)
		dqkv := make([]float32, t*3*d)
		join(dqkv, dq, t, 3*d, 0, d)
		join(dqkv, dk, t, 3*d, d, d)
		join(dqkv, dv, t, 3*d, 2*d, d)
		dn1 := l.qkv.backward(dqkv, lc.n1, t, true)
		dx := l.ln1.backward(dn1, lc.x, t)
		addInto(dx, dh1)
		dh = dx
	}
	addInto(v.pos.G, dh)
	addInto(v.cls.G, dh[:d])
	v.patch.backward(dh[d:], ctx.cols, n, false)
}
