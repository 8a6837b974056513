package weights

import (
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

func binder() *Binder {
	ck := checkpoint.FromFloat32(map[string]checkpoint.MemTensor{
		"m.a.weight":  {Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		"m.a.bias":    {Shape: []int{2}, Data: []float32{10, 20}},
		"m.b.weight":  {Shape: []int{2, 3}, Data: []float32{-1, 0, 1, 0, 1, 0}},
		"m.b.bias":    {Shape: []int{2}, Data: []float32{-5, 5}},
		"m.c.weight":  {Shape: []int{3, 2}, Data: []float32{1, 4, 2, 5, 3, 6}}, // Conv1D [in, out] = a.weightᵀ
		"m.c.bias":    {Shape: []int{2}, Data: []float32{10, 20}},
		"m.ln.weight": {Shape: []int{3}, Data: []float32{1, 1, 1}},
		"m.ln.bias":   {Shape: []int{3}, Data: []float32{0, 0, 0}},
	})
	return &Binder{Ck: ck, Prefix: "m.", Model: "test", Config: "config hidden_size=3"}
}

func forward(l *kernels.Linear, x []float32) []float32 {
	y := make([]float32, l.Out())
	l.Forward(y, x, 1, kernels.ActNone)
	return y
}

func TestLayers(t *testing.T) {
	b := binder()
	x := []float32{1, -1, 2}
	lin, err := b.Linear("a", 2, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := b.Conv1D("c", 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	fused, err := b.Fused([]string{"a", "b"}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	noBias, err := b.Linear("a", 2, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  []float32
		want []float32
	}{
		{"linear", forward(lin, x), []float32{1 - 2 + 6 + 10, 4 - 5 + 12 + 20}},
		{"conv1d", forward(conv, x), []float32{15, 31}},
		{"fused a|b", forward(fused, x), []float32{15, 31, -1 + 2 - 5, -1 + 5}},
		{"no bias", forward(noBias, x), []float32{5, 11}},
	}
	for _, tc := range tests {
		if len(tc.got) != len(tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
		for i := range tc.want {
			if tc.got[i] != tc.want[i] {
				t.Fatalf("%s: %v, want %v", tc.name, tc.got, tc.want)
			}
		}
	}
	g, be, err := b.Norm("ln", 3)
	if err != nil || len(g) != 3 || len(be) != 3 {
		t.Fatalf("Norm: %v %v %v", g, be, err)
	}
	// Tensor copies: writing it leaves the checkpoint as it was.
	w, _ := b.Tensor("a.weight", 2, 3)
	w[0] = 99
	if v, _ := b.View("a.weight", 2, 3); v[0] != 1 {
		t.Fatalf("Tensor did not copy: the checkpoint now has %v", v[0])
	}
}

func TestErrors(t *testing.T) {
	b := binder()
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"missing", func() error { _, err := b.Tensor("zz.weight", 4); return err }(), []string{"test: missing tensor \"m.zz.weight\"", "[4]", "prefix \"m.\""}},
		{"wrong shape", func() error { _, err := b.Linear("a", 3, 3, true); return err }(), []string{"test (config hidden_size=3)", "m.a.weight", "[2 3]"}},
		{"fused part missing", func() error { _, err := b.Fused([]string{"a", "q"}, 2, 3); return err }(), []string{"m.q.weight"}},
		{"norm width", func() error { _, _, err := b.Norm("ln", 4); return err }(), []string{"m.ln.weight"}},
	}
	for _, tc := range tests {
		if tc.err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		for _, w := range tc.want {
			if !strings.Contains(tc.err.Error(), w) {
				t.Errorf("%s: %q does not contain %q", tc.name, tc.err, w)
			}
		}
	}
}
