package blip

import (
	"context"
	"image"
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
