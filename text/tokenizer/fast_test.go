package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFiles writes name -> content into a new temporary folder.
func writeFiles(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bertTokenizerJSON builds the tokenizer.json HF's converter writes for a
// bert-base-uncased style vocab.txt.
func bertTokenizerJSON(t testing.TB, vocabTxt []byte) []byte {
	lines := strings.Split(strings.TrimSuffix(string(vocabTxt), "\n"), "\n")
	vocab := map[string]int{}
	for i, l := range lines {
		vocab[l] = i
	}
	var added []map[string]any
	for _, s := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		added = append(added, map[string]any{"id": vocab[s], "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	return mustJSON(t, map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil,
		"added_tokens":   added,
		"normalizer":     map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": true},
		"pre_tokenizer":  map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{"type": "TemplateProcessing", "single": []any{map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}}}, "special_tokens": map[string]any{"[CLS]": map[string]any{"id": "[CLS]", "ids": []int{vocab["[CLS]"]}, "tokens": []string{"[CLS]"}}, "[SEP]": map[string]any{"id": "[SEP]", "ids": []int{vocab["[SEP]"]}, "tokens": []string{"[SEP]"}}}},
		"decoder":        map[string]any{"type": "WordPiece", "prefix": "##", "cleanup": true},
		"model":          map[string]any{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
	})
}

// bpeTokenizerJSON builds the tokenizer.json of a GPT-2 (clip=false) or CLIP BPE
// vocabulary; newMerges selects the [a, b] pair format of recent tokenizers versions.
func bpeTokenizerJSON(t testing.TB, vocabJSON, mergesTxt []byte, clip, newMerges bool) []byte {
	var vocab map[string]int
	if err := json.Unmarshal(vocabJSON, &vocab); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(mergesTxt)), "\n")[1:]
	var merges any = lines
	if newMerges {
		var pairs [][]string
		for _, l := range lines {
			pairs = append(pairs, strings.Split(l, " "))
		}
		merges = pairs
	}
	if !clip {
		return mustJSON(t, map[string]any{
			"version":        "1.0",
			"added_tokens":   []any{map[string]any{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true}},
			"normalizer":     nil,
			"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
			"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
			"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
			"model":          map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges},
		})
	}
	sot, eot := vocab["<|startoftext|>"], vocab["<|endoftext|>"]
	return mustJSON(t, map[string]any{
		"version": "1.0",
		"added_tokens": []any{
			map[string]any{"id": sot, "content": "<|startoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
			map[string]any{"id": eot, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
		},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "NFC"}, map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": `\s+`}, "content": " "}, map[string]any{"type": "Lowercase"}}},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": clipPattern}, "behavior": "Removed", "invert": true},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}}},
		"post_processor": map[string]any{"type": "RobertaProcessing", "sep": []any{"<|endoftext|>", eot}, "cls": []any{"<|startoftext|>", sot}, "trim_offsets": false, "add_prefix_space": false},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model":          map[string]any{"type": "BPE", "dropout": nil, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "", "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges},
	})
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTokenizerJSONMatchesSlowFiles loads tokenizer.json equivalents of the golden
// vocabularies and checks them on every golden string, as the vocab-file path is.
func TestTokenizerJSONMatchesSlowFiles(t *testing.T) {
	t.Run("bert", func(t *testing.T) {
		dir := writeFiles(t, map[string][]byte{"tokenizer.json": bertTokenizerJSON(t, readFile(t, filepath.Join(goldenDir, "bert-base-uncased/vocab.txt")))})
		tk := mustLoad(t, dir)
		if c := tk.(Info).Class(); c != "BertTokenizer(tokenizer.json)" {
			t.Errorf("class %q", c)
		}
		g := readGolden(t, "bert-base-uncased")
		checkSpecialIDs(t, tk, g)
		checkGolden(t, tk, g)
	})
	for _, newMerges := range []bool{false, true} {
		name := "gpt2-string-merges"
		if newMerges {
			name = "gpt2-pair-merges"
		}
		t.Run(name, func(t *testing.T) {
			dir := writeFiles(t, map[string][]byte{"tokenizer.json": bpeTokenizerJSON(t,
				readFile(t, filepath.Join(goldenDir, "gpt2/vocab.json")), readFile(t, filepath.Join(goldenDir, "gpt2/merges.txt")), false, newMerges)})
			tk := mustLoad(t, dir)
			g := readGolden(t, "gpt2")
			checkSpecialIDs(t, tk, g)
			checkGolden(t, tk, g)
		})
	}
	t.Run("clip", func(t *testing.T) {
		src := filepath.Join(e2eDir, "clip")
		files := map[string][]byte{
			"tokenizer.json":          bpeTokenizerJSON(t, readFile(t, filepath.Join(src, "vocab.json")), readFile(t, filepath.Join(src, "merges.txt")), true, false),
			"tokenizer_config.json":   readFile(t, filepath.Join(src, "tokenizer_config.json")),
			"special_tokens_map.json": readFile(t, filepath.Join(src, "special_tokens_map.json")),
		}
		fast := mustLoad(t, writeFiles(t, files))
		slow := mustLoad(t, src)
		texts := []string{"a photo of a cat", "A woman in an orange flight suit.", "café au lait", "It's  the\tMOON!! 42 <|endoftext|>", ""}
		for _, s := range texts {
			if a, b := fast.Encode(s, true), slow.Encode(s, true); !equalInts(a, b) {
				t.Errorf("Encode(%q): tokenizer.json %v, vocab files %v", s, a, b)
			}
			ids := slow.Encode(s, true)
			for _, skip := range []bool{true, false} {
				if a, b := fast.Decode(ids, skip), slow.Decode(ids, skip); a != b {
					t.Errorf("Decode(%v, %v): tokenizer.json %q, vocab files %q", ids, skip, a, b)
				}
			}
		}
		if !equalSpecial(fast.Special(), slow.Special()) {
			t.Errorf("Special: tokenizer.json %+v, vocab files %+v", fast.Special(), slow.Special())
		}
	})
}

func equalSpecial(a, b SpecialTokens) bool {
	return a.BOS == b.BOS && a.EOS == b.EOS && a.PAD == b.PAD && a.UNK == b.UNK && a.CLS == b.CLS &&
		a.SEP == b.SEP && a.MASK == b.MASK && reflect.DeepEqual(a.Names, b.Names)
}

// TestLoadErrors checks that unusable folders fail with a message naming the problem.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"empty folder", map[string][]byte{}, "no tokenizer files"},
		{"bad class", map[string][]byte{"tokenizer_config.json": []byte(`{"tokenizer_class": "T5Tokenizer"}`), "vocab.txt": []byte("a\n")}, "T5Tokenizer"},
		{"bad config", map[string][]byte{"tokenizer_config.json": []byte(`[1]`), "vocab.txt": []byte("a\n")}, "tokenizer_config.json"},
		{"gpt2 without merges", map[string][]byte{"tokenizer_config.json": []byte(`{"tokenizer_class": "GPT2Tokenizer"}`), "vocab.json": []byte(`{"a": 0}`)}, "merges.txt"},
		{"vocab.json not an object", map[string][]byte{"vocab.json": []byte(`[1,2]`), "merges.txt": []byte("#v\n")}, "vocab.json"},
		{"vocab.txt not UTF-8", map[string][]byte{"vocab.txt": []byte("a\n\xff\n")}, "UTF-8"},
		{"unsupported model", map[string][]byte{"tokenizer.json": []byte(`{"model": {"type": "Unigram", "vocab": {"a": 0}}}`)}, "Unigram"},
		{"bad lower-case flag", map[string][]byte{"tokenizer_config.json": []byte(`{"do_lower_case": "yes"}`), "vocab.txt": []byte("a\n")}, "do_lower_case"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFiles(t, tc.files))
			if err == nil {
				t.Fatalf("Load succeeded, want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Load of a missing folder succeeded")
	}
}
