package models

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	_ "github.com/glimpse-vlm/glimpse/fusion/blip"
)

func TestExtractDemoLoads(t *testing.T) {
	root := t.TempDir()
	dir, err := ExtractDemo(root)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ExtractDemo(root)
	if err != nil || again != dir {
		t.Fatalf("second extraction: %q, %v; want %q", again, err, dir)
	}
	want := map[string]string{"caption": "BlipForConditionalGeneration", "vqa": "BlipForQuestionAnswering", "retrieval": "BlipForImageTextRetrieval"}
	total := int64(0)
	for _, n := range DemoNames {
		m, err := fusion.Load(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if a := m.Info().Architecture; a != want[n] {
			t.Errorf("%s: architecture %s, want %s", n, a, want[n])
		}
		m.Close()
		st, err := os.Stat(filepath.Join(dir, n, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if total > 20<<20 {
		t.Errorf("demo weights take %d bytes, the budget is 20 MB", total)
	}
}
