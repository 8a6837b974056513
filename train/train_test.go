package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/demo"
	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/fusion/blip"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/text/bert"
)

// tinyConfig is small enough for tests.
func tinyConfig(vocab int) Config {
	return Config{
		Vision:  VisionConfig{ImageSize: demo.Size, PatchSize: 16, Hidden: 32, Layers: 1, Heads: 2, Intermediate: 48, Eps: 1e-5},
		Text:    TextConfig{Vocab: vocab, Hidden: 32, Layers: 1, Heads: 2, Intermediate: 48, MaxPositions: 32, Eps: 1e-12},
		ProjDim: 16,
	}
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// trainingForward is the training forward of a captioner (the serving
// modules built from the master weights, recording for backward): the
// vision states and the decoder logits of caption.
func trainingForward(t *testing.T, m *Model, pix []float32, caption string) (img, logits []float32) {
	t.Helper()
	b, err := m.modules()
	if err != nil {
		t.Fatal(err)
	}
	img, _, err = m.encodeImage(b, pix)
	if err != nil {
		t.Fatal(err)
	}
	ids := m.decoderIDs(caption)
	cross, err := b.dec.CrossKV(img, m.Cfg.Vision.tokens(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := &bert.Workspace{Tape: &bert.Tape{}}
	h, err := b.dec.Forward(ws, []bert.Seq{{Tokens: ids, Cache: &bert.Cache{}, Cross: cross}}, true)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := b.dec.Logits(ws, h, len(ids))
	if err != nil {
		t.Fatal(err)
	}
	return img, append([]float32(nil), lg...)
}

// servingForward is what the server computes on the folder dir: the
// vision states of fusion.Load(dir).EncodeImage and the logits of the
// folder's text decoder (bert.Load, no tape).
func servingForward(t *testing.T, dir string, s *demo.Scene, ids []int) (img, logits []float32) {
	t.Helper()
	fm, err := fusion.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	st, err := fm.EncodeImage(context.Background(), s.Render())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := blip.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	dec, err := bert.Load(ck, "text_decoder.", cfg.Text, true)
	if err != nil {
		t.Fatal(err)
	}
	cross, err := dec.CrossKV(st.Hidden, st.Tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ws bert.Workspace
	h, err := dec.Forward(&ws, []bert.Seq{{Tokens: ids, Cache: &bert.Cache{}, Cross: cross}}, true)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := dec.Logits(&ws, h, len(ids))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fm.(fusion.Captioner).Caption(context.Background(), st, "", fusion.GenerateOptions{MaxNewTokens: 5}, nil); err != nil {
		t.Fatal(err)
	}
	return st.Hidden, append([]float32(nil), lg...)
}

func sameBits(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// The training forward is the serving forward: on a saved folder (a
// freshly initialised model saved in F32, and the shipped demo captioner
// loaded for fine-tuning) its vision states and decoder logits are bit for
// bit what the serving code computes.
func TestTrainingForwardIsServing(t *testing.T) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	fresh, err := NewModel(ArchCaption, tinyConfig(VocabSize(files)), files, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Move the weights away from their initial values so every tensor matters.
	r := rand.New(rand.NewPCG(9, 9))
	for _, p := range fresh.Params.List() {
		for i := range p.W {
			p.W[i] += float32(0.05 * r.NormFloat64())
		}
	}
	fresh.Params.Touch()
	freshDir := t.TempDir()
	if err := fresh.Save(freshDir, false); err != nil {
		t.Fatal(err)
	}
	shipped, err := Load("../models/demo/caption")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    *Model
		dir  string
	}{{"fresh", fresh, freshDir}, {"models/demo/caption", shipped, "../models/demo/caption"}} {
		for _, seed := range []uint64{5, demo.HeldOutStart + 2} {
			s := demo.NewScene(seed)
			img, logits := trainingForward(t, tc.m, tc.m.Pixels(s.Render()), s.Caption())
			simg, slogits := servingForward(t, tc.dir, s, tc.m.decoderIDs(s.Caption()))
			if i := sameBits(img, simg); i >= 0 {
				t.Errorf("%s scene %d: vision states differ from serving at %d (%d vs %d values)", tc.name, seed, i, len(img), len(simg))
			}
			if i := sameBits(logits, slogits); i >= 0 {
				t.Errorf("%s scene %d: decoder logits differ from serving at %d (%d vs %d values)", tc.name, seed, i, len(logits), len(slogits))
			}
		}
	}
}

// Every architecture writes a folder that fusion.Load serves, with the
// tensors HF's class has (the golden tiny checkpoints' names).
func TestSavedTensorNamesMatchHF(t *testing.T) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	for _, tc := range []struct{ arch, golden string }{
		{ArchCaption, "blip-caption"}, {ArchVQA, "blip-vqa"}, {ArchRetrieval, "blip-itm"},
	} {
		cfg := tinyConfig(VocabSize(files))
		cfg.Vision.Layers, cfg.Text.Layers = 2, 2 // as the golden checkpoints
		m, err := NewModel(tc.arch, cfg, files, 1)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := m.Save(dir, true); err != nil {
			t.Fatal(err)
		}
		got, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		want, err := checkpoint.Open(filepath.Join("../testdata/golden/e2e", tc.golden))
		if err != nil {
			t.Fatal(err)
		}
		gn, wn := map[string]bool{}, map[string]bool{}
		for _, n := range got.Names() {
			gn[n] = true
		}
		for _, n := range want.Names() {
			wn[n] = true
			if !gn[n] {
				t.Errorf("%s: saved model lacks %s", tc.arch, n)
			}
		}
		for n := range gn {
			if !wn[n] {
				t.Errorf("%s: saved model has %s, which HF's checkpoint does not", tc.arch, n)
			}
		}
		got.Close()
		want.Close()
		fm, err := fusion.Load(dir)
		if err != nil {
			t.Fatalf("%s: fusion.Load: %v", tc.arch, err)
		}
		fm.Close()
	}
}

// A few steps of each loss lower it on a fixed batch (the CI-sized
// training check), and training is deterministic.
func TestLossFalls(t *testing.T) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	for _, arch := range []string{ArchCaption, ArchVQA, ArchRetrieval} {
		run := func() []float64 {
			m, err := NewModel(arch, tinyConfig(VocabSize(files)), files, 7)
			if err != nil {
				t.Fatal(err)
			}
			opt := NewAdamW(3e-3, 0.01, 2, 12)
			var losses []float64
			for step := 0; step < 12; step++ {
				m.Params.ZeroGrad()
				var l float64
				for i := 0; i < 4; i++ {
					s := demo.NewScene(uint64(i))
					px := m.Pixels(s.Render())
					var li float64
					switch arch {
					case ArchCaption:
						li, err = m.CaptionLoss(px, s.Caption(), 0.25)
					case ArchVQA:
						qa := s.QAs()[0]
						li, err = m.VQALoss(px, qa.Question, qa.Answer, 0.25)
					default:
						li, err = m.RetrievalLoss(px, s.Caption(), s.Negatives(2, 1), 0.25, 0.1)
					}
					if err != nil {
						t.Fatal(err)
					}
					l += li
				}
				m.Params.ClipGradNorm(1)
				opt.Step(m.Params)
				losses = append(losses, l/4)
			}
			return losses
		}
		a := run()
		if !(a[len(a)-1] < 0.85*a[0]) {
			t.Errorf("%s: loss %v → %v after 12 steps, expected a fall of ≥ 15%%", arch, a[0], a[len(a)-1])
		}
		b := run()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: step %d loss %v then %v: training is not deterministic", arch, i, a[i], b[i])
			}
		}
	}
}

func TestAdamWSchedule(t *testing.T) {
	o := NewAdamW(1, 0, 10, 110)
	if r := o.Rate(0); math.Abs(r-0.1) > 1e-12 {
		t.Errorf("warm-up step 0: %g, want 0.1", r)
	}
	if r := o.Rate(9); r != 1 {
		t.Errorf("end of warm-up: %g, want 1", r)
	}
	if r := o.Rate(60); math.Abs(r-(o.MinLR+0.5*(1-o.MinLR))) > 1e-12 {
		t.Errorf("mid decay: %g", r)
	}
	if r := o.Rate(500); math.Abs(r-o.MinLR) > 1e-12 {
		t.Errorf("after the end: %g, want %g", r, o.MinLR)
	}
}

func TestClipGradNorm(t *testing.T) {
	ps := NewParams()
	p := ps.add("w", []int{2}, Const(0), false)
	p.G[0], p.G[1] = 3, 4
	if n := ps.ClipGradNorm(1); n != 5 {
		t.Fatalf("norm %g, want 5", n)
	}
	if math.Abs(float64(p.G[0])-0.6) > 1e-5 || math.Abs(float64(p.G[1])-0.8) > 1e-5 {
		t.Fatalf("clipped gradient %v, want [0.6 0.8]", p.G)
	}
}

func TestF16RoundTrip(t *testing.T) {
	for _, v := range []float32{0, 1, -2.5, 65504, 1e-5, 6e-8, 0.1, -0.333} {
		got := f16ToF32(f32ToF16(v))
		if math.Abs(float64(got-v)) > math.Abs(float64(v))*1e-3+6e-8 {
			t.Errorf("f16(%g) = %g", v, got)
		}
	}
	if !math.IsInf(float64(f16ToF32(f32ToF16(1e6))), 1) {
		t.Error("1e6 does not overflow to +Inf")
	}
}

// Two workers give the same losses on every run, and the same as one
// worker up to float32 summation order.
func TestWorkersDeterministic(t *testing.T) {
	run := func(workers int) []float64 {
		files := WordPieceFiles(demo.Words(), demo.Size, 32)
		cfg := tinyConfig(VocabSize(files))
		o := DemoOptions{Out: t.TempDir(), Seed: 3, CaptionSteps: 4, Batch: 4, LR: 1e-3, Config: &cfg, Only: "caption", Workers: workers}
		res, err := TrainDemo(o)
		if err != nil {
			t.Fatal(err)
		}
		return res.Losses["caption"]
	}
	a, b, one := run(2), run(2), run(1)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d: %v then %v with 2 workers", i, a[i], b[i])
		}
		if math.Abs(a[i]-one[i]) > 1e-4*math.Abs(one[i]) {
			t.Fatalf("step %d: %v with 2 workers, %v with 1", i, a[i], one[i])
		}
	}
}

// Every caption, question and answer of the world tokenizes without
// [UNK], and decodes back to the same text.
func TestWorldVocabulary(t *testing.T) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	m, err := NewModel(ArchCaption, tinyConfig(VocabSize(files)), files, 1)
	if err != nil {
		t.Fatal(err)
	}
	unk := m.Tok.Special().UNK
	for seed := uint64(0); seed < 200; seed++ {
		s := demo.NewScene(seed)
		texts := []string{s.Caption()}
		for _, qa := range s.QAs() {
			texts = append(texts, qa.Question, qa.Answer)
		}
		texts = append(texts, s.Negatives(3, 1)...)
		for _, text := range texts {
			ids := m.Encode(text)
			for _, id := range ids {
				if id == unk {
					t.Fatalf("%q has an unknown word: %v", text, ids)
				}
			}
			if len(ids) > m.Cfg.Text.MaxPositions {
				t.Fatalf("%q is %d tokens", text, len(ids))
			}
			if got := m.Tok.Decode(ids, true); got != text {
				t.Fatalf("decode(encode(%q)) = %q", text, got)
			}
		}
	}
}

// A schedule runs its stages in order, each with a fresh optimiser (its
// own warm-up) and new scenes, and stops a stage at Stop; the default
// schedule is the documented chain of the shipped models.
func TestStages(t *testing.T) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	cfg := tinyConfig(VocabSize(files))
	sc := Schedule{Caption: []Stage{{Steps: 3, LR: 1e-3}, {Steps: 4, LR: 2e-3, Stop: 2}}}
	var log strings.Builder
	o := DemoOptions{Out: t.TempDir(), Seed: 3, Schedule: &sc, Batch: 2, Config: &cfg, Only: "caption", Workers: 1, Log: &log, LogEvery: 1}
	res, err := TrainDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Losses["caption"]); n != 5 {
		t.Fatalf("%d steps, want 3 + 2", n)
	}
	for _, want := range []string{"stage 1/2 (3 steps @ 0.001) step 1/3 loss", "stage 2/2 (2 steps @ 0.002) step 1/2 loss"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	// The second stage restarts the schedule: after the first stage decayed,
	// its first step runs at its own peak (warm-up of 1 step).
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "stage 1/2 (3 steps @ 0.001) step 3/3") && !strings.Contains(line, "lr 5.25e-04") {
			t.Errorf("first stage's last step is not half-way down its cosine: %s", line)
		}
		if strings.Contains(line, "stage 2/2 (2 steps @ 0.002) step 1/2") && !strings.Contains(line, "lr 2.00e-03") {
			t.Errorf("second stage does not restart at its peak rate: %s", line)
		}
	}
	d := DefaultDemoOptions("x")
	for _, tc := range []struct {
		name       string
		got, steps int
	}{
		{"caption", d.CaptionSteps, 3000 + 4000 + 4000 + 3000},
		{"vqa", d.VQASteps, 3000 + 4000 + 4000},
		{"retrieval", d.RetrievalSteps, 2500 + 2000 + 2000},
	} {
		if tc.got != tc.steps {
			t.Errorf("default %s schedule has %d steps, the documented chain %d", tc.name, tc.got, tc.steps)
		}
	}
	if d.Schedule == nil || d.Schedule.Caption[3].Stop != 3000 {
		t.Errorf("default schedule %+v", d.Schedule)
	}
}

// --retrieval-text-from-caption starts the retrieval text encoder from
// the captioner's text decoder body.
func TestRetrievalTextFromCaption(t *testing.T) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	cfg := tinyConfig(VocabSize(files))
	capm, err := NewModel(ArchCaption, cfg, files, 4)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := capm.Save(filepath.Join(dir, "cap"), false); err != nil {
		t.Fatal(err)
	}
	for _, from := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprint(from))
		o := DemoOptions{Out: out, Seed: 3, Batch: 2, Config: &cfg, Only: "retrieval", CaptionDir: filepath.Join(dir, "cap"), Workers: 1, RetrievalTextFromCaption: from}
		if _, err := TrainDemo(o); err != nil {
			t.Fatal(err)
		}
		ret, err := Load(filepath.Join(out, "retrieval"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range ret.Params.List() {
			rest, ok := strings.CutPrefix(p.Name, "text_encoder.")
			if !ok {
				continue
			}
			q := capm.Params.Get("text_decoder.bert." + rest)
			if q == nil {
				t.Fatalf("captioner has no text_decoder.bert.%s", rest)
			}
			if !from && len(p.Shape) < 2 { // constant-initialised norms and biases agree anyway
				continue
			}
			if same := sameBits(p.W, q.W) < 0; same != from {
				t.Errorf("from caption %v: %s equal to the captioner's: %v", from, p.Name, same)
			}
			n++
		}
		if n < 10 {
			t.Fatalf("%d text_encoder tensors", n)
		}
	}
}
