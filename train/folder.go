package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WordPieceFiles returns the tokenizer and preprocessor files of a BLIP
// folder with a WordPiece vocabulary of words (plus BERT's specials,
// punctuation, single letters and digits with their ## continuations, so
// any lower-case ASCII text tokenizes), [DEC] (bos) and [ENC] as added
// tokens as BLIP's tokenizer has them, and a BlipImageProcessor of
// imageSize. The vocabulary is sorted, so equal word sets give equal
// files.
func WordPieceFiles(words []string, imageSize, maxLen int) map[string][]byte {
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	seen := map[string]bool{}
	for _, v := range vocab {
		seen[v] = true
	}
	var rest []string
	addWord := func(w string) {
		if !seen[w] {
			seen[w] = true
			rest = append(rest, w)
		}
	}
	for _, w := range words {
		addWord(strings.ToLower(w))
	}
	for _, c := range "abcdefghijklmnopqrstuvwxyz0123456789" {
		addWord(string(c))
		addWord("##" + string(c))
	}
	for _, c := range ".,?!'\"-:;()/" {
		addWord(string(c))
	}
	sort.Strings(rest)
	vocab = append(vocab, rest...)
	dec, enc := len(vocab), len(vocab)+1
	files := map[string][]byte{}
	files["vocab.txt"] = []byte(strings.Join(vocab, "\n") + "\n")
	files["added_tokens.json"] = mustJSON(map[string]int{"[DEC]": dec, "[ENC]": enc})
	tokSpec := func(s string) map[string]any {
		return map[string]any{"content": s, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false}
	}
	files["special_tokens_map.json"] = mustJSON(map[string]any{
		"additional_special_tokens": []any{tokSpec("[ENC]")},
		"bos_token":                 tokSpec("[DEC]"),
		"cls_token":                 "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]",
	})
	added := map[string]any{}
	for i, s := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		t := tokSpec(s)
		t["special"] = true
		added[fmt.Sprint(i)] = t
	}
	for id, s := range map[int]string{dec: "[DEC]", enc: "[ENC]"} {
		t := tokSpec(s)
		t["special"] = true
		added[fmt.Sprint(id)] = t
	}
	files["tokenizer_config.json"] = mustJSON(map[string]any{
		"added_tokens_decoder":         added,
		"additional_special_tokens":    []string{"[ENC]"},
		"bos_token":                    "[DEC]",
		"clean_up_tokenization_spaces": true,
		"cls_token":                    "[CLS]",
		"do_basic_tokenize":            true,
		"do_lower_case":                true,
		"mask_token":                   "[MASK]",
		"model_max_length":             maxLen,
		"never_split":                  nil,
		"pad_token":                    "[PAD]",
		"processor_class":              "BlipProcessor",
		"sep_token":                    "[SEP]",
		"strip_accents":                nil,
		"tokenize_chinese_chars":       true,
		"tokenizer_class":              "BertTokenizer",
		"unk_token":                    "[UNK]",
	})
	files["preprocessor_config.json"] = mustJSON(map[string]any{
		"do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
		"image_mean":           []float64{0.48145466, 0.4578275, 0.40821073},
		"image_std":            []float64{0.26862954, 0.26130258, 0.27577711},
		"image_processor_type": "BlipImageProcessor",
		"processor_class":      "BlipProcessor",
		"resample":             3,
		"rescale_factor":       0.00392156862745098,
		"size":                 map[string]int{"height": imageSize, "width": imageSize},
	})
	return files
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// VocabSize is the number of ids of a WordPieceFiles vocabulary
// (vocab.txt lines plus [DEC] and [ENC]).
func VocabSize(files map[string][]byte) int {
	return strings.Count(string(files["vocab.txt"]), "\n") + 2
}

// hfConfig returns config.json for the model.
func (m *Model) hfConfig(half bool) map[string]any {
	c := m.Cfg
	text := map[string]any{
		"model_type":                   "blip_text_model",
		"vocab_size":                   c.Text.Vocab,
		"hidden_size":                  c.Text.Hidden,
		"encoder_hidden_size":          c.Vision.Hidden,
		"intermediate_size":            c.Text.Intermediate,
		"projection_dim":               c.ProjDim,
		"num_hidden_layers":            c.Text.Layers,
		"num_attention_heads":          c.Text.Heads,
		"max_position_embeddings":      c.Text.MaxPositions,
		"hidden_act":                   "gelu",
		"layer_norm_eps":               c.Text.Eps,
		"hidden_dropout_prob":          0.0,
		"attention_probs_dropout_prob": 0.0,
		"initializer_range":            0.02,
		"bos_token_id":                 m.bos,
		"eos_token_id":                 m.sep,
		"pad_token_id":                 m.pad,
		"sep_token_id":                 m.sep,
		"is_decoder":                   true,
		"use_cache":                    true,
		"label_smoothing":              0.0,
	}
	vis := map[string]any{
		"model_type":          "blip_vision_model",
		"hidden_size":         c.Vision.Hidden,
		"intermediate_size":   c.Vision.Intermediate,
		"projection_dim":      c.ProjDim,
		"num_hidden_layers":   c.Vision.Layers,
		"num_attention_heads": c.Vision.Heads,
		"num_channels":        3,
		"image_size":          c.Vision.ImageSize,
		"patch_size":          c.Vision.PatchSize,
		"hidden_act":          "gelu",
		"layer_norm_eps":      c.Vision.Eps,
		"attention_dropout":   0.0,
		"initializer_range":   0.02,
	}
	dtype := "float32"
	if half {
		dtype = "float16"
	}
	return map[string]any{
		"architectures":          []string{m.Arch},
		"model_type":             "blip",
		"image_text_hidden_size": c.ProjDim,
		"projection_dim":         c.ProjDim,
		"initializer_factor":     1.0,
		"initializer_range":      0.02,
		"label_smoothing":        0.0,
		"logit_scale_init_value": 2.6592,
		"text_config":            text,
		"vision_config":          vis,
		"torch_dtype":            dtype,
		"transformers_version":   "4.40.2",
	}
}

// Save writes the model as a Hugging Face folder: config.json,
// model.safetensors (F16 if half; the in-memory weights are rounded to
// F16 first so the saved model is the trained one), the tokenizer and
// preprocessor files, and generation_config.json for the generative
// architectures.
func (m *Model) Save(dir string, half bool) error {
	if err := ensureDir(dir); err != nil {
		return err
	}
	if half {
		roundF16(m.Params)
	}
	if m.rawConfig != nil {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), m.rawConfig, 0o644); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	} else if err := writeJSON(filepath.Join(dir, "config.json"), m.hfConfig(half)); err != nil {
		return err
	}
	if err := WriteSafetensors(filepath.Join(dir, "model.safetensors"), m.Params, half); err != nil {
		return err
	}
	names := make([]string, 0, len(m.files))
	for n := range m.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), m.files[n], 0o644); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if _, ok := m.files["generation_config.json"]; !ok && m.Arch != ArchRetrieval {
		gen := map[string]any{"_from_model_config": true, "bos_token_id": m.bos, "eos_token_id": m.sep, "pad_token_id": m.pad,
			"max_length": 24, "transformers_version": "4.40.2"}
		if err := writeJSON(filepath.Join(dir, "generation_config.json"), gen); err != nil {
			return err
		}
	}
	return nil
}
