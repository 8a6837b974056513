package tokenizer

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// copyTokenizerFiles reads the tokenizer files of a checkpoint folder.
func copyTokenizerFiles(t *testing.T, dir string, names ...string) map[string][]byte {
	files := map[string][]byte{}
	for _, n := range names {
		files[n] = readFile(t, filepath.Join(dir, n))
	}
	return files
}

func editJSON(t *testing.T, b []byte, edit func(map[string]any)) []byte {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	return mustJSON(t, m)
}

// TestLegacyBLIPFiles loads BLIP's tokenizer as older checkpoints save it (no
// added_tokens_decoder: special tokens from special_tokens_map.json, [DEC]/[ENC] from
// added_tokens.json) and expects the same tokenizer.
func TestLegacyBLIPFiles(t *testing.T) {
	src := filepath.Join(e2eDir, "blip-caption")
	files := copyTokenizerFiles(t, src, "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
	files["tokenizer_config.json"] = editJSON(t, files["tokenizer_config.json"], func(m map[string]any) {
		delete(m, "added_tokens_decoder")
		delete(m, "bos_token")
		delete(m, "additional_special_tokens")
	})
	legacy, err := LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	cur := mustLoad(t, src)
	if !equalSpecial(legacy.Special(), cur.Special()) {
		t.Errorf("Special: legacy files %+v, current files %+v", legacy.Special(), cur.Special())
	}
	ids := []int{366, 28, 183, 105, 367, 3, 1, 75}
	for _, skip := range []bool{true, false} {
		if a, b := legacy.Decode(ids, skip), cur.Decode(ids, skip); a != b {
			t.Errorf("Decode(%v, %v): legacy %q, current %q", ids, skip, a, b)
		}
	}
	if a, b := legacy.Encode("[DEC] A photograph of [ENC]!", true), cur.Encode("[DEC] A photograph of [ENC]!", true); !equalInts(a, b) {
		t.Errorf("Encode: legacy %v, current %v", a, b)
	}
}

// TestConfigOptions checks config keys that change tokenisation, and that absent keys
// take HF's class defaults.
func TestConfigOptions(t *testing.T) {
	gpt2 := filepath.Join(e2eDir, "vit-gpt2")
	bert := filepath.Join(e2eDir, "blip-caption")
	load := func(dir string, names []string, edit func(map[string]any)) Tokenizer {
		files := copyTokenizerFiles(t, dir, names...)
		files["tokenizer_config.json"] = editJSON(t, files["tokenizer_config.json"], edit)
		tk, err := LoadFiles(files)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	gpt2Files := []string{"vocab.json", "merges.txt", "tokenizer_config.json"}
	bertFiles := []string{"vocab.txt", "tokenizer_config.json"}

	plain := mustLoad(t, gpt2)
	prefixed := load(gpt2, gpt2Files, func(m map[string]any) { m["add_prefix_space"] = true })
	if a, b := prefixed.Tokens("in the"), plain.Tokens(" in the"); !equalStrings(a, b) {
		t.Errorf("add_prefix_space: Tokens(\"in the\") = %q, want those of \" in the\": %q", a, b)
	}
	bos := load(gpt2, gpt2Files, func(m map[string]any) { m["add_bos_token"] = true })
	if got := bos.Encode("in", true); len(got) == 0 || got[0] != 456 {
		t.Errorf("add_bos_token: Encode = %v, want <|endoftext|> (456) first", got)
	}
	if got := bos.Encode("in", false); len(got) > 0 && got[0] == 456 {
		t.Errorf("add_bos_token: Encode without special tokens = %v starts with bos", got)
	}
	pad := load(gpt2, gpt2Files, func(m map[string]any) { m["pad_token"] = "<pad>" })
	if got := pad.Special().PAD; got != 457 {
		t.Errorf("pad_token <pad> missing from the vocabulary: id %d, want 457 (appended)", got)
	}
	if got := pad.VocabSize(); got != 458 {
		t.Errorf("VocabSize with an appended pad token = %d, want 458", got)
	}
	defaults := load(gpt2, gpt2Files, func(m map[string]any) {
		for _, k := range []string{"bos_token", "eos_token", "unk_token", "pad_token", "added_tokens_decoder", "clean_up_tokenization_spaces"} {
			delete(m, k)
		}
	})
	if sp := defaults.Special(); sp.BOS != 456 || sp.EOS != 456 || sp.UNK != 456 || sp.PAD != -1 {
		t.Errorf("GPT2Tokenizer defaults: %+v, want bos/eos/unk 456, no pad", sp)
	}
	if got := defaults.Decode(defaults.Encode("in .", false), false); got != "in." {
		t.Errorf("clean_up_tokenization_spaces default: %q, want \"in.\"", got)
	}
	noClean := load(gpt2, gpt2Files, func(m map[string]any) { m["clean_up_tokenization_spaces"] = false })
	if got := noClean.Decode(noClean.Encode("in .", false), false); got != "in ." {
		t.Errorf("clean_up_tokenization_spaces false: %q, want \"in .\"", got)
	}

	cased := load(bert, bertFiles, func(m map[string]any) { m["do_lower_case"] = false })
	if got := cased.Tokens("A cat"); !equalStrings(got, []string{"[UNK]", "cat"}) {
		t.Errorf("do_lower_case false: Tokens(\"A cat\") = %q, want [UNK] cat (no upper-case A in the vocabulary)", got)
	}
	accents := load(bert, bertFiles, func(m map[string]any) { m["strip_accents"] = false })
	if got := accents.Tokens("café"); !equalStrings(got, []string{"[UNK]"}) {
		t.Errorf("strip_accents false: Tokens(\"café\") = %q, want [UNK]", got)
	}
	noCJK := load(bert, bertFiles, func(m map[string]any) { m["tokenize_chinese_chars"] = false })
	if got := noCJK.Tokens("猫猫"); !equalStrings(got, []string{"[UNK]"}) {
		t.Errorf("tokenize_chinese_chars false: Tokens(\"猫猫\") = %q, want one [UNK]", got)
	}
	never := load(bert, bertFiles, func(m map[string]any) { m["never_split"] = []string{"cat's"} })
	if got := never.Tokens("cat's"); !equalStrings(got, []string{"cat's"}) {
		t.Errorf("never_split: Tokens(\"cat's\") = %q, want [cat's]", got)
	}
	if got := MaxLength(cased); got != 48 {
		t.Errorf("MaxLength = %d, want 48", got)
	}
}
