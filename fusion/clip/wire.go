package clip

import (
	"fmt"

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
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	if err := m.tower.SetProcessor(p); err != nil {
		return err
	}
	m.tok = clipText{tok}
	return nil
}

// clipText adapts the checkpoint's tokenizer.
type clipText struct{ t tokenizer.Tokenizer }

func (c clipText) encode(s string) ([]int, error) { return c.t.Encode(s, true), nil }

func (c clipText) pad() (int, bool) {
	id := c.t.Special().PAD
	return id, id >= 0
}
