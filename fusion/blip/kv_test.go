package blip

import (
	"context"
	"image"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/text/bert"
)

// TestKVBytesCoversRealMemory checks the memory accounting of a caption
// request against the memory the model really allocates for it: the image
// state, the cross-attention state over the image (folded or projected,
// as CaptionIDs makes it), and one
// self-attention cache per beam grown to the request's length. The
// estimate must cover it without counting much more than is there.
func TestKVBytesCoversRealMemory(t *testing.T) {
	small := strings.NewReplacer(`"hidden_size": 768`, `"hidden_size": 64`, `"encoder_hidden_size": 768`, `"encoder_hidden_size": 64`,
		`"intermediate_size": 3072`, `"intermediate_size": 64`, `"num_hidden_layers": 12`, `"num_hidden_layers": 3`,
		`"num_attention_heads": 12`, `"num_attention_heads": 4`, `"image_size": 384`, `"image_size": 64`).Replace(BaseCaptionConfig)
	m, err := NewRandomCaption([]byte(small), 3)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	st, err := m.EncodeImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		opts   fusion.GenerateOptions
		prompt int
		rows   int
	}{
		{"greedy 5 (folded)", fusion.GenerateOptions{MaxNewTokens: 5}, 1, 1},
		{"greedy 20", fusion.GenerateOptions{MaxNewTokens: 20}, 1, 1},
		{"prompt 5, 40 tokens", fusion.GenerateOptions{MaxNewTokens: 40}, 5, 1},
		{"3 beams, 30 tokens", fusion.GenerateOptions{MaxNewTokens: 30, NumBeams: 3}, 1, 3},
		{"sampled 100", fusion.GenerateOptions{MaxNewTokens: 100, Sample: true, Seed: 1}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			est := m.KVBytes(tc.opts, tc.prompt)
			// The cross-attention state CaptionIDs makes for these options.
			cross, err := crossState(m.dec, st.Hidden, st.Tokens, tc.rows*(tc.prompt+tc.opts.MaxNewTokens))
			if err != nil {
				t.Fatal(err)
			}
			if folded := strings.Contains(tc.name, "folded"); cross.Folded() != folded {
				t.Fatalf("cross-attention state folded = %v, want %v (the small model folds up to 9 rows)", cross.Folded(), folded)
			}
			// One sequence's cache grown a token at a time, as decoding does.
			c := &bert.Cache{}
			ws := &bert.Workspace{}
			positions := tc.prompt + tc.opts.MaxNewTokens
			for p := 0; p < positions; p++ {
				if _, err := m.dec.Forward(ws, []bert.Seq{{Tokens: []int{m.cfg.Text.BOS}, Cache: c, Cross: cross}}, true); err != nil {
					t.Fatal(err)
				}
			}
			real := int64(st.Bytes()) + int64(cross.Bytes()) + int64(tc.rows)*int64(c.Bytes())
			if est < real {
				t.Fatalf("estimate %d bytes is below the %d bytes the request holds (image %d, cross %d, %d× cache %d)",
					est, real, st.Bytes(), cross.Bytes(), tc.rows, c.Bytes())
			}
			if est > real*16/10 {
				t.Fatalf("estimate %d bytes is more than 1.6× the %d bytes the request holds", est, real)
			}
		})
	}
	if n := m.KVBytes(fusion.GenerateOptions{MaxNewTokens: -3}, 1); n != 0 {
		t.Fatalf("invalid options: estimate %d, want 0", n)
	}
}
