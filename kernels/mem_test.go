package kernels

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestPackWeightMatchesPackB checks that the off-heap packing used by
// NewLinear produces exactly PackB's layout and values, on both sides of
// the off-heap size threshold, and that products through it are the same.
func TestPackWeightMatchesPackB(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		name   string
		trans  bool
		k, n   int
		minOff int // offHeapMinBytes for the case
	}{
		{"small on heap", true, 5, 7, 1 << 30},
		{"trans off heap", true, 70, 45, 64},
		{"notrans off heap", false, 33, 50, 64},
		{"ragged n", true, 129, 17, 64},
		{"k zero", true, 0, 16, 64},
		{"n zero", false, 8, 0, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(v int) { offHeapMinBytes = v }(offHeapMinBytes)
			offHeapMinBytes = tc.minOff
			ld := tc.n
			if tc.trans {
				ld = tc.k
			}
			b := make([]float32, max(tc.k*tc.n, 1))
			for i := range b {
				b[i] = rng.Float32()*2 - 1
			}
			want := PackB(tc.trans, tc.k, tc.n, b, ld)
			got := packWeight(tc.trans, tc.k, tc.n, b, ld)
			if got.K() != want.K() || got.N() != want.N() || !slices.Equal(got.data, want.data) {
				t.Fatalf("packWeight differs from PackB (k=%d n=%d)", tc.k, tc.n)
			}
			wantMapped := tc.minOff <= 4*len(want.data) && len(want.data) > 0 && weightsOffHeap
			if isMapped(got.data) != wantMapped {
				t.Fatalf("mapped = %v, want %v (%d bytes)", isMapped(got.data), wantMapped, 4*len(want.data))
			}
			if tc.k == 0 || tc.n == 0 {
				return
			}
			const m = 3
			a := make([]float32, m*tc.k)
			for i := range a {
				a[i] = rng.Float32()
			}
			c1, c2 := make([]float32, m*tc.n), make([]float32, m*tc.n)
			GemmPacked(m, 1, a, tc.k, want, 0, c1, tc.n)
			GemmPacked(m, 1, a, tc.k, got, 0, c2, tc.n)
			runtime.KeepAlive(got)
			if !slices.Equal(c1, c2) {
				t.Fatal("products through packWeight and PackB differ")
			}
		})
	}
}

// TestLinearOffHeapReleased checks that a large Linear's packed weight is
// outside the Go heap on Linux, counted by OffHeapBytes, and returned when
// the Linear becomes unreachable.
func TestLinearOffHeapReleased(t *testing.T) {
	if !weightsOffHeap {
		t.Skip("weights stay on the Go heap on this platform")
	}
	const out, in = 256, 512 // 512 KiB, above offHeapMinBytes
	w := make([]float32, out*in)
	for i := range w {
		w[i] = float32(i%13) - 6
	}
	l := NewLinear(w, out, in, nil)
	if !l.OffHeap() {
		t.Fatal("a 512 KiB weight was not placed off the heap")
	}
	if got := OffHeapBytes(); got < int64(l.W.Bytes()) {
		t.Fatalf("OffHeapBytes = %d with a %d-byte weight mapped", got, l.W.Bytes())
	}
	data := l.W.data[:1] // remembers the mapping's address, not the PackedB
	// It computes what a heap-packed layer computes.
	ref := &Linear{W: PackB(true, in, out, w, in)}
	x := make([]float32, 2*in)
	for i := range x {
		x[i] = float32(i%7) * 0.25
	}
	y1, y2 := make([]float32, 2*out), make([]float32, 2*out)
	l.Forward(y1, x, 2, ActNone)
	ref.Forward(y2, x, 2, ActNone)
	if !slices.Equal(y1, y2) {
		t.Fatal("off-heap Linear output differs from the heap-packed one")
	}
	l = nil
	// Cleanups run on their own goroutine after a collection finds the
	// Linear unreachable: collect until the mapping is gone.
	for i := 0; i < 100 && isMapped(data); i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if isMapped(data) {
		t.Fatal("the weight mapping is still live after the Linear was dropped and 100 collections")
	}
}

// TestOffHeapPacing replaces a mapped weight again and again while
// allocating almost nothing on the heap (so nothing else would prompt a
// collection) and checks that the unreachable mappings are collected as
// it goes instead of piling up.
func TestOffHeapPacing(t *testing.T) {
	if !weightsOffHeap {
		t.Skip("weights stay on the Go heap on this platform")
	}
	defer func(v int64) { offHeapPaceMin = v }(offHeapPaceMin)
	offHeapPaceMin = 4 << 20
	const out, in = 512, 512 // 1 MiB per layer
	w := make([]float32, out*in)
	base := OffHeapBytes()
	var peak int64
	var l *Linear
	for i := 0; i < 200; i++ { // 200 MiB mapped in all
		l = NewLinear(w, out, in, nil)
		peak = max(peak, OffHeapBytes()-base)
	}
	runtime.KeepAlive(l)
	// Unpaced, all 200 would still be mapped; paced, about twice the
	// threshold (cleanups run a little after each collection).
	if peak > 48<<20 {
		t.Fatalf("%d MiB of replaced weights stayed mapped (threshold 4 MiB)", peak>>20)
	}
}
