package imagetower

import (
	"context"
	"encoding/json"
	"image"
	"os"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/vision"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

const dir = "../../testdata/golden/e2e/blip-caption"

// tinyTower loads the tiny BLIP checkpoint's vision tower (40 px images).
func tinyTower(t *testing.T) *Tower {
	t.Helper()
	raw, err := os.ReadFile(dir + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		Vision json.RawMessage `json:"vision_config"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	cfg, err := vit.ParseConfig(vit.BLIP, top.Vision)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	enc, err := vit.Load(ck, "vision_model.", cfg)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := vision.LoadProcessor(dir)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := New("blip", enc, proc)
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

func processor(t *testing.T, size int) *vision.Processor {
	t.Helper()
	p, err := vision.NewProcessor([]byte(`{"image_processor_type": "BlipImageProcessor", "size": {"height": ` +
		itoa(size) + `, "width": ` + itoa(size) + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestEncodeImagesEqualsOneByOne: a batch gives each image's state bit for
// bit, and the states pass CheckState.
func TestEncodeImagesEqualsOneByOne(t *testing.T) {
	tw := tinyTower(t)
	imgs := make([]*vision.RGB, 3)
	for i := range imgs {
		w, h := 30+7*i, 50-5*i
		pix := make([]uint8, 3*w*h)
		for p := range pix {
			pix[p] = uint8(p*(i+5) + i)
		}
		imgs[i] = &vision.RGB{W: w, H: h, Pix: pix}
	}
	ctx := context.Background()
	batch, err := tw.EncodeImages(ctx, []image.Image{imgs[0], imgs[1], imgs[2]})
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		one, err := tw.EncodeImage(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.CheckState(one); err != nil {
			t.Fatal(err)
		}
		for j := range one.Hidden {
			if one.Hidden[j] != batch[i].Hidden[j] {
				t.Fatalf("image %d value %d: alone %v, in a batch %v", i, j, one.Hidden[j], batch[i].Hidden[j])
			}
		}
	}
}

func TestErrors(t *testing.T) {
	tw := tinyTower(t)
	ctx := context.Background()
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"processor of another size", func() error { return tw.SetProcessor(processor(t, 64)) }, "makes 64×64 images"},
		{"state of another model", func() error {
			return tw.CheckState(&fusion.ImageState{Tokens: 3, Dim: 2, Hidden: make([]float32, 6)})
		}, "was it encoded by another model"},
		{"nil state", func() error { return tw.CheckState(nil) }, "nil image state"},
		{"nil image", func() error { _, err := tw.EncodeImages(ctx, []image.Image{nil}); return err }, "image 0 is nil"},
		{"empty image", func() error { _, err := tw.EncodeImage(ctx, &vision.RGB{}); return err }, "empty"},
		{"no processor", func() error {
			bare, err := New("blip", tw.Encoder(), nil)
			if err != nil {
				return err
			}
			_, err = bare.EncodeImage(ctx, &vision.RGB{W: 1, H: 1, Pix: []uint8{1, 2, 3}})
			return err
		}, "no image processor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
