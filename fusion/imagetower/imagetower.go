// Package imagetower is the image path the model families share: the
// checkpoint's image processor (preprocessor_config.json) feeding a ViT
// encoder, which turns decoded images into fusion.ImageStates.
package imagetower

import (
	"context"
	"errors"
	"fmt"
	"image"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/vision"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

// Tower couples an image processor with the vision encoder it feeds. It is
// safe for concurrent use.
type Tower struct {
	family string            // error prefix, e.g. "blip"
	enc    *vit.Encoder      // the vision tower
	proc   *vision.Processor // nil when only preprocessed pixels are given
}

// New checks that proc makes the images enc takes (RGB, image_size ×
// image_size) and couples them. proc may be nil (a model built without a
// checkpoint folder): then only EncodePixels works.
func New(family string, enc *vit.Encoder, proc *vision.Processor) (*Tower, error) {
	t := &Tower{family: family, enc: enc}
	if err := t.SetProcessor(proc); err != nil {
		return nil, err
	}
	return t, nil
}

// SetProcessor replaces the image processor after the same checks as New.
func (t *Tower) SetProcessor(proc *vision.Processor) error {
	if proc != nil {
		c := t.enc.Config()
		// A size that depends on the image (0×0) is checked per image.
		if h, w := proc.OutputSize(); (h != 0 || w != 0) && (h != c.ImageSize || w != c.ImageSize) {
			return fmt.Errorf("%s: preprocessor_config.json makes %d×%d images, the vision tower (config.json image_size) takes %d×%d",
				t.family, h, w, c.ImageSize, c.ImageSize)
		}
		if c.NumChannels != 3 {
			return fmt.Errorf("%s: the vision tower takes %d channels; image processors make RGB (3)", t.family, c.NumChannels)
		}
	}
	t.proc = proc
	return nil
}

// Encoder returns the vision encoder.
func (t *Tower) Encoder() *vit.Encoder { return t.enc }

// EncodePixels runs the encoder on batch preprocessed images (pixel_values,
// batch×C×S×S) and returns each image's last_hidden_state.
func (t *Tower) EncodePixels(ctx context.Context, pixels []float32, batch int) ([]*fusion.ImageState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := t.enc.Forward(pixels, batch)
	if err != nil {
		return nil, fmt.Errorf("%s: vision encoder: %w", t.family, err)
	}
	n, d := t.enc.Tokens(), t.enc.Dim()
	out := make([]*fusion.ImageState, batch)
	for b := range out {
		out[b] = &fusion.ImageState{Tokens: n, Dim: d, Hidden: h[b*n*d : (b+1)*n*d : (b+1)*n*d]}
	}
	return out, nil
}

// EncodeImage preprocesses img as the checkpoint's image processor does and
// runs the encoder.
func (t *Tower) EncodeImage(ctx context.Context, img image.Image) (*fusion.ImageState, error) {
	s, err := t.EncodeImages(ctx, []image.Image{img})
	if err != nil {
		return nil, err
	}
	return s[0], nil
}

// EncodeImages preprocesses several images and encodes them as one batch;
// each result equals EncodeImage's for that image, bit for bit.
func (t *Tower) EncodeImages(ctx context.Context, imgs []image.Image) ([]*fusion.ImageState, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	if t.proc == nil {
		return nil, fmt.Errorf("%s: no image processor (preprocessor_config.json); the model was built without its checkpoint folder", t.family)
	}
	c := t.enc.Config()
	per := c.NumChannels * c.ImageSize * c.ImageSize
	pixels := make([]float32, 0, len(imgs)*per)
	for i, img := range imgs {
		if img == nil {
			return nil, fmt.Errorf("%s: image %d is nil", t.family, i)
		}
		rgb, ok := img.(*vision.RGB)
		if !ok {
			rgb = vision.ToRGB(img)
		}
		if rgb.W <= 0 || rgb.H <= 0 {
			return nil, fmt.Errorf("%s: image %d is empty (%d×%d)", t.family, i, rgb.W, rgb.H)
		}
		p := t.proc.Preprocess(rgb)
		if len(p) != per {
			return nil, fmt.Errorf("%s: image %d: the image processor made %d values, the vision tower takes %d×%d×%d", t.family, i, len(p), c.NumChannels, c.ImageSize, c.ImageSize)
		}
		pixels = append(pixels, p...)
	}
	return t.EncodePixels(ctx, pixels, len(imgs))
}

// CheckState reports whether s is an image state this tower makes.
func (t *Tower) CheckState(s *fusion.ImageState) error {
	if s == nil {
		return errors.New(t.family + ": nil image state")
	}
	n, d := t.enc.Tokens(), t.enc.Dim()
	if s.Tokens != n || s.Dim != d || len(s.Hidden) != n*d {
		return fmt.Errorf("%s: image state is %d×%d (%d values), this model's vision tower makes %d×%d: was it encoded by another model?",
			t.family, s.Tokens, s.Dim, len(s.Hidden), n, d)
	}
	return nil
}
