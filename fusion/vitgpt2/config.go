package vitgpt2

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/text/gpt2"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

// Config is the typed VisionEncoderDecoderConfig of a ViT-GPT2 checkpoint
// (transformers 4.40 defaults for absent keys).
type Config struct {
	// Encoder is the ViTConfig of the "encoder" dict.
	Encoder vit.Config
	// Decoder is the GPT2Config of the "decoder" dict (add_cross_attention
	// must be true).
	Decoder gpt2.Config
	// EncToDecProj says whether the checkpoint has enc_to_dec_proj, the
	// Linear HF adds when the encoder's hidden_size differs from the
	// decoder's and the decoder sets no cross_attention_hidden_size.
	EncToDecProj bool
	// TieWordEmbeddings is the top-level tie_word_embeddings. HF builds the
	// decoder from its own config, so the decoder's flag (in Decoder)
	// decides whether lm_head is tied to wte; this one is kept for
	// reference.
	TieWordEmbeddings bool
}

// rawConfig is the part of config.json parsed here; the sub-dicts are
// handed to the encoder and decoder parsers.
type rawConfig struct {
	ModelType         string          `json:"model_type"`
	Encoder           json.RawMessage `json:"encoder"`
	Decoder           json.RawMessage `json:"decoder"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
}

type modelType struct {
	ModelType string `json:"model_type"`
}

// ParseConfig reads a VisionEncoderDecoder config.json. Only a "vit"
// encoder and a "gpt2" decoder with cross-attention are supported; other
// pairs are refused with an error naming what is supported.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	var rc rawConfig
	if err := json.Unmarshal(raw, &rc); err != nil {
		return c, fmt.Errorf("vitgpt2: config.json: %w", err)
	}
	if rc.ModelType != "" && rc.ModelType != "vision-encoder-decoder" {
		return c, fmt.Errorf("vitgpt2: config.json model_type is %q, expected \"vision-encoder-decoder\"", rc.ModelType)
	}
	if len(rc.Encoder) == 0 || len(rc.Decoder) == 0 {
		return c, errors.New("vitgpt2: config.json needs both an \"encoder\" and a \"decoder\" dict (VisionEncoderDecoderConfig)")
	}
	var em, dm modelType
	if err := json.Unmarshal(rc.Encoder, &em); err != nil {
		return c, fmt.Errorf("vitgpt2: config.json encoder: %w", err)
	}
	if err := json.Unmarshal(rc.Decoder, &dm); err != nil {
		return c, fmt.Errorf("vitgpt2: config.json decoder: %w", err)
	}
	if em.ModelType != "vit" || dm.ModelType != "gpt2" {
		return c, fmt.Errorf("vitgpt2: unsupported VisionEncoderDecoder pair: encoder model_type %q, decoder model_type %q (supported: encoder \"vit\" with decoder \"gpt2\")",
			em.ModelType, dm.ModelType)
	}
	var err error
	if c.Encoder, err = vit.ParseConfig(vit.ViT, rc.Encoder); err != nil {
		return c, fmt.Errorf("vitgpt2: config.json encoder: %w", err)
	}
	if c.Decoder, err = gpt2.ParseConfig(rc.Decoder); err != nil {
		return c, fmt.Errorf("vitgpt2: config.json decoder: %w", err)
	}
	if !c.Decoder.AddCrossAttention {
		return c, errors.New("vitgpt2: config.json decoder has add_cross_attention false: the GPT-2 decoder cannot see the image (HF fails on such a checkpoint too)")
	}
	// VisionEncoderDecoderModel.__init__: a decoder cross_attention_hidden_size
	// must equal the encoder width; enc_to_dec_proj exists when the widths
	// differ and no cross_attention_hidden_size is set.
	if cs := c.Decoder.CrossAttentionHiddenSize; cs != 0 && cs != c.Encoder.HiddenSize {
		return c, fmt.Errorf("vitgpt2: decoder cross_attention_hidden_size %d differs from the encoder hidden_size %d", cs, c.Encoder.HiddenSize)
	}
	c.EncToDecProj = c.Encoder.HiddenSize != c.Decoder.NEmbd && c.Decoder.CrossAttentionHiddenSize == 0
	c.TieWordEmbeddings = true
	if rc.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *rc.TieWordEmbeddings
	}
	return c, nil
}

// genSettings are the generate() settings a checkpoint may carry, in
// generation_config.json or (legacy) config.json. nil = absent.
type genSettings struct {
	checkpoint.GenerationConfig
	// Settings Glimpse's decoding does not implement; a checkpoint that
	// turns one on is refused at Caption time rather than silently
	// decoded differently.
	ForcedBOSTokenID      *int            `json:"forced_bos_token_id"`
	ForcedEOSTokenID      *int            `json:"forced_eos_token_id"`
	BadWordsIDs           json.RawMessage `json:"bad_words_ids"`
	SuppressTokens        json.RawMessage `json:"suppress_tokens"`
	BeginSuppressTokens   json.RawMessage `json:"begin_suppress_tokens"`
	NumBeamGroups         *int            `json:"num_beam_groups"`
	EncoderNoRepeatNgram  *int            `json:"encoder_no_repeat_ngram_size"`
	ExponentialDecayLenPn json.RawMessage `json:"exponential_decay_length_penalty"`
}

// Generation holds the resolved decoding defaults of a checkpoint, as HF
// generate() would use them when called without arguments.
type Generation struct {
	// DecoderStartTokenID starts every caption (decoder_start_token_id,
	// else bos_token_id).
	DecoderStartTokenID int
	// EOSTokenIDs end a caption (may be empty: only the length limit stops).
	EOSTokenIDs []int
	// PadTokenID is pad_token_id, or the first eos id when unset (HF).
	PadTokenID int
	// MaxNewTokens is max_new_tokens, 0 when only MaxLength is set.
	MaxNewTokens int
	// MaxLength is max_length (HF default 20), counting the decoder prompt.
	MaxLength int
	// MinNewTokens and MinLength are min_new_tokens and min_length.
	MinNewTokens, MinLength int
	// NumBeams (default 1), LengthPenalty (1.0) and EarlyStopping (false).
	NumBeams      int
	LengthPenalty float64
	EarlyStopping checkpoint.EarlyStopping
	// DoSample, Temperature (1.0), TopK (50), TopP (1.0),
	// RepetitionPenalty (1.0) and NoRepeatNgramSize (0) are the sampling
	// and repetition controls.
	DoSample          bool
	Temperature       float64
	TopK              int
	TopP              float64
	RepetitionPenalty float64
	NoRepeatNgramSize int
	// Unsupported lists settings turned on that Glimpse's decoding does not
	// implement (e.g. "no_repeat_ngram_size=3"); Caption refuses to run
	// with them rather than produce different text than HF.
	Unsupported []string
}

// readGeneration resolves the generation defaults of the checkpoint in dir
// as transformers 4.40 does. generation_config.json is used when it exists
// (its absent keys take GenerationConfig's defaults), unless it was made
// from the model config ("_from_model_config": true) and config.json sets
// a generation parameter to a non-default value at its top level: then,
// as when there is no generation_config.json, generate() uses
// GenerationConfig.from_model_config(config): config.json's top-level
// values, with the decoder dict's values for every setting the top level
// leaves at its default.
func readGeneration(dir string, configJSON []byte) (Generation, error) {
	var g genSettings
	path := filepath.Join(dir, "generation_config.json")
	_, statErr := os.Stat(path)
	if statErr != nil && !errors.Is(statErr, os.ErrNotExist) {
		return Generation{}, fmt.Errorf("vitgpt2: %w", statErr)
	}
	useFile := statErr == nil
	if useFile {
		gc, err := checkpoint.ReadGenerationConfig(dir)
		if err != nil {
			return Generation{}, err
		}
		g.GenerationConfig = *gc
		raw, err := os.ReadFile(path)
		if err != nil {
			return Generation{}, fmt.Errorf("vitgpt2: %w", err)
		}
		// The extra (unsupported) keys; the checked ones were validated above.
		var extra struct {
			genSettings
			FromModelConfig bool `json:"_from_model_config"`
		}
		if err := json.Unmarshal(raw, &extra); err == nil {
			g.ForcedBOSTokenID, g.ForcedEOSTokenID = extra.ForcedBOSTokenID, extra.ForcedEOSTokenID
			g.BadWordsIDs, g.SuppressTokens, g.BeginSuppressTokens = extra.BadWordsIDs, extra.SuppressTokens, extra.BeginSuppressTokens
			g.NumBeamGroups, g.EncoderNoRepeatNgram, g.ExponentialDecayLenPn = extra.NumBeamGroups, extra.EncoderNoRepeatNgram, extra.ExponentialDecayLenPn
			if extra.FromModelConfig && hasNonDefaultGeneration(configJSON) {
				useFile = false // HF's legacy rule in generate()
			}
		}
	}
	if !useFile {
		var top genSettings
		if err := json.Unmarshal(configJSON, &top); err != nil {
			return Generation{}, fmt.Errorf("vitgpt2: config.json generation settings: %w", err)
		}
		var inner struct {
			Decoder json.RawMessage `json:"decoder"`
		}
		_ = json.Unmarshal(configJSON, &inner)
		var dec genSettings
		if len(inner.Decoder) > 0 {
			if err := json.Unmarshal(inner.Decoder, &dec); err != nil {
				return Generation{}, fmt.Errorf("vitgpt2: config.json decoder generation settings: %w", err)
			}
		}
		g = mergeDecoder(top, dec)
		if err := g.Validate(); err != nil {
			return Generation{}, fmt.Errorf("vitgpt2: config.json generation settings: %w", err)
		}
	}
	return resolve(g)
}

// generationDefaults is PretrainedConfig._get_generation_defaults() of
// transformers 4.40 (JSON spelling of each default).
var generationDefaults = map[string]string{
	"max_length": "20", "min_length": "0", "do_sample": "false", "early_stopping": "false", "num_beams": "1",
	"num_beam_groups": "1", "diversity_penalty": "0", "temperature": "1", "top_k": "50", "top_p": "1",
	"typical_p": "1", "repetition_penalty": "1", "length_penalty": "1", "no_repeat_ngram_size": "0",
	"encoder_no_repeat_ngram_size": "0", "bad_words_ids": "null", "num_return_sequences": "1",
	"output_scores": "false", "return_dict_in_generate": "false", "forced_bos_token_id": "null",
	"forced_eos_token_id": "null", "remove_invalid_values": "false", "exponential_decay_length_penalty": "null",
	"suppress_tokens": "null", "begin_suppress_tokens": "null",
}

// hasNonDefaultGeneration is config._has_non_default_generation_parameters()
// for the top level of config.json: a generation parameter present with a
// value other than its default (numbers compared by value).
func hasNonDefaultGeneration(configJSON []byte) bool {
	var top map[string]any
	if json.Unmarshal(configJSON, &top) != nil {
		return false
	}
	for key, def := range generationDefaults {
		v, ok := top[key]
		if !ok {
			continue
		}
		var d any
		_ = json.Unmarshal([]byte(def), &d)
		if fmt.Sprint(v) != fmt.Sprint(d) {
			return true
		}
	}
	return false
}

// mergeDecoder applies from_model_config's special case: a setting the top
// level leaves at GenerationConfig's default takes the decoder's value.
func mergeDecoder(top, dec genSettings) genSettings {
	pickInt := func(t, d *int, def int) *int {
		if (t == nil || *t == def) && d != nil {
			return d
		}
		return t
	}
	pickF := func(t, d *float64, def float64) *float64 {
		if (t == nil || *t == def) && d != nil {
			return d
		}
		return t
	}
	g := top
	g.MaxLength = pickInt(top.MaxLength, dec.MaxLength, 20)
	g.MinLength = pickInt(top.MinLength, dec.MinLength, 0)
	g.NumBeams = pickInt(top.NumBeams, dec.NumBeams, 1)
	g.NoRepeatNgramSize = pickInt(top.NoRepeatNgramSize, dec.NoRepeatNgramSize, 0)
	g.TopK = pickInt(top.TopK, dec.TopK, 50)
	g.LengthPenalty = pickF(top.LengthPenalty, dec.LengthPenalty, 1)
	g.RepetitionPenalty = pickF(top.RepetitionPenalty, dec.RepetitionPenalty, 1)
	g.Temperature = pickF(top.Temperature, dec.Temperature, 1)
	g.TopP = pickF(top.TopP, dec.TopP, 1)
	if (top.EarlyStopping == nil || *top.EarlyStopping == checkpoint.EarlyStoppingFalse) && dec.EarlyStopping != nil {
		g.EarlyStopping = dec.EarlyStopping
	}
	if (top.DoSample == nil || !*top.DoSample) && dec.DoSample != nil {
		g.DoSample = dec.DoSample
	}
	// Token ids default to None: the decoder's fill the ones the top
	// level does not set.
	for _, p := range []struct{ t, d **int }{
		{&g.BOSTokenID, &dec.BOSTokenID}, {&g.PadTokenID, &dec.PadTokenID},
		{&g.DecoderStartTokenID, &dec.DecoderStartTokenID}, {&g.ForcedBOSTokenID, &dec.ForcedBOSTokenID},
		{&g.ForcedEOSTokenID, &dec.ForcedEOSTokenID},
	} {
		if *p.t == nil {
			*p.t = *p.d
		}
	}
	if len(g.EOSTokenIDs) == 0 {
		g.EOSTokenIDs = dec.EOSTokenIDs
	}
	if g.MaxNewTokens == nil {
		g.MaxNewTokens = dec.MaxNewTokens
	}
	if g.MinNewTokens == nil {
		g.MinNewTokens = dec.MinNewTokens
	}
	g.NumBeamGroups = pickInt(top.NumBeamGroups, dec.NumBeamGroups, 1)
	g.EncoderNoRepeatNgram = pickInt(top.EncoderNoRepeatNgram, dec.EncoderNoRepeatNgram, 0)
	for _, p := range []struct{ t, d *json.RawMessage }{
		{&g.BadWordsIDs, &dec.BadWordsIDs}, {&g.SuppressTokens, &dec.SuppressTokens},
		{&g.BeginSuppressTokens, &dec.BeginSuppressTokens}, {&g.ExponentialDecayLenPn, &dec.ExponentialDecayLenPn},
	} {
		if isNull(*p.t) {
			*p.t = *p.d
		}
	}
	return g
}

func isNull(raw json.RawMessage) bool {
	s := string(raw)
	return len(raw) == 0 || s == "null" || s == "[]"
}

// resolve turns the merged settings into Generation with HF's defaults.
func resolve(g genSettings) (Generation, error) {
	out := Generation{MaxLength: 20, NumBeams: 1, LengthPenalty: 1, PadTokenID: -1, DecoderStartTokenID: -1,
		Temperature: 1, TopK: 50, TopP: 1, RepetitionPenalty: 1}
	switch {
	case g.DecoderStartTokenID != nil:
		out.DecoderStartTokenID = *g.DecoderStartTokenID
	case g.BOSTokenID != nil:
		out.DecoderStartTokenID = *g.BOSTokenID
	default:
		return out, errors.New("vitgpt2: neither decoder_start_token_id nor bos_token_id is set in generation_config.json or config.json: the decoder has no start token")
	}
	out.EOSTokenIDs = append([]int(nil), g.EOSTokenIDs...)
	if g.PadTokenID != nil {
		out.PadTokenID = *g.PadTokenID
	} else if len(out.EOSTokenIDs) > 0 {
		out.PadTokenID = out.EOSTokenIDs[0]
	}
	if g.MaxNewTokens != nil {
		out.MaxNewTokens = *g.MaxNewTokens
	}
	if g.MaxLength != nil {
		out.MaxLength = *g.MaxLength
	}
	if g.MinNewTokens != nil {
		out.MinNewTokens = *g.MinNewTokens
	}
	if g.MinLength != nil {
		out.MinLength = *g.MinLength
	}
	if g.NumBeams != nil {
		out.NumBeams = *g.NumBeams
	}
	if g.LengthPenalty != nil {
		out.LengthPenalty = *g.LengthPenalty
	}
	if g.EarlyStopping != nil {
		out.EarlyStopping = *g.EarlyStopping
	}
	un := func(cond bool, s string, v any) {
		if cond {
			out.Unsupported = append(out.Unsupported, fmt.Sprintf("%s=%v", s, v))
		}
	}
	if g.NoRepeatNgramSize != nil {
		out.NoRepeatNgramSize = *g.NoRepeatNgramSize
	}
	if g.RepetitionPenalty != nil {
		out.RepetitionPenalty = *g.RepetitionPenalty
	}
	if g.DoSample != nil {
		out.DoSample = *g.DoSample
	}
	if g.Temperature != nil {
		out.Temperature = *g.Temperature
	}
	if g.TopK != nil {
		out.TopK = *g.TopK
	}
	if g.TopP != nil {
		out.TopP = *g.TopP
	}
	if g.ForcedBOSTokenID != nil {
		un(true, "forced_bos_token_id", *g.ForcedBOSTokenID)
	}
	if g.ForcedEOSTokenID != nil {
		un(true, "forced_eos_token_id", *g.ForcedEOSTokenID)
	}
	if g.NumBeamGroups != nil {
		un(*g.NumBeamGroups > 1, "num_beam_groups", *g.NumBeamGroups)
	}
	if g.EncoderNoRepeatNgram != nil {
		un(*g.EncoderNoRepeatNgram > 0, "encoder_no_repeat_ngram_size", *g.EncoderNoRepeatNgram)
	}
	un(!isNull(g.BadWordsIDs), "bad_words_ids", string(g.BadWordsIDs))
	un(!isNull(g.SuppressTokens), "suppress_tokens", string(g.SuppressTokens))
	un(!isNull(g.BeginSuppressTokens), "begin_suppress_tokens", string(g.BeginSuppressTokens))
	un(!isNull(g.ExponentialDecayLenPn), "exponential_decay_length_penalty", string(g.ExponentialDecayLenPn))
	return out, nil
}
