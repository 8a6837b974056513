package vit

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

// hfShapes lists, independently of load.go's table, every tensor an HF
// vision model of cfg has under prefix, with its shape.
func hfShapes(cfg Config, prefix string, pooler bool) map[string][]int {
	d, i, c, p := cfg.HiddenSize, cfg.IntermediateSize, cfg.NumChannels, cfg.PatchSize
	t := cfg.tokens()
	m := map[string][]int{}
	add := func(name string, shape ...int) { m[prefix+name] = shape }
	lin := func(name string, out, in int, bias bool) {
		add(name+".weight", out, in)
		if bias {
			add(name+".bias", out)
		}
	}
	ln := func(name string) { add(name+".weight", d); add(name+".bias", d) }
	switch cfg.Variant {
	case BLIP:
		add("embeddings.patch_embedding.weight", d, c, p, p)
		add("embeddings.patch_embedding.bias", d)
		add("embeddings.class_embedding", 1, 1, d)
		add("embeddings.position_embedding", 1, t, d)
		ln("post_layernorm")
		for l := 0; l < cfg.NumLayers; l++ {
			s := fmt.Sprintf("encoder.layers.%d.", l)
			ln(s + "layer_norm1")
			lin(s+"self_attn.qkv", 3*d, d, true)
			lin(s+"self_attn.projection", d, d, true)
			ln(s + "layer_norm2")
			lin(s+"mlp.fc1", i, d, true)
			lin(s+"mlp.fc2", d, i, true)
		}
	case ViT:
		add("embeddings.patch_embeddings.projection.weight", d, c, p, p)
		add("embeddings.patch_embeddings.projection.bias", d)
		add("embeddings.cls_token", 1, 1, d)
		add("embeddings.position_embeddings", 1, t, d)
		ln("layernorm")
		if pooler {
			lin("pooler.dense", d, d, true)
		}
		for l := 0; l < cfg.NumLayers; l++ {
			s := fmt.Sprintf("encoder.layer.%d.", l)
			ln(s + "layernorm_before")
			for _, n := range []string{"query", "key", "value"} {
				lin(s+"attention.attention."+n, d, d, cfg.QKVBias)
			}
			lin(s+"attention.output.dense", d, d, true)
			ln(s + "layernorm_after")
			lin(s+"intermediate.dense", i, d, true)
			lin(s+"output.dense", d, i, true)
		}
	case CLIP:
		add("embeddings.patch_embedding.weight", d, c, p, p)
		add("embeddings.class_embedding", d)
		add("embeddings.position_embedding.weight", t, d)
		ln("pre_layrnorm")
		ln("post_layernorm")
		for l := 0; l < cfg.NumLayers; l++ {
			s := fmt.Sprintf("encoder.layers.%d.", l)
			ln(s + "layer_norm1")
			for _, n := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
				lin(s+"self_attn."+n, d, d, true)
			}
			ln(s + "layer_norm2")
			lin(s+"mlp.fc1", i, d, true)
			lin(s+"mlp.fc2", d, i, true)
		}
	}
	return m
}

// randomCheckpoint fills every tensor of hfShapes with seeded values
// (LayerNorm weights around 1).
func randomCheckpoint(cfg Config, prefix string, pooler bool, seed int64) *checkpoint.Checkpoint {
	r := rand.New(rand.NewSource(seed))
	ts := map[string]checkpoint.MemTensor{}
	for name, shape := range hfShapes(cfg, prefix, pooler) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		data := make([]float32, n)
		for j := range data {
			data[j] = float32(r.NormFloat64() * 0.3)
		}
		ts[name] = checkpoint.MemTensor{Shape: shape, Data: data}
	}
	return checkpoint.FromFloat32(ts)
}

// reference is a direct float64 transcription of the HF forward passes
// (convolution as a loop, attention per head), reading tensors by name.
type reference struct {
	t      *testing.T
	ck     *checkpoint.Checkpoint
	prefix string
	cfg    Config
}

func (r *reference) get(name string) []float64 {
	v, err := r.ck.Float32(r.prefix + name)
	if err != nil {
		r.t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func (r *reference) has(name string) bool { return r.ck.Has(r.prefix + name) }

// linear returns x·Wᵀ + b for each row of x.
func (r *reference) linear(name string, x [][]float64) [][]float64 {
	w := r.get(name + ".weight")
	var b []float64
	if r.has(name + ".bias") {
		b = r.get(name + ".bias")
	}
	in := len(x[0])
	out := len(w) / in
	y := make([][]float64, len(x))
	for i, row := range x {
		y[i] = make([]float64, out)
		for o := 0; o < out; o++ {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for k := 0; k < in; k++ {
				s += w[o*in+k] * row[k]
			}
			y[i][o] = s
		}
	}
	return y
}

func (r *reference) layerNorm(name string, x [][]float64) [][]float64 {
	g, b := r.get(name+".weight"), r.get(name+".bias")
	y := make([][]float64, len(x))
	for i, row := range x {
		mean, vr := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(len(row))
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(len(row))
		y[i] = make([]float64, len(row))
		for j, v := range row {
			y[i][j] = (v-mean)/math.Sqrt(vr+float64(r.cfg.LayerNormEps))*g[j] + b[j]
		}
	}
	return y
}

func (r *reference) act(v float64) float64 {
	switch r.cfg.Act {
	case kernels.ActGELU:
		return 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
	case kernels.ActGELUTanh:
		return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
	case kernels.ActQuickGELU:
		return v / (1 + math.Exp(-1.702*v))
	case kernels.ActReLU:
		return math.Max(v, 0)
	}
	r.t.Fatalf("reference: activation %v not covered", r.cfg.Act)
	return 0
}

func addRows(a, b [][]float64) {
	for i := range a {
		for j := range a[i] {
			a[i][j] += b[i][j]
		}
	}
}

// attention is multi-head softmax(q·kᵀ/√hd)·v over one image's tokens.
func (r *reference) attention(q, k, v [][]float64) [][]float64 {
	h := r.cfg.NumHeads
	hd := r.cfg.HiddenSize / h
	out := make([][]float64, len(q))
	for i := range out {
		out[i] = make([]float64, r.cfg.HiddenSize)
	}
	for head := 0; head < h; head++ {
		o := head * hd
		for i := range q {
			scores := make([]float64, len(k))
			mx := math.Inf(-1)
			for j := range k {
				s := 0.0
				for t := 0; t < hd; t++ {
					s += q[i][o+t] * k[j][o+t]
				}
				scores[j] = s / math.Sqrt(float64(hd))
				mx = math.Max(mx, scores[j])
			}
			sum := 0.0
			for j := range scores {
				scores[j] = math.Exp(scores[j] - mx)
				sum += scores[j]
			}
			for j := range k {
				for t := 0; t < hd; t++ {
					out[i][o+t] += scores[j] / sum * v[j][o+t]
				}
			}
		}
	}
	return out
}

// forward returns last_hidden_state and the pooled output of one image.
func (r *reference) forward(img []float32) (last [][]float64, pooled []float64) {
	c := r.cfg
	d, p, s, ch := c.HiddenSize, c.PatchSize, c.ImageSize, c.NumChannels
	g := s / p
	var pw, pb, cls, pos []float64
	switch c.Variant {
	case BLIP:
		pw, pb = r.get("embeddings.patch_embedding.weight"), r.get("embeddings.patch_embedding.bias")
		cls, pos = r.get("embeddings.class_embedding"), r.get("embeddings.position_embedding")
	case ViT:
		pw, pb = r.get("embeddings.patch_embeddings.projection.weight"), r.get("embeddings.patch_embeddings.projection.bias")
		cls, pos = r.get("embeddings.cls_token"), r.get("embeddings.position_embeddings")
	case CLIP:
		pw = r.get("embeddings.patch_embedding.weight")
		cls, pos = r.get("embeddings.class_embedding"), r.get("embeddings.position_embedding.weight")
	}
	x := [][]float64{append([]float64(nil), cls...)}
	for gy := 0; gy < g; gy++ {
		for gx := 0; gx < g; gx++ {
			tok := make([]float64, d)
			for o := 0; o < d; o++ {
				sum := 0.0
				if pb != nil {
					sum = pb[o]
				}
				for cc := 0; cc < ch; cc++ {
					for ky := 0; ky < p; ky++ {
						for kx := 0; kx < p; kx++ {
							sum += pw[((o*ch+cc)*p+ky)*p+kx] * float64(img[(cc*s+gy*p+ky)*s+gx*p+kx])
						}
					}
				}
				tok[o] = sum
			}
			x = append(x, tok)
		}
	}
	for i := range x {
		for j := range x[i] {
			x[i][j] += pos[i*d+j]
		}
	}
	if c.Variant == CLIP {
		x = r.layerNorm("pre_layrnorm", x)
	}
	for l := 0; l < c.NumLayers; l++ {
		var q, k, v, h [][]float64
		switch c.Variant {
		case BLIP:
			s := fmt.Sprintf("encoder.layers.%d.", l)
			qkv := r.linear(s+"self_attn.qkv", r.layerNorm(s+"layer_norm1", x))
			for _, row := range qkv {
				q, k, v = append(q, row[:d]), append(k, row[d:2*d]), append(v, row[2*d:])
			}
			addRows(x, r.linear(s+"self_attn.projection", r.attention(q, k, v)))
			h = r.linear(s+"mlp.fc1", r.layerNorm(s+"layer_norm2", x))
			for _, row := range h {
				for j := range row {
					row[j] = r.act(row[j])
				}
			}
			addRows(x, r.linear(s+"mlp.fc2", h))
		case ViT:
			s := fmt.Sprintf("encoder.layer.%d.", l)
			n := r.layerNorm(s+"layernorm_before", x)
			q = r.linear(s+"attention.attention.query", n)
			k = r.linear(s+"attention.attention.key", n)
			v = r.linear(s+"attention.attention.value", n)
			addRows(x, r.linear(s+"attention.output.dense", r.attention(q, k, v)))
			h = r.linear(s+"intermediate.dense", r.layerNorm(s+"layernorm_after", x))
			for _, row := range h {
				for j := range row {
					row[j] = r.act(row[j])
				}
			}
			addRows(x, r.linear(s+"output.dense", h))
		case CLIP:
			s := fmt.Sprintf("encoder.layers.%d.", l)
			n := r.layerNorm(s+"layer_norm1", x)
			q = r.linear(s+"self_attn.q_proj", n)
			k = r.linear(s+"self_attn.k_proj", n)
			v = r.linear(s+"self_attn.v_proj", n)
			addRows(x, r.linear(s+"self_attn.out_proj", r.attention(q, k, v)))
			h = r.linear(s+"mlp.fc1", r.layerNorm(s+"layer_norm2", x))
			for _, row := range h {
				for j := range row {
					row[j] = r.act(row[j])
				}
			}
			addRows(x, r.linear(s+"mlp.fc2", h))
		}
	}
	switch c.Variant {
	case BLIP:
		last = r.layerNorm("post_layernorm", x)
		pooled = r.layerNorm("post_layernorm", last[:1])[0]
	case ViT:
		last = r.layerNorm("layernorm", x)
		if r.has("pooler.dense.weight") {
			pooled = r.linear("pooler.dense", last[:1])[0]
			for j := range pooled {
				pooled[j] = math.Tanh(pooled[j])
			}
		}
	case CLIP:
		last = x
		pooled = r.layerNorm("post_layernorm", last[:1])[0]
	}
	return last, pooled
}

func flat(x [][]float64) []float32 {
	var out []float32
	for _, row := range x {
		for _, v := range row {
			out = append(out, float32(v))
		}
	}
	return out
}

func f32s(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// TestAgainstReference runs configurations unlike the golden ones (other
// head counts, channels, activations, eps, patch sizes that do not divide
// the image, ViT without qkv bias or pooler) against the float64
// reference, batched.
func TestAgainstReference(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		prefix string
		pooler bool
	}{
		{"blip gelu_new 3 heads", Config{Variant: BLIP, HiddenSize: 24, NumLayers: 2, NumHeads: 3, IntermediateSize: 40, ImageSize: 20,
			PatchSize: 6, NumChannels: 3, LayerNormEps: 1e-6, Act: kernels.ActGELUTanh, QKVBias: true}, "vision_model.", false},
		{"vit no qkv bias, 1 channel", Config{Variant: ViT, HiddenSize: 16, NumLayers: 3, NumHeads: 2, IntermediateSize: 24, ImageSize: 12,
			PatchSize: 4, NumChannels: 1, LayerNormEps: 1e-12, Act: kernels.ActReLU, QKVBias: false}, "encoder.", true},
		{"vit with qkv bias, no pooler", Config{Variant: ViT, HiddenSize: 12, NumLayers: 1, NumHeads: 1, IntermediateSize: 8, ImageSize: 9,
			PatchSize: 3, NumChannels: 3, LayerNormEps: 1e-5, Act: kernels.ActGELU, QKVBias: true}, "", false},
		{"clip 5 heads 4 channels", Config{Variant: CLIP, HiddenSize: 20, NumLayers: 2, NumHeads: 5, IntermediateSize: 36, ImageSize: 11,
			PatchSize: 5, NumChannels: 4, LayerNormEps: 1e-5, Act: kernels.ActQuickGELU, QKVBias: true}, "vision_model.", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck := randomCheckpoint(tc.cfg, tc.prefix, tc.pooler, 7)
			enc, err := Load(ck, tc.prefix, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			const batch = 3
			r := rand.New(rand.NewSource(3))
			per := tc.cfg.NumChannels * tc.cfg.ImageSize * tc.cfg.ImageSize
			pix := make([]float32, batch*per)
			for i := range pix {
				pix[i] = float32(r.NormFloat64())
			}
			last, err := enc.Forward(pix, batch)
			if err != nil {
				t.Fatal(err)
			}
			pooled, poolErr := enc.Pool(last, batch)
			if (poolErr == nil) != enc.HasPooler() {
				t.Fatalf("Pool error %v with HasPooler %v", poolErr, enc.HasPooler())
			}
			ref := &reference{t: t, ck: ck, prefix: tc.prefix, cfg: tc.cfg}
			n := enc.Tokens() * enc.Dim()
			for b := 0; b < batch; b++ {
				rl, rp := ref.forward(pix[b*per : (b+1)*per])
				checkClose(t, fmt.Sprintf("image %d last_hidden_state", b), last[b*n:(b+1)*n], flat(rl))
				if enc.HasPooler() {
					checkClose(t, fmt.Sprintf("image %d pooled", b), pooled[b*enc.Dim():(b+1)*enc.Dim()], f32s(rp))
				}
			}
		})
	}
}

// BenchmarkForward measures a ViT-B/16 (BLIP base at 384 px, ViT at 224
// px) on random weights, batch 1.
func BenchmarkForward(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"BLIP-B16-384", DefaultConfig(BLIP)},
		{"ViT-B16-224", DefaultConfig(ViT)},
		{"CLIP-B32-224", DefaultConfig(CLIP)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ck := randomCheckpoint(tc.cfg, "", false, 1)
			enc, err := Load(ck, "", tc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			pix := make([]float32, tc.cfg.NumChannels*tc.cfg.ImageSize*tc.cfg.ImageSize)
			for i := range pix {
				pix[i] = float32(i%17) / 17
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := enc.Forward(pix, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/image")
		})
	}
}
