package cliptext

import "testing"

// FuzzParseConfig: any text_config content either parses to a valid
// configuration or returns an error; it never panics.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"hidden_size": 64, "num_attention_heads": 4, "eos_token_id": 2}`,
		`{"hidden_act": "gelu", "layer_norm_eps": 1e-6}`, `{"num_attention_heads": 0}`, `[]`} {
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
		_ = c.PoolIndex([]int{3, 1, 2})
	})
}
