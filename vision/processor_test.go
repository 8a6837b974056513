package vision

import (
	"bytes"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewProcessorDefaultsAndLegacyKeys(t *testing.T) {
	tests := []struct {
		name                  string
		cfg                   string
		class                 string
		h, w                  int // OutputSize
		short, rh, rw, resamp int
		crop                  bool
		mean                  [3]float32
	}{
		{"blip defaults", `{"image_processor_type": "BlipImageProcessor"}`,
			"BlipImageProcessor", 384, 384, 0, 384, 384, 3, false, OpenAICLIPMean},
		{"vit defaults", `{"image_processor_type": "ViTImageProcessor"}`,
			"ViTImageProcessor", 224, 224, 0, 224, 224, 2, false, ImageNetStandardMean},
		{"clip defaults", `{"image_processor_type": "CLIPImageProcessor"}`,
			"CLIPImageProcessor", 224, 224, 224, 0, 0, 3, true, OpenAICLIPMean},
		{"legacy vit feature extractor, int size", `{"feature_extractor_type": "ViTFeatureExtractor", "size": 224, "resample": 2,
			"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_normalize": true, "do_resize": true}`,
			"ViTImageProcessor", 224, 224, 0, 224, 224, 2, false, ImageNetStandardMean},
		{"legacy clip feature extractor, int size and crop", `{"feature_extractor_type": "CLIPFeatureExtractor", "size": 336, "crop_size": 336}`,
			"CLIPImageProcessor", 336, 336, 336, 0, 0, 3, true, OpenAICLIPMean},
		{"processor_class only", `{"processor_class": "BlipProcessor", "size": {"height": 480, "width": 480}}`,
			"BlipImageProcessor", 480, 480, 0, 480, 480, 3, false, OpenAICLIPMean},
		{"clip height/width resize", `{"image_processor_type": "CLIPImageProcessor", "size": {"height": 256, "width": 320}, "crop_size": {"height": 200, "width": 240}}`,
			"CLIPImageProcessor", 200, 240, 0, 256, 320, 3, true, OpenAICLIPMean},
		{"clip use_square_size", `{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 224}, "use_square_size": true, "do_center_crop": false}`,
			"CLIPImageProcessor", 224, 224, 0, 224, 224, 3, false, OpenAICLIPMean},
		{"clip no crop: size depends on input", `{"image_processor_type": "CLIPImageProcessor", "do_center_crop": false}`,
			"CLIPImageProcessor", 0, 0, 224, 0, 0, 3, false, OpenAICLIPMean},
		{"unknown keys ignored, scalar mean", `{"image_processor_type": "BlipImageProcessor", "_valid_processor_keys": ["images"], "whatever": {"a": 1}, "image_mean": 0.25, "resample": 1}`,
			"BlipImageProcessor", 384, 384, 0, 384, 384, 1, false, [3]float32{0.25, 0.25, 0.25}},
		{"fast class name", `{"image_processor_type": "ViTImageProcessorFast"}`,
			"ViTImageProcessor", 224, 224, 0, 224, 224, 2, false, ImageNetStandardMean},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewProcessor([]byte(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			h, w := p.OutputSize()
			if p.Class != tc.class || h != tc.h || w != tc.w || p.ShortestEdge != tc.short ||
				p.ResizeHeight != tc.rh || p.ResizeWidth != tc.rw || p.Resample != tc.resamp ||
				p.DoCenterCrop != tc.crop || p.ImageMean != tc.mean {
				t.Errorf("got %+v (output %d×%d)", *p, h, w)
			}
			if !p.DoRescale || p.RescaleFactor != 1.0/255 || !p.DoNormalize || !p.DoResize {
				t.Errorf("rescale/normalize defaults lost: %+v", *p)
			}
		})
	}
}

func TestNewProcessorErrors(t *testing.T) {
	tests := []struct{ cfg, want string }{
		{`not json`, "not a JSON object"},
		{`{"size": 224}`, "processor class"},
		{`{"image_processor_type": "SiglipImageProcessor"}`, "unsupported image processor class"},
		{`{"image_processor_type": 7}`, "must be a string"},
		{`{"image_processor_type": "BlipImageProcessor", "size": {"shortest_edge": 224}}`, "does not accept shortest_edge"},
		{`{"image_processor_type": "CLIPImageProcessor", "size": {"longest_edge": 224}}`, `"size"`},
		{`{"image_processor_type": "CLIPImageProcessor", "size": -3}`, `"size"`},
		{`{"image_processor_type": "CLIPImageProcessor", "crop_size": {"shortest_edge": 3}}`, `"crop_size"`},
		{`{"image_processor_type": "ViTImageProcessor", "resample": 7}`, `"resample"`},
		{`{"image_processor_type": "ViTImageProcessor", "resample": "bilinear"}`, `"resample"`},
		{`{"image_processor_type": "ViTImageProcessor", "image_std": [0, 1, 1]}`, "non-zero"},
		{`{"image_processor_type": "ViTImageProcessor", "image_mean": [0.5, 0.5]}`, "3 values"},
		{`{"image_processor_type": "ViTImageProcessor", "do_resize": "yes"}`, `"do_resize"`},
		{`{"image_processor_type": "ViTImageProcessor", "rescale_factor": 0}`, `"rescale_factor"`},
	}
	for _, tc := range tests {
		_, err := NewProcessor([]byte(tc.cfg))
		if err == nil || !errors.Is(err, ErrBadProcessorConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrBadProcessorConfig mentioning %q", tc.cfg, err, tc.want)
		}
	}
}

func TestLoadProcessor(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadProcessor(dir); err == nil || !strings.Contains(err.Error(), "preprocessor_config.json") {
		t.Fatalf("missing file: %v", err)
	}
	cfg := `{"image_processor_type": "CLIPImageProcessor", "crop_size": 288, "size": 288}`
	if err := os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProcessor(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h, w := p.OutputSize(); h != 288 || w != 288 || p.ShortestEdge != 288 {
		t.Fatalf("got %+v", *p)
	}
	if err := os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(`{"image_processor_type": "X"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadProcessor(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("bad config error should name the file: %v", err)
	}
}

// gradient returns a w×h image whose pixel (x, y) is (x, y, x+y) mod 256.
func gradient(w, h int) *RGB {
	m := NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := (y*w + x) * 3
			m.Pix[i], m.Pix[i+1], m.Pix[i+2] = uint8(x), uint8(y), uint8(x+y)
		}
	}
	return m
}

func TestCenterCropAsHF(t *testing.T) {
	px := func(m *RGB, x, y int) [3]uint8 {
		i := (y*m.W + x) * 3
		return [3]uint8{m.Pix[i], m.Pix[i+1], m.Pix[i+2]}
	}
	tests := []struct {
		w, h, cw, ch int
		// offset of the source in the output: out(x,y) = src(x-dx, y-dy), zero outside
		dx, dy int
	}{
		{10, 7, 4, 3, -3, -2}, // inside: top=(7-3)//2=2, left=(10-4)//2=3
		{11, 8, 4, 3, -3, -2}, // odd remainders round down
		{3, 5, 4, 4, 1, 0},    // narrower than the crop: padded left by ceil(1/2)=1
		{2, 2, 5, 5, 2, 2},    // smaller both ways: pad ceil(3/2)=2 before
		{4, 9, 7, 3, 2, -3},   // mixed
	}
	for _, tc := range tests {
		src := gradient(tc.w, tc.h)
		got := centerCrop(src, tc.ch, tc.cw)
		if got.W != tc.cw || got.H != tc.ch {
			t.Fatalf("%+v: output %d×%d", tc, got.W, got.H)
		}
		for y := 0; y < tc.ch; y++ {
			for x := 0; x < tc.cw; x++ {
				sx, sy := x-tc.dx, y-tc.dy
				var want [3]uint8
				if sx >= 0 && sx < tc.w && sy >= 0 && sy < tc.h {
					want = px(src, sx, sy)
				}
				if g := px(got, x, y); g != want {
					t.Fatalf("%+v: (%d,%d) = %v, want %v", tc, x, y, g, want)
				}
			}
		}
	}
}

func TestCLIPResizeTarget(t *testing.T) {
	p, err := NewProcessor([]byte(`{"image_processor_type": "CLIPImageProcessor"}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ h, w, wantH, wantW int }{
		{300, 451, 224, 336}, // int(224*451/300) = 336
		{512, 384, 298, 224}, // int(224*512/384) = 298
		{64, 2048, 224, 7168},
		{224, 224, 224, 224},
		{8, 8, 224, 224},
		{1000, 3, 74666, 224},
	}
	for _, tc := range tests {
		if h, w := p.resizeTarget(tc.h, tc.w); h != tc.wantH || w != tc.wantW {
			t.Errorf("%d×%d (h×w) → %d×%d, want %d×%d", tc.h, tc.w, h, w, tc.wantH, tc.wantW)
		}
	}
}

func TestPreprocessLayoutAndValues(t *testing.T) {
	img := NewRGB(5, 4)
	for i := 0; i < 20; i++ {
		img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2] = 255, 0, 128
	}
	for _, cfg := range []string{
		`{"image_processor_type": "BlipImageProcessor", "size": {"height": 6, "width": 3}}`,
		`{"image_processor_type": "CLIPImageProcessor", "size": 4, "crop_size": {"height": 3, "width": 4}}`,
		`{"image_processor_type": "ViTImageProcessor", "do_rescale": false, "size": 7}`,
		`{"image_processor_type": "ViTImageProcessor", "do_normalize": false, "do_resize": false}`,
	} {
		p, err := NewProcessor([]byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		out := p.Preprocess(img)
		r := p.Resize(img)
		if h, w := p.OutputSize(); h != 0 && (r.H != h || r.W != w) {
			t.Fatalf("%s: resized %d×%d, OutputSize %d×%d", cfg, r.H, r.W, h, w)
		}
		n := r.W * r.H
		if len(out) != 3*n {
			t.Fatalf("%s: %d values for %d pixels", cfg, len(out), n)
		}
		for c, v := range []uint8{255, 0, 128} {
			x := float32(v)
			if p.DoRescale {
				x = float32(float64(v) * p.RescaleFactor)
			}
			if p.DoNormalize {
				x = (x - p.ImageMean[c]) / p.ImageStd[c]
			}
			// A constant image stays constant under any normalised filter; the padding of an
			// oversized crop would not, so the crops above stay inside the resized image.
			for i := 0; i < n; i++ {
				if out[c*n+i] != x {
					t.Fatalf("%s: channel %d value %d = %v, want %v", cfg, c, i, out[c*n+i], x)
				}
			}
		}
	}
}

// TestBoxHalvingIsRoundedMean checks a property of PIL's box filter: halving averages 2×2 blocks,
// with the horizontal pass rounded to 8 bits before the vertical one.
func TestBoxHalvingIsRoundedMean(t *testing.T) {
	src := gradient(16, 10)
	for i := range src.Pix {
		src.Pix[i] = uint8((i * 37) % 251)
	}
	got, err := ResizePIL(src, 8, 5, ResampleBox)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 5; y++ {
		for x := 0; x < 8; x++ {
			for c := 0; c < 3; c++ {
				at := func(xx, yy int) int { return int(src.Pix[(yy*16+xx)*3+c]) }
				top := (at(2*x, 2*y) + at(2*x+1, 2*y) + 1) / 2
				bot := (at(2*x, 2*y+1) + at(2*x+1, 2*y+1) + 1) / 2
				want := (top + bot + 1) / 2
				if g := int(got.Pix[(y*8+x)*3+c]); g != want {
					t.Fatalf("(%d,%d,%d) = %d, want %d", x, y, c, g, want)
				}
			}
		}
	}
	if _, err := ResizePIL(src, 0, 3, ResampleBox); err == nil {
		t.Error("zero width accepted")
	}
	if _, err := ResizePIL(src, 3, 3, 9); err == nil {
		t.Error("unknown filter accepted")
	}
}

func noisy(w, h int, seed uint32) *RGB {
	m := NewRGB(w, h)
	for i := range m.Pix {
		seed = seed*1664525 + 1013904223
		m.Pix[i] = uint8(seed >> 24)
	}
	return m
}

// TestResizeRegionMatchesFullResize: computing only a window of a resize must give exactly the
// same pixels as resizing everything and cropping.
func TestResizeRegionMatchesFullResize(t *testing.T) {
	src := noisy(37, 23, 1)
	for filter := 0; filter <= 5; filter++ {
		for _, sz := range [][2]int{{11, 7}, {90, 61}, {37, 50}, {80, 23}, {1, 1}} {
			full, err := ResizePIL(src, sz[0], sz[1], filter)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []image.Rectangle{
				image.Rect(0, 0, sz[0], sz[1]), image.Rect(sz[0]/3, sz[1]/4, sz[0]-sz[0]/5, sz[1]),
				image.Rect(sz[0]-1, sz[1]-1, sz[0], sz[1]), image.Rect(-5, -5, 3, 2),
			} {
				got, err := ResizePILRegion(src, sz[0], sz[1], filter, r)
				if err != nil {
					t.Fatal(err)
				}
				want := cropRGB(full, r.Intersect(image.Rect(0, 0, sz[0], sz[1])))
				if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
					t.Fatalf("filter %d, %v, window %v: region differs from the full resize", filter, sz, r)
				}
			}
		}
	}
}

func TestProcessorResizeEqualsResizeThenCrop(t *testing.T) {
	cfgs := []string{
		`{"image_processor_type": "CLIPImageProcessor"}`,
		`{"image_processor_type": "CLIPImageProcessor", "size": 8, "crop_size": {"height": 12, "width": 5}}`,
		`{"image_processor_type": "CLIPImageProcessor", "do_resize": false, "crop_size": {"height": 30, "width": 9}}`,
		`{"image_processor_type": "CLIPImageProcessor", "size": {"height": 20, "width": 31}, "crop_size": 25, "resample": 0}`,
	}
	for _, cfg := range cfgs {
		p, err := NewProcessor([]byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range []*RGB{noisy(37, 23, 2), noisy(16, 41, 3), noisy(300, 4, 4), noisy(3, 3, 5)} {
			full := src
			if p.DoResize {
				h, w := p.resizeTarget(src.H, src.W)
				if full, err = ResizePIL(src, w, h, p.Resample); err != nil {
					t.Fatal(err)
				}
			}
			want := centerCrop(full, p.CropHeight, p.CropWidth)
			got := p.Resize(src)
			if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
				t.Fatalf("%s on %d×%d: windowed resize+crop differs (%d×%d vs %d×%d)", cfg, src.W, src.H, got.W, got.H, want.W, want.H)
			}
		}
	}
}

// TestExtremeAspectRatioIsBounded: a 40000×1 image under CLIP's shortest-edge rule would be
// resized to 8 960 000×224 (6 GB) before the crop; only the crop is computed here.
func TestExtremeAspectRatioIsBounded(t *testing.T) {
	src := noisy(40000, 1, 6)
	p, _ := NewProcessor([]byte(`{"image_processor_type": "CLIPImageProcessor"}`))
	var out []float32
	alloc := allocDuring(func() { out = p.Preprocess(src) })
	if len(out) != 3*224*224 {
		t.Fatalf("%d values", len(out))
	}
	if alloc > 16<<20 {
		t.Fatalf("allocated %.1f MiB", float64(alloc)/(1<<20))
	}
	q, _ := NewProcessor([]byte(`{"image_processor_type": "CLIPImageProcessor", "do_center_crop": false}`))
	if r := q.Resize(src); r.W > maxResizeSide || r.H != 224 {
		t.Fatalf("uncropped shortest-edge resize not capped: %d×%d", r.W, r.H)
	}
}
