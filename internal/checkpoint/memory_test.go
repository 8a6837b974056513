package checkpoint

import "testing"

func TestFromFloat32RoundTrip(t *testing.T) {
	c := FromFloat32(map[string]MemTensor{"w": {Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 4, 5, -6}}})
	got, err := c.Float32("w", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, -2, 3.5, 4, 5, -6}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d = %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := c.Float32("w", 3, 2); err == nil {
		t.Fatal("wrong shape accepted")
	}
	if _, err := c.Float32("missing"); err == nil {
		t.Fatal("missing tensor accepted")
	}
}
