package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// wordPiece is BertTokenizer: BasicTokenizer then WordpieceTokenizer.
type wordPiece struct {
	doBasic        bool
	lower          bool
	stripAccents   *bool // nil: follow lower (HF strip_accents=None)
	chinese        bool
	cleanText      bool
	nfc            bool
	neverSplit     map[string]bool // BasicTokenizer.never_split (from the config)
	unk            string
	prefix         string // continuing_subword_prefix, "##"
	maxChars       int    // max_input_chars_per_word
	maxTokenBytes  int    // longest vocabulary entry, bounds the greedy search
	specialNoSplit map[string]bool
	noPuncSplit    bool // BasicTokenizer(do_split_on_punc=False), CLIP's fallback
}

func (w *wordPiece) tokenize(t *tok, text string) []string {
	var words []string
	if w.doBasic {
		words = w.basic(text, w.specialNoSplit)
	} else {
		words = pySplit(text)
	}
	var out []string
	for _, word := range words {
		if w.doBasic && w.neverSplit[word] {
			out = append(out, word)
			continue
		}
		out = w.wordpiece(t, word, out)
	}
	return out
}

// basic is BasicTokenizer.tokenize.
func (w *wordPiece) basic(text string, neverSplit map[string]bool) []string {
	var b strings.Builder
	b.Grow(len(text) + 16)
	for _, r := range text {
		if w.cleanText {
			if r == 0 || r == 0xFFFD || pyIsControl(r) {
				continue
			}
			if pyIsWhitespaceBert(r) {
				b.WriteByte(' ')
				continue
			}
		}
		if w.chinese && isChineseChar(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	s := b.String()
	if w.nfc {
		s = nfc(s)
	}
	var split []string
	for _, tokn := range pySplit(s) {
		if !neverSplit[tokn] && !w.neverSplit[tokn] {
			if w.lower {
				tokn = pyLower(tokn)
				if w.stripAccents == nil || *w.stripAccents {
					tokn = stripAccents(tokn)
				}
			} else if w.stripAccents != nil && *w.stripAccents {
				tokn = stripAccents(tokn)
			}
			if w.noPuncSplit {
				split = append(split, tokn)
			} else {
				split = splitOnPunc(tokn, split)
			}
		} else {
			split = append(split, tokn)
		}
	}
	// whitespace_tokenize(" ".join(split_tokens))
	out := split[:0]
	for _, s := range split {
		if s == "" {
			continue
		}
		if strings.IndexFunc(s, pyIsSpace) < 0 {
			out = append(out, s)
			continue
		}
		out = append(out, pySplit(s)...)
	}
	return out
}

// splitOnPunc is _run_split_on_punc: every punctuation character becomes its own token.
func splitOnPunc(s string, out []string) []string {
	start := 0
	for i, r := range s {
		if pyIsPunct(r) {
			if i > start {
				out = append(out, s[start:i])
			}
			n := utf8.RuneLen(r)
			out = append(out, s[i:i+n])
			start = i + n
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// wordpiece is WordpieceTokenizer.tokenize on one whitespace-free word: greedy
// longest-match-first, continuation pieces prefixed with "##", the whole word [UNK]
// when a piece is missing or the word is longer than max_input_chars_per_word.
func (w *wordPiece) wordpiece(t *tok, word string, out []string) []string {
	words := []string{word}
	if strings.IndexFunc(word, pyIsSpace) >= 0 {
		words = pySplit(word)
	}
	for _, word := range words {
		if utf8.RuneCountInString(word) > w.maxChars {
			out = append(out, w.unk)
			continue
		}
		mark := len(out)
		buf := make([]byte, 0, len(w.prefix)+len(word))
		bad := false
		for start := 0; start < len(word); {
			end := len(word)
			if lim := start + w.maxTokenBytes; lim < end {
				end = lim
				for end > start && !utf8.RuneStart(word[end]) {
					end--
				}
			}
			found := ""
			for end > start {
				buf = buf[:0]
				if start > 0 {
					buf = append(buf, w.prefix...)
				}
				buf = append(buf, word[start:end]...)
				if _, ok := t.vocab[string(buf)]; ok {
					found = string(buf)
					break
				}
				_, n := utf8.DecodeLastRuneInString(word[start:end])
				end -= n
			}
			if found == "" {
				bad = true
				break
			}
			out = append(out, found)
			start = end
		}
		if bad {
			out = append(out[:mark], w.unk)
		}
	}
	return out
}

// segment is BertTokenizer.convert_tokens_to_string:
// " ".join(tokens).replace(" ##", "").strip().
func (w *wordPiece) segment(t *tok, tokens []string, final bool) string {
	s := strings.Join(tokens, " ")
	if final {
		return pyStrip(strings.ReplaceAll(s, " ##", ""))
	}
	// Later tokens append " " + token; replacements that could still complete at the
	// end and trailing white space (stripped now, kept later) are held back.
	r := replaceStable(s, " ##", "")
	r = pyLStrip(r)
	return pyRStrip(r)
}

// replaceStable is strings.ReplaceAll(s, old, new) cut before the first place where a
// match could still appear once text is appended to s.
func replaceStable(s, old, new string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], old) {
			b.WriteString(new)
			i += len(old)
			continue
		}
		if len(s)-i < len(old) && strings.HasPrefix(old, s[i:]) {
			return b.String()
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}
