package weights

import (
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

// TestCopyParams: only the prefix's tensors are copied (not aliased), with
// zeroed gradients, and Checkpoint serves the current weights.
func TestCopyParams(t *testing.T) {
	src := []float32{1, 2, 3, 4}
	ck := checkpoint.FromFloat32(map[string]checkpoint.MemTensor{
		"a.w": {Shape: []int{2, 2}, Data: src},
		"b.w": {Shape: []int{1}, Data: []float32{9}},
	})
	p, err := CopyParams(ck, "a.")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.W) != 1 || p.Weight("b.w") != nil {
		t.Fatalf("copied %d tensors, want only a.w", len(p.W))
	}
	p.W["a.w"][0] = 7
	if src[0] != 1 {
		t.Fatal("CopyParams aliased the checkpoint's data")
	}
	if g := p.Grad("a.w"); len(g) != 4 || g[0] != 0 {
		t.Fatalf("gradient %v, want 4 zeros", g)
	}
	got, err := p.Checkpoint().Float32("a.w", 2, 2)
	if err != nil || got[0] != 7 {
		t.Fatalf("Checkpoint().Float32 = %v, %v; want the current weights", got, err)
	}
}
