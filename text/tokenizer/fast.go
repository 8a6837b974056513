package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The GPT-2 and CLIP pre-tokenisation patterns as tokenizer.json spells them.
const (
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	clipPattern = `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
)

type fastFile struct {
	AddedTokens []struct {
		ID         *int    `json:"id"`
		Content    *string `json:"content"`
		SingleWord bool    `json:"single_word"`
		LStrip     bool    `json:"lstrip"`
		RStrip     bool    `json:"rstrip"`
		Normalized bool    `json:"normalized"`
		Special    bool    `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type                    string          `json:"type"`
		Vocab                   json.RawMessage `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    *int            `json:"max_input_chars_per_word"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		ByteFallback            bool            `json:"byte_fallback"`
		Dropout                 *float64        `json:"dropout"`
	} `json:"model"`
}

// component is a normalizer / pre-tokenizer / post-processor node of tokenizer.json.
type component struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Lowercase      *bool             `json:"lowercase"`
	StripAccents   *bool             `json:"strip_accents"`
	CleanText      *bool             `json:"clean_text"`
	HandleChinese  *bool             `json:"handle_chinese_chars"`
	AddPrefixSpace bool              `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
	Pattern        struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content  string            `json:"content"`
	Behavior string            `json:"behavior"`
	Invert   bool              `json:"invert"`
	Single   []json.RawMessage `json:"single"`
	Special  map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
	Sep []json.RawMessage `json:"sep"`
	Cls []json.RawMessage `json:"cls"`
}

func parseComponent(raw json.RawMessage, what string) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %s: %v", what, err)
	}
	return &c, nil
}

// flatten lists the components of a (possibly nested) Sequence.
func flatten(raw json.RawMessage, what string) ([]*component, error) {
	c, err := parseComponent(raw, what)
	if err != nil || c == nil {
		return nil, err
	}
	if c.Type != "Sequence" {
		return []*component{c}, nil
	}
	var out []*component
	for _, sub := range append(c.Normalizers, c.Pretokenizers...) {
		l, err := flatten(sub, what)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	return out, nil
}

// loadFast builds a tokenizer from tokenizer.json. The model, normaliser and
// pre-tokeniser settings come from the file; decoding follows the slow classes.
func loadFast(files map[string][]byte, cfg, stm map[string]json.RawMessage, kind Kind) (*tok, error) {
	var f fastFile
	if err := json.Unmarshal(files["tokenizer.json"], &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: not a valid tokenizer file: %v", err)
	}
	norms, err := flatten(f.Normalizer, "normalizer")
	if err != nil {
		return nil, err
	}
	pres, err := flatten(f.PreTokenizer, "pre_tokenizer")
	if err != nil {
		return nil, err
	}
	var v map[string]int
	if len(f.Model.Vocab) == 0 || json.Unmarshal(f.Model.Vocab, &v) != nil {
		return nil, fmt.Errorf("tokenizer.json: model.vocab must be an object of token -> id (model type %q)", f.Model.Type)
	}
	if len(v) == 0 || len(v) > maxVocabEntries {
		return nil, fmt.Errorf("tokenizer.json: model.vocab has %d entries; expected 1 to %d", len(v), maxVocabEntries)
	}
	for s, id := range v {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: token %q has negative id %d", s, id)
		}
	}
	switch f.Model.Type {
	case "WordPiece":
		if kind != "" && kind != KindWordPiece {
			return nil, fmt.Errorf("tokenizer.json holds a WordPiece model but tokenizer_class names %s", classNames[kind])
		}
		kind = KindWordPiece
	case "BPE":
		if f.Model.ByteFallback || (f.Model.Dropout != nil && *f.Model.Dropout > 0) ||
			(f.Model.ContinuingSubwordPrefix != nil && *f.Model.ContinuingSubwordPrefix != "") {
			return nil, errors.New("tokenizer.json: BPE with byte_fallback, dropout or a continuing_subword_prefix is not supported (only GPT-2 and CLIP byte-level BPE)")
		}
		suffix := ""
		if f.Model.EndOfWordSuffix != nil {
			suffix = *f.Model.EndOfWordSuffix
		}
		k := KindGPT2
		if suffix != "" {
			if suffix != "</w>" {
				return nil, fmt.Errorf("tokenizer.json: BPE end_of_word_suffix %q is not supported (CLIP uses \"</w>\")", suffix)
			}
			k = KindCLIP
		}
		if kind != "" && kind != k {
			return nil, fmt.Errorf("tokenizer.json holds a %s-style BPE model but tokenizer_class names %s", classNames[k], classNames[kind])
		}
		kind = k
	default:
		return nil, fmt.Errorf("tokenizer.json: model type %q is not supported (supported: WordPiece, BPE)", f.Model.Type)
	}
	t := &tok{kind: kind, class: classNames[kind] + "(tokenizer.json)", fromJSON: true}
	if err := t.readCommon(cfg); err != nil {
		return nil, err
	}
	t.setVocab(v)
	for i, a := range f.AddedTokens {
		if a.ID == nil || a.Content == nil || *a.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: added_tokens[%d] needs a non-negative id and a content", i)
		}
		t.added = append(t.added, addedToken{content: *a.Content, id: *a.ID, special: a.Special, normalized: a.Normalized, lstrip: a.LStrip, rstrip: a.RStrip, word: a.SingleWord})
	}
	sort.SliceStable(t.added, func(i, j int) bool { return t.added[i].id < t.added[j].id })
	specs, add, err := resolveRoles(t, cfg, stm, true)
	if err != nil {
		return nil, err
	}
	// A class default that the files do not contain is not invented.
	for r, s := range specs {
		if s == nil {
			continue
		}
		_, inVocab := v[s.content]
		inAdded := false
		for _, a := range t.added {
			inAdded = inAdded || a.content == s.content
		}
		if _, explicit := cfg[roleKeys[r]]; !explicit && !inVocab && !inAdded {
			if _, inMap := stm[roleKeys[r]]; !inMap {
				specs[r] = nil
			}
		}
	}
	t.registerSpecials(specs, add)

	switch kind {
	case KindWordPiece:
		wp := &wordPiece{doBasic: true, prefix: "##", maxChars: 100}
		if f.Model.ContinuingSubwordPrefix != nil {
			wp.prefix = *f.Model.ContinuingSubwordPrefix
		}
		if f.Model.MaxInputCharsPerWord != nil {
			wp.maxChars = *f.Model.MaxInputCharsPerWord
		}
		wp.unk = "[UNK]"
		if f.Model.UnkToken != nil {
			wp.unk = *f.Model.UnkToken
		}
		for _, n := range norms {
			switch n.Type {
			case "BertNormalizer":
				wp.cleanText = n.CleanText == nil || *n.CleanText
				wp.chinese = n.HandleChinese == nil || *n.HandleChinese
				wp.lower = n.Lowercase == nil || *n.Lowercase
				wp.stripAccents = n.StripAccents
			default:
				return nil, fmt.Errorf("tokenizer.json: normalizer %q is not supported with WordPiece (expected BertNormalizer)", n.Type)
			}
		}
		for _, p := range pres {
			if p.Type != "BertPreTokenizer" {
				return nil, fmt.Errorf("tokenizer.json: pre_tokenizer %q is not supported with WordPiece (expected BertPreTokenizer)", p.Type)
			}
		}
		if len(pres) == 0 {
			wp.noPuncSplit = true
		}
		t.doLowerCasePrepass = wp.lower
		t.finish()
		wp.specialNoSplit = map[string]bool{}
		wp.neverSplit = map[string]bool{}
		wp.setMaxTokenBytes(v)
		t.m = wp
	case KindGPT2, KindCLIP:
		merges, err := parseFastMerges(f.Model.Merges)
		if err != nil {
			return nil, err
		}
		suffix := ""
		if kind == KindCLIP {
			suffix = "</w>"
		}
		b := newBPE(merges, suffix)
		split, prefixSpace, err := fastSplitter(pres, kind)
		if err != nil {
			return nil, err
		}
		t.addPrefixSpace = false
		if kind == KindGPT2 {
			if len(norms) > 0 {
				return nil, fmt.Errorf("tokenizer.json: normalizer %q is not supported with byte-level BPE", norms[0].Type)
			}
			m := &gpt2Model{b: b, split: split}
			if prefixSpace {
				m.split = func(s string) []string {
					if !strings.HasPrefix(s, " ") {
						s = " " + s
					}
					return split(s)
				}
			}
			t.m = m
		} else {
			for _, n := range norms {
				switch n.Type {
				case "NFC", "Lowercase":
				case "Replace":
					if n.Pattern.Regex == nil || *n.Pattern.Regex != `\s+` || n.Content != " " {
						return nil, errors.New(`tokenizer.json: CLIP normalizer Replace must replace \s+ by " "`)
					}
				default:
					return nil, fmt.Errorf("tokenizer.json: normalizer %q is not supported with CLIP BPE (expected NFC, Replace, Lowercase)", n.Type)
				}
			}
			if b.noCache == nil {
				b.noCache = map[string]string{}
			}
			t.m = &clipModel{b: b, fast: true, split: split}
		}
		t.finish()
	}
	if err := t.postProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	return t, nil
}

// fastSplitter maps the pre-tokenizer list to a splitting function.
func fastSplitter(pres []*component, kind Kind) (func(string) []string, bool, error) {
	split := func(s string) []string { return []string{s} }
	if kind == KindCLIP {
		split = func(s string) []string { return clipSplit(s, false) }
	}
	prefixSpace := false
	seenByteLevel := false
	for _, p := range pres {
		switch p.Type {
		case "ByteLevel":
			seenByteLevel = true
			prefixSpace = p.AddPrefixSpace
			if p.UseRegex == nil || *p.UseRegex {
				split = gpt2Split
			}
		case "Split":
			pat := ""
			switch {
			case p.Pattern.Regex != nil:
				pat = *p.Pattern.Regex
			case p.Pattern.String != nil:
				pat = regexp.QuoteMeta(*p.Pattern.String)
			}
			switch {
			case pat == clipPattern && kind == KindCLIP && p.Invert && p.Behavior == "Removed":
				split = func(s string) []string { return clipSplit(s, false) }
			case pat == gpt2Pattern && p.Invert && p.Behavior == "Removed":
				split = gpt2Split
			default:
				re, err := regexp.Compile(pat)
				if err != nil {
					return nil, false, fmt.Errorf("tokenizer.json: Split pattern %q cannot be used: %v", pat, err)
				}
				if !p.Invert || p.Behavior != "Removed" {
					if p.Behavior != "Isolated" || p.Invert {
						return nil, false, fmt.Errorf("tokenizer.json: Split behavior %q (invert=%v) is not supported", p.Behavior, p.Invert)
					}
					split = func(s string) []string { return isolate(re, s) }
				} else {
					split = func(s string) []string { return re.FindAllString(s, -1) }
				}
			}
		default:
			return nil, false, fmt.Errorf("tokenizer.json: pre_tokenizer %q is not supported with BPE", p.Type)
		}
	}
	if !seenByteLevel {
		return nil, false, errors.New("tokenizer.json: BPE without a ByteLevel pre_tokenizer is not supported")
	}
	return split, prefixSpace, nil
}

func isolate(re *regexp.Regexp, s string) []string {
	var out []string
	last := 0
	for _, m := range re.FindAllStringIndex(s, -1) {
		if m[0] > last {
			out = append(out, s[last:m[0]])
		}
		if m[1] > m[0] {
			out = append(out, s[m[0]:m[1]])
		}
		last = m[1]
	}
	if last < len(s) {
		out = append(out, s[last:])
	}
	return out
}

func parseFastMerges(raw json.RawMessage) ([][2]string, error) {
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, 0, len(strs))
		for _, s := range strs {
			f := strings.Split(s, " ")
			if len(f) != 2 {
				return nil, fmt.Errorf("tokenizer.json: merge %q is not two symbols separated by one space", s)
			}
			out = append(out, [2]string{f[0], f[1]})
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, errors.New("tokenizer.json: model.merges must be a list of \"a b\" strings or of [a, b] pairs")
	}
	out := make([][2]string, 0, len(pairs))
	for _, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("tokenizer.json: merge %q is not a pair", p)
		}
		out = append(out, [2]string{p[0], p[1]})
	}
	return out, nil
}

// postProcessor sets the ids added around a single sequence.
func (t *tok) postProcessor(raw json.RawMessage) error {
	c, err := parseComponent(raw, "post_processor")
	if err != nil || c == nil {
		return err
	}
	idOf := func(pair []json.RawMessage, what string) (int, error) {
		if len(pair) != 2 {
			return 0, fmt.Errorf("tokenizer.json: post_processor %s must be [token, id]", what)
		}
		var id int
		if err := json.Unmarshal(pair[1], &id); err != nil {
			return 0, fmt.Errorf("tokenizer.json: post_processor %s id: %v", what, err)
		}
		return id, nil
	}
	switch c.Type {
	case "ByteLevel":
	case "BertProcessing", "RobertaProcessing":
		cls, err := idOf(c.Cls, "cls")
		if err != nil {
			return err
		}
		sep, err := idOf(c.Sep, "sep")
		if err != nil {
			return err
		}
		t.prefixIDs, t.suffixIDs = []int{cls}, []int{sep}
	case "TemplateProcessing":
		seenSeq := false
		for _, item := range c.Single {
			var it struct {
				SpecialToken *struct {
					ID string `json:"id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID string `json:"id"`
				} `json:"Sequence"`
			}
			if err := json.Unmarshal(item, &it); err != nil {
				return fmt.Errorf("tokenizer.json: TemplateProcessing single: %v", err)
			}
			switch {
			case it.Sequence != nil:
				seenSeq = true
			case it.SpecialToken != nil:
				st, ok := c.Special[it.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("tokenizer.json: TemplateProcessing uses special token %q missing from special_tokens", it.SpecialToken.ID)
				}
				if seenSeq {
					t.suffixIDs = append(t.suffixIDs, st.IDs...)
				} else {
					t.prefixIDs = append(t.prefixIDs, st.IDs...)
				}
			}
		}
	default:
		return fmt.Errorf("tokenizer.json: post_processor %q is not supported", c.Type)
	}
	return nil
}
