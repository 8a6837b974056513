package blip

import (
	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/kernels"
	"github.com/glimpse-vlm/glimpse/text/bert"
)

// kvBytes is the KV cache a request holds at most: rows sequences of up to
// positions tokens (keys and values of every layer) plus the cross-attention
// keys (laid out for the attention kernel, padded per head) and values over
// encLen encoder states. The self-attention caches grow by appending, so
// their capacity may run past their length (Go's growth: a quarter plus a
// constant, rounded to size classes): half the length again is counted for
// it.
func kvBytes(t bert.Config, rows, positions, encLen int) int64 {
	layers, hidden := t.NumLayers, t.HiddenSize
	self := int64(rows) * int64(positions) * int64(2*layers*hidden) * 4
	keys := kernels.AttentionKeysBytes(kernels.AttentionParams{Heads: t.NumHeads, HeadDim: hidden / t.NumHeads}, encLen)
	cross := int64(layers) * (int64(keys) + int64(encLen)*int64(hidden)*4)
	return self + self/2 + cross
}

// imageStateBytes is the memory of one encoded image a request holds while
// it decodes (fusion.ImageState.Bytes).
func (b *base) imageStateBytes() int64 {
	return int64(b.vision.Tokens())*int64(b.cfg.Vision.HiddenSize)*4 + 64
}

// KVBytes estimates the memory a caption request holds while it is live,
// for the server's memory accounting: the self-attention KV caches of its
// sequences (beams) for a decoder prompt of promptTokens tokens (at least
// the start token) plus max_new_tokens, the cross-attention keys and
// values over the image, and the image state itself; 0 if the options are
// invalid.
func (m *CaptionModel) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	promptTokens = max(promptTokens, 1)
	cfg, err := m.DecodeConfig(opts, promptTokens)
	if err != nil {
		return 0
	}
	t := m.cfg.Text
	return kvBytes(t, max(cfg.NumBeams, 1), promptTokens+cfg.MaxNewTokens, m.vision.Tokens()) + m.imageStateBytes()
}

// KVBytes estimates the memory a question of promptTokens tokens holds
// while it is live: the image state, the question encoder's pass (its
// caches and cross-attention over the image) and the answer decoder's
// caches and cross-attention over the question; 0 if the options are
// invalid.
func (m *VQAModel) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	promptTokens = max(promptTokens, 1)
	cfg, err := m.DecodeConfig(opts)
	if err != nil {
		return 0
	}
	t := m.cfg.Text
	enc := kvBytes(t, 1, promptTokens, m.vision.Tokens())
	return enc + kvBytes(t, max(cfg.NumBeams, 1), 1+cfg.MaxNewTokens, promptTokens) + m.imageStateBytes()
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
