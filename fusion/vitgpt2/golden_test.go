package vitgpt2

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

const goldenDir = "../../testdata/golden/vit-gpt2"

// relErr is ‖got−want‖/‖want‖ (the absolute norm when want is ~0).
func relErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den < 1e-12 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// newFromDir builds the model from a checkpoint folder's weights and
// configs (no processor or tokenizer needed).
func newFromDir(t testing.TB, dir string) *Model {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := readGeneration(dir, raw)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := New(ck, cfg, gen)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type golden struct {
	ck *checkpoint.Checkpoint
}

func openGolden(t *testing.T) golden {
	t.Helper()
	ck, err := checkpoint.OpenFile(filepath.Join(goldenDir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return golden{ck}
}

func (g golden) f32(t *testing.T, name string) []float32 {
	t.Helper()
	v, err := g.ck.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), v...)
}

func (g golden) ids(t *testing.T, name string) ([]int, []int) {
	t.Helper()
	v, shape, err := g.ck.Int64(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out, shape
}

// TestGoldenEncoder: ViT last_hidden_state, pooler and every hidden state.
func TestGoldenEncoder(t *testing.T) {
	m := newFromDir(t, goldenDir)
	g := openGolden(t)
	px := g.f32(t, "pixel_values")
	states, err := m.EncodePixels(context.Background(), px, 2)
	if err != nil {
		t.Fatal(err)
	}
	var last []float32
	for _, s := range states {
		last = append(last, s.Hidden...)
	}
	pool, err := m.Encoder().Pool(last, 2)
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := m.Encoder().HiddenStates(px, 2)
	if err != nil {
		t.Fatal(err)
	}
	var hs []float32
	for _, h := range hidden {
		hs = append(hs, h...)
	}
	for _, c := range []struct {
		name string
		got  []float32
	}{
		{"encoder_last_hidden_state", last}, {"encoder_pooler_output", pool}, {"encoder_hidden_states", hs},
	} {
		e := relErr(c.got, g.f32(t, c.name))
		if e > 1e-4 {
			t.Errorf("%s: rel err %.2e", c.name, e)
		}
		t.Logf("%s: rel err %.2e", c.name, e)
	}
}

// TestGoldenDecoder: teacher-forced logits (right padding + mask) and
// greedy per-step logits, from this package's own encoder states.
func TestGoldenDecoder(t *testing.T) {
	m := newFromDir(t, goldenDir)
	g := openGolden(t)
	ctx := context.Background()
	states, err := m.EncodePixels(ctx, g.f32(t, "pixel_values"), 2)
	if err != nil {
		t.Fatal(err)
	}
	ids, shape := g.ids(t, "tf_decoder_input_ids")
	mask, _ := g.ids(t, "tf_decoder_attention_mask")
	want := g.f32(t, "tf_logits")
	greedy, gshape := g.ids(t, "greedy_ids")
	steps := g.f32(t, "greedy_step_scores")
	L, v, n := shape[1], m.cfg.Decoder.VocabSize, gshape[1]
	worstTF, worstStep := 0.0, 0.0
	for b, st := range states {
		cross, err := m.cross(st)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Decoder().Forward(ctx, ids[b*L:(b+1)*L], mask[b*L:(b+1)*L], cross)
		if err != nil {
			t.Fatal(err)
		}
		worstTF = math.Max(worstTF, relErr(out.Logits, want[b*L*v:(b+1)*L*v]))
		s := m.Decoder().NewSession(cross)
		for k := 0; k < n-1; k++ {
			l, err := s.Step(ctx, [][]int{{greedy[b*n+k]}})
			if err != nil {
				t.Fatal(err)
			}
			off := (b*(n-1) + k) * v
			worstStep = math.Max(worstStep, relErr(l[0], steps[off:off+v]))
		}
	}
	if worstTF > 1e-4 || worstStep > 1e-4 {
		t.Errorf("teacher-forced logits rel err %.2e, greedy step logits rel err %.2e", worstTF, worstStep)
	}
	t.Logf("teacher-forced logits rel err %.2e, greedy step logits rel err %.2e", worstTF, worstStep)
}

// TestGoldenGenerate: greedy and beam-3 ids through Generate (HF batches
// both images and pads a finished row with pad_token_id; we decode each
// alone, so the HF row must be our ids followed by padding).
func TestGoldenGenerate(t *testing.T) {
	m := newFromDir(t, goldenDir)
	g := openGolden(t)
	ctx := context.Background()
	states, err := m.EncodePixels(ctx, g.f32(t, "pixel_values"), 2)
	if err != nil {
		t.Fatal(err)
	}
	beamScores := g.f32(t, "beam3_sequences_scores")
	for _, tc := range []struct {
		name  string
		ids   string
		beams int
	}{
		{"greedy", "greedy_ids", 1},
		{"beam3", "beam3_ids", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, shape := g.ids(t, tc.ids)
			n := shape[1]
			for b, st := range states {
				full, res, err := m.Generate(ctx, st, nil, fusion.GenerateOptions{MaxNewTokens: n - 1, NumBeams: tc.beams}, nil)
				if err != nil {
					t.Fatal(err)
				}
				row := want[b*n : (b+1)*n]
				ok := len(full) <= n
				for i := range row {
					if i < len(full) && full[i] != row[i] || i >= len(full) && row[i] != m.gen.PadTokenID {
						ok = false
					}
				}
				if !ok {
					t.Errorf("image %d: ids %v, HF %v", b, full, row)
				}
				if tc.beams > 1 {
					d := math.Abs(res.Score - float64(beamScores[b]))
					if d > 1e-4*math.Max(1, math.Abs(float64(beamScores[b]))) {
						t.Errorf("image %d: sequences_score %.6f, HF %.6f", b, res.Score, beamScores[b])
					}
					t.Logf("image %d: sequences_score %.7f, HF %.7f (diff %.1e)", b, res.Score, beamScores[b], d)
				}
			}
		})
	}
}
