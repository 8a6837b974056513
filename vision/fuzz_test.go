package vision

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

var fuzzLimits = Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20}

// fuzzProcessors are small processors exercising every resample filter and the crop padding.
var fuzzProcessors = func() []*Processor {
	var ps []*Processor
	for r := 0; r <= 5; r++ {
		for _, cfg := range []string{
			`{"image_processor_type": "CLIPImageProcessor", "size": 12, "crop_size": 10, "resample": %d}`,
			`{"image_processor_type": "BlipImageProcessor", "size": {"height": 9, "width": 17}, "resample": %d}`,
		} {
			p, err := NewProcessor([]byte(fmt.Sprintf(cfg, r)))
			if err != nil {
				panic(err)
			}
			ps = append(ps, p)
		}
	}
	return ps
}()

// FuzzDecode: bytes → Decode (small limits) → Preprocess. No panics (also none recovered inside
// Decode), no hangs, every error typed, every image consistent.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Watchdog: an input that takes more than 10 s is a hang; fail with every stack so the
		// fuzzer records the input and we see where it spins.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				panic(fmt.Sprintf("FuzzDecode: input of %d bytes still running after 10 s:\n%s", len(data), buf[:n]))
			}
		}()
		if SniffFormat(data) == FormatJPEG { // Decode would hide a panic behind the image/jpeg fallback
			if _, err := safeDecodeJPEG(data, fuzzLimits.MaxPixels); errors.Is(err, errDecoderPanic) {
				t.Fatalf("JPEG decoder panicked: %v", err)
			}
		}
		img, err := Decode(data, fuzzLimits)
		if err != nil {
			if errors.Is(err, errDecoderPanic) {
				t.Fatalf("decoder panicked: %v", err)
			}
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if img.W <= 0 || img.H <= 0 || int64(img.W)*int64(img.H) > fuzzLimits.MaxPixels || len(img.Pix) != 3*img.W*img.H {
			t.Fatalf("inconsistent image %d×%d with %d bytes", img.W, img.H, len(img.Pix))
		}
		sum := sha256.Sum256(data)
		p := fuzzProcessors[int(sum[0])%len(fuzzProcessors)]
		out := p.Preprocess(img)
		if h, w := p.OutputSize(); len(out) != 3*h*w {
			t.Fatalf("%s: %d values, want 3×%d×%d", p.Class, len(out), h, w)
		}
	})
}

// fuzzSeeds returns the small test photos, the Pillow reference variants, and truncated / bit-
// flipped versions of them.
func fuzzSeeds(t testing.TB) [][]byte {
	var files []string
	for _, name := range []string{"tiny_8x8.png", "video-001.cmyk.jpeg", "astronaut.webp", "cat_chelsea.truncated.jpg", "video-001.bmp", "video-001.tiff"} {
		files = append(files, filepath.Join(imagesDir, name))
	}
	more, _ := filepath.Glob(filepath.Join(pilrefDir, "in", "*"))
	files = append(files, more...)
	var seeds [][]byte
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
		if i%3 == 0 {
			seeds = append(seeds, b[:len(b)/2])
		}
		if i%4 == 1 && len(b) > 64 {
			c := append([]byte(nil), b...)
			c[len(c)/3] ^= 0x5a
			c[len(c)/2] ^= 0x01
			seeds = append(seeds, c)
		}
	}
	return seeds
}

// TestWriteFuzzSeeds writes fuzzSeeds as corpus files under testdata/fuzz/FuzzDecode (run with
// GLIMPSE_WRITE_FUZZ_SEEDS=1); the committed corpus is then replayed by every `go test`.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("GLIMPSE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set GLIMPSE_WRITE_FUZZ_SEEDS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range fuzzSeeds(t) {
		name := fmt.Sprintf("seed-%x", sha256.Sum256(s))[:21]
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
