package vitgpt2

import "testing"

// FuzzParseConfig: any config.json content either parses or returns an
// error; it never panics, and a parsed config has a cross-attending decoder.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"encoder": {"model_type": "vit"}, "decoder": {"model_type": "gpt2", "add_cross_attention": true}}`,
		`{"encoder": {"model_type": "vit", "hidden_size": 24, "num_attention_heads": 2}, "decoder": {"model_type": "gpt2", "add_cross_attention": true, "n_embd": 16, "n_head": 2}}`,
		`{"encoder": {"model_type": "deit"}, "decoder": {"model_type": "gpt2"}}`, `{}`, `[]`, `{"encoder": 1, "decoder": "x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(raw)
		if err != nil {
			return
		}
		if !c.Decoder.AddCrossAttention || c.Encoder.Validate() != nil || c.Decoder.Validate() != nil {
			t.Fatalf("ParseConfig accepted %+v", c)
		}
		if c.EncToDecProj != (c.Encoder.HiddenSize != c.Decoder.NEmbd) {
			t.Fatalf("enc_to_dec_proj %v for widths %d, %d", c.EncToDecProj, c.Encoder.HiddenSize, c.Decoder.NEmbd)
		}
	})
}
