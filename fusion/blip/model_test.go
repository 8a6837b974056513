package blip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/vision"
)

func TestLoadInfo(t *testing.T) {
	tests := []struct {
		dir       string
		arch      string
		caption   bool
		answer    bool
		matchEmb  bool
		tasks     string
		imageSize int
		tokens    int
	}{
		{"blip-caption", ArchCaption, true, false, false, "[caption]", 40, 17},
		{"blip-vqa", ArchVQA, false, true, false, "[answer]", 40, 17},
		{"blip-itm", ArchRetrieval, false, false, true, "[match embed]", 40, 17},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			m, err := fusion.Load(filepath.Join(goldenDir, "e2e", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			info := m.Info()
			if info.Family != "blip" || info.Architecture != tc.arch || info.ImageSize != tc.imageSize ||
				info.ImageTokens != tc.tokens || info.VocabSize != 368 || info.MaxTextLen != 48 {
				t.Errorf("info %+v", info)
			}
			if got := fmt.Sprint(info.Tasks); got != tc.tasks {
				t.Errorf("tasks %v, want %s", info.Tasks, tc.tasks)
			}
			_, c := m.(fusion.Captioner)
			_, a := m.(fusion.Answerer)
			_, mt := m.(fusion.Matcher)
			_, e := m.(fusion.Embedder)
			if c != tc.caption || a != tc.answer || mt != tc.matchEmb || e != tc.matchEmb {
				t.Errorf("implements caption %v answer %v match %v embed %v", c, a, mt, e)
			}
			ids, err := m.Tokenize("a photograph of")
			if err != nil || len(ids) != 5 || ids[0] != 2 || ids[4] != 3 {
				t.Errorf("Tokenize = %v, %v; want [CLS] a photograph of [SEP] (5 ids)", ids, err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	// The retrieval checkpoint has no text_decoder: loading it as a
	// caption model must name the missing tensor.
	ck, cfg := openWeights(t, "blip-itm")
	_, err := NewCaption(ck, cfg)
	if err == nil || !strings.Contains(err.Error(), "text_decoder.bert.embeddings.word_embeddings.weight") {
		t.Errorf("caption model from ITM weights: %v", err)
	}
	// A config whose sizes disagree with the weights.
	ck, cfg = openWeights(t, "blip-caption")
	cfg.Text.IntermediateSize++
	if _, err := NewCaption(ck, cfg); err == nil || !strings.Contains(err.Error(), "intermediate.dense") {
		t.Errorf("wrong intermediate_size: %v", err)
	}
	if _, err := LoadCaption(filepath.Join(goldenDir, "no-such-model")); err == nil {
		t.Error("missing folder accepted")
	}
}

func TestCaptionErrorsAndCancel(t *testing.T) {
	m, err := fusion.Load(filepath.Join(goldenDir, "e2e", "blip-caption"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.(fusion.Captioner)
	ctx := context.Background()
	st := &fusion.ImageState{Tokens: 17, Dim: 36, Hidden: make([]float32, 17*36)}

	if _, err := c.Caption(ctx, &fusion.ImageState{Tokens: 5, Dim: 36, Hidden: make([]float32, 5*36)}, "", fusion.GenerateOptions{}, nil); err == nil {
		t.Error("image state of another model accepted")
	}
	if _, err := c.Caption(ctx, nil, "", fusion.GenerateOptions{}, nil); err == nil {
		t.Error("nil image state accepted")
	}
	// Default length (text_config max_length 20 → 19 new tokens) unless eos.
	g, err := c.Caption(ctx, st, "", fusion.GenerateOptions{MinNewTokens: 19}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.TokenIDs) != 19 || g.Finish != fusion.FinishLength {
		t.Errorf("default length: %d tokens (%s), want 19 (length)", len(g.TokenIDs), g.Finish)
	}
	// Cancel from the token callback: generation stops with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := 0
	g, err = c.Caption(cctx, st, "", fusion.GenerateOptions{MaxNewTokens: 10, MinNewTokens: 10}, func(fusion.Token) error {
		n++
		if n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || g == nil || g.Finish != fusion.FinishCancelled {
		t.Fatalf("cancelled caption: %v, %+v", err, g)
	}
}

// TestConcurrentRequests runs captions of several images at once on one
// model: results equal the sequential ones (run with -race to check that
// per-request state is not shared).
func TestConcurrentRequests(t *testing.T) {
	dir := filepath.Join(goldenDir, "e2e", "blip-caption")
	m, err := fusion.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	var states []*fusion.ImageState
	for _, name := range []string{"cat_chelsea.jpg", "camera_gray.jpg", "coffee_paletted.gif", "astronaut.webp"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
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
		states = append(states, st)
	}
	c := m.(fusion.Captioner)
	opts := []fusion.GenerateOptions{{MaxNewTokens: 8}, {MaxNewTokens: 8, NumBeams: 3}}
	want := make([]string, 0, len(states)*len(opts))
	for _, st := range states {
		for _, o := range opts {
			g, err := c.Caption(ctx, st, "a picture of", o, nil)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprint(g.Text, g.TokenIDs))
		}
	}
	got := make([]string, len(want))
	var wg sync.WaitGroup
	for i, st := range states {
		for j, o := range opts {
			wg.Add(1)
			go func(k int, st *fusion.ImageState, o fusion.GenerateOptions) {
				defer wg.Done()
				g, err := c.Caption(ctx, st, "a picture of", o, nil)
				if err != nil {
					got[k] = err.Error()
					return
				}
				got[k] = fmt.Sprint(g.Text, g.TokenIDs)
			}(i*len(opts)+j, st, o)
		}
	}
	wg.Wait()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: concurrent %q, sequential %q", i, got[i], want[i])
		}
	}
}
