package vitgpt2

import (
	"fmt"
	"image"

	"github.com/glimpse-vlm/glimpse/text/tokenizer"
	"github.com/glimpse-vlm/glimpse/vision"
)

// loadProcessing reads the checkpoint's image processor
// (preprocessor_config.json) and GPT-2 tokenizer.
func (m *Model) loadProcessing(dir string) error {
	p, err := vision.LoadProcessor(dir)
	if err != nil {
		return fmt.Errorf("vitgpt2: %w", err)
	}
	if h, w := p.OutputSize(); h != 0 && (h != m.cfg.Encoder.ImageSize || w != m.cfg.Encoder.ImageSize) {
		return fmt.Errorf("vitgpt2: preprocessor_config.json makes %d×%d images, the encoder (config.json encoder image_size) takes %d×%d",
			h, w, m.cfg.Encoder.ImageSize, m.cfg.Encoder.ImageSize)
	}
	if m.cfg.Encoder.NumChannels != 3 {
		return fmt.Errorf("vitgpt2: the encoder takes %d channels; image processors make RGB (3)", m.cfg.Encoder.NumChannels)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return fmt.Errorf("vitgpt2: %w", err)
	}
	m.images = processor{p}
	m.text = gpt2Text{tok}
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

// gpt2Text adapts the checkpoint's tokenizer.
type gpt2Text struct{ t tokenizer.Tokenizer }

func (g gpt2Text) encode(s string) ([]int, error)        { return g.t.Encode(s, false), nil }
func (g gpt2Text) encodeSpecial(s string) ([]int, error) { return g.t.Encode(s, true), nil }
func (g gpt2Text) decode(ids []int) string               { return g.t.Decode(ids, true) }
func (g gpt2Text) stream() detokenizer                   { return stream{g.t.NewStream(true)} }

type stream struct{ s *tokenizer.Stream }

func (s stream) add(id int) string { return s.s.Add(id) }
func (s stream) flush() string     { return s.s.Flush() }
