package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"testing"
)

func ip(v int) *int                     { return &v }
func fp(v float64) *float64             { return &v }
func bp(v bool) *bool                   { return &v }
func ep(v EarlyStopping) *EarlyStopping { return &v }

func TestReadGenerationConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string // "" = no file
		want *GenerationConfig
		err  []string
	}{
		{name: "absent file", want: &GenerationConfig{}},
		{name: "empty object", json: `{}`, want: &GenerationConfig{}},
		{name: "blip-style", json: `{"_from_model_config": true, "bos_token_id": 100, "eos_token_id": 2, "pad_token_id": 0, "transformers_version": "4.40.2"}`,
			want: &GenerationConfig{BOSTokenID: ip(100), EOSTokenIDs: TokenIDs{2}, PadTokenID: ip(0), FromModelConfig: true}},
		{name: "everything", json: `{"max_length": 20, "max_new_tokens": 30, "min_length": 5, "min_new_tokens": 2, "num_beams": 4,
			"length_penalty": 0.8, "early_stopping": true, "no_repeat_ngram_size": 3, "repetition_penalty": 1.2, "do_sample": true,
			"temperature": 0.7, "top_k": 40, "top_p": 0.9, "bos_token_id": 1, "eos_token_id": [2, 3], "pad_token_id": 0,
			"decoder_start_token_id": 50256, "unknown_key": {"x": [1]}}`,
			want: &GenerationConfig{MaxLength: ip(20), MaxNewTokens: ip(30), MinLength: ip(5), MinNewTokens: ip(2), NumBeams: ip(4),
				LengthPenalty: fp(0.8), EarlyStopping: ep(EarlyStoppingTrue), NoRepeatNgramSize: ip(3), RepetitionPenalty: fp(1.2),
				DoSample: bp(true), Temperature: fp(0.7), TopK: ip(40), TopP: fp(0.9), BOSTokenID: ip(1), EOSTokenIDs: TokenIDs{2, 3},
				PadTokenID: ip(0), DecoderStartTokenID: ip(50256)}},
		{name: "nulls are absent", json: `{"max_length": null, "eos_token_id": null, "early_stopping": null, "pad_token_id": null}`,
			want: &GenerationConfig{}},
		{name: "early stopping never", json: `{"early_stopping": "never"}`, want: &GenerationConfig{EarlyStopping: ep(EarlyStoppingNever)}},
		{name: "early stopping false", json: `{"early_stopping": false}`, want: &GenerationConfig{EarlyStopping: ep(EarlyStoppingFalse)}},
		{name: "negative pad id kept", json: `{"pad_token_id": -1}`, want: &GenerationConfig{PadTokenID: ip(-1)}},
		{name: "bad early stopping", json: `{"early_stopping": "sometimes"}`, err: []string{"early_stopping", `"sometimes"`}},
		{name: "eos string", json: `{"eos_token_id": "2"}`, err: []string{"token id", `"2"`}},
		{name: "eos list of strings", json: `{"eos_token_id": ["a"]}`, err: []string{"token id"}},
		{name: "max_length string", json: `{"max_length": "20"}`, err: []string{`key "max_length"`, "string"}},
		{name: "max_length float", json: `{"max_length": 2.5}`, err: []string{`key "max_length"`}},
		{name: "num_beams zero", json: `{"num_beams": 0}`, err: []string{"num_beams = 0", "≥ 1"}},
		{name: "negative max_new_tokens", json: `{"max_new_tokens": -1}`, err: []string{"max_new_tokens = -1"}},
		{name: "top_p above one", json: `{"top_p": 1.5}`, err: []string{"top_p = 1.5"}},
		{name: "zero repetition penalty", json: `{"repetition_penalty": 0}`, err: []string{"repetition_penalty = 0", "> 0"}},
		{name: "negative temperature", json: `{"temperature": -1}`, err: []string{"temperature = -1"}},
		{name: "syntax error", json: "{\n  \"num_beams\": 3,\n  \"top_k\": ]\n}", err: []string{"invalid JSON", "line 3, column"}},
		{name: "not an object", json: `[1]`, err: []string{"array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.json != "" {
				writeFile(t, dir, "generation_config.json", []byte(tc.json))
			}
			g, err := ReadGenerationConfig(dir)
			if tc.err != nil {
				wantErr(t, err, append(tc.err, filepath.Join(dir, "generation_config.json"))...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, tc.want) {
				a, _ := json.Marshal(g)
				b, _ := json.Marshal(tc.want)
				t.Fatalf("got %s\nwant %s", a, b)
			}
		})
	}
}

func TestReadGenerationConfigGolden(t *testing.T) {
	g, err := ReadGenerationConfig("../../testdata/golden/vit-gpt2")
	if err != nil {
		t.Fatal(err)
	}
	if *g.DecoderStartTokenID != 99 || fmt.Sprint(g.EOSTokenIDs) != "[99]" || *g.PadTokenID != 99 || *g.BOSTokenID != 99 || g.NumBeams != nil {
		t.Fatalf("vit-gpt2 generation config %+v", g)
	}
}

func TestModelConfigGenerationParams(t *testing.T) {
	// vit-gpt2: the top level sets only token ids (not checked by
	// NonDefault); the decoder dict fills bos_token_id and max_length.
	var top map[string]json.RawMessage
	if err := ReadJSON("../../testdata/golden/vit-gpt2", "config.json", &top); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(top)
	g, err := ParseGenerationParams(raw)
	if err != nil {
		t.Fatal(err)
	}
	if nd := g.NonDefault(); len(nd) != 0 {
		t.Fatalf("NonDefault = %v", nd)
	}
	if g.BOSTokenID != nil || *g.DecoderStartTokenID != 99 {
		t.Fatalf("top level %+v", g)
	}
	dec, err := ParseGenerationParams(top["decoder"])
	if err != nil {
		t.Fatal(err)
	}
	g.FillFrom(dec)
	if *g.BOSTokenID != 99 || *g.DecoderStartTokenID != 99 || fmt.Sprint(g.EOSTokenIDs) != "[99]" || *g.MaxLength != 20 || *g.TopK != 50 {
		t.Fatalf("after FillFrom(decoder): %+v", g)
	}

	for _, tc := range []struct {
		name       string
		top, sub   string
		nonDefault string
		want       *GenerationConfig
	}{
		{"top wins over decoder", `{"num_beams": 4, "max_length": 32}`, `{"num_beams": 2, "max_length": 16, "min_length": 3}`,
			"[max_length num_beams]", &GenerationConfig{NumBeams: ip(4), MaxLength: ip(32), MinLength: ip(3)}},
		{"default at top is overridden", `{"num_beams": 1, "early_stopping": false}`, `{"num_beams": 3, "early_stopping": true}`,
			"[]", &GenerationConfig{NumBeams: ip(3), EarlyStopping: ep(EarlyStoppingTrue)}},
		{"forced and lists count as non-default", `{"forced_bos_token_id": 0, "suppress_tokens": [1], "bos_token_id": 5}`, `{"suppress_tokens": [2]}`,
			"[forced_bos_token_id suppress_tokens]", &GenerationConfig{ForcedBOSTokenID: ip(0), SuppressTokens: []int{1}, BOSTokenID: ip(5)}},
		{"marker ignored", `{"_from_model_config": true, "top_k": 50}`, `{}`, "[]", &GenerationConfig{TopK: ip(50)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ParseGenerationParams([]byte(tc.top))
			if err != nil {
				t.Fatal(err)
			}
			if nd := fmt.Sprint(g.NonDefault()); nd != tc.nonDefault {
				t.Fatalf("NonDefault = %s, want %s", nd, tc.nonDefault)
			}
			sub, err := ParseGenerationParams([]byte(tc.sub))
			if err != nil {
				t.Fatal(err)
			}
			g.FillFrom(sub)
			if !reflect.DeepEqual(g, tc.want) {
				a, _ := json.Marshal(g)
				t.Fatalf("got %s", a)
			}
		})
	}
	_, err = ParseGenerationParams([]byte(`{"num_beams": "four"}`))
	wantErr(t, err, `key "num_beams"`, "model config")
	_, err = ParseGenerationParams([]byte(`{"num_beams": 0}`))
	wantErr(t, err, "num_beams = 0")
}

func TestReadJSON(t *testing.T) {
	dir := t.TempDir()
	var v struct {
		A int `json:"a"`
	}
	err := ReadJSON(dir, "config.json", &v)
	wantErr(t, err, filepath.Join(dir, "config.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file error %v does not wrap fs.ErrNotExist", err)
	}
	writeFile(t, dir, "config.json", []byte("{\"a\": 1,\n\"b\": }"))
	wantErr(t, ReadJSON(dir, "config.json", &v), filepath.Join(dir, "config.json"), "line 2, column")
	writeFile(t, dir, "config.json", []byte(`{"a": "one"}`))
	wantErr(t, ReadJSON(dir, "config.json", &v), filepath.Join(dir, "config.json"), `key "a"`)
	writeFile(t, dir, "config.json", []byte(`{"a": 7, "other": [1, 2]}`))
	if err := ReadJSON(dir, "config.json", &v); err != nil || v.A != 7 {
		t.Fatalf("ReadJSON = %v, %v", v, err)
	}
	wantErr(t, ReadJSON(t.TempDir(), ".", &v), "not a regular file")
}

func TestEarlyStoppingJSON(t *testing.T) {
	for _, e := range []EarlyStopping{EarlyStoppingFalse, EarlyStoppingTrue, EarlyStoppingNever} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back EarlyStopping
		if err := json.Unmarshal(b, &back); err != nil || back != e {
			t.Fatalf("%v → %s → %v, %v", e, b, back, err)
		}
	}
}
