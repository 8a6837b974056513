package vitgpt2

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/vision"
)

const e2eDir = "../../testdata/golden/e2e/vit-gpt2"

type e2eCase struct {
	ID      string `json:"id"`
	Task    string `json:"task"`
	Image   string `json:"image"`
	Prompt  string `json:"prompt"`
	Options struct {
		MaxNewTokens int `json:"max_new_tokens"`
		NumBeams     int `json:"num_beams"`
	} `json:"options"`
	Expected struct {
		Text         string `json:"text"`
		TokenIDs     []int  `json:"token_ids"`
		FullIDs      []int  `json:"full_ids"`
		StoppedAtEOS bool   `json:"stopped_at_eos"`
	} `json:"expected"`
}

// TestE2E runs every case of the HF end-to-end reference in process:
// fusion.Load(dir), vision.Decode of the file bytes, Caption, and compares
// text and token ids exactly; the streamed pieces must add up to the text.
func TestE2E(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(e2eDir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []e2eCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	fm, err := fusion.Load(e2eDir)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	capt, ok := fm.(fusion.Captioner)
	if !ok {
		t.Fatalf("%T is not a fusion.Captioner", fm)
	}
	if info := fm.Info(); info.Family != "vit-gpt2" || !slices.Contains(info.Tasks, fusion.TaskCaption) {
		t.Errorf("Info %+v", info)
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			if c.Task != "caption" {
				t.Fatalf("unexpected task %q", c.Task)
			}
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
			var streamed strings.Builder
			var streamedIDs []int
			g, err := capt.Caption(ctx, st, c.Prompt, fusion.GenerateOptions{MaxNewTokens: c.Options.MaxNewTokens, NumBeams: c.Options.NumBeams},
				func(tk fusion.Token) error {
					streamed.WriteString(tk.Text)
					streamedIDs = append(streamedIDs, tk.ID)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if g.Text != c.Expected.Text {
				t.Errorf("text %q, HF %q", g.Text, c.Expected.Text)
			}
			if !slices.Equal(g.TokenIDs, c.Expected.TokenIDs) && !(len(g.TokenIDs) == 0 && len(c.Expected.TokenIDs) == 0) {
				t.Errorf("token ids %v, HF %v", g.TokenIDs, c.Expected.TokenIDs)
			}
			if (g.Finish == fusion.FinishEOS) != c.Expected.StoppedAtEOS {
				t.Errorf("finish %q, HF stopped at eos: %v", g.Finish, c.Expected.StoppedAtEOS)
			}
			if c.Prompt == "" && streamed.String() != g.Text {
				t.Errorf("streamed text %q ≠ text %q", streamed.String(), g.Text)
			}
			if !slices.Equal(streamedIDs, g.TokenIDs) && len(g.TokenIDs) > 0 {
				t.Errorf("streamed ids %v ≠ token ids %v", streamedIDs, g.TokenIDs)
			}
		})
	}
}

// TestE2EPrefix: a caption continuing a text prefix starts with the prefix
// ids after the start token, and its text begins with the prefix.
func TestE2EPrefix(t *testing.T) {
	m, err := Load(e2eDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(e2eDir, "cat_chelsea.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vision.Decode(b, vision.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.EncodeImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	const prompt = "a cat sitting"
	ids, err := m.Tokenize(prompt)
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.Caption(ctx, st, prompt, fusion.GenerateOptions{MaxNewTokens: 5, MinNewTokens: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.Text, prompt) {
		t.Errorf("text %q does not start with the prompt", g.Text)
	}
	if g.PromptTokens != 1+len(ids) || len(g.TokenIDs) != 5 {
		t.Errorf("prompt tokens %d (want %d), generated %v", g.PromptTokens, 1+len(ids), g.TokenIDs)
	}
	// The same decoding through Generate with the explicit prefix.
	full, _, err := m.Generate(ctx, st, ids, fusion.GenerateOptions{MaxNewTokens: 5, MinNewTokens: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]int{m.gen.DecoderStartTokenID}, ids...), g.TokenIDs...)
	if !slices.Equal(full, want) {
		t.Errorf("Generate %v, Caption %v", full, want)
	}
}
