package blip

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/vision"
)

// e2eCase is one entry of testdata/golden/e2e/*/cases.json.
type e2eCase struct {
	ID       string   `json:"id"`
	Task     string   `json:"task"`
	Image    string   `json:"image"`
	Prompt   string   `json:"prompt"`
	Question string   `json:"question"`
	Texts    []string `json:"texts"`
	Options  struct {
		MaxNewTokens int `json:"max_new_tokens"`
		NumBeams     int `json:"num_beams"`
	} `json:"options"`
	Expected struct {
		Text     string `json:"text"`
		TokenIDs []int  `json:"token_ids"`
		Scores   []struct {
			Text           string  `json:"text"`
			ITMProbability float64 `json:"itm_probability"`
			Cosine         float64 `json:"cosine"`
		} `json:"scores"`
		Images [][]float64 `json:"images"`
		Texts  [][]float64 `json:"texts"`
	} `json:"expected"`
}

// TestEndToEnd runs every visible e2e case in-process: fusion.Load of the
// folder, vision.Decode of the image file, then the task.
func TestEndToEnd(t *testing.T) {
	for _, family := range []string{"blip-caption", "blip-vqa", "blip-itm"} {
		dir := filepath.Join(goldenDir, "e2e", family)
		raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
		if err != nil {
			t.Fatal(err)
		}
		var cases []e2eCase
		if err := json.Unmarshal(raw, &cases); err != nil {
			t.Fatal(err)
		}
		m, err := fusion.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		for _, tc := range cases {
			t.Run(family+"/"+tc.ID, func(t *testing.T) {
				ctx := context.Background()
				data, err := os.ReadFile(filepath.Join(dir, tc.Image))
				if err != nil {
					t.Fatal(err)
				}
				img, err := vision.Decode(data, vision.DefaultLimits())
				if err != nil {
					t.Fatal(err)
				}
				st, err := m.EncodeImage(ctx, img)
				if err != nil {
					t.Fatal(err)
				}
				opts := fusion.GenerateOptions{MaxNewTokens: tc.Options.MaxNewTokens, NumBeams: tc.Options.NumBeams}
				var streamed strings.Builder
				var streamedIDs []int
				on := func(tok fusion.Token) error {
					streamed.WriteString(tok.Text)
					streamedIDs = append(streamedIDs, tok.ID)
					return nil
				}
				var gen *fusion.Generation
				switch tc.Task {
				case "caption":
					gen, err = m.(fusion.Captioner).Caption(ctx, st, tc.Prompt, opts, on)
				case "ask":
					gen, err = m.(fusion.Answerer).Answer(ctx, st, tc.Question, opts, on)
				case "match":
					checkMatch(t, m.(fusion.Matcher), st, tc)
					return
				case "embed":
					checkEmbed(t, m.(fusion.Embedder), st, tc)
					return
				default:
					t.Fatalf("unknown task %q", tc.Task)
				}
				if err != nil {
					t.Fatal(err)
				}
				if gen.Text != tc.Expected.Text || !equalIDs(gen.TokenIDs, tc.Expected.TokenIDs) {
					t.Fatalf("got %q %v, want %q %v", gen.Text, gen.TokenIDs, tc.Expected.Text, tc.Expected.TokenIDs)
				}
				if len(gen.TokenIDs) > 0 && (streamed.String() != gen.Text || !equalIDs(streamedIDs, gen.TokenIDs)) {
					t.Errorf("streamed %q %v, want %q %v", streamed.String(), streamedIDs, gen.Text, gen.TokenIDs)
				}
			})
		}
	}
}

func checkMatch(t *testing.T, m fusion.Matcher, st *fusion.ImageState, tc e2eCase) {
	t.Helper()
	got, err := m.Match(context.Background(), st, tc.Texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(tc.Expected.Scores) {
		t.Fatalf("%d scores, want %d", len(got), len(tc.Expected.Scores))
	}
	for i, w := range tc.Expected.Scores {
		g := got[i]
		if g.ITMProbability == nil || g.Cosine == nil {
			t.Fatalf("text %d: missing ITM probability or cosine", i)
		}
		if d := math.Abs(float64(*g.ITMProbability) - w.ITMProbability); d > 1e-4 {
			t.Errorf("text %q: itm_probability %v, want %v", w.Text, *g.ITMProbability, w.ITMProbability)
		}
		if d := math.Abs(float64(*g.Cosine) - w.Cosine); d > 1e-4 {
			t.Errorf("text %q: cosine %v, want %v", w.Text, *g.Cosine, w.Cosine)
		}
	}
}

func checkEmbed(t *testing.T, m fusion.Embedder, st *fusion.ImageState, tc e2eCase) {
	t.Helper()
	ctx := context.Background()
	img, err := m.EmbedImage(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := m.EmbedTexts(ctx, tc.Texts)
	if err != nil {
		t.Fatal(err)
	}
	cmp := func(what string, got []float32, want []float64) {
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
		}
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-4 {
				t.Errorf("%s[%d] = %v, want %v", what, i, got[i], want[i])
				return
			}
		}
	}
	cmp("image embedding", img, tc.Expected.Images[0])
	for i, w := range tc.Expected.Texts {
		cmp("text embedding "+tc.Texts[i], txt[i], w)
	}
}
