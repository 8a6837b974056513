package blip

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

// blipBaseConfig is the config.json of Salesforce/blip-image-captioning-base
// (the keys that differ from BlipConfig's defaults).
const blipBaseConfig = `{
  "architectures": ["BlipForConditionalGeneration"],
  "model_type": "blip",
  "projection_dim": 512,
  "image_text_hidden_size": 256,
  "text_config": {"vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 768,
    "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
    "max_position_embeddings": 512, "bos_token_id": 30522, "sep_token_id": 102, "pad_token_id": 0},
  "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
    "num_hidden_layers": 12, "image_size": 384, "patch_size": 16, "layer_norm_eps": 1e-5}
}`

// randomCheckpoint makes every tensor a BlipForConditionalGeneration of
// cfg needs, in HF names, with small random values (norm weights 1).
func randomCheckpoint(cfg Config) *checkpoint.Checkpoint {
	rng := rand.New(rand.NewSource(1))
	pool := make([]float32, 1<<22)
	for i := range pool {
		pool[i] = float32(rng.NormFloat64() * 0.02)
	}
	off := 0
	ts := map[string]checkpoint.MemTensor{}
	add := func(name string, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := 0; i < n; { // tile the random pool
			c := copy(data[i:], pool[off:])
			i += c
			off = (off + c) % len(pool)
		}
		ts[name] = checkpoint.MemTensor{Shape: shape, Data: data}
	}
	norm := func(name string, d int) {
		w := make([]float32, d)
		for i := range w {
			w[i] = 1
		}
		ts[name+".weight"] = checkpoint.MemTensor{Shape: []int{d}, Data: w}
		ts[name+".bias"] = checkpoint.MemTensor{Shape: []int{d}, Data: make([]float32, d)}
	}
	lin := func(name string, out, in int) { add(name+".weight", out, in); add(name+".bias", out) }

	v := cfg.Vision
	d, g := v.HiddenSize, v.ImageSize/v.PatchSize
	add("vision_model.embeddings.class_embedding", 1, 1, d)
	add("vision_model.embeddings.patch_embedding.weight", d, 3, v.PatchSize, v.PatchSize)
	add("vision_model.embeddings.patch_embedding.bias", d)
	add("vision_model.embeddings.position_embedding", 1, g*g+1, d)
	norm("vision_model.post_layernorm", d)
	for i := 0; i < v.NumLayers; i++ {
		p := fmt.Sprintf("vision_model.encoder.layers.%d.", i)
		norm(p+"layer_norm1", d)
		norm(p+"layer_norm2", d)
		lin(p+"self_attn.qkv", 3*d, d)
		lin(p+"self_attn.projection", d, d)
		lin(p+"mlp.fc1", v.IntermediateSize, d)
		lin(p+"mlp.fc2", d, v.IntermediateSize)
	}
	t := cfg.Text
	h := t.HiddenSize
	add("text_decoder.bert.embeddings.word_embeddings.weight", t.VocabSize, h)
	add("text_decoder.bert.embeddings.position_embeddings.weight", t.MaxPositions, h)
	norm("text_decoder.bert.embeddings.LayerNorm", h)
	for i := 0; i < t.NumLayers; i++ {
		p := fmt.Sprintf("text_decoder.bert.encoder.layer.%d.", i)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "crossattention.self.query", "crossattention.output.dense"} {
			lin(p+n, h, h)
		}
		lin(p+"crossattention.self.key", h, t.EncoderHiddenSize)
		lin(p+"crossattention.self.value", h, t.EncoderHiddenSize)
		norm(p+"attention.output.LayerNorm", h)
		norm(p+"crossattention.output.LayerNorm", h)
		lin(p+"intermediate.dense", t.IntermediateSize, h)
		lin(p+"output.dense", h, t.IntermediateSize)
		norm(p+"output.LayerNorm", h)
	}
	lin("text_decoder.cls.predictions.transform.dense", h, h)
	norm("text_decoder.cls.predictions.transform.LayerNorm", h)
	add("text_decoder.cls.predictions.decoder.weight", t.VocabSize, h)
	add("text_decoder.cls.predictions.bias", t.VocabSize)
	return checkpoint.FromFloat32(ts)
}

var (
	benchOnce  sync.Once
	benchModel *CaptionModel
	benchErr   error
)

func blipBase(b *testing.B) *CaptionModel {
	benchOnce.Do(func() {
		cfg, err := ParseConfig([]byte(blipBaseConfig))
		if err != nil {
			benchErr = err
			return
		}
		benchModel, benchErr = NewCaption(randomCheckpoint(cfg), cfg)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchModel
}

func benchPixels(m *CaptionModel) []float32 {
	s := m.cfg.Vision.ImageSize
	px := make([]float32, 3*s*s)
	rng := rand.New(rand.NewSource(2))
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	return px
}

// BenchmarkVisionEncoder is the BLIP-base vision tower on one 384×384 image.
// Besides wall time it reports the process CPU time (both cores summed),
// which is less sensitive to other load on a shared machine.
func BenchmarkVisionEncoder(b *testing.B) {
	m := blipBase(b)
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

// BenchmarkCaption20 is a 20-token greedy caption at batch 1, image
// included (min_new_tokens = max_new_tokens = 20). It reports the vision
// encoder, the one-off cross-attention keys/values over the image states
// (computed once per request), the decoding time per generated token
// (wall and process CPU), and the total.
func BenchmarkCaption20(b *testing.B) {
	m := blipBase(b)
	px := benchPixels(m)
	ctx := context.Background()
	prompt := m.CaptionPrompt(nil)
	cfg, err := m.DecodeConfig(fusion.GenerateOptions{MaxNewTokens: 20, MinNewTokens: 20}, len(prompt))
	if err != nil {
		b.Fatal(err)
	}
	var vision, cross, decode, decodeCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		st, err := m.EncodePixels(ctx, px, 1)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		kv, err := m.dec.CrossKV(st[0].Hidden, st[0].Tokens, nil)
		if err != nil {
			b.Fatal(err)
		}
		t2, c2 := time.Now(), cpuTime()
		res, err := decodeIDs(ctx, m.dec, kv, prompt, cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Tokens) != 20 {
			b.Fatalf("%d tokens, want 20", len(res.Tokens))
		}
		vision += t1.Sub(t0)
		cross += t2.Sub(t1)
		decode += time.Since(t2)
		decodeCPU += cpuTime() - c2
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(vision), "vision-ms")
	b.ReportMetric(ms(cross), "crosskv-ms")
	b.ReportMetric(ms(decode)/20, "ms/token")
	b.ReportMetric(ms(decodeCPU)/20, "cpu-ms/token")
	b.ReportMetric(ms(vision+cross+decode), "caption20-ms")
}
