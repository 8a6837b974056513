package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/demo"
	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

func writeData(t *testing.T, dir string, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("s%d.png", i)
		if err := demo.WritePNG(uint64(i), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		s := demo.NewScene(uint64(i))
		fmt.Fprintf(&b, "{\"image\": %q, \"caption\": %q}\n", name, s.Caption())
		qa := s.QAs()[0]
		fmt.Fprintf(&b, "{\"image\": %q, \"question\": %q, \"answer\": %q}\n", name, qa.Question, qa.Answer)
	}
	p := filepath.Join(dir, "data.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFinetune(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, 4)
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	for _, arch := range []string{ArchCaption, ArchVQA, ArchRetrieval} {
		m, err := NewModel(arch, tinyConfig(VocabSize(files)), files, 2)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(dir, "base-"+arch)
		if err := m.Save(base, true); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out-"+arch)
		steps := 30
		losses, err := Finetune(FinetuneOptions{Base: base, Data: data, Out: out, Steps: steps, Batch: 4, LR: 3e-3, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		mean := func(x []float64) float64 {
			var s float64
			for _, v := range x {
				s += v
			}
			return s / float64(len(x))
		}
		// Retrieval against other images' captions needs far more steps to
		// ground at this size; TestLossFalls covers its learning.
		if first, last := mean(losses[:5]), mean(losses[len(losses)-5:]); arch != ArchRetrieval && !(last < 0.9*first) {
			t.Errorf("%s: fine-tuning loss (mean of 5 steps) %v → %v did not fall by 10%%", arch, first, last)
		}
		for i, l := range losses {
			if math.IsNaN(l) || math.IsInf(l, 0) {
				t.Fatalf("%s: step %d loss %v", arch, i, l)
			}
		}
		fm, err := fusion.Load(out)
		if err != nil {
			t.Fatalf("%s: the fine-tuned folder does not load: %v", arch, err)
		}
		fm.Close()
	}
}

func TestFinetuneErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"image\": \"x.png\"}\n"), 0o644)
	if _, err := ReadRecords(bad); err == nil || !strings.Contains(err.Error(), "caption") {
		t.Errorf("record without text: %v", err)
	}
	os.WriteFile(bad, []byte("not json\n"), 0o644)
	if _, err := ReadRecords(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad JSON: %v", err)
	}
	var out, errb bytes.Buffer
	if code := RunFinetune([]string{"--base", dir}, &out, &errb); code != 2 {
		t.Errorf("missing --data: exit %d, want 2", code)
	}
	if code := RunFinetune([]string{"--base", dir, "--data", bad, "--out", dir}, &out, &errb); code != 1 {
		t.Errorf("base without config.json: exit %d, want 1", code)
	}
}

// The train demo command writes three folders that load (a few steps, so
// the CI can run it).
func TestRunTrainDemoSmall(t *testing.T) {
	out := t.TempDir()
	var so, se bytes.Buffer
	code := RunTrainDemo([]string{"--out", out, "--caption-steps", "2", "--vqa-steps", "2", "--retrieval-steps", "2", "--batch", "2", "--log-every", "1"}, &so, &se)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	for _, n := range []string{"caption", "vqa", "retrieval"} {
		m, err := fusion.Load(filepath.Join(out, n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		m.Close()
	}
	// demo eval runs the three folders through the serving code.
	so.Reset()
	if code := demo.RunEval([]string{"--models", out, "--scenes", "3", "--json"}, &so, &se); code != 0 {
		t.Fatalf("demo eval: exit %d: %s", code, se.String())
	}
	var rep map[string]float64
	if err := json.Unmarshal(so.Bytes(), &rep); err != nil {
		t.Fatalf("demo eval --json printed %q: %v", so.String(), err)
	}
	for _, k := range []string{"caption_all_attributes_correct", "vqa_exact", "match_top1"} {
		if v, ok := rep[k]; !ok || v < 0 || v > 1 {
			t.Errorf("%s = %v (present %v), want a fraction", k, v, ok)
		}
	}
	if rep["scenes"] != 3 {
		t.Errorf("scenes = %v, want 3", rep["scenes"])
	}
	if code := RunTrainDemo([]string{"--only", "nope", "--out", out}, &so, &se); code != 2 {
		t.Fatalf("bad --only: exit %d", code)
	}
}

// Fine-tuning works on checkpoint folders written by Hugging Face itself
// (save_pretrained of the model and its processor: the tiny e2e BLIP
// folders): a few steps lower the loss on a fixed batch, and the result
// loads through the serving loader with every tensor of the base, changed.
func TestFinetuneHFCheckpoint(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ golden, records string }{
		{"blip-caption", `{"image": %q, "caption": "a cat lying on a couch"}` + "\n" + `{"image": %q, "caption": "a red rose in the sun"}`},
		{"blip-vqa", `{"image": %q, "question": "what animal is this?", "answer": "cat"}` + "\n" + `{"image": %q, "question": "what color is the rose?", "answer": "yellow"}`},
		{"blip-itm", `{"image": %q, "caption": "a cat lying on a couch"}` + "\n" + `{"image": %q, "caption": "a yellow rose"}`},
	} {
		base := filepath.Join("../testdata/golden/e2e", tc.golden)
		cat, _ := filepath.Abs("../testdata/golden/e2e/blip-caption/cat_chelsea.jpg")
		rose, _ := filepath.Abs("../testdata/golden/e2e/blip-caption/yellow_rose_alpha.png")
		data := filepath.Join(dir, tc.golden+".jsonl")
		if err := os.WriteFile(data, []byte(fmt.Sprintf(tc.records, cat, rose)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out-"+tc.golden)
		losses, err := Finetune(FinetuneOptions{Base: base, Data: data, Out: out, Steps: 12, Batch: 2, LR: 2e-3, Seed: 1})
		if err != nil {
			t.Fatalf("%s: %v", tc.golden, err)
		}
		if first, last := losses[0]+losses[1], losses[10]+losses[11]; !(last < first) {
			t.Errorf("%s: loss %v → %v over 12 steps on two records", tc.golden, first/2, last/2)
		}
		fm, err := fusion.Load(out)
		if err != nil {
			t.Fatalf("%s: the fine-tuned folder does not load: %v", tc.golden, err)
		}
		fm.Close()
		bck, err := checkpoint.Open(base)
		if err != nil {
			t.Fatal(err)
		}
		ock, err := checkpoint.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for _, n := range bck.Names() {
			if !ock.Has(n) {
				t.Errorf("%s: fine-tuned folder lacks %s", tc.golden, n)
				continue
			}
			a, _ := bck.Float32(n)
			b, err := ock.Float32(n, bck.Shape(n)...)
			if err != nil {
				t.Errorf("%s: %v", tc.golden, err)
				continue
			}
			if sameBits(a, b) >= 0 {
				changed++
			}
		}
		if changed < len(bck.Names())/2 {
			t.Errorf("%s: only %d of %d tensors changed", tc.golden, changed, len(bck.Names()))
		}
		bck.Close()
		ock.Close()
	}
}
