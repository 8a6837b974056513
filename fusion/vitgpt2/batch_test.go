package vitgpt2

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// TestBatchingIndependence runs 16 captions with mixed decoding settings
// one at a time, then all at once (their steps batched), and requires the
// same tokens, text, log-probabilities and finish reason.
func TestBatchingIndependence(t *testing.T) {
	fm, err := fusion.Load("../../testdata/golden/e2e/vit-gpt2")
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	m := fm.(*Model)
	r := rand.New(rand.NewPCG(3, 4))
	tok, dim := m.enc.Tokens(), m.enc.Dim()
	imgs := make([]*fusion.ImageState, 16)
	for i := range imgs {
		h := make([]float32, tok*dim)
		for j := range h {
			h[j] = float32(r.NormFloat64())
		}
		imgs[i] = &fusion.ImageState{Tokens: tok, Dim: dim, Hidden: h}
	}
	opts := []fusion.GenerateOptions{
		{MaxNewTokens: 10},
		{MaxNewTokens: 10, Sample: true, Seed: 7, Logprobs: true},
		{MaxNewTokens: 8, Sample: true, Seed: 8, Temperature: 0.6, TopK: 10, TopP: 0.8, Logprobs: true},
		{MaxNewTokens: 6, NumBeams: 3},
		{MaxNewTokens: 10, RepetitionPenalty: 1.4, NoRepeatNgramSize: 2, Logprobs: true},
		{MaxNewTokens: 9, MinNewTokens: 9},
	}
	run := func(i int) string {
		var streamed strings.Builder
		g, err := m.Caption(context.Background(), imgs[i], "", opts[i%len(opts)], func(t fusion.Token) error {
			streamed.WriteString(t.Text)
			return nil
		})
		if err != nil {
			return "error " + err.Error()
		}
		return fmt.Sprintf("%v %q %q %v %s", g.TokenIDs, g.Text, streamed.String(), g.Logprobs, g.Finish)
	}
	alone := make([]string, len(imgs))
	for i := range alone {
		if alone[i] = run(i); strings.HasPrefix(alone[i], "error") {
			t.Fatalf("request %d: %s", i, alone[i])
		}
	}
	// The outputs must equal the lone runs on every attempt. Whether the
	// scheduler really merged the requests depends on goroutine timing, so
	// the proof of batching gets up to three attempts on a loaded machine.
	var steps, rows int64
	for attempt := 0; attempt < 3; attempt++ {
		s0, r0 := m.batch.Stats()
		together := make([]string, len(imgs))
		var wg sync.WaitGroup
		for i := range together {
			wg.Add(1)
			go func() {
				defer wg.Done()
				together[i] = run(i)
			}()
		}
		wg.Wait()
		for i := range alone {
			if alone[i] != together[i] {
				t.Errorf("request %d (%+v):\nalone   %s\nbatched %s", i, opts[i%len(opts)], alone[i], together[i])
			}
		}
		s1, r1 := m.batch.Stats()
		steps, rows = s1-s0, r1-r0
		if steps > 0 && rows >= 2*steps {
			break
		}
	}
	if steps == 0 || rows < 2*steps {
		t.Errorf("%d steps carried %d sequences: the requests were not batched", steps, rows)
	}
}
