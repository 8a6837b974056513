package cliptext

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Config holds every CLIPTextConfig field the text encoder depends on, with
// the Hugging Face transformers 4.40 class defaults applied to absent keys.
type Config struct {
	// VocabSize is the number of token embeddings (vocab_size, default 49408).
	VocabSize int
	// HiddenSize is the width D (hidden_size, default 512).
	HiddenSize int
	// IntermediateSize is the MLP width (intermediate_size, default 2048).
	IntermediateSize int
	// ProjectionDim is text_config.projection_dim (default 512). CLIPModel
	// sizes its projections with the top-level projection_dim instead; this
	// one is kept for CLIPTextModelWithProjection.
	ProjectionDim int
	// NumLayers is the number of encoder layers (num_hidden_layers, default 12).
	NumLayers int
	// NumHeads is the number of attention heads (num_attention_heads,
	// default 8); HiddenSize must be a multiple of it.
	NumHeads int
	// MaxPositions is the longest input in tokens (max_position_embeddings,
	// default 77).
	MaxPositions int
	// Act is the MLP activation (hidden_act, default "quick_gelu").
	Act kernels.Activation
	// LayerNormEps is every LayerNorm's epsilon (layer_norm_eps, default 1e-5).
	LayerNormEps float32
	// PadTokenID, BOSTokenID and EOSTokenID are the special ids (defaults 1,
	// 49406, 49407). EOSTokenID decides the pooling (see PoolIndex).
	PadTokenID, BOSTokenID, EOSTokenID int
}

// DefaultConfig returns CLIPTextConfig() of transformers 4.40.
func DefaultConfig() Config {
	return Config{
		VocabSize: 49408, HiddenSize: 512, IntermediateSize: 2048, ProjectionDim: 512,
		NumLayers: 12, NumHeads: 8, MaxPositions: 77, Act: kernels.ActQuickGELU, LayerNormEps: 1e-5,
		PadTokenID: 1, BOSTokenID: 49406, EOSTokenID: 49407,
	}
}

type hfConfig struct {
	VocabSize        *int            `json:"vocab_size"`
	HiddenSize       *int            `json:"hidden_size"`
	IntermediateSize *int            `json:"intermediate_size"`
	ProjectionDim    *int            `json:"projection_dim"`
	NumLayers        *int            `json:"num_hidden_layers"`
	NumHeads         *int            `json:"num_attention_heads"`
	MaxPositions     *int            `json:"max_position_embeddings"`
	HiddenAct        *string         `json:"hidden_act"`
	LayerNormEps     *float64        `json:"layer_norm_eps"`
	PadTokenID       json.RawMessage `json:"pad_token_id"`
	BOSTokenID       json.RawMessage `json:"bos_token_id"`
	EOSTokenID       json.RawMessage `json:"eos_token_id"`
}

// ParseConfig reads a CLIPTextConfig dict (the "text_config" of a CLIPModel
// config.json; empty or null means all defaults), applying the class
// defaults to absent keys, and validates it. Unknown keys are ignored.
func ParseConfig(raw []byte) (Config, error) {
	c := DefaultConfig()
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return c, nil
	}
	var h hfConfig
	if err := json.Unmarshal(raw, &h); err != nil {
		return c, fmt.Errorf("cliptext: text_config: %w", err)
	}
	for _, f := range []struct {
		dst *int
		src *int
	}{
		{&c.VocabSize, h.VocabSize}, {&c.HiddenSize, h.HiddenSize}, {&c.IntermediateSize, h.IntermediateSize},
		{&c.ProjectionDim, h.ProjectionDim}, {&c.NumLayers, h.NumLayers}, {&c.NumHeads, h.NumHeads},
		{&c.MaxPositions, h.MaxPositions},
	} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if h.HiddenAct != nil {
		act, err := kernels.ParseActivation(*h.HiddenAct)
		if err != nil {
			return c, fmt.Errorf("cliptext: text_config hidden_act: %w", err)
		}
		c.Act = act
	}
	if h.LayerNormEps != nil {
		c.LayerNormEps = float32(*h.LayerNormEps)
	}
	for _, f := range []struct {
		name string
		dst  *int
		raw  json.RawMessage
	}{
		{"pad_token_id", &c.PadTokenID, h.PadTokenID}, {"bos_token_id", &c.BOSTokenID, h.BOSTokenID},
		{"eos_token_id", &c.EOSTokenID, h.EOSTokenID},
	} {
		v, err := tokenID(f.raw, *f.dst)
		if err != nil {
			return c, fmt.Errorf("cliptext: text_config %s: %w", f.name, err)
		}
		*f.dst = v
	}
	return c, c.Validate()
}

// tokenID parses an int-or-null token id (absent keeps def, null gives -1).
func tokenID(raw json.RawMessage, def int) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return def, nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return -1, nil
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		return def, fmt.Errorf("%s is not an integer", raw)
	}
	return v, nil
}

// Validate checks that the sizes are positive and consistent.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumLayers}, {"num_attention_heads", c.NumHeads}, {"max_position_embeddings", c.MaxPositions},
	} {
		if f.v <= 0 {
			return fmt.Errorf("cliptext: text_config %s = %d, must be positive", f.name, f.v)
		}
	}
	if c.HiddenSize%c.NumHeads != 0 {
		return fmt.Errorf("cliptext: text_config hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumHeads)
	}
	const maxDim = 1 << 22
	if c.HiddenSize > maxDim || c.IntermediateSize > maxDim || c.VocabSize > 1<<24 || c.MaxPositions > 1<<20 || c.NumLayers > 1<<12 {
		return fmt.Errorf("cliptext: text_config sizes are implausibly large (hidden %d, intermediate %d, vocab %d, positions %d, layers %d)",
			c.HiddenSize, c.IntermediateSize, c.VocabSize, c.MaxPositions, c.NumLayers)
	}
	if !(c.LayerNormEps >= 0) {
		return fmt.Errorf("cliptext: text_config layer_norm_eps %g must be ≥ 0", c.LayerNormEps)
	}
	return nil
}

// PoolIndex is the position whose final hidden state is the pooled output,
// as CLIPTextTransformer chooses it for one (padded) row of ids: with
// eos_token_id == 2 (the legacy openai configs) the first position of the
// largest id; otherwise the first position equal to eos_token_id, or 0 when
// there is none (torch's argmax of an all-zero row).
func (c Config) PoolIndex(ids []int) int {
	best := 0
	if c.EOSTokenID == 2 {
		for i, id := range ids {
			if id > ids[best] {
				best = i
			}
		}
		return best
	}
	for i, id := range ids {
		if id == c.EOSTokenID {
			return i
		}
	}
	return 0
}
