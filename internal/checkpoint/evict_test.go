package checkpoint

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestEvictKeepsValues drops the pages of every tensor of every golden
// checkpoint and checks that reading them again (through the same slices
// and through new Float32 calls) gives exactly the values read before.
func TestEvictKeepsValues(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/golden/*/model.safetensors")
	if len(dirs) == 0 {
		t.Fatal("no golden models found")
	}
	for _, p := range dirs {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			c, err := Open(filepath.Dir(p))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			views := map[string][]float32{}
			copies := map[string][]float32{}
			for _, n := range c.Names() {
				if c.Dtype(n) != "F32" {
					continue
				}
				v, err := c.Float32(n)
				if err != nil {
					t.Fatal(err)
				}
				views[n], copies[n] = v, slices.Clone(v)
			}
			if len(views) == 0 {
				t.Fatal("no F32 tensors")
			}
			i := 0
			for n := range views { // half one by one, then all
				if i%2 == 0 {
					c.Evict(n)
				}
				i++
			}
			c.EvictAll()
			c.Evict("no such tensor")
			for n, want := range copies {
				if !equalBits(views[n], want) {
					t.Fatalf("%s: the slice read before Evict changed", n)
				}
				again, err := c.Float32(n)
				if err != nil || !equalBits(again, want) {
					t.Fatalf("%s: Float32 after Evict differs (%v)", n, err)
				}
			}
		})
	}
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// rssFileKB is RssFile from /proc/self/status (resident file-backed
// pages), or -1 where unavailable.
func rssFileKB() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssFile:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return -1
}

// TestEvictReleasesPages reads a 16 MiB tensor through the mapping (its
// pages become resident in the process) and checks that Evict gives them
// back: RSS is not timing, so the drop is asserted.
func TestEvictReleasesPages(t *testing.T) {
	if runtime.GOOS != "linux" || !mapsFiles {
		t.Skip("needs Linux's /proc and mapped files")
	}
	const n = 4 << 20 // floats: 16 MiB
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i%1000) - 500
	}
	dir := t.TempDir()
	writeFile(t, dir, "model.safetensors", buildFile([]stTensor{{"big", "F32", []int{n}, f32Bytes(vals...)}}, 0))
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Float32("big", n)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, x := range v { // fault every page in
		sum += float64(x)
	}
	before := rssFileKB()
	if before < 0 {
		t.Skip("no RssFile in /proc/self/status")
	}
	c.Evict("big")
	after := rssFileKB()
	if drop := before - after; drop < 12<<10 {
		t.Fatalf("RssFile went from %d kB to %d kB after Evict: want a drop of about 16 MiB", before, after)
	}
	var sum2 float64
	for _, x := range v {
		sum2 += float64(x)
	}
	if sum2 != sum {
		t.Fatalf("values changed after Evict: sum %v, was %v", sum2, sum)
	}
}

func TestFromFunc(t *testing.T) {
	calls := 0
	fill := func(dst []float32) {
		calls++
		for i := range dst {
			dst[i] = float32(i) * 0.5
		}
	}
	c := FromFunc(map[string]GenTensor{
		"w":     {Shape: []int{2, 3}, Fill: fill},
		"empty": {Shape: []int{0, 4}, Fill: fill},
		"neg":   {Shape: []int{-1}, Fill: fill},
		"nofn":  {Shape: []int{2}},
	})
	a, err := c.Float32("w", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 0.5, 1, 1.5, 2, 2.5}; !slices.Equal(a, want) {
		t.Fatalf("w = %v, want %v", a, want)
	}
	b, _ := c.Float32("w")
	if &a[0] == &b[0] || !slices.Equal(a, b) || calls != 2 {
		t.Fatalf("second call: want a new slice with the same values, generated again (calls %d)", calls)
	}
	if _, err := c.Float32("w", 3, 2); err == nil {
		t.Fatal("wrong shape accepted")
	}
	if v, err := c.Float32("empty"); err != nil || len(v) != 0 {
		t.Fatalf("empty = %v, %v", v, err)
	}
	_, err = c.Float32("neg")
	wantErr(t, err, `"neg"`, "negative")
	_, err = c.Float32("nofn")
	wantErr(t, err, `"nofn"`, "no Fill")
	if !c.Has("w") || !slices.Equal(c.Shape("w"), []int{2, 3}) || c.Dtype("w") != "F32" {
		t.Fatal("accessors")
	}
	c.Evict("w") // nothing to drop, no effect
	if v, _ := c.Float32("w"); !slices.Equal(v, a) {
		t.Fatal("values changed after Evict")
	}
}
