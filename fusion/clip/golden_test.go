package clip

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

var goldenDirs = []string{"../../testdata/golden/clip", "../../testdata/golden/clip-eos"}

func relErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den < 1e-12 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func newFromDir(t testing.TB, dir string) *Model {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := New(ck, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGolden checks every CLIPModel output of both pooling rules: vision
// last_hidden_state and pooled output, text pooled output, features,
// normalised embeddings and logits_per_image.
func TestGolden(t *testing.T) {
	for _, dir := range goldenDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := newFromDir(t, dir)
			g, err := checkpoint.OpenFile(filepath.Join(dir, "golden.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			f32 := func(name string) []float32 {
				v, err := g.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				return append([]float32(nil), v...)
			}
			ctx := context.Background()
			states, err := m.EncodePixels(ctx, f32("pixel_values"), 2)
			if err != nil {
				t.Fatal(err)
			}
			var last []float32
			for _, s := range states {
				last = append(last, s.Hidden...)
			}
			pooled, err := m.Vision().Pool(last, 2)
			if err != nil {
				t.Fatal(err)
			}
			imgFeat, err := m.ImageFeatures(states)
			if err != nil {
				t.Fatal(err)
			}
			var imgEmb []float32
			for _, s := range states {
				e, err := m.EmbedImage(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				imgEmb = append(imgEmb, e...)
			}

			// Texts: strip the golden padding; TextFeatures pads again.
			ids, shape, err := g.Int64("input_ids")
			if err != nil {
				t.Fatal(err)
			}
			mask, _, err := g.Int64("attention_mask")
			if err != nil {
				t.Fatal(err)
			}
			n, L := shape[0], shape[1]
			texts := make([][]int, n)
			for i := 0; i < n; i++ {
				for j := 0; j < L; j++ {
					if mask[i*L+j] != 0 {
						texts[i] = append(texts[i], int(ids[i*L+j]))
					}
				}
			}
			txtFeat, err := m.TextFeatures(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			txtEmb := append([]float32(nil), txtFeat...)
			normalize(txtEmb, m.cfg.ProjectionDim)
			p := m.cfg.ProjectionDim
			var logits []float32
			for i := 0; i < 2; i++ {
				for j := 0; j < n; j++ {
					var s float32
					for k := 0; k < p; k++ {
						s += imgEmb[i*p+k] * txtEmb[j*p+k]
					}
					logits = append(logits, s*m.LogitScale())
				}
			}
			for _, c := range []struct {
				name string
				got  []float32
			}{
				{"vision_last_hidden_state", last}, {"vision_pooler_output", pooled},
				{"image_features", imgFeat}, {"text_features", txtFeat},
				{"image_embeds", imgEmb}, {"text_embeds", txtEmb}, {"logits_per_image", logits},
			} {
				e := relErr(c.got, f32(c.name))
				if e > 1e-4 {
					t.Errorf("%s: rel err %.2e", c.name, e)
				}
				t.Logf("%s: rel err %.2e", c.name, e)
			}
			if ls := f32("logit_scale"); ls[0] != m.logitScale {
				t.Errorf("logit_scale %g, HF %g", m.logitScale, ls[0])
			}
		})
	}
}

// TestTextPaddingIndependence: a text's features are the same alone and in
// a batch with a longer text (padding + mask).
func TestTextPaddingIndependence(t *testing.T) {
	for _, dir := range goldenDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := newFromDir(t, dir)
			c := m.cfg.Text
			ctx := context.Background()
			short := []int{c.BOSTokenID, 5, 6, 7, c.EOSTokenID}
			if c.EOSTokenID == 2 { // legacy pooling: the end token must be the largest id
				short = []int{3, 5, 6, 7, c.VocabSize - 1}
			}
			long := append([]int{short[0]}, 9, 10, 11, 12, 13, 14, short[len(short)-1])
			alone, err := m.TextFeatures(ctx, [][]int{short})
			if err != nil {
				t.Fatal(err)
			}
			both, err := m.TextFeatures(ctx, [][]int{long, short})
			if err != nil {
				t.Fatal(err)
			}
			p := m.cfg.ProjectionDim
			if e := relErr(both[p:], alone); e > 1e-5 {
				t.Errorf("short text alone vs padded in a batch: rel err %.2e", e)
			}
			if relErr(both[:p], alone) < 1e-3 {
				t.Error("the long text has the short text's features")
			}
		})
	}
}

func TestStateChecks(t *testing.T) {
	m := newFromDir(t, goldenDirs[0])
	ctx := context.Background()
	bad := &fusion.ImageState{Tokens: 3, Dim: 4, Hidden: make([]float32, 12)}
	if _, err := m.EmbedImage(ctx, bad); err == nil {
		t.Error("EmbedImage accepted a state of another shape")
	}
	if _, err := m.EmbedImage(ctx, nil); err == nil {
		t.Error("EmbedImage accepted nil")
	}
	if _, err := m.EncodePixels(ctx, make([]float32, 7), 1); err == nil {
		t.Error("EncodePixels accepted pixels of the wrong size")
	}
	if _, err := m.TextFeatures(ctx, [][]int{{}}); err == nil {
		t.Error("TextFeatures accepted an empty text")
	}
	if _, err := m.EmbedTexts(ctx, []string{"x"}); err == nil {
		t.Error("EmbedTexts without a tokenizer did not fail")
	}
}
