package blip

import "github.com/glimpse-vlm/glimpse/fusion"

// kvBytes is the KV cache a request holds at most: rows sequences of up to
// positions tokens (keys and values of every layer) plus the cross-attention
// keys and values over encLen encoder states.
func kvBytes(layers, hidden, rows, positions, encLen int) int64 {
	self := int64(rows) * int64(positions) * int64(2*layers*hidden) * 4
	cross := int64(encLen) * int64(2*layers*hidden) * 4
	return self + cross
}

// KVBytes estimates the KV cache memory of a caption request whose
// decoder prompt has promptTokens tokens (at least the start token), for
// the server's memory accounting; 0 if the options are invalid.
func (m *CaptionModel) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	promptTokens = max(promptTokens, 1)
	cfg, err := m.DecodeConfig(opts, promptTokens)
	if err != nil {
		return 0
	}
	t := m.cfg.Text
	return kvBytes(t.NumLayers, t.HiddenSize, max(cfg.NumBeams, 1), promptTokens+cfg.MaxNewTokens, m.vision.Tokens())
}

// KVBytes estimates the KV cache memory of a question of promptTokens
// tokens: the question encoder's pass and the answer decoder's caches and
// cross-attention over the question; 0 if the options are invalid.
func (m *VQAModel) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	promptTokens = max(promptTokens, 1)
	cfg, err := m.DecodeConfig(opts)
	if err != nil {
		return 0
	}
	t := m.cfg.Text
	enc := kvBytes(t.NumLayers, t.HiddenSize, 1, promptTokens, m.vision.Tokens())
	return enc + kvBytes(t.NumLayers, t.HiddenSize, max(cfg.NumBeams, 1), 1+cfg.MaxNewTokens, promptTokens)
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
