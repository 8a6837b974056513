package train

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/demo"
)

// The estimate counts exactly the tensors a model has (auxiliary heads
// aside), and for BLIP-base's captioner it finds the weights of HF's
// 0.99 GB model.safetensors.
func TestEstimateMemory(t *testing.T) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	cfg := tinyConfig(VocabSize(files))
	for _, arch := range []string{ArchCaption, ArchVQA, ArchRetrieval} {
		m, err := NewModel(arch, cfg, files, 1)
		if err != nil {
			t.Fatal(err)
		}
		var n, vision int64
		for _, p := range m.Params.List() {
			if !p.Transient {
				n += int64(len(p.W))
				if strings.HasPrefix(p.Name, "vision_model.") {
					vision += int64(len(p.W))
				}
			}
		}
		e, err := EstimateMemory(arch, cfg, false, 10)
		if err != nil {
			t.Fatal(err)
		}
		if e.Params != n || e.Weights != 4*n || e.Moments != 8*n {
			t.Errorf("%s: estimate %+v, model has %d parameters", arch, e, n)
		}
		f, _ := EstimateMemory(arch, cfg, true, 10)
		if f.Moments != 8*(n-vision) {
			t.Errorf("%s: frozen vision: moments %d, want %d", arch, f.Moments, 8*(n-vision))
		}
		if e.Data != 10*3*int64(cfg.Vision.ImageSize*cfg.Vision.ImageSize)*4 || e.Activations <= 0 || e.Total() <= e.Weights+e.Grads+e.Moments {
			t.Errorf("%s: estimate %+v", arch, e)
		}
	}
	base := Config{
		Vision:  VisionConfig{ImageSize: 384, PatchSize: 16, Hidden: 768, Layers: 12, Heads: 12, Intermediate: 3072, Eps: 1e-5},
		Text:    TextConfig{Vocab: 30524, Hidden: 768, Layers: 12, Heads: 12, Intermediate: 3072, MaxPositions: 512, Eps: 1e-12},
		ProjDim: 256,
	}
	e, err := EstimateMemory(ArchCaption, base, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{ArchCaption, ArchVQA, ArchRetrieval} {
		for _, frozen := range []bool{false, true} {
			x, err := EstimateMemory(arch, base, frozen, 1000)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("BLIP-base %s (freeze vision %v, 1000 images): %s", arch, frozen, x)
		}
	}
	// HF's model.safetensors (0.99 GB) stores the decoder weight tied to
	// the word embeddings a second time.
	if file := e.Weights + 4*30524*768; file < 0.98e9 || file > 1.0e9 {
		t.Errorf("BLIP-base captioner weights %d bytes (+ tied decoder weight: %d), HF's model.safetensors holds 0.99 GB", e.Weights, file)
	}
}

// --max-memory refuses a run over budget before loading anything.
func TestFinetuneMaxMemory(t *testing.T) {
	dir := t.TempDir()
	data := writeData(t, dir, 2)
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	m, err := NewModel(ArchCaption, tinyConfig(VocabSize(files)), files, 2)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base")
	if err := m.Save(base, true); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var so, se bytes.Buffer
	if code := RunFinetune([]string{"--base", base, "--data", data, "--out", out, "--steps", "1", "--max-memory", "100KiB"}, &so, &se); code != 1 ||
		!strings.Contains(se.String(), "over the --max-memory budget of 100.0 KiB") {
		t.Errorf("over budget: exit %d, %q", code, se.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused run wrote %s", out)
	}
	if code := RunFinetune([]string{"--base", base, "--data", data, "--out", out, "--max-memory", "lots"}, &so, &se); code != 2 {
		t.Errorf("bad --max-memory: exit %d", code)
	}
	so.Reset()
	if code := RunFinetune([]string{"--base", base, "--data", data, "--out", out, "--steps", "1", "--max-memory", "1GiB"}, &so, &se); code != 0 ||
		!strings.Contains(so.String(), "memory estimate") {
		t.Errorf("within budget: exit %d, %q %q", code, so.String(), se.String())
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1024", 1024, true}, {"8GiB", 8 << 30, true}, {"6G", 6e9, true}, {"512mib", 512 << 20, true},
		{"1.5 GB", 1.5e9, true}, {"100KiB", 100 << 10, true}, {"lots", 0, false}, {"-1G", 0, false}, {"", 0, false},
	} {
		got, err := ParseBytes(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
