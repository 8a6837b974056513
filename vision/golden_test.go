package vision

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

const (
	imagesDir = "../testdata/images"
	goldenDir = "../testdata/golden/preprocess"
)

// goldenImages lists every decodable photo with a golden; key is the golden tensor name.
var goldenImages = []struct {
	key, file string
	loadImage bool // through transformers' load_image (EXIF orientation applied)
	lossless  bool // decode must be exact
}{
	{"cat_chelsea_jpg", "cat_chelsea.jpg", false, false},
	{"rocket_jpg", "rocket.jpg", false, false},
	{"astronaut_exif_orientation6_jpg", "astronaut_exif_orientation6.jpg", false, false},
	{"astronaut_exif_orientation6_jpg__load_image", "astronaut_exif_orientation6.jpg", true, false},
	{"camera_gray_jpg", "camera_gray.jpg", false, false},
	{"video-001_cmyk_jpeg", "video-001.cmyk.jpeg", false, false},
	{"yellow_rose_alpha_png", "yellow_rose_alpha.png", false, true},
	{"coffee_paletted_gif", "coffee_paletted.gif", false, true},
	{"wide_2048x64_png", "wide_2048x64.png", false, true},
	{"tiny_8x8_png", "tiny_8x8.png", false, true},
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeFor(t testing.TB, file string, loadImage bool) *RGB {
	t.Helper()
	data := readFile(t, filepath.Join(imagesDir, file))
	var img *RGB
	var err error
	if loadImage {
		img, err = Decode(data, DefaultLimits())
	} else {
		img, err = DecodeNoOrient(data, DefaultLimits())
	}
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return img
}

func goldenRGB(t testing.TB, c *checkpoint.Checkpoint, key string) *RGB {
	t.Helper()
	pix, shape, err := c.Uint8(key)
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 3 || shape[2] != 3 {
		t.Fatalf("%s: golden shape %v, want [H W 3]", key, shape)
	}
	return &RGB{W: shape[1], H: shape[0], Pix: pix}
}

func openGolden(t testing.TB, name string) *checkpoint.Checkpoint {
	t.Helper()
	c, err := checkpoint.OpenFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// diffU8 returns max and mean |a−b| over the bytes, and how many differ.
func diffU8(a, b []uint8) (maxD int, meanD float64, n int) {
	sum := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		if d > 0 {
			n++
		}
		sum += d
		maxD = max(maxD, d)
	}
	return maxD, float64(sum) / float64(len(a)), n
}

func TestDecodeMatchesPIL(t *testing.T) {
	c := openGolden(t, "decoded.safetensors")
	for _, tc := range goldenImages {
		t.Run(tc.key, func(t *testing.T) {
			got := decodeFor(t, tc.file, tc.loadImage)
			want := goldenRGB(t, c, tc.key)
			if got.W != want.W || got.H != want.H {
				t.Fatalf("decoded %d×%d, PIL %d×%d", got.W, got.H, want.W, want.H)
			}
			maxD, meanD, n := diffU8(got.Pix, want.Pix)
			t.Logf("decode %-45s max|Δ| %2d levels, mean|Δ| %.4f, %5.2f%% of values differ", tc.key, maxD, meanD, 100*float64(n)/float64(len(got.Pix)))
			if tc.lossless && maxD != 0 {
				t.Errorf("lossless format differs from PIL: max |Δ| %d", maxD)
			}
			// JPEG: Go's IDCT is not libjpeg's islow; chroma upsampling and colour conversion
			// are libjpeg's, so differences stay small.
			if !tc.lossless && (maxD > 8 || meanD > 0.6) {
				t.Errorf("JPEG decode too far from PIL: max %d mean %.4f", maxD, meanD)
			}
		})
	}
}

type goldenProc struct {
	name string // blip, vit, clip
	proc *Processor
	u8   *checkpoint.Checkpoint
}

func loadGoldenProcs(t testing.TB) []goldenProc {
	t.Helper()
	var out []goldenProc
	for _, name := range []string{"blip", "vit", "clip"} {
		var meta struct {
			Processor struct {
				Class     string          `json:"class"`
				Effective json.RawMessage `json:"effective"`
			} `json:"processor"`
		}
		if err := json.Unmarshal(readFile(t, filepath.Join(goldenDir, name+".json")), &meta); err != nil {
			t.Fatal(err)
		}
		p, err := NewProcessor(meta.Processor.Effective)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Class != meta.Processor.Class {
			t.Fatalf("%s: class %q, want %q", name, p.Class, meta.Processor.Class)
		}
		out = append(out, goldenProc{name, p, openGolden(t, name+".u8.safetensors")})
	}
	return out
}

// TestResizeExactOnPILPixels feeds PIL's own decoded pixels to Resize: the resampler alone must
// reproduce PIL bit for bit.
func TestResizeExactOnPILPixels(t *testing.T) {
	dec := openGolden(t, "decoded.safetensors")
	for _, gp := range loadGoldenProcs(t) {
		for _, tc := range goldenImages {
			t.Run(gp.name+"/"+tc.key, func(t *testing.T) {
				got := gp.proc.Resize(goldenRGB(t, dec, tc.key))
				want := goldenRGB(t, gp.u8, tc.key)
				if got.W != want.W || got.H != want.H {
					t.Fatalf("resized to %d×%d, HF %d×%d", got.W, got.H, want.W, want.H)
				}
				if maxD, meanD, n := diffU8(got.Pix, want.Pix); maxD != 0 {
					t.Errorf("resampler differs from PIL: max %d mean %.5f (%d values)", maxD, meanD, n)
				}
			})
		}
	}
}

// TestPreprocessMatchesHF is the end-to-end target: file bytes → Decode → Preprocess against HF's
// pixel_values (reconstructed exactly from the golden uint8 images), max |Δ| ≤ 0.02 and
// mean |Δ| ≤ 0.002 per image and processor.
func TestPreprocessMatchesHF(t *testing.T) {
	procs := loadGoldenProcs(t)
	var report strings.Builder
	for _, gp := range procs {
		worstMax, sumMean := 0.0, 0.0
		for _, tc := range goldenImages {
			img := decodeFor(t, tc.file, tc.loadImage)
			got := gp.proc.Preprocess(img)
			wantImg := goldenRGB(t, gp.u8, tc.key)
			want := gp.proc.Normalize(wantImg)
			if h, w := gp.proc.OutputSize(); h != wantImg.H || w != wantImg.W {
				t.Fatalf("%s: OutputSize %d×%d, golden %d×%d", gp.name, h, w, wantImg.H, wantImg.W)
			}
			if len(got) != len(want) {
				t.Fatalf("%s/%s: %d values, want %d", gp.name, tc.key, len(got), len(want))
			}
			maxD, sum := 0.0, 0.0
			for i := range got {
				d := math.Abs(float64(got[i]) - float64(want[i]))
				maxD = math.Max(maxD, d)
				sum += d
			}
			meanD := sum / float64(len(got))
			lm, lmean, _ := diffU8(gp.proc.Resize(img).Pix, wantImg.Pix)
			t.Logf("%-4s %-45s max|Δ| %.5f mean|Δ| %.6f (u8: max %d, mean %.4f)", gp.name, tc.key, maxD, meanD, lm, lmean)
			if maxD > 0.02 || meanD > 0.002 {
				t.Errorf("%s/%s: max |Δ| %.5f (≤ 0.02), mean |Δ| %.6f (≤ 0.002)", gp.name, tc.key, maxD, meanD)
			}
			worstMax = math.Max(worstMax, maxD)
			sumMean += meanD
		}
		report.WriteString("\n")
		report.WriteString(gp.name)
		report.WriteString(": ")
		report.WriteString(strings.TrimSpace(strings.Join([]string{
			"worst max|Δ| " + ftoa(worstMax), "average mean|Δ| " + ftoa(sumMean/float64(len(goldenImages)))}, ", ")))
	}
	t.Log(report.String())
}

func ftoa(f float64) string { return fmt.Sprintf("%.6f", f) }
