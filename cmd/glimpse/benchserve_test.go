package main

import (
	"bytes"
	"image/png"
	"math/rand/v2"
	"testing"
)

// TestUniqueImage: the benchmark's unique images decode to the same pixels
// as their base image, and their bytes differ for every serial number.
func TestUniqueImage(t *testing.T) {
	base := noisePNG(rand.New(rand.NewPCG(3, 4)), 24)
	want, err := png.Decode(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{string(base): true}
	for n := int64(1); n <= 3; n++ {
		u := uniqueImage(base, n)
		if seen[string(u)] {
			t.Fatalf("serial %d: bytes seen before", n)
		}
		seen[string(u)] = true
		got, err := png.Decode(bytes.NewReader(u))
		if err != nil {
			t.Fatalf("serial %d: %v", n, err)
		}
		for y := 0; y < 24; y++ {
			for x := 0; x < 24; x++ {
				if got.At(x, y) != want.At(x, y) {
					t.Fatalf("serial %d: pixel (%d,%d) = %v, want %v", n, x, y, got.At(x, y), want.At(x, y))
				}
			}
		}
	}
}
