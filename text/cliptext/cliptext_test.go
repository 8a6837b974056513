package cliptext

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

var goldenDirs = []string{"../../testdata/golden/clip", "../../testdata/golden/clip-eos"}

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

func load(t *testing.T, dir string) (*Model, *checkpoint.Checkpoint) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		Text json.RawMessage `json:"text_config"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(top.Text)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(ck, "text_model.", cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := checkpoint.OpenFile(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return m, g
}

func ints(t *testing.T, g *checkpoint.Checkpoint, name string) ([]int, []int) {
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

func floats(t *testing.T, g *checkpoint.Checkpoint, name string) []float32 {
	t.Helper()
	v, err := g.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestGolden checks hidden states, last_hidden_state and pooled output for
// the legacy (eos_token_id == 2, argmax) and the eos-position pooling.
func TestGolden(t *testing.T) {
	for _, dir := range goldenDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, g := load(t, dir)
			ids, shape := ints(t, g, "input_ids")
			mask, _ := ints(t, g, "attention_mask")
			batch, L := shape[0], shape[1]
			out, err := m.Forward(context.Background(), ids, mask, batch, L, true)
			if err != nil {
				t.Fatal(err)
			}
			hidden := floats(t, g, "text_hidden_states")
			per := batch * L * m.cfg.HiddenSize
			if len(out.Hidden) != m.cfg.NumLayers+1 {
				t.Fatalf("%d hidden states", len(out.Hidden))
			}
			for i, h := range out.Hidden {
				if e := relErr(h, hidden[i*per:(i+1)*per]); e > 1e-4 {
					t.Errorf("hidden %d: rel err %.2e", i, e)
				}
			}
			for _, c := range []struct {
				name string
				got  []float32
			}{{"text_last_hidden_state", out.LastHidden}, {"text_pooler_output", out.Pooled}} {
				e := relErr(c.got, floats(t, g, c.name))
				if e > 1e-4 {
					t.Errorf("%s: rel err %.2e", c.name, e)
				}
				t.Logf("%s: rel err %.2e", c.name, e)
			}
		})
	}
}

// TestPaddingIndependence: a text's pooled output is the same alone
// (unpadded, no mask) and padded inside a batch.
func TestPaddingIndependence(t *testing.T) {
	for _, dir := range goldenDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, g := load(t, dir)
			ids, shape := ints(t, g, "input_ids")
			mask, _ := ints(t, g, "attention_mask")
			batch, L := shape[0], shape[1]
			all, err := m.Forward(context.Background(), ids, mask, batch, L, false)
			if err != nil {
				t.Fatal(err)
			}
			d := m.cfg.HiddenSize
			padded := 0
			for b := 0; b < batch; b++ {
				n := 0
				for _, v := range mask[b*L : (b+1)*L] {
					n += v
				}
				if n < L {
					padded++
				}
				one, err := m.Forward(context.Background(), ids[b*L:b*L+n], nil, 1, n, false)
				if err != nil {
					t.Fatal(err)
				}
				if e := relErr(one.Pooled, all.Pooled[b*d:(b+1)*d]); e > 1e-5 {
					t.Errorf("row %d (%d real tokens): alone vs batched rel err %.2e", b, n, e)
				}
			}
			if padded == 0 {
				t.Fatal("golden batch has no padded row; the test would not exercise the mask")
			}
		})
	}
}

func TestPoolIndex(t *testing.T) {
	legacy := Config{EOSTokenID: 2}
	eos := Config{EOSTokenID: 97}
	for _, tc := range []struct {
		name string
		c    Config
		ids  []int
		want int
	}{
		{"legacy argmax", legacy, []int{49406, 320, 49407, 49407}, 2},
		{"legacy first max", legacy, []int{5, 9, 9, 1}, 1},
		{"eos first", eos, []int{98, 5, 97, 97}, 2},
		{"eos absent", eos, []int{98, 5, 6}, 0},
		{"eos while larger ids", eos, []int{98, 3, 97, 99}, 2},
	} {
		if got := tc.c.PoolIndex(tc.ids); got != tc.want {
			t.Errorf("%s: PoolIndex(%v) = %d, want %d", tc.name, tc.ids, got, tc.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		json  string
		check func(Config) bool
		err   string
	}{
		{"defaults", `{}`, func(c Config) bool {
			return c == DefaultConfig() && c.VocabSize == 49408 && c.HiddenSize == 512 && c.IntermediateSize == 2048 &&
				c.NumLayers == 12 && c.NumHeads == 8 && c.MaxPositions == 77 && c.Act == kernels.ActQuickGELU &&
				c.LayerNormEps == 1e-5 && c.PadTokenID == 1 && c.BOSTokenID == 49406 && c.EOSTokenID == 49407
		}, ""},
		{"null", `null`, func(c Config) bool { return c == DefaultConfig() }, ""},
		{"set", `{"hidden_size": 64, "num_attention_heads": 4, "hidden_act": "gelu", "layer_norm_eps": 1e-6, "eos_token_id": 2}`,
			func(c Config) bool {
				return c.HiddenSize == 64 && c.NumHeads == 4 && c.Act == kernels.ActGELU && c.LayerNormEps == float32(1e-6) && c.EOSTokenID == 2
			}, ""},
		{"bad act", `{"hidden_act": "nope"}`, nil, "hidden_act"},
		{"heads", `{"hidden_size": 10, "num_attention_heads": 4}`, nil, "multiple"},
		{"negative", `{"num_hidden_layers": -1}`, nil, "num_hidden_layers"},
		{"bad eos", `{"eos_token_id": [1]}`, nil, "eos_token_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

func TestForwardErrors(t *testing.T) {
	m, _ := load(t, goldenDirs[0])
	ctx := context.Background()
	long := make([]int, m.cfg.MaxPositions+1)
	for _, tc := range []struct {
		name         string
		ids, mask    []int
		batch, seqLn int
		want         string
	}{
		{"too long", long, nil, 1, len(long), "max_position_embeddings"},
		{"bad id", []int{m.cfg.VocabSize}, nil, 1, 1, "outside the vocabulary"},
		{"shape", []int{1, 2, 3}, nil, 2, 2, "batch"},
		{"mask", []int{1, 2}, []int{1}, 1, 2, "mask"},
	} {
		if _, err := m.Forward(ctx, tc.ids, tc.mask, tc.batch, tc.seqLn, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}
