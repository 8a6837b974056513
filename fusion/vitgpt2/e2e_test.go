package vitgpt2

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	// Decoder ids that already begin with the start token get no second one.
	full2, _, err := m.Generate(ctx, st, append([]int{m.gen.DecoderStartTokenID}, ids...), fusion.GenerateOptions{MaxNewTokens: 5, MinNewTokens: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(full2, full) {
		t.Errorf("with explicit start token %v, without %v", full2, full)
	}
}

// TestCaptionOptions covers stop strings, log-probabilities, streaming
// errors, cancellation and batch encoding on the e2e checkpoint.
func TestCaptionOptions(t *testing.T) {
	m, err := Load(e2eDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var imgs []image.Image
	for _, name := range []string{"astronaut_exif_orientation6.jpg", "cat_chelsea.jpg"} {
		b, err := os.ReadFile(filepath.Join(e2eDir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := vision.Decode(b, vision.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	batch, err := m.EncodeImages(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		one, err := m.EncodeImage(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one.Hidden, batch[i].Hidden) {
			t.Errorf("image %d: batch encoding differs from encoding alone", i)
		}
	}
	st := batch[0] // HF greedy, 16 tokens: "Wkeet is stterterkkekterkein\x01keter"
	const full = "Wkeet is stterterkkekterkein\x01keter"

	t.Run("stop", func(t *testing.T) {
		for _, tc := range []struct {
			beams int
			stop  []string
			want  string
		}{
			{1, []string{"zz", " st", "keet is"}, "W"},
			{1, []string{" st"}, "Wkeet is"},
			{3, []string{"in clo", "cloin"}, " on\x01 clo "},
		} {
			var streamed strings.Builder
			g, err := m.Caption(ctx, st, "", fusion.GenerateOptions{MaxNewTokens: 16, NumBeams: tc.beams, Stop: tc.stop},
				func(tk fusion.Token) error { streamed.WriteString(tk.Text); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if g.Text != tc.want || g.Finish != fusion.FinishStop || streamed.String() != tc.want {
				t.Errorf("beams %d stop %q: text %q streamed %q finish %q, want %q stop", tc.beams, tc.stop, g.Text, streamed.String(), g.Finish, tc.want)
			}
		}
	})
	t.Run("logprobs", func(t *testing.T) {
		g, err := m.Caption(ctx, st, "", fusion.GenerateOptions{MaxNewTokens: 16, Logprobs: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if g.Text != full || len(g.Logprobs) != len(g.TokenIDs) || g.Finish != fusion.FinishLength {
			t.Fatalf("text %q, %d logprobs for %d tokens, finish %q", g.Text, len(g.Logprobs), len(g.TokenIDs), g.Finish)
		}
		for i, lp := range g.Logprobs {
			if !(lp <= 0) {
				t.Errorf("logprob %d = %g", i, lp)
			}
		}
	})
	t.Run("on-token error", func(t *testing.T) {
		boom := errors.New("client went away")
		n := 0
		_, err := m.Caption(ctx, st, "", fusion.GenerateOptions{MaxNewTokens: 16}, func(fusion.Token) error {
			n++
			if n == 3 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || n != 3 {
			t.Errorf("err = %v after %d tokens, want %v after 3", err, n, boom)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := m.Caption(cctx, st, "", fusion.GenerateOptions{}, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("bad state", func(t *testing.T) {
		if _, err := m.Caption(ctx, &fusion.ImageState{Tokens: 1, Dim: 1, Hidden: []float32{0}}, "", fusion.GenerateOptions{}, nil); err == nil {
			t.Error("Caption accepted an image state from another model")
		}
	})
	t.Run("default length", func(t *testing.T) {
		// No max_new_tokens anywhere: HF's max_length 20 minus the start token.
		g, err := m.Caption(ctx, st, "", fusion.GenerateOptions{MinNewTokens: 19}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.TokenIDs) != 19 || g.Finish != fusion.FinishLength {
			t.Errorf("%d tokens, finish %q; want 19, length", len(g.TokenIDs), g.Finish)
		}
	})
}

// TestConcurrentCaptions: requests on one model from several goroutines
// give the same results as one at a time (run with -race).
func TestConcurrentCaptions(t *testing.T) {
	m, err := Load(e2eDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(e2eDir, "astronaut.webp"))
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
	opts := []fusion.GenerateOptions{{MaxNewTokens: 8}, {MaxNewTokens: 8, NumBeams: 3}, {MaxNewTokens: 6, NumBeams: 2}, {MaxNewTokens: 10}}
	want := make([]*fusion.Generation, len(opts))
	for i, o := range opts {
		if want[i], err = m.Caption(ctx, st, "", o, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]*fusion.Generation, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = m.Caption(ctx, st, "", o, nil)
		}()
	}
	wg.Wait()
	for i := range opts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i].Text != want[i].Text || !slices.Equal(got[i].TokenIDs, want[i].TokenIDs) {
			t.Errorf("request %d: concurrent %q %v, alone %q %v", i, got[i].Text, got[i].TokenIDs, want[i].Text, want[i].TokenIDs)
		}
	}
}
