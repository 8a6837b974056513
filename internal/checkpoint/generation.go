package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// GenerationConfig holds the generate() settings a checkpoint's
// generation_config.json may carry. Every field is optional: nil (or an
// empty EOSTokenIDs) means the key is absent or null, and the caller
// applies its own default (from config.json or HF's GenerationConfig
// defaults). Unknown keys are ignored.
type GenerationConfig struct {
	MaxLength         *int           `json:"max_length"`
	MaxNewTokens      *int           `json:"max_new_tokens"`
	MinLength         *int           `json:"min_length"`
	MinNewTokens      *int           `json:"min_new_tokens"`
	NumBeams          *int           `json:"num_beams"`
	LengthPenalty     *float64       `json:"length_penalty"`
	EarlyStopping     *EarlyStopping `json:"early_stopping"`
	NoRepeatNgramSize *int           `json:"no_repeat_ngram_size"`
	RepetitionPenalty *float64       `json:"repetition_penalty"`
	DoSample          *bool          `json:"do_sample"`
	Temperature       *float64       `json:"temperature"`
	TopK              *int           `json:"top_k"`
	TopP              *float64       `json:"top_p"`

	BOSTokenID          *int `json:"bos_token_id"`
	PadTokenID          *int `json:"pad_token_id"`
	DecoderStartTokenID *int `json:"decoder_start_token_id"`
	// EOSTokenIDs is eos_token_id, which HF allows as one id or a list.
	EOSTokenIDs TokenIDs `json:"eos_token_id"`
}

// EarlyStopping is HF's early_stopping for beam search: true, false or
// "never".
type EarlyStopping int

const (
	// EarlyStoppingFalse (HF False) stops when the best possible score of
	// the running beams cannot beat the finished ones (heuristic).
	EarlyStoppingFalse EarlyStopping = iota
	// EarlyStoppingTrue (HF True) stops as soon as num_beams hypotheses
	// are finished.
	EarlyStoppingTrue
	// EarlyStoppingNever (HF "never") stops only when no better candidate
	// can exist (canonical beam search).
	EarlyStoppingNever
)

// String returns the JSON spelling.
func (e EarlyStopping) String() string {
	switch e {
	case EarlyStoppingTrue:
		return "true"
	case EarlyStoppingNever:
		return `"never"`
	}
	return "false"
}

// UnmarshalJSON accepts true, false or "never".
func (e *EarlyStopping) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v {
	case true:
		*e = EarlyStoppingTrue
	case false:
		*e = EarlyStoppingFalse
	case "never":
		*e = EarlyStoppingNever
	default:
		return fmt.Errorf("early_stopping must be true, false or \"never\", not %s", b)
	}
	return nil
}

// TokenIDs is a token id field that may hold one id or a list of ids.
type TokenIDs []int

// UnmarshalJSON accepts null, an integer or a list of integers.
func (t *TokenIDs) UnmarshalJSON(b []byte) error {
	var one *int
	if err := json.Unmarshal(b, &one); err == nil {
		if one == nil {
			*t = nil
		} else {
			*t = TokenIDs{*one}
		}
		return nil
	}
	var many []int
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("token id must be an integer or a list of integers, not %s", b)
	}
	*t = many
	return nil
}

// ReadGenerationConfig reads dir/generation_config.json. An absent file
// gives an empty config (every field nil). Values of the wrong type or out
// of range are errors naming the file and the key.
func ReadGenerationConfig(dir string) (*GenerationConfig, error) {
	path := filepath.Join(dir, "generation_config.json")
	raw, err := readCapped(path)
	if errors.Is(err, os.ErrNotExist) {
		return &GenerationConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseGenerationConfig(path, raw)
}

// parseGenerationConfig decodes and validates generation_config.json
// content (path names it in errors).
func parseGenerationConfig(path string, raw []byte) (*GenerationConfig, error) {
	var g GenerationConfig
	if err := decodeJSON(path, raw, &g); err != nil {
		return nil, err
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return &g, nil
}

// Validate checks the ranges HF's GenerationConfig would reject or that
// make decoding meaningless: negative lengths, num_beams < 1, a
// non-positive repetition penalty, temperature < 0, top_k <
// 0, top_p outside [0, 1], non-finite floats.
func (g *GenerationConfig) Validate() error {
	for _, f := range []struct {
		key string
		v   *int
		min int
	}{
		{"max_length", g.MaxLength, 0}, {"max_new_tokens", g.MaxNewTokens, 0},
		{"min_length", g.MinLength, 0}, {"min_new_tokens", g.MinNewTokens, 0},
		{"num_beams", g.NumBeams, 1}, {"no_repeat_ngram_size", g.NoRepeatNgramSize, 0},
		{"top_k", g.TopK, 0},
	} {
		if f.v != nil && *f.v < f.min {
			return fmt.Errorf("%s = %d, must be ≥ %d", f.key, *f.v, f.min)
		}
	}
	for _, f := range []struct {
		key      string
		v        *float64
		lo, hi   float64
		openLow  bool
		describe string
	}{
		{"length_penalty", g.LengthPenalty, math.Inf(-1), math.Inf(1), false, "finite"},
		{"repetition_penalty", g.RepetitionPenalty, 0, math.Inf(1), true, "> 0"},
		{"temperature", g.Temperature, 0, math.Inf(1), false, "≥ 0"},
		{"top_p", g.TopP, 0, 1, false, "in [0, 1]"},
	} {
		if f.v == nil {
			continue
		}
		v := *f.v
		if math.IsNaN(v) || math.IsInf(v, 0) || v < f.lo || v > f.hi || (f.openLow && v == f.lo) {
			return fmt.Errorf("%s = %g, must be %s", f.key, v, f.describe)
		}
	}
	return nil
}
