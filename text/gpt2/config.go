package gpt2

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Config holds every GPT2Config field the computation depends on, with the
// Hugging Face transformers 4.40 class defaults applied to absent keys.
type Config struct {
	// VocabSize is the number of token embeddings and logits (vocab_size,
	// default 50257).
	VocabSize int
	// NPositions is the number of position embeddings, the longest sequence
	// the model accepts (n_positions, alias max_position_embeddings,
	// default 1024).
	NPositions int
	// NEmbd is the hidden size D (n_embd, alias hidden_size, default 768).
	NEmbd int
	// NLayer is the number of blocks (n_layer, alias num_hidden_layers,
	// default 12).
	NLayer int
	// NHead is the number of attention heads (n_head, alias
	// num_attention_heads, default 12); NEmbd must be a multiple of it.
	NHead int
	// NInner is the MLP width (n_inner; null or absent means 4·NEmbd).
	NInner int
	// Act is the MLP activation (activation_function, default "gelu_new").
	Act kernels.Activation
	// ActName is activation_function as written in the config.
	ActName string
	// LayerNormEps is every LayerNorm's epsilon (layer_norm_epsilon,
	// default 1e-5).
	LayerNormEps float32
	// AddCrossAttention says whether every block has a cross-attention
	// sublayer (add_cross_attention, default false).
	AddCrossAttention bool
	// ScaleAttnWeights divides attention scores by √head_dim
	// (scale_attn_weights, default true).
	ScaleAttnWeights bool
	// ScaleAttnByInverseLayerIdx further divides the scores of block i by
	// i+1 (scale_attn_by_inverse_layer_idx, default false).
	ScaleAttnByInverseLayerIdx bool
	// ReorderAndUpcastAttn is HF's mixed-precision variant of the attention
	// (reorder_and_upcast_attn, default false). In float32 it computes the
	// same scores (the scale is applied inside the product instead of
	// after it), so it is accepted and computed like the default path.
	ReorderAndUpcastAttn bool
	// TieWordEmbeddings says whether lm_head shares wte's weights
	// (tie_word_embeddings, default true).
	TieWordEmbeddings bool
	// CrossAttentionHiddenSize is cross_attention_hidden_size (default
	// null = 0). GPT-2's cross-attention projects n_embd-wide encoder
	// states, so a value other than 0 or NEmbd is refused.
	CrossAttentionHiddenSize int
	// BOSTokenID, EOSTokenIDs and PadTokenID are the special ids (defaults
	// 50256, [50256], none = -1).
	BOSTokenID  int
	EOSTokenIDs []int
	PadTokenID  int
}

// DefaultConfig returns GPT2Config() of transformers 4.40.
func DefaultConfig() Config {
	return Config{
		VocabSize: 50257, NPositions: 1024, NEmbd: 768, NLayer: 12, NHead: 12, NInner: 4 * 768,
		Act: kernels.ActGELUTanh, ActName: "gelu_new", LayerNormEps: 1e-5,
		ScaleAttnWeights: true, TieWordEmbeddings: true,
		BOSTokenID: 50256, EOSTokenIDs: []int{50256}, PadTokenID: -1,
	}
}

// hfConfig is the subset of a GPT2Config dict the model reads. Pointers
// distinguish an absent key from a zero value; json.RawMessage keeps the
// int-or-null-or-list token ids.
type hfConfig struct {
	ModelType                  *string         `json:"model_type"`
	VocabSize                  *int            `json:"vocab_size"`
	NPositions                 *int            `json:"n_positions"`
	MaxPositionEmbeddings      *int            `json:"max_position_embeddings"`
	NEmbd                      *int            `json:"n_embd"`
	HiddenSize                 *int            `json:"hidden_size"`
	NLayer                     *int            `json:"n_layer"`
	NumHiddenLayers            *int            `json:"num_hidden_layers"`
	NHead                      *int            `json:"n_head"`
	NumAttentionHeads          *int            `json:"num_attention_heads"`
	NInner                     *int            `json:"n_inner"`
	ActivationFunction         *string         `json:"activation_function"`
	LayerNormEpsilon           *float64        `json:"layer_norm_epsilon"`
	AddCrossAttention          *bool           `json:"add_cross_attention"`
	ScaleAttnWeights           *bool           `json:"scale_attn_weights"`
	ScaleAttnByInverseLayerIdx *bool           `json:"scale_attn_by_inverse_layer_idx"`
	ReorderAndUpcastAttn       *bool           `json:"reorder_and_upcast_attn"`
	TieWordEmbeddings          *bool           `json:"tie_word_embeddings"`
	CrossAttentionHiddenSize   *int            `json:"cross_attention_hidden_size"`
	BOSTokenID                 json.RawMessage `json:"bos_token_id"`
	EOSTokenID                 json.RawMessage `json:"eos_token_id"`
	PadTokenID                 json.RawMessage `json:"pad_token_id"`
}

// ParseConfig reads a GPT2Config dict (config.json of a GPT-2 checkpoint or
// the "decoder" dict of a VisionEncoderDecoder config.json), applying the
// class defaults to absent keys, and validates it. Unknown keys are ignored.
func ParseConfig(raw []byte) (Config, error) {
	c := DefaultConfig()
	var h hfConfig
	if err := json.Unmarshal(raw, &h); err != nil {
		return c, fmt.Errorf("gpt2: config: %w", err)
	}
	if h.ModelType != nil && *h.ModelType != "gpt2" {
		return c, fmt.Errorf("gpt2: config model_type is %q, expected \"gpt2\"", *h.ModelType)
	}
	// GPT2Config.attribute_map: the generic names write the GPT-2 fields
	// (set after the GPT-2 ones in PretrainedConfig.__init__, so they win).
	for _, f := range []struct {
		dst  *int
		srcs []*int
	}{
		{&c.VocabSize, []*int{h.VocabSize}},
		{&c.NPositions, []*int{h.NPositions, h.MaxPositionEmbeddings}},
		{&c.NEmbd, []*int{h.NEmbd, h.HiddenSize}},
		{&c.NLayer, []*int{h.NLayer, h.NumHiddenLayers}},
		{&c.NHead, []*int{h.NHead, h.NumAttentionHeads}},
	} {
		for _, s := range f.srcs {
			if s != nil {
				*f.dst = *s
			}
		}
	}
	c.NInner = 4 * c.NEmbd
	if h.NInner != nil {
		c.NInner = *h.NInner
	}
	if h.ActivationFunction != nil {
		act, err := kernels.ParseActivation(*h.ActivationFunction)
		if err != nil {
			return c, fmt.Errorf("gpt2: config activation_function: %w", err)
		}
		c.Act, c.ActName = act, *h.ActivationFunction
	}
	if h.LayerNormEpsilon != nil {
		c.LayerNormEps = float32(*h.LayerNormEpsilon)
	}
	setBool := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	setBool(&c.AddCrossAttention, h.AddCrossAttention)
	setBool(&c.ScaleAttnWeights, h.ScaleAttnWeights)
	setBool(&c.ScaleAttnByInverseLayerIdx, h.ScaleAttnByInverseLayerIdx)
	setBool(&c.ReorderAndUpcastAttn, h.ReorderAndUpcastAttn)
	setBool(&c.TieWordEmbeddings, h.TieWordEmbeddings)
	if h.CrossAttentionHiddenSize != nil {
		c.CrossAttentionHiddenSize = *h.CrossAttentionHiddenSize
	}
	var err error
	if c.BOSTokenID, err = TokenID(h.BOSTokenID, c.BOSTokenID); err != nil {
		return c, fmt.Errorf("gpt2: config bos_token_id: %w", err)
	}
	if c.EOSTokenIDs, err = TokenIDs(h.EOSTokenID, c.EOSTokenIDs); err != nil {
		return c, fmt.Errorf("gpt2: config eos_token_id: %w", err)
	}
	if c.PadTokenID, err = TokenID(h.PadTokenID, c.PadTokenID); err != nil {
		return c, fmt.Errorf("gpt2: config pad_token_id: %w", err)
	}
	return c, c.Validate()
}

// Validate checks that the sizes are positive and consistent and that the
// configuration is one this implementation computes exactly.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"n_positions", c.NPositions}, {"n_embd", c.NEmbd},
		{"n_layer", c.NLayer}, {"n_head", c.NHead}, {"n_inner", c.NInner},
	} {
		if f.v <= 0 {
			return fmt.Errorf("gpt2: config %s = %d, must be positive", f.name, f.v)
		}
	}
	if c.NEmbd%c.NHead != 0 {
		return fmt.Errorf("gpt2: config n_embd %d is not a multiple of n_head %d", c.NEmbd, c.NHead)
	}
	const maxDim = 1 << 22
	if c.NEmbd > maxDim || c.NInner > maxDim || c.VocabSize > 1<<24 || c.NPositions > 1<<20 || c.NLayer > 1<<12 {
		return fmt.Errorf("gpt2: config sizes are implausibly large (n_embd %d, n_inner %d, vocab %d, positions %d, layers %d)",
			c.NEmbd, c.NInner, c.VocabSize, c.NPositions, c.NLayer)
	}
	if !(c.LayerNormEps >= 0) {
		return fmt.Errorf("gpt2: config layer_norm_epsilon %g must be ≥ 0", c.LayerNormEps)
	}
	if c.CrossAttentionHiddenSize != 0 && c.CrossAttentionHiddenSize != c.NEmbd {
		return fmt.Errorf("gpt2: config cross_attention_hidden_size %d differs from n_embd %d: GPT-2's cross-attention takes n_embd-wide encoder states (HF fails on this too); remove the key or set it to n_embd",
			c.CrossAttentionHiddenSize, c.NEmbd)
	}
	return nil
}

// HeadDim is NEmbd/NHead.
func (c Config) HeadDim() int { return c.NEmbd / c.NHead }

// TokenID parses an HF special-token-id value: absent keeps def, null
// gives -1 (none), an int gives itself, and a list gives its first element.
func TokenID(raw json.RawMessage, def int) (int, error) {
	ids, err := TokenIDs(raw, []int{def})
	if err != nil {
		return def, err
	}
	if len(ids) == 0 {
		return -1, nil
	}
	return ids[0], nil
}

// TokenIDs parses an HF special-token-id value that may be a list (as
// eos_token_id may be): absent keeps def, null gives none, an int gives a
// one-element list.
func TokenIDs(raw json.RawMessage, def []int) ([]int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return def, nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return def, fmt.Errorf("%s is neither an integer, a list of integers nor null", raw)
	}
	return many, nil
}
