package vit

import (
	"fmt"
	"github.com/glimpse-vlm/glimpse/internal/weights"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

// tensorNames is the table binding a variant's weights to Hugging Face
// tensor names (relative to the model prefix). Layer names contain %d for
// the layer index. An empty name means the variant has no such tensor.
type tensorNames struct {
	patchW, patchB string // conv weight (D, C, P, P), bias (D)
	cls            string // class token
	pos            string // position embeddings
	preNorm        string // LayerNorm before the encoder (CLIP)
	postNorm       string // final LayerNorm (used by Forward or Pool)
	pooler         string // ViT pooler Linear (optional in the checkpoint)

	norm1, norm2 string // per-layer LayerNorms
	qkv          string // fused [q; k; v] Linear (BLIP)
	q, k, v      string // separate projections (ViT, CLIP)
	attnOut      string // attention output projection
	fc1, fc2     string // MLP

	clsShape func(c Config) []int // (1, 1, D) or (D)
	posShape func(c Config) []int // (1, N+1, D) or (N+1, D)
}

var names = map[Variant]tensorNames{
	BLIP: {
		patchW: "embeddings.patch_embedding.weight", patchB: "embeddings.patch_embedding.bias",
		cls: "embeddings.class_embedding", pos: "embeddings.position_embedding",
		postNorm: "post_layernorm",
		norm1:    "encoder.layers.%d.layer_norm1", norm2: "encoder.layers.%d.layer_norm2",
		qkv: "encoder.layers.%d.self_attn.qkv", attnOut: "encoder.layers.%d.self_attn.projection",
		fc1: "encoder.layers.%d.mlp.fc1", fc2: "encoder.layers.%d.mlp.fc2",
		clsShape: func(c Config) []int { return []int{1, 1, c.HiddenSize} },
		posShape: func(c Config) []int { return []int{1, c.tokens(), c.HiddenSize} },
	},
	ViT: {
		patchW: "embeddings.patch_embeddings.projection.weight", patchB: "embeddings.patch_embeddings.projection.bias",
		cls: "embeddings.cls_token", pos: "embeddings.position_embeddings",
		postNorm: "layernorm", pooler: "pooler.dense",
		norm1: "encoder.layer.%d.layernorm_before", norm2: "encoder.layer.%d.layernorm_after",
		q: "encoder.layer.%d.attention.attention.query", k: "encoder.layer.%d.attention.attention.key",
		v: "encoder.layer.%d.attention.attention.value", attnOut: "encoder.layer.%d.attention.output.dense",
		fc1: "encoder.layer.%d.intermediate.dense", fc2: "encoder.layer.%d.output.dense",
		clsShape: func(c Config) []int { return []int{1, 1, c.HiddenSize} },
		posShape: func(c Config) []int { return []int{1, c.tokens(), c.HiddenSize} },
	},
	CLIP: {
		patchW: "embeddings.patch_embedding.weight",
		cls:    "embeddings.class_embedding", pos: "embeddings.position_embedding.weight",
		preNorm: "pre_layrnorm", postNorm: "post_layernorm",
		norm1: "encoder.layers.%d.layer_norm1", norm2: "encoder.layers.%d.layer_norm2",
		q: "encoder.layers.%d.self_attn.q_proj", k: "encoder.layers.%d.self_attn.k_proj",
		v: "encoder.layers.%d.self_attn.v_proj", attnOut: "encoder.layers.%d.self_attn.out_proj",
		fc1: "encoder.layers.%d.mlp.fc1", fc2: "encoder.layers.%d.mlp.fc2",
		clsShape: func(c Config) []int { return []int{c.HiddenSize} },
		posShape: func(c Config) []int { return []int{c.tokens(), c.HiddenSize} },
	},
}

// loader reads the encoder's tensors under a prefix. The Encoder must not
// depend on the checkpoint's mapping: what it keeps is copied (Tensor);
// matrices handed to kernels.NewLinear, which packs them into its own
// memory, are read in place (View).
type loader struct {
	*weights.Binder
	cfg Config
}

func (ld *loader) layerNorm(name string) (*layerNorm, error) {
	g, b, err := ld.Norm(name, ld.cfg.HiddenSize)
	if err != nil {
		return nil, err
	}
	return &layerNorm{gamma: g, beta: b, eps: ld.cfg.LayerNormEps}, nil
}

// Load binds the encoder's weights from ck under prefix (e.g.
// "vision_model." for BLIP and CLIP, "encoder." for VisionEncoderDecoder),
// checking every tensor's shape against cfg. For ViT the pooler is loaded
// when pooler.dense.weight is present (HasPooler reports it).
func Load(ck *checkpoint.Checkpoint, prefix string, cfg Config) (*Encoder, error) {
	if ck == nil {
		return nil, fmt.Errorf("vit: Load: nil checkpoint")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nm := names[cfg.Variant]
	ld := &loader{cfg: cfg, Binder: &weights.Binder{Ck: ck, Prefix: prefix, Model: fmt.Sprintf("vit: %v vision weights", cfg.Variant),
		Config: fmt.Sprintf("config hidden_size=%d, intermediate_size=%d, image_size=%d, patch_size=%d", cfg.HiddenSize, cfg.IntermediateSize, cfg.ImageSize, cfg.PatchSize)}}
	d, p, ch := cfg.HiddenSize, cfg.PatchSize, cfg.NumChannels
	e := &Encoder{cfg: cfg, prefix: prefix, embed: &embeddings{}}
	var err error

	// Patch embedding: conv weight (D, C, P, P) is a (D, C·P·P) Linear.
	pw, err := ld.View(nm.patchW, d, ch, p, p)
	if err != nil {
		return nil, err
	}
	var pb []float32
	if nm.patchB != "" {
		if pb, err = ld.Tensor(nm.patchB, d); err != nil {
			return nil, err
		}
	}
	e.embed.patch = kernels.NewLinear(pw, d, ch*p*p, pb)
	if e.embed.cls, err = ld.Tensor(nm.cls, nm.clsShape(cfg)...); err != nil {
		return nil, err
	}
	if e.embed.pos, err = ld.Tensor(nm.pos, nm.posShape(cfg)...); err != nil {
		return nil, err
	}
	if nm.preNorm != "" {
		if e.preNorm, err = ld.layerNorm(nm.preNorm); err != nil {
			return nil, err
		}
	}
	if e.postNorm, err = ld.layerNorm(nm.postNorm); err != nil {
		return nil, err
	}

	for i := 0; i < cfg.NumLayers; i++ {
		l, err := ld.block(nm, i)
		if err != nil {
			return nil, err
		}
		e.layers = append(e.layers, l)
	}

	if nm.pooler != "" && ck.Has(prefix+nm.pooler+".weight") {
		if e.pooler, err = ld.Linear(nm.pooler, d, d, true); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// block loads layer i.
func (ld *loader) block(nm tensorNames, i int) (*block, error) {
	c := ld.cfg
	d := c.HiddenSize
	at := func(f string) string { return fmt.Sprintf(f, i) }
	var l block
	var err error
	if l.norm1, err = ld.layerNorm(at(nm.norm1)); err != nil {
		return nil, err
	}
	if nm.qkv != "" {
		if l.qkv, err = ld.Linear(at(nm.qkv), 3*d, d, true); err != nil {
			return nil, err
		}
	} else if names := []string{at(nm.q), at(nm.k), at(nm.v)}; c.Variant != ViT || c.QKVBias {
		// Separate q, k, v projections as one (3D, D) Linear: the same
		// layout as BLIP's fused qkv.
		if l.qkv, err = ld.Fused(names, d, d); err != nil {
			return nil, err
		}
	} else {
		// The same without biases (HF ViT with qkv_bias false).
		w := make([]float32, 0, 3*d*d)
		for _, name := range names {
			wi, err := ld.View(name+".weight", d, d)
			if err != nil {
				return nil, err
			}
			w = append(w, wi...)
			ld.Evict(name + ".weight")
		}
		l.qkv = kernels.NewLinear(w, 3*d, d, nil)
	}
	if l.out, err = ld.Linear(at(nm.attnOut), d, d, true); err != nil {
		return nil, err
	}
	if l.norm2, err = ld.layerNorm(at(nm.norm2)); err != nil {
		return nil, err
	}
	if l.fc1, err = ld.Linear(at(nm.fc1), c.IntermediateSize, d, true); err != nil {
		return nil, err
	}
	if l.fc2, err = ld.Linear(at(nm.fc2), d, c.IntermediateSize, true); err != nil {
		return nil, err
	}
	return &l, nil
}
