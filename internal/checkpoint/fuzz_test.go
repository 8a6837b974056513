package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"
)

// FuzzSafetensorsHeader feeds arbitrary bytes to the safetensors parser
// that Open and OpenFile run over a mapped file, then reads every tensor
// through the public accessors. It must never panic, and what it accepts
// must satisfy the format's invariants.
func FuzzSafetensorsHeader(f *testing.F) {
	f.Add(buildFile([]stTensor{{"w", "F32", []int{2, 2}, f32Bytes(1, 2, 3, 4)}}, 0))
	f.Add(buildFile([]stTensor{
		{"h", "F16", []int{3}, u16Bytes(0x3c00, 0x7c00, 0x0001)},
		{"b", "BF16", []int{1, 2}, u16Bytes(0x3f80, 0xff80)},
		{"i", "I64", []int{1}, make([]byte, 8)},
		{"u", "U8", []int{2}, []byte{1, 2}},
		{"d", "F64", []int{}, make([]byte, 8)},
	}, 3))
	f.Add(rawFile(`{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}`, make([]byte, 16)))
	f.Add(rawFile(`{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}`, make([]byte, 1)))
	f.Add(rawFile(`{"e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [0, 0]}, "__metadata__": {"k": "v"}}`, nil))
	f.Add(rawFile(`{"w": {"dtype": "I32", "shape": [-1], "data_offsets": [0, 4]}}`, make([]byte, 4)))
	f.Add(append(binary.LittleEndian.AppendUint64(nil, 1<<62), '{', '}'))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		ts, err := parseSafetensors(buf, "fuzz.safetensors")
		if err != nil {
			if ts != nil {
				t.Fatal("tensors returned with an error")
			}
			return
		}
		base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
		type span struct{ b, e uintptr }
		var spans []span
		for name, tn := range ts {
			count := 1
			for _, d := range tn.shape {
				if d < 0 {
					t.Fatalf("%q: negative dimension accepted", name)
				}
				count *= d
			}
			if len(tn.data) != count*dtypeSize[tn.dtype] {
				t.Fatalf("%q: %d bytes for %s %v", name, len(tn.data), tn.dtype, tn.shape)
			}
			if len(tn.data) > 0 {
				b := uintptr(unsafe.Pointer(&tn.data[0]))
				e := b + uintptr(len(tn.data))
				if b < base || e > base+uintptr(len(buf)) {
					t.Fatalf("%q: data outside the buffer", name)
				}
				for _, s := range spans {
					if b < s.e && s.b < e {
						t.Fatalf("%q: overlapping data accepted", name)
					}
				}
				spans = append(spans, span{b, e})
			}
		}
		c := &Checkpoint{dir: "fuzz", tensors: ts}
		for _, name := range c.Names() {
			shape := c.Shape(name)
			if v, err := c.Float32(name, shape...); err == nil {
				count := 1
				for _, d := range shape {
					count *= d
				}
				if len(v) != count {
					t.Fatalf("%q: Float32 gave %d values for %v", name, len(v), shape)
				}
			}
			c.Int64(name)
			c.Uint8(name)
		}
		c.Close()
	})
}

// FuzzConfigJSON feeds arbitrary bytes to the generation_config.json
// parser behind ReadGenerationConfig. It must never panic; an accepted
// config must pass Validate and survive a JSON round trip unchanged.
func FuzzConfigJSON(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"_from_model_config": true, "bos_token_id": 100, "eos_token_id": 2, "pad_token_id": 0, "transformers_version": "4.40.2"}`,
		`{"max_length": 20, "max_new_tokens": 30, "min_length": 5, "min_new_tokens": 2, "num_beams": 4, "length_penalty": 0.8,
		  "early_stopping": "never", "no_repeat_ngram_size": 3, "repetition_penalty": 1.2, "do_sample": true, "temperature": 0.7,
		  "top_k": 40, "top_p": 0.9, "eos_token_id": [2, 3], "decoder_start_token_id": 50256}`,
		`{"eos_token_id": null, "early_stopping": true}`,
		`{"num_beams": 0}`,
		`{"top_p": 1e999}`,
		`{"max_length": 1e30}`,
		`[{"a": 1}]`,
		`{"eos_token_id": [1, "x"]}`,
		"{\n\"top_k\": ]\n}",
		`{"bad_words_ids": [[1, 2], [3]], "suppress_tokens": [], "forced_eos_token_id": [1, 2], "num_beam_groups": 2, "diversity_penalty": 0.5}`,
		`{"typical_p": 2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		g, err := parseGenerationConfig("generation_config.json", raw)
		if err != nil {
			if g != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		out, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		g2, err := parseGenerationConfig("roundtrip.json", out)
		if err != nil {
			t.Fatalf("round trip of %s: %v", out, err)
		}
		if !reflect.DeepEqual(normalize(g), normalize(g2)) {
			t.Fatalf("round trip changed the config:\n%s\n%+v", out, g2)
		}
		// The model-config helpers must not panic on what was accepted.
		g.NonDefault()
		if p, err := ParseGenerationParams(raw); err == nil {
			p.FillFrom(g)
			g.FillFrom(p)
		}
	})
}

// normalize maps an empty EOS list to nil (both mean "absent").
func normalize(g *GenerationConfig) *GenerationConfig {
	c := *g
	if len(c.EOSTokenIDs) == 0 {
		c.EOSTokenIDs = nil
	}
	if len(c.ForcedEOSTokenIDs) == 0 {
		c.ForcedEOSTokenIDs = nil
	}
	if len(c.SuppressTokens) == 0 {
		c.SuppressTokens = nil
	}
	if len(c.BeginSuppressTokens) == 0 {
		c.BeginSuppressTokens = nil
	}
	if len(c.BadWordsIDs) == 0 {
		c.BadWordsIDs = nil
	}
	return &c
}
