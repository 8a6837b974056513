package blip

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/text/bert"
	"github.com/glimpse-vlm/glimpse/text/generate"
)

const goldenDir = "../../testdata/golden"

type golden struct {
	t  *testing.T
	ck *checkpoint.Checkpoint
}

func openGolden(t *testing.T, name string) golden {
	t.Helper()
	g, err := checkpoint.OpenFile(filepath.Join(goldenDir, name, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return golden{t, g}
}

func (g golden) f32(name string) ([]float32, []int) {
	g.t.Helper()
	v, err := g.ck.Float32(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return v, g.ck.Shape(name)
}

func (g golden) ids(name string) [][]int {
	g.t.Helper()
	v, shape, err := g.ck.Int64(name)
	if err != nil {
		g.t.Fatal(err)
	}
	out := make([][]int, shape[0])
	for b := range out {
		for _, x := range v[b*shape[1] : (b+1)*shape[1]] {
			out[b] = append(out[b], int(x))
		}
	}
	return out
}

func relErr(got, want []float32) (rel, maxAbs float64) {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
		maxAbs = math.Max(maxAbs, math.Abs(d))
	}
	return math.Sqrt(num / math.Max(den, 1e-30)), maxAbs
}

// check compares within 1e-4 relative error (‖Δ‖/‖ref‖) or, for small
// values, 1e-4 absolute.
func check(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	rel, abs := relErr(got, want)
	if rel > 1e-4 && abs > 1e-4 {
		t.Errorf("%s: rel. error %.3g, max abs %.3g (tolerance 1e-4)", what, rel, abs)
		return
	}
	t.Logf("%s: rel. error %.3g, max abs %.3g", what, rel, abs)
}

func equalIDs(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// trimGenerated cuts an HF output row after its first eos past the
// prompt (the rest is batch padding).
func trimGenerated(row []int, promptLen, eos int) []int {
	for i := promptLen; i < len(row); i++ {
		if row[i] == eos {
			return row[:i+1]
		}
	}
	return row
}

// openWeights opens a golden folder's config and weights (the golden
// folders have no tokenizer or preprocessor files).
func openWeights(t *testing.T, name string) (*checkpoint.Checkpoint, Config) {
	t.Helper()
	dir := filepath.Join(goldenDir, name)
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
	t.Cleanup(func() { ck.Close() })
	return ck, cfg
}

func loadCaptionGolden(t *testing.T) *CaptionModel {
	t.Helper()
	m, err := NewCaption(openWeights(t, "blip-caption"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// encodeGolden runs the vision tower on the golden pixel_values.
func encodeGolden(t *testing.T, b *base, g golden) []*fusion.ImageState {
	t.Helper()
	px, shape := g.f32("pixel_values")
	states, err := b.EncodePixels(context.Background(), px, shape[0])
	if err != nil {
		t.Fatal(err)
	}
	return states
}

func flatten(states []*fusion.ImageState) []float32 {
	var out []float32
	for _, s := range states {
		out = append(out, s.Hidden...)
	}
	return out
}

// recorder wraps a Stepper and keeps a copy of every step's logits.
type recorder struct {
	generate.Stepper
	steps [][]float32
}

func (r *recorder) Step(ctx context.Context, tokens [][]int) ([][]float32, error) {
	out, err := r.Stepper.Step(ctx, tokens)
	if err == nil {
		r.steps = append(r.steps, append([]float32(nil), out[0]...))
	}
	return out, err
}

// crossForm is one way of making the decoder's cross-attention state.
type crossForm struct {
	name string
	make func(enc []float32, encLen int, mask []int) (*bert.CrossKV, error)
}

// crossForms are the projected (CrossKV) and folded (CrossFolded, what
// serving uses) forms; both must match HF.
func crossForms(dec *bert.Model) []crossForm {
	return []crossForm{{"projected", dec.CrossKV}, {"folded", dec.CrossFolded}}
}

func TestCaptionGolden(t *testing.T) {
	m := loadCaptionGolden(t)
	g := openGolden(t, "blip-caption")
	ctx := context.Background()
	states := encodeGolden(t, m.base, g)
	want, _ := g.f32("vision_last_hidden_state")
	check(t, "vision_last_hidden_state", flatten(states), want)
	pooled, err := m.vision.Pool(flatten(states), len(states))
	if err != nil {
		t.Fatal(err)
	}
	wantPool, _ := g.f32("vision_pooler_output")
	check(t, "vision_pooler_output", pooled, wantPool)

	sep := m.cfg.Text.SEP
	stepScores, sshape := g.f32("greedy_step_scores") // [B, steps, V]
	tests := []struct {
		name    string
		ids     string
		prefix  string
		maxNew  int
		beams   int
		scores  string
		perStep bool
	}{
		{name: "greedy", ids: "greedy_ids", maxNew: 12, beams: 1, perStep: true},
		{name: "conditional", ids: "cond_greedy_ids", prefix: "cond_prefix_input_ids", maxNew: 12, beams: 1},
		{name: "beam3", ids: "beam3_ids", maxNew: 12, beams: 3, scores: "beam3_sequences_scores"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantIDs := g.ids(tc.ids)
			var prefixes [][]int
			if tc.prefix != "" {
				prefixes = g.ids(tc.prefix)
			}
			for b, st := range states {
				var prefix []int
				if prefixes != nil {
					prefix = prefixes[b]
				}
				prompt := m.CaptionPrompt(prefix)
				cfg, err := m.DecodeConfig(fusion.GenerateOptions{MaxNewTokens: tc.maxNew, NumBeams: tc.beams}, len(prompt))
				if err != nil {
					t.Fatal(err)
				}
				w := trimGenerated(wantIDs[b], len(prompt), sep)
				for _, form := range crossForms(m.dec) {
					cross, err := form.make(st.Hidden, st.Tokens, nil)
					if err != nil {
						t.Fatal(err)
					}
					rec := &recorder{Stepper: newDecoderStepper(m.dec, cross)}
					var res *generate.Result
					if tc.beams > 1 {
						res, err = generate.Beam(ctx, rec, prompt, cfg)
					} else {
						res, err = generate.Greedy(ctx, rec, prompt, cfg, nil)
					}
					if err != nil {
						t.Fatal(err)
					}
					got := append(append([]int{}, prompt...), res.Tokens...)
					if !equalIDs(got, w) {
						t.Fatalf("%s: image %d: ids %v, want %v", form.name, b, got, w)
					}
					if tc.perStep {
						steps, v := sshape[1], sshape[2]
						var flat []float32
						for _, s := range rec.steps {
							flat = append(flat, s...)
						}
						check(t, fmt.Sprintf("%s: image %d greedy step logits", form.name, b), flat, stepScores[b*steps*v:b*steps*v+len(flat)])
					}
					if tc.scores != "" {
						ws, _ := g.f32(tc.scores)
						if d := math.Abs(res.Score - float64(ws[b])); d > 1e-4*math.Max(1, math.Abs(float64(ws[b]))) {
							t.Errorf("%s: image %d: sequences_score %v, want %v", form.name, b, res.Score, ws[b])
						} else {
							t.Logf("%s: image %d: sequences_score %v (HF %v)", form.name, b, res.Score, ws[b])
						}
					}
				}
				// The same through CaptionIDs (cross-attention state built inside).
				res2, err := m.CaptionIDs(ctx, st, prompt, cfg, nil)
				if err != nil || !equalIDs(append(append([]int{}, prompt...), res2.Tokens...), w) {
					t.Fatalf("CaptionIDs: %v %v, want %v", res2, err, w)
				}
			}
		})
	}
}

func TestVQAGolden(t *testing.T) {
	m, err := NewVQA(openWeights(t, "blip-vqa"))
	if err != nil {
		t.Fatal(err)
	}
	g := openGolden(t, "blip-vqa")
	states := encodeGolden(t, m.base, g)
	want, _ := g.f32("image_embeds")
	check(t, "image_embeds", flatten(states), want)

	q := g.ids("question_input_ids")
	qe, qshape := g.f32("question_embeds")
	ans := g.ids("answer_ids")
	scores, sshape := g.f32("answer_step_scores")
	L, H := qshape[1], qshape[2]
	cfg, err := m.DecodeConfig(fusion.GenerateOptions{MaxNewTokens: 8})
	if err != nil {
		t.Fatal(err)
	}
	for b, st := range states {
		// HF feeds the padded question with its attention mask to the
		// encoder; positions past the real tokens do not change the real
		// ones, but the decoder attends to ALL positions, so feed the full
		// padded row with the mask.
		qs, err := m.questionStatesMasked(st, q[b], g.ids("question_attention_mask")[b])
		if err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("question_embeds %d", b), qs, qe[b*L*H:(b+1)*L*H])
		for _, form := range crossForms(m.dec) {
			cross, err := form.make(qs, L, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{Stepper: newDecoderStepper(m.dec, cross)}
			res, err := generate.Greedy(context.Background(), rec, []int{m.cfg.Text.BOS}, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := append([]int{m.cfg.Text.BOS}, res.Tokens...)
			w := trimGenerated(ans[b], 1, m.cfg.Text.SEP)
			if !equalIDs(got, w) {
				t.Fatalf("image %d: answer %v, want %v", b, got, w)
			}
			var flat []float32
			for _, s := range rec.steps {
				flat = append(flat, s...)
			}
			steps, v := sshape[1], sshape[2]
			check(t, fmt.Sprintf("%s: answer step logits %d", form.name, b), flat, scores[b*steps*v:b*steps*v+len(flat)])
		}
	}
}

func TestITMGolden(t *testing.T) {
	m, err := NewRetrieval(openWeights(t, "blip-itm"))
	if err != nil {
		t.Fatal(err)
	}
	g := openGolden(t, "blip-itm")
	states := encodeGolden(t, m.base, g)
	want, _ := g.f32("image_embeds")
	check(t, "image_embeds", flatten(states), want)
	ids := g.ids("input_ids")
	mask := g.ids("attention_mask")
	wantLogits, _ := g.f32("itm_logits")
	wantProbs, _ := g.f32("itm_probs")
	wantCos, _ := g.f32("cosine_sim")
	wantImg, _ := g.f32("image_feat")
	wantTxt, _ := g.f32("text_feat")
	var gotLogits, gotProbs, gotImg, gotTxt, gotCos []float32
	for b, st := range states {
		real := trimPadding(ids[b], mask[b])
		lg, err := m.ITMLogits(st, real)
		if err != nil {
			t.Fatal(err)
		}
		gotLogits = append(gotLogits, lg[:]...)
		// Batched with the other text (padded differently): same result.
		other := trimPadding(ids[1-b], mask[1-b])
		sc, err := m.MatchIDs(st, [][]int{other, real})
		if err != nil {
			t.Fatal(err)
		}
		gotProbs = append(gotProbs, 1-*sc[1].ITMProbability, *sc[1].ITMProbability)
		f, err := m.ImageFeature(st)
		if err != nil {
			t.Fatal(err)
		}
		gotImg = append(gotImg, f...)
		tf, err := m.TextFeature(real)
		if err != nil {
			t.Fatal(err)
		}
		gotTxt = append(gotTxt, tf...)
	}
	p := m.cfg.ImageTextHiddenSize
	for i := range states {
		for j := range states {
			gotCos = append(gotCos, dot(gotImg[i*p:(i+1)*p], gotTxt[j*p:(j+1)*p]))
		}
	}
	check(t, "itm_logits", gotLogits, wantLogits)
	check(t, "itm_probs", gotProbs, wantProbs)
	check(t, "image_feat", gotImg, wantImg)
	check(t, "text_feat", gotTxt, wantTxt)
	check(t, "cosine_sim", gotCos, wantCos)
}

// trimPadding keeps the ids whose mask is 1 (right padding): with
// right padding, real positions are unaffected by the padded ones.
func trimPadding(ids, mask []int) []int {
	var out []int
	for i, id := range ids {
		if mask[i] == 1 {
			out = append(out, id)
		}
	}
	return out
}

func TestParseConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(goldenDir, "e2e", "blip-caption", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"text hidden", c.Text.HiddenSize, 36},
		{"text sep (explicit)", c.Text.SEP, 3},
		{"text eps (default)", c.Text.LayerNormEps, float32(1e-12)},
		{"text pad (default)", c.Text.PAD, 0},
		{"encoder hidden from vision", c.Text.EncoderHiddenSize, 36},
		{"vision heads", c.Vision.NumHeads, 3},
		{"vision eps (default)", c.Vision.LayerNormEps, float32(1e-5)},
		{"image_text_hidden_size", c.ImageTextHiddenSize, 20},
		{"max_length default", c.Text.Gen.MaxLength, 20},
	}
	for _, tc := range tests {
		if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	d, err := ParseConfig([]byte(`{"model_type": "blip"}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.ImageTextHiddenSize != 256 || d.ProjectionDim != 512 || d.Text.NumHeads != 8 || d.Vision.ImageSize != 384 || d.Text.EncoderHiddenSize != 768 {
		t.Errorf("defaults: %+v", d)
	}
	if _, err := ParseConfig([]byte(`{"model_type": "clip"}`)); err == nil {
		t.Error("clip config accepted as blip")
	}
}
