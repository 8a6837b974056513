package blip

import (
	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/text/bert"
)

// selfKVBytes is the self-attention KV cache a request holds at most: rows
// sequences of up to positions tokens (keys and values of every layer).
// The caches grow by appending, so their capacity may run past their
// length (Go's growth: a quarter plus a constant, rounded to size
// classes): half the length again is counted for it.
func selfKVBytes(t bert.Config, rows, positions int) int64 {
	self := int64(rows) * int64(positions) * int64(2*t.NumLayers*t.HiddenSize) * 4
	return self + self/2
}

// imageStateBytes is the memory of one encoded image a request holds while
// it decodes (fusion.ImageState.Bytes).
func (b *base) imageStateBytes() int64 {
	return int64(b.vision.Tokens())*int64(b.cfg.Vision.HiddenSize)*4 + 64
}

// KVBytes estimates the memory a caption request holds while it is live,
// for the server's memory accounting: the self-attention KV caches of its
// sequences (beams) for a decoder prompt of promptTokens tokens (at least
// the start token) plus max_new_tokens, the cross-attention state over
// the image (crossState), and the image state itself; 0 if the options
// are invalid.
func (m *CaptionModel) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	promptTokens = max(promptTokens, 1)
	cfg, err := m.DecodeConfig(opts, promptTokens)
	if err != nil {
		return 0
	}
	t, beams := m.cfg.Text, max(cfg.NumBeams, 1)
	positions := promptTokens + cfg.MaxNewTokens
	return selfKVBytes(t, beams, positions) + crossBytes(m.dec, m.vision.Tokens(), beams*positions) + m.imageStateBytes()
}

// KVBytes estimates the memory a question of promptTokens tokens holds
// while it is live: the image state, the question encoder's pass (its
// caches and cross-attention state over the image), the question
// states, and the answer decoder's caches and cross-attention state over
// them; 0 if the options are invalid.
func (m *VQAModel) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	promptTokens = max(promptTokens, 1)
	cfg, err := m.DecodeConfig(opts)
	if err != nil {
		return 0
	}
	t := m.cfg.Text
	enc := selfKVBytes(t, 1, promptTokens) + crossBytes(m.enc, m.vision.Tokens(), promptTokens)
	states := int64(promptTokens) * int64(t.HiddenSize) * 4
	beams := max(cfg.NumBeams, 1)
	dec := selfKVBytes(t, beams, 1+cfg.MaxNewTokens) + crossBytes(m.dec, promptTokens, beams*(1+cfg.MaxNewTokens)) + states
	return enc + dec + m.imageStateBytes()
}

// BatchStats returns the decoding steps run by the model's iteration-level
// scheduler and the sequences they carried (their ratio is the mean batch).
func (m *CaptionModel) BatchStats() (steps, rows int64) { return m.batch.Stats() }

// BatchStats returns the answer decoder's steps and the sequences they
// carried.
func (m *VQAModel) BatchStats() (steps, rows int64) { return m.batch.Stats() }

// CheckOptions reports whether opts are valid decoding options for a
// caption prompt of promptTokens tokens; the error says what to change.
func (m *CaptionModel) CheckOptions(opts fusion.GenerateOptions, promptTokens int) error {
	_, err := m.DecodeConfig(opts, max(promptTokens, 1))
	return err
}

// CheckOptions reports whether opts are valid decoding options for an
// answer; the error says what to change.
func (m *VQAModel) CheckOptions(opts fusion.GenerateOptions, _ int) error {
	_, err := m.DecodeConfig(opts)
	return err
}

// crossState makes m's cross-attention state over n encoder states
// (states, n rows) for rows query tokens in all over its life (every
// sequence and step of a request, or one encoder pass): folded or
// projected, whichever takes fewer multiply-adds
// ((*bert.Model).FoldedCheaper). The choice depends only on the request's
// own sizes, so its results never depend on what else the server runs.
// Short captions, questions and answers come out folded (≈ 1/24 of the
// memory); long beam searches and matches of many texts projected.
func crossState(m *bert.Model, states []float32, n, rows int) (*bert.CrossKV, error) {
	if m.FoldedCheaper(n, rows) {
		return m.CrossFolded(states, n, nil)
	}
	return m.CrossKV(states, n, nil)
}

// crossBytes is the memory crossState holds for the same sizes.
func crossBytes(m *bert.Model, n, rows int) int64 {
	return m.CrossBytes(n, m.FoldedCheaper(n, rows))
}
