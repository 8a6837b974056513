package vitgpt2

import (
	"fmt"

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
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return fmt.Errorf("vitgpt2: %w", err)
	}
	if err := m.tower.SetProcessor(p); err != nil {
		return err
	}
	m.text = gpt2Text{tok}
	return nil
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
