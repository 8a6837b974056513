package clip

import (
	"fmt"
	"image"

	"github.com/glimpse-vlm/glimpse/text/tokenizer"
	"github.com/glimpse-vlm/glimpse/vision"
)

// loadProcessing reads the checkpoint's image processor
// (preprocessor_config.json) and CLIP tokenizer.
func (m *Model) loadProcessing(dir string) error {
	p, err := vision.LoadProcessor(dir)
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	if h, w := p.OutputSize(); h != 0 && (h != m.cfg.Vision.ImageSize || w != m.cfg.Vision.ImageSize) {
		return fmt.Errorf("clip: preprocessor_config.json makes %d×%d images, the vision tower (config.json vision_config image_size) takes %d×%d",
			h, w, m.cfg.Vision.ImageSize, m.cfg.Vision.ImageSize)
	}
	if m.cfg.Vision.NumChannels != 3 {
		return fmt.Errorf("clip: the vision tower takes %d channels; image processors make RGB (3)", m.cfg.Vision.NumChannels)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	m.images = processor{p}
	m.tok = clipText{tok}
	return nil
}

// processor adapts vision.Processor.
type processor struct{ p *vision.Processor }

func (p processor) pixels(img image.Image) ([]float32, error) {
	rgb, ok := img.(*vision.RGB)
	if !ok {
		rgb = vision.ToRGB(img)
	}
	if rgb.W <= 0 || rgb.H <= 0 {
		return nil, fmt.Errorf("empty image (%d×%d)", rgb.W, rgb.H)
	}
	return p.p.Preprocess(rgb), nil
}

// clipText adapts the checkpoint's tokenizer.
type clipText struct{ t tokenizer.Tokenizer }

func (c clipText) encode(s string) ([]int, error) { return c.t.Encode(s, true), nil }

func (c clipText) pad() (int, bool) {
	id := c.t.Special().PAD
	return id, id >= 0
}
