package gpt2

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

const goldenDir = "../../testdata/golden/vit-gpt2"

// relErr is ‖got−want‖/‖want‖ (the absolute norm when want is ~0).
func relErr(got, want []float32) float64 {
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

func loadGolden(t *testing.T) (*Model, *checkpoint.Checkpoint) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		Decoder json.RawMessage `json:"decoder"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(top.Decoder)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(ck, "decoder.", cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := checkpoint.OpenFile(filepath.Join(goldenDir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return m, g
}

func f32(t *testing.T, g *checkpoint.Checkpoint, name string) []float32 {
	t.Helper()
	v, err := g.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func i64(t *testing.T, g *checkpoint.Checkpoint, name string) ([]int, []int) {
	t.Helper()
	v, shape, err := g.Int64(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out, shape
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// TestGoldenTeacherForcing checks logits and every hidden state of the
// teacher-forced pass (right padding, attention mask) against HF, feeding
// HF's encoder last_hidden_state as the cross-attention input.
func TestGoldenTeacherForcing(t *testing.T) {
	m, g := loadGolden(t)
	enc := f32(t, g, "encoder_last_hidden_state") // (2, 17, 32)
	ids, shape := i64(t, g, "tf_decoder_input_ids")
	mask, _ := i64(t, g, "tf_decoder_attention_mask")
	wantLogits := f32(t, g, "tf_logits")
	wantHidden := f32(t, g, "tf_decoder_hidden_states") // (layers+1, 2, L, D)
	batch, L := shape[0], shape[1]
	d, v, encLen := m.cfg.NEmbd, m.cfg.VocabSize, len(enc)/(2*m.cfg.NEmbd)
	for b := 0; b < batch; b++ {
		cross, err := m.NewCross(enc[b*encLen*d:(b+1)*encLen*d], encLen)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Forward(context.Background(), ids[b*L:(b+1)*L], mask[b*L:(b+1)*L], cross)
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(out.Logits, wantLogits[b*L*v:(b+1)*L*v]); e > 1e-4 {
			t.Errorf("row %d: logits rel err %.2e", b, e)
		} else {
			t.Logf("row %d: logits rel err %.2e", b, e)
		}
		if len(out.Hidden) != m.cfg.NLayer+1 {
			t.Fatalf("row %d: %d hidden states, want %d", b, len(out.Hidden), m.cfg.NLayer+1)
		}
		for i, h := range out.Hidden {
			off := (i*batch + b) * L * d
			if e := relErr(h, wantHidden[off:off+L*d]); e > 1e-4 {
				t.Errorf("row %d hidden %d: rel err %.2e", b, i, e)
			}
		}
	}
}

// TestGoldenGreedySteps replays HF's greedy search one token at a time
// through a Session (KV cache) and checks every step's logits and argmax.
func TestGoldenGreedySteps(t *testing.T) {
	m, g := loadGolden(t)
	enc := f32(t, g, "encoder_last_hidden_state")
	ids, shape := i64(t, g, "greedy_ids") // (2, 13)
	scores := f32(t, g, "greedy_step_scores")
	batch, n := shape[0], shape[1]
	d, v, encLen := m.cfg.NEmbd, m.cfg.VocabSize, len(enc)/(2*m.cfg.NEmbd)
	eos := m.cfg.EOSTokenIDs[0]
	worst := 0.0
	for b := 0; b < batch; b++ {
		cross, err := m.NewCross(enc[b*encLen*d:(b+1)*encLen*d], encLen)
		if err != nil {
			t.Fatal(err)
		}
		s := m.NewSession(cross)
		seq := ids[b*n : (b+1)*n]
		done := false
		for step := 0; step < n-1; step++ {
			logits, err := s.Step(context.Background(), [][]int{{seq[step]}})
			if err != nil {
				t.Fatal(err)
			}
			off := (b*(n-1) + step) * v
			e := relErr(logits[0], scores[off:off+v])
			worst = math.Max(worst, e)
			if e > 1e-4 {
				t.Errorf("row %d step %d: logits rel err %.2e", b, step, e)
			}
			if !done && argmax(logits[0]) != seq[step+1] {
				t.Errorf("row %d step %d: argmax %d, HF chose %d", b, step, argmax(logits[0]), seq[step+1])
			}
			done = done || seq[step+1] == eos
		}
	}
	t.Logf("worst step logits rel err %.2e", worst)
}

// TestSessionBatchAndReorder checks that rows stepped together equal rows
// stepped alone, that a multi-token prompt step equals token-by-token
// steps, and that Reorder copies caches.
func TestSessionBatchAndReorder(t *testing.T) {
	m, g := loadGolden(t)
	enc := f32(t, g, "encoder_last_hidden_state")
	d, encLen := m.cfg.NEmbd, len(enc)/(2*m.cfg.NEmbd)
	cross, err := m.NewCross(enc[:encLen*d], encLen)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prompt := []int{99, 5, 17, 42}

	// Reference: one token at a time.
	ref := m.NewSession(cross)
	var want [][]float32
	for _, id := range prompt {
		l, err := ref.Step(ctx, [][]int{{id}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, append([]float32(nil), l[0]...))
	}

	s := m.NewSession(cross)
	l, err := s.Step(ctx, [][]int{prompt[:3]})
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(l[0], want[2]); e > 1e-5 {
		t.Errorf("prompt step vs token steps: rel err %.2e", e)
	}
	s.Reorder([]int{0, 0, 0})
	if s.Rows() != 3 {
		t.Fatalf("rows after reorder: %d", s.Rows())
	}
	l, err = s.Step(ctx, [][]int{{prompt[3]}, {7}, {prompt[3]}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []int{0, 2} {
		if e := relErr(l[r], want[3]); e > 1e-5 {
			t.Errorf("batched row %d: rel err %.2e", r, e)
		}
	}
	if relErr(l[1], want[3]) < 1e-3 {
		t.Errorf("row 1 (other token) has the same logits as row 0")
	}
	// Reorder to a single row (old row 2) and continue.
	s.Reorder([]int{2})
	l, err = s.Step(ctx, [][]int{{9}})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := ref.Step(ctx, [][]int{{9}})
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(l[0], l2[0]); e > 1e-5 {
		t.Errorf("after reorder: rel err %.2e", e)
	}
}

func TestStepErrors(t *testing.T) {
	m, _ := loadGolden(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tokens [][]int
		want   string
	}{
		{"id too large", [][]int{{m.cfg.VocabSize}}, "outside the vocabulary"},
		{"negative id", [][]int{{-1}}, "outside the vocabulary"},
		{"empty", [][]int{{}}, "no tokens"},
		{"too many rows", [][]int{{1}, {2}}, "session has 1"},
		{"too long", [][]int{make([]int, m.cfg.NPositions+1)}, "n_positions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := m.NewSession(nil)
			_, err := s.Step(ctx, tc.tokens)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := m.NewCross(make([]float32, 5), 1); err == nil {
		t.Error("NewCross accepted encoder states of the wrong width")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s := m.NewSession(nil)
	if _, err := s.Step(cctx, [][]int{{1}}); err == nil {
		t.Error("Step ignored a cancelled context")
	}
	// The session is unchanged and still usable.
	if got, err := s.Step(ctx, [][]int{{1}}); err != nil || s.rows[0].Len() != 1 {
		t.Errorf("after a cancelled step: %v, row length %d", err, s.rows[0].Len())
	} else if want, _ := m.NewSession(nil).Step(ctx, [][]int{{1}}); relErr(got[0], want[0]) > 1e-6 {
		t.Error("a cancelled step left state behind")
	}
}

func TestParseConfig(t *testing.T) {
	def := DefaultConfig()
	for _, tc := range []struct {
		name  string
		json  string
		check func(c Config) bool
		err   string
	}{
		{"defaults", `{}`, func(c Config) bool {
			return c.VocabSize == 50257 && c.NPositions == 1024 && c.NEmbd == 768 && c.NLayer == 12 && c.NHead == 12 &&
				c.NInner == 3072 && c.Act == kernels.ActGELUTanh && c.LayerNormEps == 1e-5 && !c.AddCrossAttention &&
				c.ScaleAttnWeights && !c.ScaleAttnByInverseLayerIdx && !c.ReorderAndUpcastAttn && c.TieWordEmbeddings &&
				c.BOSTokenID == 50256 && len(c.EOSTokenIDs) == 1 && c.EOSTokenIDs[0] == 50256 && c.PadTokenID == -1
		}, ""},
		{"n_inner null follows n_embd", `{"n_embd": 64, "n_head": 4, "n_inner": null}`, func(c Config) bool { return c.NInner == 256 }, ""},
		{"n_inner set", `{"n_inner": 100}`, func(c Config) bool { return c.NInner == 100 }, ""},
		{"aliases", `{"hidden_size": 48, "num_attention_heads": 3, "num_hidden_layers": 5, "max_position_embeddings": 9}`,
			func(c Config) bool {
				return c.NEmbd == 48 && c.NHead == 3 && c.NLayer == 5 && c.NPositions == 9 && c.NInner == 192
			}, ""},
		{"activation and eps", `{"activation_function": "relu", "layer_norm_epsilon": 1e-6}`,
			func(c Config) bool { return c.Act == kernels.ActReLU && c.LayerNormEps == float32(1e-6) }, ""},
		{"eos list, pad null", `{"eos_token_id": [3, 4], "pad_token_id": null, "bos_token_id": 7}`,
			func(c Config) bool {
				return len(c.EOSTokenIDs) == 2 && c.EOSTokenIDs[1] == 4 && c.PadTokenID == -1 && c.BOSTokenID == 7
			}, ""},
		{"inverse layer idx", `{"scale_attn_by_inverse_layer_idx": true, "scale_attn_weights": false}`,
			func(c Config) bool { return c.ScaleAttnByInverseLayerIdx && !c.ScaleAttnWeights }, ""},
		{"bad activation", `{"activation_function": "swishy"}`, nil, "activation_function"},
		{"heads do not divide", `{"n_embd": 10, "n_head": 3}`, nil, "multiple of n_head"},
		{"zero layers", `{"n_layer": 0}`, nil, "n_layer"},
		{"cross hidden size", `{"cross_attention_hidden_size": 1024}`, nil, "cross_attention_hidden_size"},
		{"wrong model type", `{"model_type": "bert"}`, nil, "model_type"},
		{"bad eos", `{"eos_token_id": "x"}`, nil, "eos_token_id"},
		{"not json", `{`, nil, "config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("config %+v (defaults %+v)", c, def)
			}
		})
	}
}

// TestInverseLayerIdxScale checks the attention scale of every block.
func TestInverseLayerIdxScale(t *testing.T) {
	c := DefaultConfig()
	c.NEmbd, c.NHead = 64, 4 // head_dim 16
	c.ScaleAttnByInverseLayerIdx = true
	for layer, want := range []float32{0.25, 0.125, 0.25 / 3} {
		if got := attnScale(c, layer); math.Abs(float64(got-want)) > 1e-7 {
			t.Errorf("layer %d: scale %g, want %g", layer, got, want)
		}
	}
	c.ScaleAttnWeights, c.ScaleAttnByInverseLayerIdx = false, false
	if got := attnScale(c, 3); got != 1 {
		t.Errorf("unscaled: %g", got)
	}
}

func TestLoadErrors(t *testing.T) {
	raw, _ := os.ReadFile(filepath.Join(goldenDir, "config.json"))
	var top struct {
		Decoder json.RawMessage `json:"decoder"`
	}
	_ = json.Unmarshal(raw, &top)
	cfg, err := ParseConfig(top.Decoder)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		prefix string
		mod    func(c *Config)
		want   string
	}{
		{"wrong prefix", "", nil, `"transformer.wte.weight"`},
		{"wrong vocab", "decoder.", func(c *Config) { c.VocabSize++ }, "decoder.transformer.wte.weight"},
		{"untied head absent", "decoder.", func(c *Config) { c.TieWordEmbeddings = false }, "decoder.lm_head.weight"},
		{"wrong n_inner", "decoder.", func(c *Config) { c.NInner = 7 }, "decoder.transformer.h.0.mlp.c_fc.weight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.mod != nil {
				tc.mod(&c)
			}
			_, err := Load(ck, tc.prefix, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %s", err, tc.want)
			}
		})
	}
}
