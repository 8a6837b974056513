package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// GenerationConfig holds the generate() settings a checkpoint's
// generation_config.json may carry. Every field is optional: nil (or an
// empty EOSTokenIDs) means the key is absent or null, and the caller
// applies its own default (from config.json or HF's GenerationConfig
// defaults). Unknown keys are ignored.
type GenerationConfig struct {
	MaxLength         *int           `json:"max_length"`           // total length incl. the prompt (HF default 20)
	MaxNewTokens      *int           `json:"max_new_tokens"`       // generated tokens; overrides max_length
	MinLength         *int           `json:"min_length"`           // eos suppressed before this total length
	MinNewTokens      *int           `json:"min_new_tokens"`       // eos suppressed before this many new tokens
	NumBeams          *int           `json:"num_beams"`            // 1 = greedy/sampling
	LengthPenalty     *float64       `json:"length_penalty"`       // beam score = logprob sum / len^penalty
	EarlyStopping     *EarlyStopping `json:"early_stopping"`       // beam stopping rule
	NoRepeatNgramSize *int           `json:"no_repeat_ngram_size"` // ban repeating n-grams of this size
	RepetitionPenalty *float64       `json:"repetition_penalty"`   // CTRL-style penalty on seen tokens
	DoSample          *bool          `json:"do_sample"`            // sample instead of argmax
	Temperature       *float64       `json:"temperature"`          // logits / temperature when sampling
	TopK              *int           `json:"top_k"`                // keep the k best tokens when sampling
	TopP              *float64       `json:"top_p"`                // nucleus sampling mass

	// Rarer strategies and constraints; a family that does not implement
	// one should refuse a checkpoint that sets it to a non-default value.
	NumBeamGroups            *int     `json:"num_beam_groups"`              // diverse beam search groups
	DiversityPenalty         *float64 `json:"diversity_penalty"`            // diverse beam search penalty
	TypicalP                 *float64 `json:"typical_p"`                    // typical sampling mass
	EncoderNoRepeatNgramSize *int     `json:"encoder_no_repeat_ngram_size"` // ban n-grams of the encoder input
	NumReturnSequences       *int     `json:"num_return_sequences"`         // sequences returned per input
	BadWordsIDs              [][]int  `json:"bad_words_ids"`                // banned token sequences
	SuppressTokens           []int    `json:"suppress_tokens"`              // tokens never generated
	BeginSuppressTokens      []int    `json:"begin_suppress_tokens"`        // tokens not generated first

	BOSTokenID          *int `json:"bos_token_id"`           // beginning of sequence
	PadTokenID          *int `json:"pad_token_id"`           // fills finished rows
	DecoderStartTokenID *int `json:"decoder_start_token_id"` // first decoder input (encoder-decoder)
	// EOSTokenIDs is eos_token_id, which HF allows as one id or a list.
	EOSTokenIDs TokenIDs `json:"eos_token_id"`
	// ForcedBOSTokenID forces the first generated token.
	ForcedBOSTokenID *int `json:"forced_bos_token_id"`
	// ForcedEOSTokenIDs forces the token(s) generated at max_length.
	ForcedEOSTokenIDs TokenIDs `json:"forced_eos_token_id"`

	// FromModelConfig is the file's "_from_model_config" marker: HF wrote it
	// from config.json. HF 4.40's generate() then rebuilds the generation
	// config from config.json when config.json's top level has non-default
	// generation parameters (see NonDefault and FillFrom).
	FromModelConfig bool `json:"_from_model_config,omitempty"`
}

// generationDefaults are the values PretrainedConfig/GenerationConfig use
// for keys a config leaves out (transformers 4.40,
// PretrainedConfig._get_generation_defaults); fields not listed default to
// None.
var generationDefaults = map[string]any{
	"max_length": 20, "min_length": 0, "do_sample": false, "early_stopping": EarlyStoppingFalse,
	"num_beams": 1, "num_beam_groups": 1, "diversity_penalty": 0.0, "temperature": 1.0, "top_k": 50,
	"top_p": 1.0, "typical_p": 1.0, "repetition_penalty": 1.0, "length_penalty": 1.0,
	"no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "num_return_sequences": 1,
}

// nonDefaultKeys are the keys PretrainedConfig._has_non_default_generation_parameters
// inspects (token ids other than the forced ones are not among them).
var nonDefaultKeys = map[string]bool{
	"max_length": true, "min_length": true, "do_sample": true, "early_stopping": true, "num_beams": true,
	"num_beam_groups": true, "diversity_penalty": true, "temperature": true, "top_k": true, "top_p": true,
	"typical_p": true, "repetition_penalty": true, "length_penalty": true, "no_repeat_ngram_size": true,
	"encoder_no_repeat_ngram_size": true, "bad_words_ids": true, "num_return_sequences": true,
	"forced_bos_token_id": true, "forced_eos_token_id": true, "suppress_tokens": true, "begin_suppress_tokens": true,
}

// isDefault reports whether field (a GenerationConfig field value, json key
// key) is unset or holds HF's default.
func isDefault(key string, field reflect.Value) bool {
	switch field.Kind() {
	case reflect.Pointer:
		if field.IsNil() {
			return true
		}
		def, ok := generationDefaults[key]
		return ok && field.Elem().Interface() == def
	case reflect.Slice:
		return field.Len() == 0
	}
	return true
}

// generationFields visits every generation field of g with its json key.
func generationFields(g *GenerationConfig, fn func(key string, f reflect.Value)) {
	v := reflect.ValueOf(g).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if key == "" || key == "_from_model_config" {
			continue
		}
		fn(key, v.Field(i))
	}
}

// NonDefault lists, sorted, the keys among those HF's
// _has_non_default_generation_parameters checks whose value in g differs
// from the default. Applied to config.json's top level, a non-empty result
// with a generation_config.json marked FromModelConfig means HF 4.40
// generates with the parameters rebuilt from config.json instead.
func (g *GenerationConfig) NonDefault() []string {
	var out []string
	generationFields(g, func(key string, f reflect.Value) {
		if nonDefaultKeys[key] && !isDefault(key, f) {
			out = append(out, key)
		}
	})
	sort.Strings(out)
	return out
}

// FillFrom sets every field of g that is unset or holds HF's default to
// other's value, where other sets it. This is what HF's
// GenerationConfig.from_model_config does with the "decoder", "generator"
// and "text_config" dicts of a model config (in that order) after reading
// its top level: parse each with ParseGenerationParams — completed with the
// sub-config class's defaults, since config.json omits keys equal to them
// — and FillFrom it.
func (g *GenerationConfig) FillFrom(other *GenerationConfig) {
	src := reflect.ValueOf(other).Elem()
	generationFields(g, func(key string, f reflect.Value) {
		o := src.FieldByIndex(fieldIndex(key))
		if isDefault(key, f) && !o.IsZero() {
			f.Set(o)
		}
	})
}

func fieldIndex(key string) []int {
	t := reflect.TypeOf(GenerationConfig{})
	for i := 0; i < t.NumField(); i++ {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); k == key {
			return []int{i}
		}
	}
	panic("checkpoint: no GenerationConfig field for " + key)
}

// ParseGenerationParams decodes the generation keys of one model config
// dict (config.json's top level, or its decoder/text_config dict), ignoring
// all other keys. It validates like ReadGenerationConfig.
func ParseGenerationParams(raw []byte) (*GenerationConfig, error) {
	var g GenerationConfig
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("checkpoint: generation parameters in model config: %s", describeJSONError(raw, err))
	}
	g.FromModelConfig = false
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint: generation parameters in model config: %w", err)
	}
	return &g, nil
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

// MarshalJSON writes true, false or "never".
func (e EarlyStopping) MarshalJSON() ([]byte, error) { return []byte(e.String()), nil }

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
		{"top_k", g.TopK, 0}, {"num_beam_groups", g.NumBeamGroups, 1},
		{"encoder_no_repeat_ngram_size", g.EncoderNoRepeatNgramSize, 0}, {"num_return_sequences", g.NumReturnSequences, 1},
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
		{"typical_p", g.TypicalP, 0, 1, false, "in [0, 1]"},
		{"diversity_penalty", g.DiversityPenalty, math.Inf(-1), math.Inf(1), false, "finite"},
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
