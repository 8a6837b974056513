package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

var fuzzToks struct {
	once                 sync.Once
	bert, gpt2, gpt2Raw  Tokenizer
	clip, blip           Tokenizer
	err                  error
	seeds                []string
	blipVocab, clipVocab []byte
	clipMerges           []byte
}

func loadFuzzToks(t testing.TB) {
	fuzzToks.once.Do(func() {
		load := func(dir string) Tokenizer {
			tk, err := Load(dir)
			if err != nil && fuzzToks.err == nil {
				fuzzToks.err = err
			}
			return tk
		}
		fuzzToks.bert = load(filepath.Join(goldenDir, "bert-base-uncased"))
		fuzzToks.gpt2 = load(filepath.Join(goldenDir, "gpt2"))
		fuzzToks.clip = load(filepath.Join(e2eDir, "clip"))
		fuzzToks.blip = load(filepath.Join(e2eDir, "blip-caption"))
		// GPT-2 without clean-up: byte-level BPE then round-trips any valid UTF-8.
		raw := load(filepath.Join(goldenDir, "gpt2"))
		if raw != nil {
			raw.(*tok).cleanup = false
		}
		fuzzToks.gpt2Raw = raw
		for _, name := range []string{"bert-base-uncased", "gpt2"} {
			g := readGolden(t, name)
			for _, c := range g.Cases {
				fuzzToks.seeds = append(fuzzToks.seeds, c.Text)
			}
		}
		fuzzToks.blipVocab, _ = os.ReadFile(filepath.Join(e2eDir, "blip-caption/vocab.txt"))
		fuzzToks.clipVocab, _ = os.ReadFile(filepath.Join(e2eDir, "clip/vocab.json"))
		fuzzToks.clipMerges, _ = os.ReadFile(filepath.Join(e2eDir, "clip/merges.txt"))
	})
	if fuzzToks.err != nil {
		t.Fatal(fuzzToks.err)
	}
}

func addSeeds(f *testing.F) {
	loadFuzzToks(f)
	// Small stream windows, so that fuzzed streams move their anchor often.
	old := streamWindow
	streamWindow = 2
	f.Cleanup(func() { streamWindow = old })
	for _, s := range fuzzToks.seeds {
		f.Add(s)
	}
	f.Add("'s 're'VE  \t\n x\u00a0\u2028y ſ'ſ <|startoftext|>A<|endoftext|>[CLS][DEC]")
}

// checkTokenizerOn runs every entry point on s and checks the invariants that hold
// for any input: ids inside the vocabulary, tokens matching ids, valid UTF-8 decodes,
// and a streamed decode equal to the full one.
func checkTokenizerOn(t *testing.T, tk Tokenizer, s string) []int {
	toks := tk.Tokens(s)
	ids := tk.Encode(s, false)
	if len(ids) != len(toks) {
		t.Fatalf("Encode gave %d ids for %d tokens", len(ids), len(toks))
	}
	n := tk.VocabSize()
	for i, id := range ids {
		if id < 0 || id >= n {
			t.Fatalf("id %d out of range [0,%d)", id, n)
		}
		if want, ok := tk.TokenToID(toks[i]); ok && want != id {
			t.Fatalf("token %q has id %d, Encode gave %d", toks[i], want, id)
		}
	}
	withSpecial := tk.Encode(s, true)
	for _, skip := range []bool{true, false} {
		d := tk.Decode(withSpecial, skip)
		if !utf8.ValidString(d) {
			t.Fatalf("Decode gave invalid UTF-8 %q", d)
		}
		if len(withSpecial) <= 48 {
			checkStream(t, tk, withSpecial, skip)
		}
	}
	if _, err := TokenizeJSON(tk, s, true); err != nil {
		t.Fatal(err)
	}
	return ids
}

func FuzzWordPiece(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		checkTokenizerOn(t, fuzzToks.bert, s)
		ids := checkTokenizerOn(t, fuzzToks.blip, s)
		// Decoding WordPiece output and encoding it again is stable once normalised.
		d := fuzzToks.blip.Decode(ids, false)
		again := fuzzToks.blip.Decode(fuzzToks.blip.Encode(d, false), false)
		if d2 := fuzzToks.blip.Decode(fuzzToks.blip.Encode(again, false), false); d2 != again {
			t.Fatalf("decode/encode not stable: %q -> %q -> %q", d, again, d2)
		}
	})
}

func FuzzGPT2BPE(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		checkTokenizerOn(t, fuzzToks.gpt2, s)
		// Byte-level BPE round-trips any valid UTF-8 when no clean-up is applied.
		ids := fuzzToks.gpt2Raw.Encode(s, true)
		want := sanitizeUTF8(s)
		if got := fuzzToks.gpt2Raw.Decode(ids, false); got != want {
			t.Fatalf("Decode(Encode(%q)) = %q", want, got)
		}
	})
}

func FuzzCLIPBPE(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		ids := checkTokenizerOn(t, fuzzToks.clip, s)
		// The text is lower-cased and its white space collapsed, so decoding
		// and encoding again reaches a fixed point.
		d := fuzzToks.clip.Decode(ids, true)
		if strings.Contains(d, "\uFFFD") {
			return // replacement characters of split UTF-8 need not re-encode alike
		}
		d2 := fuzzToks.clip.Decode(fuzzToks.clip.Encode(d, false), true)
		if d3 := fuzzToks.clip.Decode(fuzzToks.clip.Encode(d2, false), true); d3 != d2 {
			t.Fatalf("decode/encode not stable: %q -> %q -> %q", d, d2, d3)
		}
	})
}

// useLoaded exercises a tokenizer built from fuzzed files.
func useLoaded(t *testing.T, tk Tokenizer) {
	for _, s := range []string{"", "Hello, world! don't [CLS] <|endoftext|> café 猫 🍕", "a b c d e f"} {
		ids := tk.Encode(s, true)
		for _, skip := range []bool{true, false} {
			if d := tk.Decode(ids, skip); !utf8.ValidString(d) {
				t.Fatalf("invalid UTF-8 decode %q", d)
			}
			checkStream(t, tk, ids, skip)
		}
		tk.Tokens(s)
	}
	n := tk.VocabSize()
	for id := -1; id <= n && id < 300; id++ {
		tk.IDToToken(id)
		tk.Decode([]int{id, id, 0}, false)
	}
	tk.Special()
}

func FuzzLoadTokenizerJSON(f *testing.F) {
	loadFuzzToks(f)
	f.Add(bertTokenizerJSON(f, fuzzToks.blipVocab), []byte(`{"tokenizer_class": "BertTokenizerFast", "do_lower_case": true}`))
	f.Add(bpeTokenizerJSON(f, fuzzToks.clipVocab, fuzzToks.clipMerges, true, false), []byte(`{"bos_token": "<|startoftext|>"}`))
	f.Add(bpeTokenizerJSON(f, []byte(`{"a":0,"b":1,"ab":2,"<|endoftext|>":3,"Ġ":4}`), []byte("#v\na b\n"), false, true), []byte(`{}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","a"]]},"pre_tokenizer":{"type":"ByteLevel"}}`), []byte(`{"added_tokens_decoder":{"5":{"content":"x"}}}`))
	f.Fuzz(func(t *testing.T, tokJSON, cfg []byte) {
		tk, err := LoadFiles(map[string][]byte{"tokenizer.json": tokJSON, "tokenizer_config.json": cfg})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		useLoaded(t, tk)
	})
}

func FuzzLoadVocab(f *testing.F) {
	loadFuzzToks(f)
	f.Add(fuzzToks.blipVocab, []byte(nil), []byte(nil), []byte(`{"do_lower_case": false, "never_split": ["[X]"]}`), []byte(`{"[DEC]": 366}`))
	f.Add([]byte(nil), fuzzToks.clipVocab, fuzzToks.clipMerges, []byte(`{"tokenizer_class": "CLIPTokenizer"}`), []byte(nil))
	f.Add([]byte(nil), []byte(`{"a":0,"b":1,"ab":2,"<|endoftext|>":3}`), []byte("#version: 0.2\na b\n"), []byte(`{"add_bos_token": true, "add_prefix_space": true}`), []byte(`{"<x>": 9}`))
	f.Add([]byte("[PAD]\r\n[UNK]\r\n\r\n##a\ra\n"), []byte(nil), []byte(nil), []byte(`{"unk_token": {"content": "[UNK]", "lstrip": true}, "additional_special_tokens": ["a"]}`), []byte(nil))
	f.Fuzz(func(t *testing.T, vocabTxt, vocabJSON, merges, cfg, added []byte) {
		files := map[string][]byte{}
		for name, b := range map[string][]byte{"vocab.txt": vocabTxt, "vocab.json": vocabJSON, "merges.txt": merges, "tokenizer_config.json": cfg, "added_tokens.json": added} {
			if b != nil {
				files[name] = b
			}
		}
		tk, err := LoadFiles(files)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		useLoaded(t, tk)
	})
}
