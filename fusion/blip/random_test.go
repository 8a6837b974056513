package blip

import (
	"context"
	"image"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
)

func TestNewRandomCaption(t *testing.T) {
	small := strings.NewReplacer(`"hidden_size": 768`, `"hidden_size": 48`, `"encoder_hidden_size": 768`, `"encoder_hidden_size": 48`,
		`"intermediate_size": 3072`, `"intermediate_size": 64`, `"num_hidden_layers": 12`, `"num_hidden_layers": 2`,
		`"num_attention_heads": 12`, `"num_attention_heads": 4`, `"image_size": 384`, `"image_size": 64`).Replace(BaseCaptionConfig)
	m, err := NewRandomCaption([]byte(small), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.cfg.Text.VocabSize != 30524 || m.cfg.Vision.ImageSize != 64 {
		t.Fatalf("config not applied: %+v", m.cfg)
	}
	img := image.NewRGBA(image.Rect(0, 0, 80, 60))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	st, err := m.EncodeImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.Caption(context.Background(), st, "", fusion.GenerateOptions{MaxNewTokens: 6, MinNewTokens: 6}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.TokenIDs) != 6 || len(strings.Fields(g.Text)) == 0 {
		t.Fatalf("caption %q ids %v: want 6 tokens of text", g.Text, g.TokenIDs)
	}
	// Deterministic in the seed.
	m2, err := NewRandomCaption([]byte(small), 1)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := m2.EncodeImage(context.Background(), img)
	g2, err := m2.Caption(context.Background(), st2, "", fusion.GenerateOptions{MaxNewTokens: 6, MinNewTokens: 6}, nil)
	if err != nil || g2.Text != g.Text {
		t.Fatalf("same seed: %q vs %q (%v)", g2.Text, g.Text, err)
	}
	if _, err := NewRandomCaption([]byte(`{"text_config": {"hidden_size": -1}}`), 1); err == nil {
		t.Fatal("invalid config accepted")
	}
}

// TestRandomWeights checks the generated checkpoint: every tensor's values
// depend only on the seed and its name (not on the order of reads, nor on
// the number of threads), tensors are different from one another, the
// random ones have σ ≈ 0.02 and the LayerNorms are 1 and 0.
func TestRandomWeights(t *testing.T) {
	cfg, err := ParseConfig([]byte(BaseCaptionConfig))
	if err != nil {
		t.Fatal(err)
	}
	ck := randomWeights(cfg, 1)
	const (
		qkv  = "vision_model.encoder.layers.3.self_attn.qkv.weight"
		fc1  = "vision_model.encoder.layers.3.mlp.fc1.weight"
		word = "text_decoder.bert.embeddings.word_embeddings.weight"
		ln   = "text_decoder.bert.encoder.layer.2.output.LayerNorm"
	)
	read := func(ck interface {
		Float32(string, ...int) ([]float32, error)
	}, name string) []float32 {
		t.Helper()
		v, err := ck.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := read(ck, qkv)
	_ = read(ck, fc1) // reading others in between changes nothing
	if b := read(ck, qkv); !slices.Equal(a, b) {
		t.Fatal("a second read of a tensor gives other values")
	}
	prev := runtime.GOMAXPROCS(1)
	one := read(randomWeights(cfg, 1), qkv)
	runtime.GOMAXPROCS(prev)
	if !slices.Equal(a, one) {
		t.Fatal("values depend on the number of threads")
	}
	if c := read(randomWeights(cfg, 2), qkv); slices.Equal(a, c) {
		t.Fatal("seeds 1 and 2 give the same tensor")
	}
	other := read(ck, "vision_model.encoder.layers.4.self_attn.qkv.weight")
	if slices.Equal(a, other) {
		t.Fatal("two tensors of the same shape are equal")
	}
	for _, tc := range []struct {
		name      string
		mean, std float64
		tol       float64
	}{
		{qkv, 0, 0.02, 0.001},
		{word, 0, 0.02, 0.0005},
		{ln + ".weight", 1, 0, 0},
		{ln + ".bias", 0, 0, 0},
	} {
		v := read(ck, tc.name)
		var s, s2 float64
		for _, x := range v {
			s += float64(x)
			s2 += float64(x) * float64(x)
		}
		mean := s / float64(len(v))
		std := math.Sqrt(max(s2/float64(len(v))-mean*mean, 0))
		if math.Abs(mean-tc.mean) > tc.tol+1e-9 || math.Abs(std-tc.std) > tc.tol+1e-9 {
			t.Errorf("%s: mean %.5f std %.5f, want %.5f and %.5f (±%g)", tc.name, mean, std, tc.mean, tc.std, tc.tol)
		}
	}
	if want := []int{cfg.Text.VocabSize, cfg.Text.HiddenSize}; !slices.Equal(ck.Shape(word), want) {
		t.Fatalf("%s shape %v, want %v", word, ck.Shape(word), want)
	}
}
