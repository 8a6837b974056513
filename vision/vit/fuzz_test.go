package vit

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzParseConfig feeds arbitrary vision config dicts to ParseConfig: it
// must not panic, and an accepted config must validate and describe an
// encoder whose buffer sizes are computable.
func FuzzParseConfig(f *testing.F) {
	for _, gc := range goldenCases {
		raw, err := os.ReadFile(goldenDir + gc.dir + "/config.json")
		if err != nil {
			f.Fatal(err)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(raw, &top); err != nil {
			f.Fatal(err)
		}
		f.Add(int(gc.variant), []byte(top[gc.configKey]))
	}
	f.Add(int(ViT), []byte(`{"hidden_size": 48, "num_attention_heads": 5}`))
	f.Add(int(CLIP), []byte(`{"hidden_act": "swish", "patch_size": -1}`))
	f.Add(int(BLIP), []byte(`{"image_size": 9223372036854775807, "patch_size": 1}`))
	f.Fuzz(func(t *testing.T, v int, raw []byte) {
		cfg, err := ParseConfig(Variant(v), raw)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		if cfg.tokens() < 2 || cfg.HiddenSize%cfg.NumHeads != 0 {
			t.Fatalf("accepted config %+v gives %d tokens", cfg, cfg.tokens())
		}
	})
}
