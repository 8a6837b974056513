package bert

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

const goldenDir = "../../testdata/golden"

type golden struct {
	t  *testing.T
	ck *checkpoint.Checkpoint
}

func openGolden(t *testing.T, name string) (*checkpoint.Checkpoint, Config, golden) {
	t.Helper()
	dir := filepath.Join(goldenDir, name)
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		Text   json.RawMessage `json:"text_config"`
		Vision struct {
			Hidden int `json:"hidden_size"`
		} `json:"vision_config"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(top.Text)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EncoderHiddenSize = top.Vision.Hidden // BlipConfig sets it from the vision config
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := checkpoint.OpenFile(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return ck, cfg, golden{t, g}
}

func (g golden) f32(name string) ([]float32, []int) {
	g.t.Helper()
	shape := g.ck.Shape(name)
	v, err := g.ck.Float32(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return v, shape
}

func (g golden) ids(name string) ([][]int, []int) {
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
	return out, shape
}

// relErr is ‖got−want‖/‖want‖; maxAbs the largest element difference.
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

func check(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) < len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	rel, abs := relErr(got[:len(want)], want)
	if rel > 1e-4 && abs > 1e-4 {
		t.Errorf("%s: rel. error %.3g, max abs %.3g (tolerance 1e-4)", what, rel, abs)
	} else {
		t.Logf("%s: rel. error %.3g, max abs %.3g", what, rel, abs)
	}
}

func ones(n int) []int {
	m := make([]int, n)
	for i := range m {
		m[i] = 1
	}
	return m
}

func TestCaptionDecoderTeacherForced(t *testing.T) {
	ck, cfg, g := openGolden(t, "blip-caption")
	m, err := Load(ck, "text_decoder.", cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	vis, vshape := g.f32("vision_last_hidden_state") // [B, N, D]
	ids, ishape := g.ids("tf_input_ids")
	mask, _ := g.ids("tf_attention_mask")
	hs, hshape := g.f32("tf_decoder_hidden_states") // [layers+1, B, L, H]
	logits, _ := g.f32("tf_logits")                 // [B, L, V]
	B, L, H, V, N, D := ishape[0], ishape[1], cfg.HiddenSize, cfg.VocabSize, vshape[1], vshape[2]
	last := (hshape[0] - 1) * B * L * H
	var ws Workspace
	for _, form := range crossForms(m) {
		for b := 0; b < B; b++ {
			cross, err := form.make(vis[b*N*D:(b+1)*N*D], N, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cross.Folded() != (form.name == "folded") {
				t.Fatalf("%s: Folded() = %v", form.name, cross.Folded())
			}
			// Whole sequence at once, with the padding mask.
			out, err := m.Forward(&ws, []Seq{{Tokens: ids[b], Cache: &Cache{}, Cross: cross, Mask: mask[b]}}, true)
			if err != nil {
				t.Fatal(err)
			}
			check(t, form.name+": hidden states row "+string(rune('0'+b)), out, hs[last+b*L*H:last+(b+1)*L*H])
			lg, err := m.Logits(&ws, out, L)
			if err != nil {
				t.Fatal(err)
			}
			check(t, form.name+": logits row "+string(rune('0'+b)), lg, logits[b*L*V:(b+1)*L*V])

			// Token by token through the KV cache: same logits at real positions.
			real := 0
			for _, v := range mask[b] {
				real += v
			}
			cache := &Cache{}
			step := make([]float32, 0, real*V)
			for i := 0; i < real; i++ {
				out, err := m.Forward(&ws, []Seq{{Tokens: ids[b][i : i+1], Cache: cache, Cross: cross}}, true)
				if err != nil {
					t.Fatal(err)
				}
				lg, err := m.Logits(&ws, out, 1)
				if err != nil {
					t.Fatal(err)
				}
				step = append(step, lg...)
			}
			check(t, form.name+": cached step logits row "+string(rune('0'+b)), step, logits[b*L*V:b*L*V+real*V])
		}
	}
}

// crossForm is one way of making a decoder's cross-attention state.
type crossForm struct {
	name string
	make func(enc []float32, encLen int, mask []int) (*CrossKV, error)
}

// crossForms are the projected (CrossKV) and folded (CrossFolded) forms;
// both must match HF.
func crossForms(m *Model) []crossForm {
	return []crossForm{{"projected", m.CrossKV}, {"folded", m.CrossFolded}}
}

func TestVQAEncoderAndDecoder(t *testing.T) {
	ck, cfg, g := openGolden(t, "blip-vqa")
	enc, err := Load(ck, "text_encoder.", cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := Load(ck, "text_decoder.", cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	img, ishape := g.f32("image_embeds")
	q, qshape := g.ids("question_input_ids")
	qmask, _ := g.ids("question_attention_mask")
	qe, _ := g.f32("question_embeds")
	ans, ashape := g.ids("answer_ids")
	alog, _ := g.f32("answer_tf_logits")
	B, N, D, Lq, H, La, V := ishape[0], ishape[1], ishape[2], qshape[1], cfg.HiddenSize, ashape[1], cfg.VocabSize
	var ws Workspace
	for b := 0; b < B; b++ {
		var out []float32
		for _, form := range crossForms(enc) {
			cross, err := form.make(img[b*N*D:(b+1)*N*D], N, ones(N))
			if err != nil {
				t.Fatal(err)
			}
			out, err = enc.Forward(&ws, []Seq{{Tokens: q[b], Cache: &Cache{}, Cross: cross, Mask: qmask[b]}}, false)
			if err != nil {
				t.Fatal(err)
			}
			check(t, form.name+": question_embeds", out, qe[b*Lq*H:(b+1)*Lq*H])
		}

		// Decoder teacher-forced on the answer, cross-attending to the
		// golden question states with an all-ones mask.
		for _, form := range crossForms(dec) {
			qcross, err := form.make(qe[b*Lq*H:(b+1)*Lq*H], Lq, nil)
			if err != nil {
				t.Fatal(err)
			}
			am := make([]int, La)
			for i, id := range ans[b] {
				if id != cfg.PAD || i == 0 {
					am[i] = 1
				}
			}
			out, err = dec.Forward(&ws, []Seq{{Tokens: ans[b], Cache: &Cache{}, Cross: qcross, Mask: am}}, true)
			if err != nil {
				t.Fatal(err)
			}
			lg, err := dec.Logits(&ws, out, La)
			if err != nil {
				t.Fatal(err)
			}
			check(t, form.name+": answer teacher-forced logits", lg, alog[b*La*V:(b+1)*La*V])
		}
	}
	noCross := cfg
	noCross.CrossAttention = false
	plain, err := Load(ck, "text_encoder.", noCross, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range crossForms(plain) {
		if _, err := form.make(img[:N*D], N, nil); err == nil || !strings.Contains(err.Error(), "no cross-attention weights") {
			t.Errorf("%s on a text model without cross-attention: err = %v", form.name, err)
		}
	}
}

func TestITMEncoder(t *testing.T) {
	ck, cfg, g := openGolden(t, "blip-itm")
	enc, err := Load(ck, "text_encoder.", cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	img, ishape := g.f32("image_embeds")
	ids, tshape := g.ids("input_ids")
	mask, _ := g.ids("attention_mask")
	withImg, _ := g.f32("itm_question_embeds")
	textOnly, _ := g.f32("cos_question_embeds")
	B, N, D, L, H := ishape[0], ishape[1], ishape[2], tshape[1], cfg.HiddenSize
	var ws Workspace
	for b := 0; b < B; b++ {
		var out []float32
		for _, form := range crossForms(enc) {
			cross, err := form.make(img[b*N*D:(b+1)*N*D], N, ones(N))
			if err != nil {
				t.Fatal(err)
			}
			out, err = enc.Forward(&ws, []Seq{{Tokens: ids[b], Cache: &Cache{}, Cross: cross, Mask: mask[b]}}, false)
			if err != nil {
				t.Fatal(err)
			}
			check(t, form.name+": itm question_embeds", out, withImg[b*L*H:(b+1)*L*H])
		}
		out, err := enc.Forward(&ws, []Seq{{Tokens: ids[b], Cache: &Cache{}, Mask: mask[b]}}, false)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "text-only embeds", out, textOnly[b*L*H:(b+1)*L*H])
	}
}

func TestParseConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want func(c Config) bool
	}{
		{"empty gives BlipTextConfig defaults", `{}`, func(c Config) bool {
			return c.VocabSize == 30524 && c.NumHeads == 8 && c.HiddenSize == 768 && c.LayerNormEps == 1e-12 &&
				c.MaxPositions == 512 && c.BOS == 30522 && c.SEP == 102 && c.PAD == 0 && c.EOS == 2 &&
				c.CrossAttention && c.Gen.MaxLength == 20 && c.Gen.NumBeams == 1 && c.Gen.LengthPenalty == 1
		}},
		{"explicit values", `{"hidden_size": 36, "num_attention_heads": 4, "sep_token_id": 3, "layer_norm_eps": 1e-6, "hidden_act": "gelu_new", "is_decoder": false, "max_length": 30, "num_beams": 3, "early_stopping": "never"}`, func(c Config) bool {
			return c.HiddenSize == 36 && c.NumHeads == 4 && c.SEP == 3 && c.LayerNormEps == float32(1e-6) &&
				!c.CrossAttention && c.Gen.MaxLength == 30 && c.Gen.NumBeams == 3 && c.Gen.EarlyStopping == "never"
		}},
		{"eos list", `{"eos_token_id": [5, 6]}`, func(c Config) bool { return c.EOS == 5 }},
		{"no-op generation keys", `{"num_beam_groups": 1, "forced_eos_token_id": null, "bad_words_ids": null}`, func(c Config) bool { return len(c.Gen.Unsupported) == 0 }},
		{"unsupported generation keys", `{"num_beam_groups": 2, "forced_eos_token_id": 102}`, func(c Config) bool {
			return len(c.Gen.Unsupported) == 2 && c.Gen.Unsupported[0] == "forced_eos_token_id" && c.Gen.Unsupported[1] == "num_beam_groups"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
	for _, bad := range []string{`{"hidden_size": 30, "num_attention_heads": 4}`, `{"hidden_act": "swish2"}`,
		`{"num_hidden_layers": 0}`, `{"position_embedding_type": "relative_key"}`, `{"early_stopping": "sometimes"}`, `[`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("config %s accepted", bad)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	ck, cfg, _ := openGolden(t, "blip-caption")
	bad := cfg
	bad.VocabSize++
	if _, err := Load(ck, "text_decoder.", bad, true); err == nil {
		t.Error("wrong vocab size accepted")
	}
	if _, err := Load(ck, "text_encoder.", cfg, false); err == nil {
		t.Error("missing text_encoder accepted")
	}
	m, err := Load(ck, "text_decoder.", cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	var ws Workspace
	for _, s := range []Seq{
		{Tokens: []int{cfg.VocabSize}, Cache: &Cache{}},
		{Tokens: []int{-1}, Cache: &Cache{}},
		{Tokens: nil, Cache: &Cache{}},
		{Tokens: []int{1}},
		{Tokens: make([]int, cfg.MaxPositions+1), Cache: &Cache{}},
		{Tokens: []int{1, 2}, Cache: &Cache{}, Mask: []int{1}},
	} {
		if _, err := m.Forward(&ws, []Seq{s}, true); err == nil {
			t.Errorf("bad sequence %v accepted", s.Tokens)
		}
	}
}

// TestTiedDecoder checks that a checkpoint without
// cls.predictions.decoder.weight (saved with tied embeddings) uses the
// word embeddings as the output projection.
func TestTiedDecoder(t *testing.T) {
	ck, cfg, _ := openGolden(t, "blip-caption")
	const p = "text_decoder."
	tied := map[string]checkpoint.MemTensor{}
	explicit := map[string]checkpoint.MemTensor{}
	for _, name := range ck.Names() {
		if len(name) < len(p) || name[:len(p)] != p || name == p+names.dec {
			continue
		}
		v, err := ck.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		mt := checkpoint.MemTensor{Shape: ck.Shape(name), Data: v}
		tied[name] = mt
		explicit[name] = mt
	}
	explicit[p+names.dec] = tied[p+"bert."+names.wordEmb]
	a, err := Load(checkpoint.FromFloat32(tied), p, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(checkpoint.FromFloat32(explicit), p, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	var ws Workspace
	ids := []int{cfg.BOS, 5, 9}
	ha, err := a.Forward(&ws, []Seq{{Tokens: ids, Cache: &Cache{}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	la, _ := a.Logits(&ws, ha, len(ids))
	la = append([]float32(nil), la...)
	hb, err := b.Forward(&ws, []Seq{{Tokens: ids, Cache: &Cache{}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := b.Logits(&ws, hb, len(ids))
	for i := range la {
		if la[i] != lb[i] {
			t.Fatalf("logit %d: tied %v, explicit %v", i, la[i], lb[i])
		}
	}
}

// TestCrossFormsBatched: sequences with folded, projected and no
// cross-attention state, run through Forward together, get bit for bit
// what each gets alone, at a prompt step and at a decoding step.
func TestCrossFormsBatched(t *testing.T) {
	ck, cfg, g := openGolden(t, "blip-caption")
	m, err := Load(ck, "text_decoder.", cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	vis, vshape := g.f32("vision_last_hidden_state")
	N, D := vshape[1], vshape[2]
	img := func(b int) []float32 { return vis[b*N*D : (b+1)*N*D] }
	f0, err := m.CrossFolded(img(0), N, nil)
	if err != nil {
		t.Fatal(err)
	}
	f1, err := m.CrossFolded(img(1), N, nil)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := m.CrossKV(img(1), N, nil)
	if err != nil {
		t.Fatal(err)
	}
	crosses := []*CrossKV{f0, p1, nil, f1, f0}
	prompts := [][]int{{cfg.BOS, 5, 9}, {cfg.BOS}, {cfg.BOS, 7}, {cfg.BOS, 3, 4, 8}, {cfg.BOS, 2}}
	H := cfg.HiddenSize
	// run feeds the sequences idx (each its prompt, then token 11) through
	// Forward as one batch and returns each one's hidden rows per step.
	run := func(idx []int) map[int][][]float32 {
		var ws Workspace
		caches := make([]*Cache, len(idx))
		for i := range caches {
			caches[i] = &Cache{}
		}
		out := map[int][][]float32{}
		for step := 0; step < 2; step++ {
			var seqs []Seq
			for i, s := range idx {
				tok := prompts[s]
				if step == 1 {
					tok = []int{11}
				}
				seqs = append(seqs, Seq{Tokens: tok, Cache: caches[i], Cross: crosses[s]})
			}
			h, err := m.Forward(&ws, seqs, true)
			if err != nil {
				t.Fatal(err)
			}
			r := 0
			for i, s := range idx {
				n := len(seqs[i].Tokens)
				out[s] = append(out[s], append([]float32(nil), h[r*H:(r+n)*H]...))
				r += n
			}
		}
		return out
	}
	all := []int{0, 1, 2, 3, 4}
	together := run(all)
	for _, s := range all {
		alone := run([]int{s})[s]
		for step := range alone {
			for i := range alone[step] {
				if math.Float32bits(alone[step][i]) != math.Float32bits(together[s][step][i]) {
					t.Fatalf("sequence %d (cross %v) step %d: value %d is %v batched, %v alone", s, crosses[s] != nil, step, i, together[s][step][i], alone[step][i])
				}
			}
		}
	}
	// The two forms agree to rounding on the same image.
	p0, err := m.CrossKV(img(0), N, nil)
	if err != nil {
		t.Fatal(err)
	}
	crosses[1] = p0
	prompts[1] = prompts[0]
	proj := run([]int{1})[1]
	for step := range proj {
		check(t, "folded vs projected", together[0][step], proj[step])
	}
}

// TestFoldedCheaper: the cost rule that picks a cross-attention form for a
// one-off pass, at BLIP-base sizes (577 image states; a VQA answer decoder
// over a 10-token question) on both sides of the break-even row count,
// worked out by hand from the multiply-add counts.
func TestFoldedCheaper(t *testing.T) {
	m := &Model{cfg: Config{HiddenSize: 768, EncoderHiddenSize: 768, NumHeads: 12}}
	for _, tc := range []struct {
		encLen, rows int
		want         bool
	}{
		{577, 1, true}, {577, 35, true}, {577, 62, true}, // 62·11 814 912 < 680 656 896 + 62·886 272
		{577, 63, false}, {577, 64 * 20, false},
		{10, 8, true}, {10, 9, false}, // 9·1 363 968 > 11 796 480 + 9·15 360
	} {
		if got := m.FoldedCheaper(tc.encLen, tc.rows); got != tc.want {
			t.Errorf("FoldedCheaper(encLen %d, rows %d) = %v, want %v", tc.encLen, tc.rows, got, tc.want)
		}
	}
}

// TestCrossBytes: the memory CrossBytes accounts for a state before it is
// made is what the state made over the same encoder states holds, in
// both forms.
func TestCrossBytes(t *testing.T) {
	ck, cfg, g := openGolden(t, "blip-caption")
	m, err := Load(ck, "text_decoder.", cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	vis, vshape := g.f32("vision_last_hidden_state")
	N, D := vshape[1], vshape[2]
	for _, form := range crossForms(m) {
		x, err := form.make(vis[:N*D], N, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.CrossBytes(N, x.Folded()), int64(x.Bytes()); got != want || want == 0 {
			t.Errorf("%s: CrossBytes %d, the state holds %d", form.name, got, want)
		}
	}
}
