// Package bert is BLIP's BERT-style text transformer (HF BlipTextModel and
// BlipTextLMHeadModel): word + absolute position embeddings with a
// LayerNorm, post-norm layers with self-attention (bidirectional for the
// encoder, causal with a per-sequence KV cache for the decoder), optional
// cross-attention to encoder states whose keys and values are computed
// once per request (CrossKV), a GELU MLP, and the LM head.
package bert

import (
	"encoding/json"
	"fmt"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Config holds every hyper-parameter the text model's computation depends
// on (HF BlipTextConfig).
type Config struct {
	VocabSize         int                // vocab_size
	HiddenSize        int                // hidden_size H
	NumLayers         int                // num_hidden_layers
	NumHeads          int                // num_attention_heads; H must be a multiple of it
	IntermediateSize  int                // intermediate_size (MLP width)
	MaxPositions      int                // max_position_embeddings
	EncoderHiddenSize int                // encoder_hidden_size: width of the states cross-attention reads
	Act               kernels.Activation // hidden_act (MLP and LM-head transform)
	LayerNormEps      float32            // layer_norm_eps
	// CrossAttention says whether every layer carries cross-attention
	// weights (HF is_decoder, true by default for BLIP, also for the
	// VQA/ITM text_encoder).
	CrossAttention bool

	// Special token ids (HF BlipTextConfig).
	BOS, EOS, PAD, SEP int

	// Generation defaults HF's text_decoder.generate takes from this
	// config (PretrainedConfig generation attributes).
	Gen GenDefaults
}

// GenDefaults are the generation attributes a BlipTextConfig may carry
// (HF 4.40 PretrainedConfig defaults when absent). BLIP's generate reads
// them from text_config (the text decoder's own generation config), not
// from generation_config.json.
type GenDefaults struct {
	MaxLength         int     // max_length (total, prompt included; 20)
	MaxNewTokens      int     // max_new_tokens (0 = unset)
	MinLength         int     // min_length (total; 0)
	MinNewTokens      int     // min_new_tokens (0 = unset)
	NumBeams          int     // num_beams (1)
	LengthPenalty     float64 // length_penalty (1.0)
	EarlyStopping     string  // early_stopping: "false", "true" or "never"
	RepetitionPenalty float64 // repetition_penalty (1.0)
	NoRepeatNgramSize int     // no_repeat_ngram_size (0)
	DoSample          bool    // do_sample (false)
	Temperature       float64 // temperature (1.0)
	TopK              int     // top_k (50)
	TopP              float64 // top_p (1.0)
	// Unsupported lists generation settings present with a non-default
	// value that change HF's decoding but are not implemented here
	// (e.g. num_beam_groups, forced_eos_token_id); decoding refuses them.
	Unsupported []string
}

// DefaultConfig returns HF 4.40 BlipTextConfig's class defaults.
func DefaultConfig() Config {
	return Config{
		VocabSize: 30524, HiddenSize: 768, NumLayers: 12, NumHeads: 8, IntermediateSize: 3072,
		MaxPositions: 512, EncoderHiddenSize: 768, Act: kernels.ActGELU, LayerNormEps: 1e-12,
		CrossAttention: true, BOS: 30522, EOS: 2, PAD: 0, SEP: 102,
		Gen: GenDefaults{MaxLength: 20, NumBeams: 1, LengthPenalty: 1.0, EarlyStopping: "false", RepetitionPenalty: 1.0,
			Temperature: 1.0, TopK: 50, TopP: 1.0},
	}
}

type hfTextConfig struct {
	VocabSize         *int            `json:"vocab_size"`
	HiddenSize        *int            `json:"hidden_size"`
	NumLayers         *int            `json:"num_hidden_layers"`
	NumHeads          *int            `json:"num_attention_heads"`
	IntermediateSize  *int            `json:"intermediate_size"`
	MaxPositions      *int            `json:"max_position_embeddings"`
	EncoderHiddenSize *int            `json:"encoder_hidden_size"`
	HiddenAct         *string         `json:"hidden_act"`
	LayerNormEps      *float64        `json:"layer_norm_eps"`
	IsDecoder         *bool           `json:"is_decoder"`
	PositionType      *string         `json:"position_embedding_type"`
	BOS               *int            `json:"bos_token_id"`
	EOS               json.RawMessage `json:"eos_token_id"`
	PAD               *int            `json:"pad_token_id"`
	SEP               *int            `json:"sep_token_id"`

	MaxLength         *int            `json:"max_length"`
	MaxNewTokens      *int            `json:"max_new_tokens"`
	MinLength         *int            `json:"min_length"`
	MinNewTokens      *int            `json:"min_new_tokens"`
	NumBeams          *int            `json:"num_beams"`
	LengthPenalty     *float64        `json:"length_penalty"`
	EarlyStopping     json.RawMessage `json:"early_stopping"`
	RepetitionPenalty *float64        `json:"repetition_penalty"`
	NoRepeatNgramSize *int            `json:"no_repeat_ngram_size"`
	DoSample          *bool           `json:"do_sample"`
	Temperature       *float64        `json:"temperature"`
	TopK              *int            `json:"top_k"`
	TopP              *float64        `json:"top_p"`
}

// ParseConfig reads a BLIP text_config dict (raw may be empty), applying
// BlipTextConfig's defaults to absent or null keys, and validates it.
// Unknown keys are ignored.
func ParseConfig(raw []byte) (Config, error) {
	c := DefaultConfig()
	var h hfTextConfig
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &h); err != nil {
			return c, fmt.Errorf("bert: text_config: %w", err)
		}
	}
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.VocabSize, h.VocabSize)
	set(&c.HiddenSize, h.HiddenSize)
	set(&c.NumLayers, h.NumLayers)
	set(&c.NumHeads, h.NumHeads)
	set(&c.IntermediateSize, h.IntermediateSize)
	set(&c.MaxPositions, h.MaxPositions)
	set(&c.EncoderHiddenSize, h.EncoderHiddenSize)
	set(&c.BOS, h.BOS)
	set(&c.PAD, h.PAD)
	set(&c.SEP, h.SEP)
	if len(h.EOS) > 0 && string(h.EOS) != "null" {
		var one int
		var many []int
		switch {
		case json.Unmarshal(h.EOS, &one) == nil:
			c.EOS = one
		case json.Unmarshal(h.EOS, &many) == nil && len(many) > 0:
			c.EOS = many[0]
		default:
			return c, fmt.Errorf("bert: text_config eos_token_id %s is not an id or a list of ids", h.EOS)
		}
	}
	if h.HiddenAct != nil {
		act, err := kernels.ParseActivation(*h.HiddenAct)
		if err != nil {
			return c, fmt.Errorf("bert: text_config hidden_act: %w", err)
		}
		c.Act = act
	}
	if h.LayerNormEps != nil {
		c.LayerNormEps = float32(*h.LayerNormEps)
	}
	if h.IsDecoder != nil {
		c.CrossAttention = *h.IsDecoder
	}
	if h.PositionType != nil && *h.PositionType != "absolute" {
		return c, fmt.Errorf("bert: text_config position_embedding_type %q is not supported (only \"absolute\")", *h.PositionType)
	}
	g := &c.Gen
	set(&g.MaxLength, h.MaxLength)
	set(&g.MaxNewTokens, h.MaxNewTokens)
	set(&g.MinLength, h.MinLength)
	set(&g.MinNewTokens, h.MinNewTokens)
	set(&g.NumBeams, h.NumBeams)
	set(&g.NoRepeatNgramSize, h.NoRepeatNgramSize)
	if h.LengthPenalty != nil {
		g.LengthPenalty = *h.LengthPenalty
	}
	if h.RepetitionPenalty != nil {
		g.RepetitionPenalty = *h.RepetitionPenalty
	}
	if h.DoSample != nil {
		g.DoSample = *h.DoSample
	}
	set(&g.TopK, h.TopK)
	if h.Temperature != nil {
		g.Temperature = *h.Temperature
	}
	if h.TopP != nil {
		g.TopP = *h.TopP
	}
	unsupported, err := unsupportedGeneration(raw)
	if err != nil {
		return c, err
	}
	g.Unsupported = unsupported
	if es, err := ParseEarlyStopping(h.EarlyStopping); err != nil {
		return c, fmt.Errorf("bert: text_config: %w", err)
	} else if es != "" {
		g.EarlyStopping = es
	}
	return c, c.Validate()
}

// unsupportedGeneration lists the generation keys of a config dict that
// are set to something other than HF's no-op default and that this
// decoder does not implement.
func unsupportedGeneration(raw []byte) ([]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("bert: text_config: %w", err)
	}
	var out []string
	for _, k := range []string{"forced_bos_token_id", "forced_eos_token_id", "bad_words_ids", "suppress_tokens",
		"begin_suppress_tokens", "exponential_decay_length_penalty", "sequence_bias"} {
		if v, ok := m[k]; ok && string(v) != "null" {
			out = append(out, k)
		}
	}
	if v, ok := m["num_beam_groups"]; ok && string(v) != "null" && string(v) != "1" {
		out = append(out, "num_beam_groups")
	}
	return out, nil
}

// ParseEarlyStopping reads an HF early_stopping JSON value (true, false or
// "never"); it returns "" for an absent or null value.
func ParseEarlyStopping(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		if b {
			return "true", nil
		}
		return "false", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s == "never" {
		return "never", nil
	}
	return "", fmt.Errorf("early_stopping %s must be true, false or \"never\"", raw)
}

// Validate checks that the sizes are positive and consistent.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumLayers},
		{"num_attention_heads", c.NumHeads}, {"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositions}, {"encoder_hidden_size", c.EncoderHiddenSize},
	} {
		if f.v <= 0 {
			return fmt.Errorf("bert: text_config %s = %d, must be positive", f.name, f.v)
		}
		if f.v > 1<<24 {
			return fmt.Errorf("bert: text_config %s = %d is implausibly large", f.name, f.v)
		}
	}
	if c.HiddenSize%c.NumHeads != 0 {
		return fmt.Errorf("bert: text_config hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumHeads)
	}
	if !(c.LayerNormEps >= 0) {
		return fmt.Errorf("bert: text_config layer_norm_eps %g must be ≥ 0", c.LayerNormEps)
	}
	return nil
}
