package blip

import (
	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/kernels"
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

// projectedCrossBytes is a projected cross-attention state
// ((*bert.Model).CrossKV) over encLen encoder states: every layer's keys
// (laid out for the attention kernel, padded per head) and values.
func projectedCrossBytes(t bert.Config, encLen int) int64 {
	keys := kernels.AttentionKeysBytes(kernels.AttentionParams{Heads: t.NumHeads, HeadDim: t.HiddenSize / t.NumHeads}, encLen)
	return int64(t.NumLayers) * (int64(keys) + int64(encLen)*int64(t.HiddenSize)*4)
}

// foldedCrossBytes is a folded cross-attention state
// ((*bert.Model).CrossFolded) over encLen encoder states: the states laid
// out once as keys (the states themselves are counted by their owner).
func foldedCrossBytes(t bert.Config, encLen int) int64 {
	return int64(kernels.AttentionKeysBytes(kernels.AttentionParams{Heads: 1, HeadDim: t.EncoderHiddenSize}, encLen))
}

// imageStateBytes is the memory of one encoded image a request holds while
// it decodes (fusion.ImageState.Bytes).
func (b *base) imageStateBytes() int64 {
	return int64(b.vision.Tokens())*int64(b.cfg.Vision.HiddenSize)*4 + 64
}

// KVBytes estimates the memory a caption request holds while it is live,
// for the server's memory accounting: the self-attention KV caches of its
// sequences (beams) for a decoder prompt of promptTokens tokens (at least
// the start token) plus max_new_tokens, the folded cross-attention state
// over the image, and the image state itself; 0 if the options are
// invalid.
func (m *CaptionModel) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	promptTokens = max(promptTokens, 1)
	cfg, err := m.DecodeConfig(opts, promptTokens)
	if err != nil {
		return 0
	}
	t := m.cfg.Text
	return selfKVBytes(t, max(cfg.NumBeams, 1), promptTokens+cfg.MaxNewTokens) + foldedCrossBytes(t, m.vision.Tokens()) + m.imageStateBytes()
}

// KVBytes estimates the memory a question of promptTokens tokens holds
// while it is live: the image state, the question encoder's pass (its
// caches and cross-attention state over the image), the question
// states, and the answer decoder's caches and folded cross-attention over
// them; 0 if the options are invalid.
func (m *VQAModel) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	promptTokens = max(promptTokens, 1)
	cfg, err := m.DecodeConfig(opts)
	if err != nil {
		return 0
	}
	t := m.cfg.Text
	enc := selfKVBytes(t, 1, promptTokens) + foldedCrossBytes(t, m.vision.Tokens())
	if !m.enc.FoldedCheaper(m.vision.Tokens(), promptTokens) {
		enc = selfKVBytes(t, 1, promptTokens) + projectedCrossBytes(t, m.vision.Tokens())
	}
	states := int64(promptTokens) * int64(t.HiddenSize) * 4
	dec := selfKVBytes(t, max(cfg.NumBeams, 1), 1+cfg.MaxNewTokens) + foldedCrossBytes(t, promptTokens) + states
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

// encoderCross makes the text encoder's cross-attention state over img for
// one pass of rows query tokens in all (a question, or the texts of a
// match): folded or projected, whichever takes fewer multiply-adds
// ((*bert.Model).FoldedCheaper); the state lives only for that pass.
func encoderCross(enc *bert.Model, img *fusion.ImageState, rows int) (*bert.CrossKV, error) {
	if enc.FoldedCheaper(img.Tokens, rows) {
		return enc.CrossFolded(img.Hidden, img.Tokens, nil)
	}
	return enc.CrossKV(img.Hidden, img.Tokens, nil)
}
