package vitgpt2

import (
	"context"
	"fmt"
	"github.com/glimpse-vlm/glimpse/internal/batchtest"
	"math/rand/v2"
	"strings"
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
	batchtest.SameAsAlone(t, len(imgs), run, func(i int) string { return fmt.Sprintf("%+v", opts[i%len(opts)]) }, m.batch)
}
