package defaultmodels

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestExtract(t *testing.T) {
	root := t.TempDir()
	ms, err := Extract(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(Names) || ms[0].Name != Default {
		t.Fatalf("models %v", ms)
	}
	for _, m := range ms {
		src := filepath.Join("..", "..", "testdata", "golden", "e2e", m.Name)
		if d, ok := demoFolders[m.Name]; ok {
			src = filepath.Join("..", "..", "models", "demo", d)
		}
		want, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(m.Dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: extracted weights differ from testdata", m.Name)
		}
		if _, err := os.Stat(filepath.Join(m.Dir, "config.json")); err != nil {
			t.Fatal(err)
		}
	}
	// A second extraction reuses the first.
	ms2, err := Extract(root)
	if err != nil || ms2[0].Dir != ms[0].Dir {
		t.Fatalf("second extract: %v %v", ms2, err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 2 { // <hash> of the tiny checkpoints and demo/
		t.Fatalf("%d entries in the cache root, want 2 (temporary folders left?)", len(entries))
	}
}
