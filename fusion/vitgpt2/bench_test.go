package vitgpt2

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// nlpconnectConfig is the architecture of nlpconnect/vit-gpt2-image-captioning:
// ViT-B/16 at 224 px (google/vit-base-patch16-224-in21k) and GPT-2 small
// with cross-attention; decoding starts from and stops at <|endoftext|>.
const nlpconnectConfig = `{
  "model_type": "vision-encoder-decoder",
  "decoder_start_token_id": 50256, "eos_token_id": 50256, "pad_token_id": 50256,
  "encoder": {"model_type": "vit", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "image_size": 224, "patch_size": 16,
    "num_channels": 3, "qkv_bias": true},
  "decoder": {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
    "n_inner": null, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "add_cross_attention": true,
    "bos_token_id": 50256, "eos_token_id": 50256}
}`

var (
	benchOnce  sync.Once
	benchModel *Model
	benchErr   error
)

// realSizeModel builds the nlpconnect architecture with random weights in
// memory (no download), once per test binary.
func realSizeModel(b *testing.B) *Model {
	b.Helper()
	benchOnce.Do(func() {
		cfg, err := ParseConfig([]byte(nlpconnectConfig))
		if err != nil {
			benchErr = err
			return
		}
		// The checkpoint's config.json ids (it has no generation_config.json).
		gen := Generation{DecoderStartTokenID: 50256, EOSTokenIDs: []int{50256}, PadTokenID: 50256, MaxLength: 20, NumBeams: 1, LengthPenalty: 1}
		benchModel, benchErr = New(randomCheckpoint(cfg, 42), cfg, gen)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchModel
}

func benchPixels(m *Model) []float32 {
	c := m.cfg.Encoder
	px := make([]float32, c.NumChannels*c.ImageSize*c.ImageSize)
	for i := range px {
		px[i] = float32(i%255)/127.5 - 1
	}
	return px
}

// BenchmarkVisionEncoder: ViT-B/16 at 224 px, batch 1 (PyTorch here: 1.19 s).
func BenchmarkVisionEncoder(b *testing.B) {
	m := realSizeModel(b)
	px := benchPixels(m)
	ctx := context.Background()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := m.EncodePixels(ctx, px, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "vision-ms")
	b.ReportMetric(float64((cpuTime()-c0).Milliseconds())/float64(b.N), "vision-cpu-ms")
}

// BenchmarkCaption20: a 20-token greedy caption for one image, vision
// encoder included (PyTorch here: 9.8 s), with ms per generated token
// (decoder only, cross-attention keys/values computed once per request).
func BenchmarkCaption20(b *testing.B) {
	m := realSizeModel(b)
	px := benchPixels(m)
	ctx := context.Background()
	opts := fusion.GenerateOptions{MaxNewTokens: 20, MinNewTokens: 20}
	var vision, decode, decodeCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		st, err := m.EncodePixels(ctx, px, 1)
		if err != nil {
			b.Fatal(err)
		}
		t1, c1 := time.Now(), cpuTime()
		_, res, err := m.Generate(ctx, st[0], nil, opts, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Tokens) != 20 {
			b.Fatalf("%d tokens", len(res.Tokens))
		}
		vision += t1.Sub(t0)
		decode += time.Since(t1)
		decodeCPU += cpuTime() - c1
	}
	n := float64(b.N)
	b.ReportMetric(float64((vision+decode).Milliseconds())/n, "caption20-ms")
	b.ReportMetric(float64(vision.Milliseconds())/n, "vision-ms")
	b.ReportMetric(float64(decode.Milliseconds())/n/20, "ms/token")
	b.ReportMetric(float64(decodeCPU.Milliseconds())/n/20, "cpu-ms/token")
}
