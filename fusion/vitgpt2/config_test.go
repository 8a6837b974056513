package vitgpt2

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
	"github.com/glimpse-vlm/glimpse/text/generate"
)

type generateConfig = generate.Config

func TestParseConfig(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join(goldenDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		json  string
		check func(Config) bool
		err   string
	}{
		{"golden", string(golden), func(c Config) bool {
			return c.Encoder.HiddenSize == 32 && c.Encoder.PatchSize == 8 && c.Decoder.NEmbd == 32 && c.Decoder.VocabSize == 100 &&
				c.Decoder.AddCrossAttention && !c.EncToDecProj && !c.TieWordEmbeddings && c.Decoder.TieWordEmbeddings
		}, ""},
		{"class defaults", `{"model_type": "vision-encoder-decoder", "encoder": {"model_type": "vit"}, "decoder": {"model_type": "gpt2", "add_cross_attention": true}}`,
			func(c Config) bool {
				e, d := c.Encoder, c.Decoder
				return e.HiddenSize == 768 && e.NumLayers == 12 && e.NumHeads == 12 && e.IntermediateSize == 3072 && e.ImageSize == 224 &&
					e.PatchSize == 16 && e.NumChannels == 3 && e.LayerNormEps == 1e-12 && e.Act == kernels.ActGELU && e.QKVBias &&
					d.VocabSize == 50257 && d.NPositions == 1024 && d.NEmbd == 768 && d.NLayer == 12 && d.NHead == 12 && d.NInner == 3072 &&
					d.Act == kernels.ActGELUTanh && d.LayerNormEps == 1e-5 && d.TieWordEmbeddings && !c.EncToDecProj
			}, ""},
		{"widths differ", `{"encoder": {"model_type": "vit", "hidden_size": 1024, "num_attention_heads": 16}, "decoder": {"model_type": "gpt2", "add_cross_attention": true}}`,
			func(c Config) bool { return c.EncToDecProj }, ""},
		{"cross hidden size set", `{"encoder": {"model_type": "vit", "hidden_size": 1024, "num_attention_heads": 16}, "decoder": {"model_type": "gpt2", "add_cross_attention": true, "cross_attention_hidden_size": 1024}}`,
			nil, "cross_attention_hidden_size"},
		{"deit encoder", `{"encoder": {"model_type": "deit"}, "decoder": {"model_type": "gpt2", "add_cross_attention": true}}`, nil, `supported: encoder "vit" with decoder "gpt2"`},
		{"bert decoder", `{"encoder": {"model_type": "vit"}, "decoder": {"model_type": "bert"}}`, nil, `decoder model_type "bert"`},
		{"no cross-attention", `{"encoder": {"model_type": "vit"}, "decoder": {"model_type": "gpt2"}}`, nil, "add_cross_attention"},
		{"no encoder", `{"decoder": {"model_type": "gpt2"}}`, nil, `"encoder"`},
		{"other model type", `{"model_type": "blip"}`, nil, "vision-encoder-decoder"},
		{"bad decoder act", `{"encoder": {"model_type": "vit"}, "decoder": {"model_type": "gpt2", "add_cross_attention": true, "activation_function": "x"}}`, nil, "activation_function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("%+v", c)
			}
		})
	}
}

func TestReadGeneration(t *testing.T) {
	const dec = `"decoder": {"model_type": "gpt2", "add_cross_attention": true, "bos_token_id": 50256, "eos_token_id": 50256, "num_beams": 4, "max_length": 16}`
	for _, tc := range []struct {
		name   string
		config string
		gen    string // generation_config.json; "" = absent
		check  func(Generation) bool
		err    string
	}{
		{"generation_config wins", `{"decoder_start_token_id": 7, "eos_token_id": 8, ` + dec + `}`,
			`{"decoder_start_token_id": 5, "eos_token_id": [6, 9], "pad_token_id": 4}`,
			func(g Generation) bool {
				return g.DecoderStartTokenID == 5 && slices.Equal(g.EOSTokenIDs, []int{6, 9}) && g.PadTokenID == 4 &&
					g.NumBeams == 1 && g.MaxLength == 20 && g.LengthPenalty == 1
			}, ""},
		{"from model config", `{"decoder_start_token_id": 7, "eos_token_id": 8, ` + dec + `}`, "",
			func(g Generation) bool {
				return g.DecoderStartTokenID == 7 && slices.Equal(g.EOSTokenIDs, []int{8}) && g.PadTokenID == 8 && g.NumBeams == 4 && g.MaxLength == 16
			}, ""},
		{"start from decoder bos", `{` + dec + `}`, "",
			func(g Generation) bool {
				return g.DecoderStartTokenID == 50256 && slices.Equal(g.EOSTokenIDs, []int{50256}) && g.PadTokenID == 50256
			}, ""},
		{"bos in generation_config", `{` + dec + `}`, `{"bos_token_id": 3}`,
			func(g Generation) bool {
				return g.DecoderStartTokenID == 3 && len(g.EOSTokenIDs) == 0 && g.PadTokenID == -1
			}, ""},
		{"beam settings", `{` + dec + `}`, `{"bos_token_id": 3, "num_beams": 4, "length_penalty": 0.5, "early_stopping": true, "max_new_tokens": 9, "min_length": 3}`,
			func(g Generation) bool {
				return g.NumBeams == 4 && g.LengthPenalty == 0.5 && g.EarlyStopping == checkpoint.EarlyStoppingTrue && g.MaxNewTokens == 9 && g.MinLength == 3
			}, ""},
		{"unsupported", `{` + dec + `}`, `{"bos_token_id": 3, "no_repeat_ngram_size": 3, "repetition_penalty": 1.2, "bad_words_ids": [[1]]}`,
			func(g Generation) bool {
				return len(g.Unsupported) == 1 && g.NoRepeatNgramSize == 3 && g.RepetitionPenalty == 1.2 && g.TopK == 50 && g.Temperature == 1 && !g.DoSample
			}, ""},
		{"legacy: from-model-config file, non-default config", `{"decoder_start_token_id": 7, "eos_token_id": 8, "num_beams": 4, "max_length": 16, ` + dec + `}`,
			`{"_from_model_config": true, "decoder_start_token_id": 7, "eos_token_id": 8}`,
			func(g Generation) bool { return g.DecoderStartTokenID == 7 && g.NumBeams == 4 && g.MaxLength == 16 }, ""},
		{"from-model-config file, default config", `{"decoder_start_token_id": 7, "eos_token_id": 8, "num_beams": 1, "max_length": 20, ` + dec + `}`,
			`{"_from_model_config": true, "decoder_start_token_id": 7, "eos_token_id": 8}`,
			func(g Generation) bool { return g.DecoderStartTokenID == 7 && g.NumBeams == 1 && g.MaxLength == 20 }, ""},
		{"explicit file, non-default config", `{"decoder_start_token_id": 7, "eos_token_id": 8, "num_beams": 4, ` + dec + `}`,
			`{"decoder_start_token_id": 7, "eos_token_id": 8}`,
			func(g Generation) bool { return g.NumBeams == 1 }, ""},
		{"no start token", `{"decoder": {"model_type": "gpt2", "bos_token_id": null}}`, "", nil, "decoder_start_token_id"},
		{"bad generation_config", `{` + dec + `}`, `{"num_beams": 0}`, nil, "num_beams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.gen != "" {
				if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(tc.gen), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, err := readGeneration(dir, []byte(tc.config))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(g) {
				t.Fatalf("%+v", g)
			}
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	m := newFromDir(t, goldenDir) // n_positions 64, generation_config: ids only
	lp := 0.7
	yes := true
	for _, tc := range []struct {
		name      string
		gen       func(*Generation)
		opts      fusion.GenerateOptions
		promptLen int
		check     func(c generateConfig) bool
		err       string
	}{
		{"max_length default 20", nil, fusion.GenerateOptions{}, 1, func(c generateConfig) bool {
			return c.MaxNewTokens == 19 && c.NumBeams == 1 && c.LengthPenalty == 1 && c.MinNewTokens == 0 && slices.Equal(c.EOS, []int{99}) && c.PAD == 99
		}, ""},
		{"max_length minus prefix", nil, fusion.GenerateOptions{}, 4, func(c generateConfig) bool { return c.MaxNewTokens == 16 }, ""},
		{"options win", func(g *Generation) { g.MaxNewTokens, g.NumBeams = 7, 3 },
			fusion.GenerateOptions{MaxNewTokens: 5, MinNewTokens: 2, NumBeams: 2, LengthPenalty: &lp, EarlyStopping: &yes}, 1,
			func(c generateConfig) bool {
				return c.MaxNewTokens == 5 && c.MinNewTokens == 2 && c.NumBeams == 2 && c.LengthPenalty == 0.7 && c.EarlyStopping == generate.EarlyStopTrue
			}, ""},
		{"checkpoint max_new_tokens and min_length", func(g *Generation) { g.MaxNewTokens, g.MinLength = 7, 4 }, fusion.GenerateOptions{}, 2,
			func(c generateConfig) bool { return c.MaxNewTokens == 7 && c.MinNewTokens == 2 }, ""},
		{"min_length stricter than min_new_tokens", func(g *Generation) { g.MinLength = 6 }, fusion.GenerateOptions{MinNewTokens: 2}, 1,
			func(c generateConfig) bool { return c.MinNewTokens == 5 }, ""},
		{"too long", nil, fusion.GenerateOptions{MaxNewTokens: 64}, 1, nil, "n_positions"},
		{"temperature without sampling", nil, fusion.GenerateOptions{Temperature: 0.5}, 1, nil, "sampling"},
		{"beam sampling", nil, fusion.GenerateOptions{Sample: true, NumBeams: 2}, 1, nil, "beam sampling"},
		{"sampling with HF's top_k 50", nil, fusion.GenerateOptions{Sample: true, Seed: 5, TopP: 0.9}, 1, func(c generateConfig) bool {
			return c.Sample && c.TopK == 50 && c.TopP == 0.9 && c.Seed == 5 && c.Temperature == 0
		}, ""},
		{"checkpoint penalties", func(g *Generation) { g.RepetitionPenalty, g.NoRepeatNgramSize = 1.3, 2 }, fusion.GenerateOptions{}, 1, func(c generateConfig) bool {
			return !c.Sample && c.RepetitionPenalty == 1.3 && c.NoRepeatNgramSize == 2
		}, ""},
		{"unsupported checkpoint setting", func(g *Generation) { g.Unsupported = []string{"no_repeat_ngram_size=3"} }, fusion.GenerateOptions{}, 1, nil, "no_repeat_ngram_size=3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mm := *m
			mm.gen = m.gen
			mm.gen.Unsupported = nil
			if tc.gen != nil {
				tc.gen(&mm.gen)
			}
			c, err := mm.decodeConfig(tc.opts, tc.promptLen)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("%+v", c)
			}
		})
	}
}

// TestEncToDecProj: an encoder wider than the decoder loads with
// enc_to_dec_proj, captions, and fails naming the tensor when it is absent.
func TestEncToDecProj(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"encoder": {"model_type": "vit", "hidden_size": 24, "num_hidden_layers": 1, "num_attention_heads": 2,
		"intermediate_size": 32, "image_size": 16, "patch_size": 8},
		"decoder": {"model_type": "gpt2", "add_cross_attention": true, "n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 32, "vocab_size": 40}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.EncToDecProj {
		t.Fatal("widths 24 → 16 but no enc_to_dec_proj")
	}
	gen := Generation{DecoderStartTokenID: 39, EOSTokenIDs: []int{39}, PadTokenID: 39, MaxLength: 20, NumBeams: 1, LengthPenalty: 1}
	m, err := New(randomCheckpoint(cfg, 1), cfg, gen)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	px := make([]float32, 3*16*16)
	for i := range px {
		px[i] = float32(i%7) / 7
	}
	st, err := m.EncodePixels(ctx, px, 1)
	if err != nil {
		t.Fatal(err)
	}
	full, _, err := m.Generate(ctx, st[0], nil, fusion.GenerateOptions{MaxNewTokens: 4, MinNewTokens: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 5 || full[0] != 39 {
		t.Fatalf("ids %v", full)
	}
	// Without the projection the same checkpoint must not load.
	noProj := cfg
	noProj.EncToDecProj = true
	ck := randomCheckpoint(func() Config { c := cfg; c.EncToDecProj = false; return c }(), 1)
	if _, err := New(ck, noProj, gen); err == nil || !strings.Contains(err.Error(), "enc_to_dec_proj.weight") {
		t.Fatalf("err = %v, want it to name enc_to_dec_proj.weight", err)
	}
	// A state from another model is refused.
	if _, _, err := m.Generate(ctx, &fusion.ImageState{Tokens: 2, Dim: 24, Hidden: make([]float32, 48)}, nil, fusion.GenerateOptions{}, nil); err == nil {
		t.Error("Generate accepted an image state of another shape")
	}
}
