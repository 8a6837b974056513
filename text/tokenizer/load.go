package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Limits on tokenizer files, so a hostile folder cannot exhaust memory.
const (
	maxTokenizerFileBytes = 64 << 20
	maxVocabEntries       = 4 << 20
)

// Load reads the tokenizer of the checkpoint folder dir: tokenizer.json when present,
// else vocab.txt (BertTokenizer) or vocab.json + merges.txt (GPT2Tokenizer,
// CLIPTokenizer). The class comes from tokenizer_config.json "tokenizer_class" or, when
// absent, from the files present. Special and added tokens come from
// tokenizer_config.json (and, for tokenizers saved without added_tokens_decoder, from
// special_tokens_map.json and added_tokens.json), with HF's class defaults for absent
// keys.
func Load(dir string) (Tokenizer, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("tokenizer: %s is not a folder; pass the checkpoint folder holding the tokenizer files", dir)
	}
	files := map[string][]byte{}
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt"} {
		b, err := readLimited(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		files[name] = b
	}
	t, err := LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", dir, err)
	}
	return t, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a folder, expected a file", path)
	}
	if st.Size() > maxTokenizerFileBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed for a tokenizer file", path, st.Size(), maxTokenizerFileBytes)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// LoadFiles builds a tokenizer from the contents of the tokenizer files, keyed by file
// name as in a checkpoint folder ("tokenizer.json", "vocab.txt", "vocab.json",
// "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
// "added_tokens.json"). Load reads the folder and calls it.
func LoadFiles(files map[string][]byte) (Tokenizer, error) {
	cfg, err := parseObject(files, "tokenizer_config.json")
	if err != nil {
		return nil, err
	}
	stm, err := parseObject(files, "special_tokens_map.json")
	if err != nil {
		return nil, err
	}
	class := ""
	if raw, ok := cfg["tokenizer_class"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &class); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: tokenizer_class must be a string: %v", err)
		}
	}
	kind := Kind("")
	if class != "" {
		switch strings.TrimSuffix(class, "Fast") {
		case "BertTokenizer":
			kind = KindWordPiece
		case "GPT2Tokenizer":
			kind = KindGPT2
		case "CLIPTokenizer":
			kind = KindCLIP
		default:
			return nil, fmt.Errorf("tokenizer_config.json: tokenizer_class %q is not supported (supported: BertTokenizer, GPT2Tokenizer, CLIPTokenizer and their Fast variants)", class)
		}
	}
	if _, ok := files["tokenizer.json"]; ok {
		return loadFast(files, cfg, stm, kind)
	}
	if kind == "" {
		switch {
		case files["vocab.txt"] != nil:
			kind = KindWordPiece
		case files["vocab.json"] != nil && files["merges.txt"] != nil:
			kind = KindGPT2
			if bytes.Contains(files["vocab.json"], []byte(`<|startoftext|>`)) || bytes.Contains(files["vocab.json"], []byte(`</w>"`)) {
				kind = KindCLIP
			}
		default:
			return nil, errors.New("no tokenizer files found: expected tokenizer.json, vocab.txt, or vocab.json with merges.txt")
		}
	}
	return loadSlow(files, cfg, stm, kind)
}

func parseObject(files map[string][]byte, name string) (map[string]json.RawMessage, error) {
	b, ok := files[name]
	if !ok {
		return map[string]json.RawMessage{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %v", name, err)
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	return m, nil
}

// tokenSpec is a special-token value of a config: a string, an AddedToken dict or null.
type tokenSpec struct {
	content                                   string
	lstrip, rstrip, normalized, word, special bool
	hasFlags                                  bool
}

func parseTokenSpec(raw json.RawMessage, where string) (*tokenSpec, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return &tokenSpec{content: s}, nil
	}
	var d struct {
		Content    *string `json:"content"`
		LStrip     bool    `json:"lstrip"`
		RStrip     bool    `json:"rstrip"`
		Normalized *bool   `json:"normalized"`
		SingleWord bool    `json:"single_word"`
		Special    bool    `json:"special"`
	}
	if err := json.Unmarshal(raw, &d); err != nil || d.Content == nil {
		return nil, fmt.Errorf("%s: expected a token string or an object with \"content\", got %.80s", where, raw)
	}
	ts := &tokenSpec{content: *d.Content, lstrip: d.LStrip, rstrip: d.RStrip, word: d.SingleWord, special: d.Special, hasFlags: true, normalized: true}
	if d.Normalized != nil {
		ts.normalized = *d.Normalized
	}
	return ts, nil
}

func cfgBool(cfg map[string]json.RawMessage, key string, def bool) (bool, error) {
	raw, ok := cfg[key]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	var v bool
	if err := json.Unmarshal(raw, &v); err != nil {
		return def, fmt.Errorf("tokenizer_config.json: %s must be true or false, got %.40s", key, raw)
	}
	return v, nil
}

// classDefaults are the special tokens HF's classes use when the config omits a key.
var classDefaults = map[Kind][7]string{
	KindWordPiece: {"", "", "[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"},
	KindGPT2:      {"<|endoftext|>", "<|endoftext|>", "<|endoftext|>", "", "", "", ""},
	KindCLIP:      {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>", "", "<|endoftext|>", "", ""},
}

var classNames = map[Kind]string{KindWordPiece: "BertTokenizer", KindGPT2: "GPT2Tokenizer", KindCLIP: "CLIPTokenizer"}

// roles resolves the special-token attributes: the config's value, else (legacy or
// fast files) special_tokens_map.json's, else the class default; null means none.
func resolveRoles(t *tok, cfg, stm map[string]json.RawMessage, useMap bool) ([7]*tokenSpec, []*tokenSpec, error) {
	var specs [7]*tokenSpec
	for r, key := range roleKeys {
		raw, ok := cfg[key]
		if useMap {
			if raw2, ok2 := stm[key]; ok2 && string(raw2) != "null" {
				raw, ok = raw2, true
			}
		}
		if !ok {
			if d := classDefaults[t.kind][r]; d != "" {
				specs[r] = &tokenSpec{content: d}
			}
			continue
		}
		s, err := parseTokenSpec(raw, key)
		if err != nil {
			return specs, nil, err
		}
		specs[r] = s
	}
	var add []*tokenSpec
	collect := func(raw json.RawMessage, src string) error {
		if len(raw) == 0 || string(raw) == "null" {
			return nil
		}
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("%s: additional_special_tokens must be a list", src)
		}
		for _, e := range list {
			s, err := parseTokenSpec(e, src+" additional_special_tokens")
			if err != nil {
				return err
			}
			if s == nil {
				continue
			}
			dup := false
			for _, a := range add {
				dup = dup || a.content == s.content
			}
			if !dup {
				add = append(add, s)
			}
		}
		return nil
	}
	if err := collect(cfg["additional_special_tokens"], "tokenizer_config.json"); err != nil {
		return specs, nil, err
	}
	if useMap {
		if err := collect(stm["additional_special_tokens"], "special_tokens_map.json"); err != nil {
			return specs, nil, err
		}
	}
	return specs, add, nil
}

// registerSpecials sets the roles and adds the special tokens that are not added
// tokens yet, as PreTrainedTokenizer.__init__ does: a token of the vocabulary keeps its
// id, any other gets the next free id.
func (t *tok) registerSpecials(specs [7]*tokenSpec, add []*tokenSpec) {
	for r, s := range specs {
		if s != nil {
			t.specialRoles[r], t.hasRole[r] = s.content, true
		}
	}
	for _, s := range add {
		t.additional = append(t.additional, s.content)
	}
	have := map[string]bool{}
	for _, a := range t.added {
		have[a.content] = true
	}
	// New ids start at len(get_vocab()): vocabulary plus added tokens, counted by content.
	next := t.baseSize
	for c := range have {
		if _, ok := t.vocab[c]; !ok {
			next++
		}
	}
	all := append([]*tokenSpec{}, specs[:]...)
	all = append(all, add...)
	for _, s := range all {
		if s == nil || s.content == "" || have[s.content] {
			continue
		}
		have[s.content] = true
		id, ok := t.vocab[s.content]
		if !ok {
			id = next
			next++
		}
		a := addedToken{content: s.content, id: id, special: true}
		if s.hasFlags {
			a.lstrip, a.rstrip, a.normalized, a.word = s.lstrip, s.rstrip, s.normalized, s.word
		}
		t.added = append(t.added, a)
	}
}

func (t *tok) setVocab(v map[string]int) {
	t.vocab = v
	t.idToTok = make(map[int]string, len(v))
	for s, id := range v {
		if old, ok := t.idToTok[id]; ok && old < s {
			continue // several tokens share an id: keep one deterministically
		}
		t.idToTok[id] = s
	}
	t.baseSize = len(v)
}

func (t *tok) readCommon(cfg map[string]json.RawMessage) error {
	var err error
	if t.cleanup, err = cfgBool(cfg, "clean_up_tokenization_spaces", true); err != nil {
		return err
	}
	if raw, ok := cfg["model_max_length"]; ok && string(raw) != "null" {
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("tokenizer_config.json: model_max_length must be a number, got %.40s", raw)
		}
		if f > 0 && f < 1<<31 {
			t.maxLength = int(f)
		}
	}
	if raw, ok := cfg["errors"]; ok && string(raw) != "null" {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("tokenizer_config.json: errors must be a string, got %.40s", raw)
		}
		t.errorsIgnore = s == "ignore"
	}
	return nil
}

// loadSlow builds a tokenizer from vocab.txt or vocab.json + merges.txt.
func loadSlow(files map[string][]byte, cfg, stm map[string]json.RawMessage, kind Kind) (*tok, error) {
	t := &tok{kind: kind, class: classNames[kind]}
	if err := t.readCommon(cfg); err != nil {
		return nil, err
	}
	switch kind {
	case KindWordPiece:
		b, ok := files["vocab.txt"]
		if !ok {
			return nil, errors.New("BertTokenizer needs vocab.txt (or tokenizer.json), which is missing")
		}
		v, err := parseVocabTxt(b)
		if err != nil {
			return nil, err
		}
		t.setVocab(v)
	default:
		vb, ok1 := files["vocab.json"]
		mb, ok2 := files["merges.txt"]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s needs vocab.json and merges.txt (or tokenizer.json); one is missing", t.class)
		}
		v, err := parseVocabJSON(vb)
		if err != nil {
			return nil, err
		}
		t.setVocab(v)
		merges, err := parseMergesTxt(mb, kind == KindCLIP)
		if err != nil {
			return nil, err
		}
		if kind == KindGPT2 {
			t.m = &gpt2Model{b: newBPE(merges, ""), split: gpt2Split}
		} else {
			b := newBPE(merges, "</w>")
			b.noCache = map[string]string{"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
			t.m = &clipModel{b: b, basic: &wordPiece{doBasic: true, lower: true, stripAccents: ptrBool(false), chinese: true, cleanText: true, nfc: true, noPuncSplit: true},
				split: func(s string) []string { return clipSplit(s, true) }}
		}
	}

	// Added tokens: added_tokens_decoder, else the legacy files.
	legacy := true
	if raw, ok := cfg["added_tokens_decoder"]; ok {
		legacy = false
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: added_tokens_decoder must be an object of id -> token: %v", err)
		}
		for k, v := range m {
			id, err := strconv.Atoi(k)
			if err != nil || id < 0 {
				return nil, fmt.Errorf("tokenizer_config.json: added_tokens_decoder key %q is not a token id", k)
			}
			s, err := parseTokenSpec(v, "added_tokens_decoder["+k+"]")
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			if !s.hasFlags {
				s.normalized = true
			}
			t.added = append(t.added, addedToken{content: s.content, id: id, special: s.special, normalized: s.normalized, lstrip: s.lstrip, rstrip: s.rstrip, word: s.word})
		}
		sort.Slice(t.added, func(i, j int) bool { return t.added[i].id < t.added[j].id })
	}
	specs, add, err := resolveRoles(t, cfg, stm, legacy)
	if err != nil {
		return nil, err
	}
	if legacy {
		if b, ok := files["added_tokens.json"]; ok {
			var m map[string]int
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("added_tokens.json: must be an object of token -> id: %v", err)
			}
			special := map[string]bool{}
			for _, s := range specs {
				if s != nil {
					special[s.content] = true
				}
			}
			for _, s := range add {
				special[s.content] = true
			}
			for s, id := range m {
				if id < 0 {
					return nil, fmt.Errorf("added_tokens.json: token %q has negative id %d", s, id)
				}
				t.added = append(t.added, addedToken{content: s, id: id, special: special[s], normalized: !special[s]})
			}
			sort.Slice(t.added, func(i, j int) bool { return t.added[i].id < t.added[j].id })
		}
	}
	t.registerSpecials(specs, add)

	switch kind {
	case KindWordPiece:
		wp, err := bertFromConfig(t, cfg)
		if err != nil {
			return nil, err
		}
		t.m = wp
	case KindGPT2:
		var err error
		if t.addPrefixSpace, err = cfgBool(cfg, "add_prefix_space", false); err != nil {
			return nil, err
		}
		bos, err := cfgBool(cfg, "add_bos_token", false)
		if err != nil {
			return nil, err
		}
		t.finish()
		if bos && t.hasRole[roleBOS] {
			t.prefixIDs = []int{t.convertTokenToID(t.specialRoles[roleBOS])}
		}
		return t, nil
	case KindCLIP:
		t.finish()
		if t.hasRole[roleBOS] {
			t.prefixIDs = []int{t.convertTokenToID(t.specialRoles[roleBOS])}
		}
		if t.hasRole[roleEOS] {
			t.suffixIDs = []int{t.convertTokenToID(t.specialRoles[roleEOS])}
		}
		return t, nil
	}
	t.finish()
	if t.hasRole[roleCLS] {
		t.prefixIDs = []int{t.convertTokenToID(t.specialRoles[roleCLS])}
	}
	if t.hasRole[roleSEP] {
		t.suffixIDs = []int{t.convertTokenToID(t.specialRoles[roleSEP])}
	}
	return t, nil
}

func ptrBool(b bool) *bool { return &b }

func bertFromConfig(t *tok, cfg map[string]json.RawMessage) (*wordPiece, error) {
	wp := &wordPiece{cleanText: true, nfc: true, prefix: "##", maxChars: 100}
	var err error
	if wp.lower, err = cfgBool(cfg, "do_lower_case", true); err != nil {
		return nil, err
	}
	if wp.doBasic, err = cfgBool(cfg, "do_basic_tokenize", true); err != nil {
		return nil, err
	}
	if wp.chinese, err = cfgBool(cfg, "tokenize_chinese_chars", true); err != nil {
		return nil, err
	}
	if raw, ok := cfg["strip_accents"]; ok && string(raw) != "null" {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: strip_accents must be true, false or null, got %.40s", raw)
		}
		wp.stripAccents = &b
	}
	wp.neverSplit = map[string]bool{}
	if raw, ok := cfg["never_split"]; ok && string(raw) != "null" {
		var l []string
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: never_split must be a list of strings or null, got %.40s", raw)
		}
		for _, s := range l {
			wp.neverSplit[s] = true
		}
	}
	t.doLowerCasePrepass = wp.lower
	wp.unk = t.specialRoles[roleUNK]
	if !t.hasRole[roleUNK] {
		wp.unk = "[UNK]"
	}
	wp.specialNoSplit = map[string]bool{}
	t.finish()
	for _, s := range t.allSpecial {
		wp.specialNoSplit[s] = true
	}
	wp.setMaxTokenBytes(t.vocab)
	return wp, nil
}

func (w *wordPiece) setMaxTokenBytes(v map[string]int) {
	for s := range v {
		if len(s) > w.maxTokenBytes {
			w.maxTokenBytes = len(s)
		}
	}
}

// parseVocabTxt reads vocab.txt as BertTokenizer's load_vocab: one token per line
// (universal newlines), the line number is the id, a repeated token keeps its last id.
func parseVocabTxt(b []byte) (map[string]int, error) {
	s := string(b)
	if !utf8Valid(s) {
		return nil, errors.New("vocab.txt: not valid UTF-8")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil, errors.New("vocab.txt: empty vocabulary")
	}
	if len(lines) > maxVocabEntries {
		return nil, fmt.Errorf("vocab.txt: %d entries, more than the %d supported", len(lines), maxVocabEntries)
	}
	v := make(map[string]int, len(lines))
	for i, l := range lines {
		v[l] = i
	}
	return v, nil
}

// parseVocabJSON reads vocab.json: an object of token -> id.
func parseVocabJSON(b []byte) (map[string]int, error) {
	var v map[string]int
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("vocab.json: must be an object of token -> integer id: %v", err)
	}
	if len(v) == 0 {
		return nil, errors.New("vocab.json: empty vocabulary")
	}
	if len(v) > maxVocabEntries {
		return nil, fmt.Errorf("vocab.json: %d entries, more than the %d supported", len(v), maxVocabEntries)
	}
	for s, id := range v {
		if id < 0 {
			return nil, fmt.Errorf("vocab.json: token %q has negative id %d", s, id)
		}
	}
	return v, nil
}

// parseMergesTxt reads merges.txt as the slow classes do. GPT2Tokenizer drops the first
// line (the "#version" header) and the last (empty after the final newline); CLIP
// strips the text first and keeps at most 49152-256-2 merges. Lines that are not two
// symbols can never match a pair and are kept as inert ranks.
func parseMergesTxt(b []byte, clip bool) ([][2]string, error) {
	s := string(b)
	if !utf8Valid(s) {
		return nil, errors.New("merges.txt: not valid UTF-8")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var lines []string
	if clip {
		lines = strings.Split(pyStrip(s), "\n")
		if len(lines) > 0 {
			lines = lines[1:]
		}
		if len(lines) > 49152-256-2 {
			lines = lines[:49152-256-2]
		}
	} else {
		lines = strings.Split(s, "\n")
		if len(lines) >= 2 {
			lines = lines[1 : len(lines)-1]
		} else {
			lines = nil
		}
	}
	out := make([][2]string, 0, len(lines))
	for _, l := range lines {
		f := pySplit(l)
		if len(f) != 2 {
			// An inert rank: it keeps the numbering of the following merges.
			out = append(out, [2]string{inertMerge, ""})
			continue
		}
		out = append(out, [2]string{f[0], f[1]})
	}
	return out, nil
}
