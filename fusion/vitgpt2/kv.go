package vitgpt2

import "github.com/glimpse-vlm/glimpse/fusion"

// KVBytes estimates the KV cache memory of a caption request whose prefix
// has promptTokens tokens (the start token is added): every row's keys and
// values up to its longest length plus the cross-attention keys and values
// over the image; 0 if the options are invalid.
func (m *Model) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	prompt := promptTokens + 1
	cfg, err := m.decodeConfig(opts, prompt)
	if err != nil {
		return 0
	}
	d := m.cfg.Decoder
	per := int64(2*d.NLayer*d.NEmbd) * 4
	rows := int64(max(cfg.NumBeams, 1))
	return rows*int64(prompt+cfg.MaxNewTokens)*per + int64(m.enc.Tokens())*per
}

// BatchStats returns the decoding steps run by the model's iteration-level
// scheduler and the sequences they carried (their ratio is the mean batch);
// zero for a model without one.
func (m *Model) BatchStats() (steps, rows int64) {
	if m.batch == nil {
		return 0, 0
	}
	return m.batch.Stats()
}

// CheckOptions reports whether opts are valid decoding options for a
// caption whose prefix has promptTokens tokens; the error says what to
// change.
func (m *Model) CheckOptions(opts fusion.GenerateOptions, promptTokens int) error {
	_, err := m.decodeConfig(opts, promptTokens+1)
	return err
}
