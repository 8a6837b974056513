package weights

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

// writeSafetensors writes F32 tensors (name → shape, values) as a
// safetensors file in dir.
func writeSafetensors(t *testing.T, dir string, names []string, shapes [][]int, vals [][]float32) {
	t.Helper()
	hdr := map[string]any{}
	var data []byte
	for i, n := range names {
		begin := len(data)
		for _, v := range vals[i] {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
		hdr[n] = map[string]any{"dtype": "F32", "shape": shapes[i], "data_offsets": []int{begin, len(data)}}
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	for (8+len(h))%8 != 0 {
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), data...)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadFromFileEvicts binds layers from a mapped file (the binder drops
// the file's pages of what it packed or copied) and checks that they
// compute exactly what layers built from in-memory copies compute, and that
// the checkpoint still returns the original values afterwards.
func TestLoadFromFileEvicts(t *testing.T) {
	const out, in = 96, 160 // weights span several pages
	w1, w2, b1, b2 := make([]float32, out*in), make([]float32, out*in), make([]float32, out), make([]float32, out)
	for i := range w1 {
		w1[i], w2[i] = float32(i%17)*0.125-1, float32(i%29)*-0.0625+0.5
	}
	for i := range b1 {
		b1[i], b2[i] = float32(i)*0.01, -float32(i)*0.02
	}
	dir := t.TempDir()
	writeSafetensors(t, dir, []string{"m.p.weight", "m.p.bias", "m.q.weight", "m.q.bias"},
		[][]int{{out, in}, {out}, {out, in}, {out}}, [][]float32{w1, b1, w2, b2})
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	b := &Binder{Ck: ck, Prefix: "m.", Model: "test"}
	lin, err := b.Linear("p", out, in, true)
	if err != nil {
		t.Fatal(err)
	}
	fused, err := b.Fused([]string{"p", "q"}, out, in)
	if err != nil {
		t.Fatal(err)
	}
	bias, err := b.Tensor("q.bias", out)
	if err != nil {
		t.Fatal(err)
	}
	refLin := kernels.NewLinear(slices.Clone(w1), out, in, slices.Clone(b1))
	refFused := kernels.NewLinear(append(slices.Clone(w1), w2...), 2*out, in, append(slices.Clone(b1), b2...))
	x := make([]float32, 3*in)
	for i := range x {
		x[i] = float32(i%11) - 5
	}
	for _, tc := range []struct {
		name     string
		got, ref *kernels.Linear
	}{{"linear", lin, refLin}, {"fused", fused, refFused}} {
		y1, y2 := make([]float32, 3*tc.ref.Out()), make([]float32, 3*tc.ref.Out())
		tc.got.Forward(y1, x, 3, kernels.ActNone)
		tc.ref.Forward(y2, x, 3, kernels.ActNone)
		if !slices.Equal(y1, y2) {
			t.Fatalf("%s: output from the file differs from the in-memory reference", tc.name)
		}
	}
	if !slices.Equal(bias, b2) {
		t.Fatal("copied bias differs")
	}
	for i, n := range []string{"m.p.weight", "m.q.weight"} {
		v, err := ck.Float32(n, out, in)
		if err != nil || !slices.Equal(v, [][]float32{w1, w2}[i]) {
			t.Fatalf("%s after eviction: values differ (%v)", n, err)
		}
	}
}
