package gpt2

import "testing"

// FuzzParseConfig: any config.json content either parses to a valid
// configuration or returns an error; it never panics.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"n_embd": 64, "n_head": 4, "n_inner": null}`, `{"eos_token_id": [1, 2]}`,
		`{"activation_function": "relu", "layer_norm_epsilon": 1e-6}`, `{"n_head": 0}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(raw)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted an invalid config: %v", err)
		}
		if c.NEmbd%c.NHead != 0 || c.NInner <= 0 || c.VocabSize <= 0 {
			t.Fatalf("inconsistent config %+v", c)
		}
	})
}
