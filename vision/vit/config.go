package vit

import (
	"encoding/json"
	"fmt"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Variant selects which Hugging Face vision tower an Encoder reproduces. The
// three differ in tensor names, in where the layer norms sit and in pooling.
type Variant int

const (
	// BLIP is BlipVisionModel (`vision_model.` in BlipFor*): patch conv with
	// bias, a single fused qkv Linear, post_layernorm on every token and
	// again on the CLS token for the pooled output.
	BLIP Variant = iota
	// ViT is ViTModel (`encoder.` in VisionEncoderDecoderModel): separate
	// query/key/value Linears, a final `layernorm`, and an optional pooler
	// tanh(dense(CLS)).
	ViT
	// CLIP is CLIPVisionTransformer (`vision_model.` in CLIPModel): patch
	// conv without bias, `pre_layrnorm` before the encoder, no final norm on
	// last_hidden_state, pooled = post_layernorm(CLS).
	CLIP
)

// String returns the variant's name.
func (v Variant) String() string {
	switch v {
	case BLIP:
		return "BLIP"
	case ViT:
		return "ViT"
	case CLIP:
		return "CLIP"
	}
	return fmt.Sprintf("Variant(%d)", int(v))
}

// Config holds every hyper-parameter the encoder's computation depends on.
// Family packages fill it from their HF config (or with ParseConfig).
type Config struct {
	// Variant selects tensor names, norm placement and pooling.
	Variant Variant
	// HiddenSize is the token width D (hidden_size).
	HiddenSize int
	// NumLayers is the number of transformer blocks (num_hidden_layers).
	NumLayers int
	// NumHeads is the number of attention heads (num_attention_heads);
	// HiddenSize must be a multiple of it.
	NumHeads int
	// IntermediateSize is the MLP width (intermediate_size).
	IntermediateSize int
	// ImageSize is the (square) input side in pixels (image_size).
	ImageSize int
	// PatchSize is the patch side and convolution stride (patch_size).
	PatchSize int
	// NumChannels is the number of input channels (num_channels; BLIP
	// always uses 3).
	NumChannels int
	// LayerNormEps is added to the variance in every LayerNorm
	// (layer_norm_eps).
	LayerNormEps float32
	// Act is the MLP activation (hidden_act).
	Act kernels.Activation
	// QKVBias says whether the query/key/value projections have biases
	// (HF ViT qkv_bias, default true). BLIP and CLIP always have them.
	QKVBias bool
}

// DefaultConfig returns the Hugging Face class defaults of the variant's
// vision config (BlipVisionConfig, ViTConfig, CLIPVisionConfig), which
// apply to every key a config.json omits.
func DefaultConfig(v Variant) Config {
	switch v {
	case BLIP:
		return Config{Variant: BLIP, HiddenSize: 768, NumLayers: 12, NumHeads: 12, IntermediateSize: 3072,
			ImageSize: 384, PatchSize: 16, NumChannels: 3, LayerNormEps: 1e-5, Act: kernels.ActGELU, QKVBias: true}
	case ViT:
		return Config{Variant: ViT, HiddenSize: 768, NumLayers: 12, NumHeads: 12, IntermediateSize: 3072,
			ImageSize: 224, PatchSize: 16, NumChannels: 3, LayerNormEps: 1e-12, Act: kernels.ActGELU, QKVBias: true}
	case CLIP:
		return Config{Variant: CLIP, HiddenSize: 768, NumLayers: 12, NumHeads: 12, IntermediateSize: 3072,
			ImageSize: 224, PatchSize: 32, NumChannels: 3, LayerNormEps: 1e-5, Act: kernels.ActQuickGELU, QKVBias: true}
	}
	return Config{Variant: v}
}

// hfVisionConfig is the subset of an HF vision config dict the encoder
// reads. Pointers distinguish an absent (or null) key from a zero value.
type hfVisionConfig struct {
	HiddenSize       *int     `json:"hidden_size"`
	NumLayers        *int     `json:"num_hidden_layers"`
	NumHeads         *int     `json:"num_attention_heads"`
	IntermediateSize *int     `json:"intermediate_size"`
	ImageSize        *int     `json:"image_size"`
	PatchSize        *int     `json:"patch_size"`
	NumChannels      *int     `json:"num_channels"`
	LayerNormEps     *float64 `json:"layer_norm_eps"`
	HiddenAct        *string  `json:"hidden_act"`
	QKVBias          *bool    `json:"qkv_bias"`
}

// ParseConfig reads an HF vision config dict — `vision_config` of a BLIP or
// CLIP config.json, or `encoder` of a VisionEncoderDecoder config.json —
// applying the class defaults (DefaultConfig) to absent keys, and
// validates the result. Unknown keys are ignored.
func ParseConfig(v Variant, raw []byte) (Config, error) {
	cfg := DefaultConfig(v)
	if v != BLIP && v != ViT && v != CLIP {
		return cfg, fmt.Errorf("vit: unknown variant %v", v)
	}
	var h hfVisionConfig
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &h); err != nil {
			return cfg, fmt.Errorf("vit: %v vision config: %w", v, err)
		}
	}
	setInt := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	setInt(&cfg.HiddenSize, h.HiddenSize)
	setInt(&cfg.NumLayers, h.NumLayers)
	setInt(&cfg.NumHeads, h.NumHeads)
	setInt(&cfg.IntermediateSize, h.IntermediateSize)
	setInt(&cfg.ImageSize, h.ImageSize)
	setInt(&cfg.PatchSize, h.PatchSize)
	if v != BLIP { // BlipVisionEmbeddings hard-codes 3 input channels.
		setInt(&cfg.NumChannels, h.NumChannels)
	}
	if h.LayerNormEps != nil {
		cfg.LayerNormEps = float32(*h.LayerNormEps)
	}
	if h.HiddenAct != nil {
		act, err := kernels.ParseActivation(*h.HiddenAct)
		if err != nil {
			return cfg, fmt.Errorf("vit: %v vision config hidden_act: %w", v, err)
		}
		cfg.Act = act
	}
	if v == ViT && h.QKVBias != nil {
		cfg.QKVBias = *h.QKVBias
	}
	return cfg, cfg.Validate()
}

// Validate checks that the sizes are positive and consistent.
func (c Config) Validate() error {
	if c.Variant != BLIP && c.Variant != ViT && c.Variant != CLIP {
		return fmt.Errorf("vit: unknown variant %v (want BLIP, ViT or CLIP)", c.Variant)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumLayers}, {"num_attention_heads", c.NumHeads},
		{"intermediate_size", c.IntermediateSize}, {"image_size", c.ImageSize}, {"patch_size", c.PatchSize},
		{"num_channels", c.NumChannels},
	} {
		if f.v <= 0 {
			return fmt.Errorf("vit: %v config %s = %d, must be positive", c.Variant, f.name, f.v)
		}
	}
	if c.HiddenSize%c.NumHeads != 0 {
		return fmt.Errorf("vit: %v config hidden_size %d is not a multiple of num_attention_heads %d", c.Variant, c.HiddenSize, c.NumHeads)
	}
	if c.PatchSize > c.ImageSize {
		return fmt.Errorf("vit: %v config patch_size %d exceeds image_size %d", c.Variant, c.PatchSize, c.ImageSize)
	}
	if !(c.LayerNormEps >= 0) {
		return fmt.Errorf("vit: %v config layer_norm_eps %g must be ≥ 0", c.Variant, c.LayerNormEps)
	}
	// Guard the products used to size buffers against overflow on absurd configs.
	const maxDim = 1 << 20
	if c.HiddenSize > maxDim || c.IntermediateSize > maxDim || c.ImageSize > maxDim || c.NumChannels > 1<<10 || c.NumLayers > 1<<12 {
		return fmt.Errorf("vit: %v config sizes are implausibly large (hidden %d, intermediate %d, image %d, channels %d, layers %d)",
			c.Variant, c.HiddenSize, c.IntermediateSize, c.ImageSize, c.NumChannels, c.NumLayers)
	}
	return nil
}

// grid is the number of patches along one side (the conv output side,
// floor(ImageSize/PatchSize) as PyTorch's strided Conv2d gives).
func (c Config) grid() int { return c.ImageSize / c.PatchSize }

// tokens is grid² patches plus the class token.
func (c Config) tokens() int { g := c.grid(); return g*g + 1 }
