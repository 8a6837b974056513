package clip

import (
	"context"
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/vision"
)

const e2eDir = "../../testdata/golden/e2e/clip"

type e2eCase struct {
	ID       string   `json:"id"`
	Task     string   `json:"task"`
	Image    string   `json:"image"`
	Texts    []string `json:"texts"`
	Expected struct {
		Scores []struct {
			Text   string  `json:"text"`
			Cosine float64 `json:"cosine"`
			Logit  float64 `json:"logit"`
		} `json:"scores"`
		Images [][]float64 `json:"images"`
		Texts  [][]float64 `json:"texts"`
	} `json:"expected"`
}

// TestE2E runs every match and embed case of the HF end-to-end reference in
// process: fusion.Load(dir), vision.Decode of the file bytes, Match /
// EmbedImage / EmbedTexts.
func TestE2E(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(e2eDir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []e2eCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	fm, err := fusion.Load(e2eDir)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	matcher, ok1 := fm.(fusion.Matcher)
	embedder, ok2 := fm.(fusion.Embedder)
	if !ok1 || !ok2 {
		t.Fatalf("%T: Matcher %v, Embedder %v", fm, ok1, ok2)
	}
	ctx := context.Background()
	worst := 0.0
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(e2eDir, c.Image))
			if err != nil {
				t.Fatal(err)
			}
			img, err := vision.Decode(b, vision.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			st, err := fm.EncodeImage(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			switch c.Task {
			case "match":
				scores, err := matcher.Match(ctx, st, c.Texts)
				if err != nil {
					t.Fatal(err)
				}
				if len(scores) != len(c.Expected.Scores) {
					t.Fatalf("%d scores, want %d", len(scores), len(c.Expected.Scores))
				}
				for i, want := range c.Expected.Scores {
					got := scores[i]
					if got.Cosine == nil || got.Logit == nil || got.ITMProbability != nil {
						t.Fatalf("text %d: score fields %+v", i, got)
					}
					dc := math.Abs(float64(*got.Cosine) - want.Cosine)
					dl := math.Abs(float64(*got.Logit) - want.Logit)
					worst = math.Max(worst, dc)
					if dc > 1e-4 || (dl > 1e-3 && dl > 1e-4*math.Abs(want.Logit)) {
						t.Errorf("%q: cosine %.6f logit %.6f, HF %.6f %.6f", want.Text, *got.Cosine, *got.Logit, want.Cosine, want.Logit)
					}
				}
			case "embed":
				ie, err := embedder.EmbedImage(ctx, st)
				if err != nil {
					t.Fatal(err)
				}
				te, err := embedder.EmbedTexts(ctx, c.Texts)
				if err != nil {
					t.Fatal(err)
				}
				check := func(name string, got []float32, want []float64) {
					if len(got) != len(want) {
						t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
					}
					for k := range want {
						d := math.Abs(float64(got[k]) - want[k])
						worst = math.Max(worst, d)
						if d > 1e-4 {
							t.Errorf("%s[%d] = %.6f, HF %.6f", name, k, got[k], want[k])
							return
						}
					}
				}
				check("image", ie, c.Expected.Images[0])
				if len(te) != len(c.Expected.Texts) {
					t.Fatalf("%d text embeddings, want %d", len(te), len(c.Expected.Texts))
				}
				for i := range te {
					check(c.Texts[i], te[i], c.Expected.Texts[i])
				}
			default:
				t.Fatalf("unexpected task %q", c.Task)
			}
		})
	}
	t.Logf("worst abs error (cosine, embedding elements): %.2e", worst)
}

// TestLoadedModel: Info, tokenization, batch-invariant text embeddings and
// the errors of a loaded checkpoint.
func TestLoadedModel(t *testing.T) {
	m, err := Load(e2eDir)
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	if info.Family != "clip" || info.Architecture != "CLIPModel" || len(info.Tasks) != 2 || info.ImageSize != m.cfg.Vision.ImageSize ||
		info.MaxTextLen != m.cfg.Text.MaxPositions || info.ImageTokens != m.Vision().Tokens() {
		t.Errorf("Info %+v", info)
	}
	ids, err := m.Tokenize("a photo of a cat")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 3 {
		t.Fatalf("Tokenize gave %v", ids)
	}
	ctx := context.Background()
	alone, err := m.EmbedTexts(ctx, []string{"coffee"})
	if err != nil {
		t.Fatal(err)
	}
	batched, err := m.EmbedTexts(ctx, []string{"A woman in an orange flight suit.", "coffee"})
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(batched[1], alone[0]); e > 1e-5 {
		t.Errorf("text alone vs padded in a batch: rel err %.2e", e)
	}
	long := ""
	for i := 0; i < m.cfg.Text.MaxPositions; i++ {
		long += "cat "
	}
	if _, err := m.EmbedTexts(ctx, []string{"ok", long}); err == nil {
		t.Error("a text longer than max_position_embeddings was accepted")
	}
	if scores, err := m.Match(ctx, &fusion.ImageState{}, []string{"x"}); err == nil {
		t.Errorf("Match accepted an empty image state: %v", scores)
	}
	if _, err := m.EncodeImages(ctx, []image.Image{nil}); err == nil {
		t.Error("EncodeImages accepted a nil image")
	}
}
