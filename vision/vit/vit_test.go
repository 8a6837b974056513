package vit

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

const goldenDir = "../../testdata/golden/"

// goldenCase describes one golden model: where its vision config sits in
// config.json, the weights prefix and the golden tensor names.
type goldenCase struct {
	dir       string
	variant   Variant
	configKey string // "vision_config" or "encoder"
	prefix    string
	last      string // last_hidden_state
	pooled    string
	hidden    string // stacked hidden_states [L+1, B, T, D]
}

var goldenCases = []goldenCase{
	{"blip-caption", BLIP, "vision_config", "vision_model.", "vision_last_hidden_state", "vision_pooler_output", "vision_hidden_states"},
	{"vit-gpt2", ViT, "encoder", "encoder.", "encoder_last_hidden_state", "encoder_pooler_output", "encoder_hidden_states"},
	{"clip", CLIP, "vision_config", "vision_model.", "vision_last_hidden_state", "vision_pooler_output", "vision_hidden_states"},
	{"clip-eos", CLIP, "vision_config", "vision_model.", "vision_last_hidden_state", "vision_pooler_output", "vision_hidden_states"},
}

// readVisionConfig reads config.json of a golden model and parses the
// vision sub-config with the HF class defaults.
func readVisionConfig(t *testing.T, dir, key string, v Variant) Config {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("%s/config.json: %v", dir, err)
	}
	sub, ok := top[key]
	if !ok {
		t.Fatalf("%s/config.json has no %q", dir, key)
	}
	cfg, err := ParseConfig(v, sub)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func loadGolden(t *testing.T, gc goldenCase) (*Encoder, *checkpoint.Checkpoint) {
	t.Helper()
	dir := goldenDir + gc.dir
	cfg := readVisionConfig(t, dir, gc.configKey, gc.variant)
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	enc, err := Load(ck, gc.prefix, cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	gold, err := checkpoint.OpenFile(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gold.Close() })
	return enc, gold
}

func goldenTensor(t *testing.T, g *checkpoint.Checkpoint, name string) ([]float32, []int) {
	t.Helper()
	v, err := g.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, g.Shape(name)
}

// relErr is ‖out−ref‖/‖ref‖ in float64.
func relErr(out, ref []float32) float64 {
	var num, den float64
	for i := range ref {
		d := float64(out[i]) - float64(ref[i])
		num += d * d
		den += float64(ref[i]) * float64(ref[i])
	}
	return math.Sqrt(num / den)
}

func checkClose(t *testing.T, what string, out, ref []float32) {
	t.Helper()
	if len(out) != len(ref) {
		t.Fatalf("%s: %d values, reference has %d", what, len(out), len(ref))
	}
	for i, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s[%d] = %v", what, i, v)
		}
	}
	if e := relErr(out, ref); !(e <= 1e-4) {
		t.Errorf("%s: relative error %.3g > 1e-4", what, e)
	} else {
		t.Logf("%s: relative error %.3g", what, e)
	}
}

func TestGolden(t *testing.T) {
	for _, gc := range goldenCases {
		t.Run(gc.dir, func(t *testing.T) {
			enc, gold := loadGolden(t, gc)
			pix, pshape := goldenTensor(t, gold, "pixel_values")
			batch := pshape[0]
			refLast, lshape := goldenTensor(t, gold, gc.last)
			if lshape[1] != enc.Tokens() || lshape[2] != enc.Dim() {
				t.Fatalf("golden %s shape %v, encoder Tokens=%d Dim=%d", gc.last, lshape, enc.Tokens(), enc.Dim())
			}

			last, err := enc.Forward(pix, batch)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, gc.last, last, refLast)

			refPooled, _ := goldenTensor(t, gold, gc.pooled)
			pooled, err := enc.Pool(last, batch)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, gc.pooled, pooled, refPooled)

			refHidden, hshape := goldenTensor(t, gold, gc.hidden)
			hs, err := enc.HiddenStates(pix, batch)
			if err != nil {
				t.Fatal(err)
			}
			if len(hs) != hshape[0] {
				t.Fatalf("HiddenStates returned %d arrays, golden has %d", len(hs), hshape[0])
			}
			n := len(refHidden) / hshape[0]
			for i, h := range hs {
				checkClose(t, fmt.Sprintf("%s[%d]", gc.hidden, i), h, refHidden[i*n:(i+1)*n])
			}
		})
	}
}

// TestBatchInvariance checks that every image of a batch gets bit-for-bit
// the result it gets alone.
func TestBatchInvariance(t *testing.T) {
	for _, gc := range goldenCases[:3] {
		t.Run(gc.dir, func(t *testing.T) {
			enc, gold := loadGolden(t, gc)
			pix, pshape := goldenTensor(t, gold, "pixel_values")
			per := len(pix) / pshape[0]
			// A batch of 3: the two golden images and the first again, reversed order.
			b3 := append(append(append([]float32(nil), pix[per:]...), pix[:per]...), pix[:per]...)
			all, err := enc.Forward(b3, 3)
			if err != nil {
				t.Fatal(err)
			}
			out := enc.Tokens() * enc.Dim()
			for i, src := range []int{1, 0, 0} {
				one, err := enc.Forward(pix[src*per:(src+1)*per], 1)
				if err != nil {
					t.Fatal(err)
				}
				got := all[i*out : (i+1)*out]
				for j := range one {
					if math.Float32bits(one[j]) != math.Float32bits(got[j]) {
						t.Fatalf("batch item %d (image %d) value %d: %v in batch, %v alone", i, src, j, got[j], one[j])
					}
				}
			}
		})
	}
}

func TestForwardErrors(t *testing.T) {
	enc, _ := loadGolden(t, goldenCases[0])
	per := enc.Config().NumChannels * enc.Config().ImageSize * enc.Config().ImageSize
	for _, tc := range []struct {
		name   string
		pixels int
		batch  int
		want   string
	}{
		{"zero batch", 0, 0, "batch 0"},
		{"negative batch", per, -1, "batch -1"},
		{"short", per - 1, 1, "expected batch 1"},
		{"long", per + 1, 1, "expected batch 1"},
		{"batch mismatch", per, 2, "expected batch 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := enc.Forward(make([]float32, tc.pixels), tc.batch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Forward error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := enc.Pool(make([]float32, 5), 1); err == nil || !strings.Contains(err.Error(), "expected batch 1") {
		t.Fatalf("Pool error %v", err)
	}
}

// writeSafetensors writes tensors (F32) to path in the safetensors format.
func writeSafetensors(t *testing.T, path string, tensors map[string][]float32, shapes map[string][]int) {
	t.Helper()
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	hdr := map[string]any{}
	var body []byte
	for _, n := range names {
		start := len(body)
		for _, v := range tensors[n] {
			body = binary.LittleEndian.AppendUint32(body, math.Float32bits(v))
		}
		hdr[n] = map[string]any{"dtype": "F32", "shape": shapes[n], "data_offsets": []int{start, len(body)}}
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), body...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadErrors copies a golden checkpoint with one tensor removed or
// reshaped and checks that Load names it.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		gc      goldenCase
		tensor  string
		reshape []int // nil: remove the tensor
		cfgEdit func(*Config)
		want    []string
	}{
		{gc: goldenCases[0], tensor: "vision_model.encoder.layers.1.self_attn.qkv.weight", want: []string{`missing tensor "vision_model.encoder.layers.1.self_attn.qkv.weight"`}},
		{gc: goldenCases[1], tensor: "encoder.encoder.layer.0.attention.attention.value.bias", want: []string{`"encoder.encoder.layer.0.attention.attention.value.bias"`, "missing"}},
		{gc: goldenCases[2], tensor: "vision_model.pre_layrnorm.weight", want: []string{`"vision_model.pre_layrnorm.weight"`}},
		{gc: goldenCases[2], tensor: "vision_model.embeddings.position_embedding.weight", reshape: []int{16, 34},
			want: []string{`"vision_model.embeddings.position_embedding.weight"`, "[16 34]", "[17 32]"}},
		{gc: goldenCases[0], cfgEdit: func(c *Config) { c.IntermediateSize = 48 },
			want: []string{`"vision_model.encoder.layers.0.mlp.fc1.weight"`, "[64 32]", "[48 32]", "intermediate_size=48"}},
		{gc: goldenCases[1], cfgEdit: func(c *Config) { c.PatchSize = 4 },
			want: []string{"encoder.embeddings.patch_embeddings.projection.weight", "[32 3 4 4]"}},
		{gc: goldenCases[0], cfgEdit: func(c *Config) { c.NumLayers = 3 },
			want: []string{`missing tensor "vision_model.encoder.layers.2.layer_norm1.weight"`}},
	} {
		t.Run(tc.gc.dir+"/"+tc.tensor, func(t *testing.T) {
			src := goldenDir + tc.gc.dir
			cfg := readVisionConfig(t, src, tc.gc.configKey, tc.gc.variant)
			if tc.cfgEdit != nil {
				tc.cfgEdit(&cfg)
			}
			ck, err := checkpoint.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			if tc.tensor != "" {
				tensors, shapes := map[string][]float32{}, map[string][]int{}
				for _, n := range ck.Names() {
					v, err := ck.Float32(n)
					if err != nil {
						t.Fatal(err)
					}
					tensors[n], shapes[n] = v, ck.Shape(n)
				}
				if tc.reshape == nil {
					delete(tensors, tc.tensor)
				} else {
					shapes[tc.tensor] = tc.reshape
				}
				dir := t.TempDir()
				writeSafetensors(t, filepath.Join(dir, "model.safetensors"), tensors, shapes)
				ck2, err := checkpoint.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer ck2.Close()
				ck = ck2
			}
			_, err = Load(ck, tc.gc.prefix, cfg)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestViTWithoutPooler loads a ViT checkpoint without pooler weights: Load
// succeeds, Pool reports the missing pooler.
func TestViTWithoutPooler(t *testing.T) {
	gc := goldenCases[1]
	src := goldenDir + gc.dir
	ck, err := checkpoint.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	tensors, shapes := map[string][]float32{}, map[string][]int{}
	for _, n := range ck.Names() {
		if strings.HasPrefix(n, "encoder.pooler.") {
			continue
		}
		v, _ := ck.Float32(n)
		tensors[n], shapes[n] = v, ck.Shape(n)
	}
	dir := t.TempDir()
	writeSafetensors(t, filepath.Join(dir, "model.safetensors"), tensors, shapes)
	ck2, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck2.Close()
	enc, err := Load(ck2, gc.prefix, readVisionConfig(t, src, gc.configKey, gc.variant))
	if err != nil {
		t.Fatal(err)
	}
	if enc.HasPooler() {
		t.Fatal("HasPooler true without pooler weights")
	}
	h := make([]float32, enc.Tokens()*enc.Dim())
	if _, err := enc.Pool(h, 1); err == nil || !strings.Contains(err.Error(), "pooler") {
		t.Fatalf("Pool error %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       Variant
		json    string
		want    Config
		wantErr string
	}{
		{name: "blip defaults", v: BLIP, json: `{}`, want: DefaultConfig(BLIP)},
		{name: "blip ignores num_channels", v: BLIP, json: `{"num_channels": 1, "hidden_size": 64, "num_attention_heads": 4}`,
			want: func() Config { c := DefaultConfig(BLIP); c.HiddenSize, c.NumHeads = 64, 4; return c }()},
		{name: "vit fields", v: ViT, json: `{"hidden_size": 48, "num_hidden_layers": 3, "num_attention_heads": 6, "intermediate_size": 100,
			"image_size": 40, "patch_size": 10, "num_channels": 1, "layer_norm_eps": 1e-6, "hidden_act": "gelu_new", "qkv_bias": false, "unknown": [1]}`,
			want: Config{Variant: ViT, HiddenSize: 48, NumLayers: 3, NumHeads: 6, IntermediateSize: 100, ImageSize: 40, PatchSize: 10,
				NumChannels: 1, LayerNormEps: 1e-6, Act: kernels.ActGELUTanh, QKVBias: false}},
		{name: "vit null key keeps default", v: ViT, json: `{"layer_norm_eps": null}`, want: DefaultConfig(ViT)},
		{name: "clip defaults", v: CLIP, json: `{"hidden_act": "quick_gelu"}`, want: DefaultConfig(CLIP)},
		{name: "clip gelu", v: CLIP, json: `{"hidden_act": "gelu"}`,
			want: func() Config { c := DefaultConfig(CLIP); c.Act = kernels.ActGELU; return c }()},
		{name: "bad act", v: CLIP, json: `{"hidden_act": "swish2"}`, wantErr: "hidden_act"},
		{name: "heads", v: ViT, json: `{"hidden_size": 50, "num_attention_heads": 12}`, wantErr: "not a multiple"},
		{name: "zero patch", v: ViT, json: `{"patch_size": 0}`, wantErr: "patch_size = 0"},
		{name: "patch > image", v: CLIP, json: `{"patch_size": 300}`, wantErr: "exceeds image_size"},
		{name: "bad json", v: BLIP, json: `{"hidden_size": "big"}`, wantErr: "vision config"},
		{name: "bad variant", v: Variant(7), json: `{}`, wantErr: "unknown variant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig(tc.v, []byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestNonDivisibleImage checks that an image side that is not a multiple of
// the patch size drops the trailing pixels, as a strided Conv2d does: the
// result only depends on the covered pixels.
func TestNonDivisibleImage(t *testing.T) {
	gc := goldenCases[2]
	enc, gold := loadGolden(t, gc)
	pix, _ := goldenTensor(t, gold, "pixel_values")
	cfg := enc.Config()
	cfg.ImageSize = 35 // 4 patches of 8 per side, 3 pixels left over
	ck, err := checkpoint.Open(goldenDir + gc.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	big, err := Load(ck, gc.prefix, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if big.Tokens() != enc.Tokens() {
		t.Fatalf("Tokens %d, want %d", big.Tokens(), enc.Tokens())
	}
	// Embed the first 32×32 image into a 35×35 one with noise in the margin.
	s, S := 32, 35
	p35 := make([]float32, 3*S*S)
	for i := range p35 {
		p35[i] = float32(i%7) - 3
	}
	for c := 0; c < 3; c++ {
		for y := 0; y < s; y++ {
			copy(p35[c*S*S+y*S:c*S*S+y*S+s], pix[c*s*s+y*s:c*s*s+y*s+s])
		}
	}
	a, err := enc.Forward(pix[:3*s*s], 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := big.Forward(p35, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("value %d differs: %v vs %v", i, a[i], b[i])
		}
	}
}

// TestEncoderOutlivesCheckpoint closes (unmaps) the checkpoint right after
// Load: the encoder must hold no reference to its memory.
func TestEncoderOutlivesCheckpoint(t *testing.T) {
	for _, gc := range goldenCases[:3] {
		t.Run(gc.dir, func(t *testing.T) {
			dir := goldenDir + gc.dir
			ck, err := checkpoint.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := Load(ck, gc.prefix, readVisionConfig(t, dir, gc.configKey, gc.variant))
			if err != nil {
				t.Fatal(err)
			}
			if err := ck.Close(); err != nil {
				t.Fatal(err)
			}
			gold, err := checkpoint.OpenFile(filepath.Join(dir, "golden.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer gold.Close()
			pix, pshape := goldenTensor(t, gold, "pixel_values")
			last, err := enc.Forward(pix, pshape[0])
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := goldenTensor(t, gold, gc.last)
			checkClose(t, gc.last, last, ref)
			pooled, err := enc.Pool(last, pshape[0])
			if err != nil {
				t.Fatal(err)
			}
			refPooled, _ := goldenTensor(t, gold, gc.pooled)
			checkClose(t, gc.pooled, pooled, refPooled)
		})
	}
}

// TestConcurrentForward runs one encoder from several goroutines: results
// must equal the serial ones bit for bit (run with -race to check sharing).
func TestConcurrentForward(t *testing.T) {
	enc, gold := loadGolden(t, goldenCases[2])
	pix, pshape := goldenTensor(t, gold, "pixel_values")
	want, err := enc.Forward(pix, pshape[0])
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			got, err := enc.Forward(pix, pshape[0])
			if err == nil {
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						err = fmt.Errorf("value %d: %v concurrently, %v serially", i, got[i], want[i])
						break
					}
				}
			}
			errs <- err
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
