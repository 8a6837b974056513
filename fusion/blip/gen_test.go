package blip

import (
	"context"
	"fmt"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/text/bert"
	"github.com/glimpse-vlm/glimpse/text/generate"
)

func TestDecodeConfig(t *testing.T) {
	base := bert.DefaultConfig()
	base.SEP, base.PAD = 3, 0
	withGen := func(f func(g *bert.GenDefaults)) bert.Config {
		c := base
		f(&c.Gen)
		return c
	}
	f64 := func(v float64) *float64 { return &v }
	yes := true
	tests := []struct {
		name      string
		tc        bert.Config
		opts      fusion.GenerateOptions
		promptLen int
		want      generate.Config
	}{
		{"HF default max_length 20 counts the prompt", base, fusion.GenerateOptions{}, 1,
			generate.Config{MaxNewTokens: 19, NumBeams: 1, LengthPenalty: 1, EOS: []int{3}}},
		{"prefix prompt shortens the default", base, fusion.GenerateOptions{}, 4,
			generate.Config{MaxNewTokens: 16, NumBeams: 1, LengthPenalty: 1, EOS: []int{3}}},
		{"max_new_tokens option wins", base, fusion.GenerateOptions{MaxNewTokens: 7, NumBeams: 3}, 4,
			generate.Config{MaxNewTokens: 7, NumBeams: 3, LengthPenalty: 1, EOS: []int{3}}},
		{"text_config generation keys", withGen(func(g *bert.GenDefaults) {
			g.MaxLength, g.MinLength, g.NumBeams, g.LengthPenalty, g.EarlyStopping = 30, 5, 3, 0.6, "never"
		}), fusion.GenerateOptions{}, 1,
			generate.Config{MaxNewTokens: 29, MinNewTokens: 4, NumBeams: 3, LengthPenalty: 0.6, EarlyStopping: generate.EarlyStopNever, EOS: []int{3}}},
		{"options override config", withGen(func(g *bert.GenDefaults) { g.NumBeams, g.MinNewTokens = 3, 2 }),
			fusion.GenerateOptions{MaxNewTokens: 5, MinNewTokens: 4, NumBeams: 1, LengthPenalty: f64(2), EarlyStopping: &yes}, 1,
			generate.Config{MaxNewTokens: 5, MinNewTokens: 4, NumBeams: 1, LengthPenalty: 2, EarlyStopping: generate.EarlyStopTrue, EOS: []int{3}}},
		{"sampling: HF's top_k 50 and the request's seed", base, fusion.GenerateOptions{Sample: true, Seed: 11, MaxNewTokens: 5}, 1,
			generate.Config{MaxNewTokens: 5, NumBeams: 1, LengthPenalty: 1, EOS: []int{3}, Sampling: generate.Sampling{Sample: true, TopK: 50, Seed: 11}}},
		{"text_config sampling keys and penalties", withGen(func(g *bert.GenDefaults) {
			g.DoSample, g.Temperature, g.TopK, g.TopP, g.RepetitionPenalty, g.NoRepeatNgramSize = true, 0.8, 0, 0.9, 1.3, 2
		}), fusion.GenerateOptions{Seed: 4, MaxNewTokens: 5}, 1,
			generate.Config{MaxNewTokens: 5, NumBeams: 1, LengthPenalty: 1, EOS: []int{3},
				Sampling: generate.Sampling{Sample: true, Temperature: 0.8, TopP: 0.9, RepetitionPenalty: 1.3, NoRepeatNgramSize: 2, Seed: 4}}},
		{"penalties with beam search", base, fusion.GenerateOptions{NumBeams: 2, RepetitionPenalty: 1.2, NoRepeatNgramSize: 3, MaxNewTokens: 5}, 1,
			generate.Config{MaxNewTokens: 5, NumBeams: 2, LengthPenalty: 1, EOS: []int{3}, Sampling: generate.Sampling{RepetitionPenalty: 1.2, NoRepeatNgramSize: 3}}},
		{"position table bounds max_new_tokens", withGen(func(g *bert.GenDefaults) {}), fusion.GenerateOptions{MaxNewTokens: 1000}, 2,
			generate.Config{MaxNewTokens: 510, NumBeams: 1, LengthPenalty: 1, EOS: []int{3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeConfig(tc.tc, tc.opts, tc.promptLen)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	for _, bad := range []struct {
		name      string
		tc        bert.Config
		opts      fusion.GenerateOptions
		promptLen int
	}{
		{"prompt longer than max_length", base, fusion.GenerateOptions{}, 20},
		{"temperature without sampling", base, fusion.GenerateOptions{Temperature: 0.7}, 1},
		{"beam sampling", base, fusion.GenerateOptions{Sample: true, NumBeams: 3}, 1},
		{"negative repetition penalty", base, fusion.GenerateOptions{RepetitionPenalty: -1.2}, 1},
		{"config negative no_repeat_ngram", withGen(func(g *bert.GenDefaults) { g.NoRepeatNgramSize = -3 }), fusion.GenerateOptions{}, 1},
		{"top_p above 1", base, fusion.GenerateOptions{Sample: true, TopP: 1.5}, 1},
		{"negative max", base, fusion.GenerateOptions{MaxNewTokens: -1}, 1},
		{"config forced eos", withGen(func(g *bert.GenDefaults) { g.Unsupported = []string{"forced_eos_token_id"} }), fusion.GenerateOptions{}, 1},
	} {
		t.Run("rejects "+bad.name, func(t *testing.T) {
			if _, err := decodeConfig(bad.tc, bad.opts, bad.promptLen); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestStepperReorder checks that forked rows continue exactly like the
// row they were copied from and that a dropped row's cache is reused.
func TestStepperReorder(t *testing.T) {
	m := loadCaptionGolden(t)
	g := openGolden(t, "blip-caption")
	st := encodeGolden(t, m.base, g)[0]
	cross, err := m.dec.CrossKV(st.Hidden, st.Tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bos := m.cfg.Text.BOS
	s := newDecoderStepper(m.dec, cross)
	if _, err := s.Step(ctx, [][]int{{bos, 5}}); err != nil {
		t.Fatal(err)
	}
	s.Reorder([]int{0, 0, 0})
	if _, err := s.Step(ctx, [][]int{{7}, {8}, {7}}); err != nil {
		t.Fatal(err)
	}
	s.Reorder([]int{2, 1}) // row 0 dropped: its cache becomes free
	got, err := s.Step(ctx, [][]int{{9}, {9}})
	if err != nil {
		t.Fatal(err)
	}
	got0 := append([]float32(nil), got[0]...)
	got1 := append([]float32(nil), got[1]...)

	for _, tc := range []struct {
		seq  []int
		want []float32
	}{{[]int{bos, 5, 7, 9}, got0}, {[]int{bos, 5, 8, 9}, got1}} {
		ref := newDecoderStepper(m.dec, cross)
		out, err := ref.Step(ctx, [][]int{tc.seq})
		if err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprint("forked row ", tc.seq), tc.want, out[0])
	}
	if len(s.free) != 1 {
		t.Errorf("%d free caches after dropping one row, want 1", len(s.free))
	}
	if _, err := s.Step(ctx, [][]int{{1}}); err == nil {
		t.Error("step with the wrong row count accepted")
	}
}
