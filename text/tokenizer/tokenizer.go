// Package tokenizer implements the Hugging Face tokenizers used by the Glimpse model
// families with the exact behaviour of transformers 4.40's slow (pure-Python)
// classes: BertTokenizer (WordPiece, as BLIP uses it, with its added [DEC]/[ENC]
// tokens), GPT2Tokenizer (byte-level BPE) and CLIPTokenizer (BPE with </w> word
// ends). Load reads a checkpoint folder: tokenizer.json (the "fast" format) when
// present, else vocab.txt or vocab.json + merges.txt, with the special and added
// tokens of tokenizer_config.json, special_tokens_map.json and added_tokens.json.
//
// A Tokenizer is safe for concurrent use.
//
// # Ids the models need
//
//   - BLIP (BertTokenizer + added tokens): Special().BOS is [DEC] (bos_token), the id
//     captioning and VQA decoding start from; Special().SEP is [SEP], the id generation
//     stops at (text_config.sep_token_id); Special().PAD is [PAD]; Names["[ENC]"] is
//     [ENC]. Encode(prompt, true) gives [CLS] ... [SEP] as BlipProcessor does: for a
//     captioning prompt replace ids[0] with BOS and drop the final [SEP].
//   - ViT-GPT2 (GPT2Tokenizer): BOS = EOS = UNK = <|endoftext|>; Encode adds nothing
//     unless add_bos_token is set; the model's decoder_start/eos/pad ids come from its
//     config, not from here.
//   - CLIP (CLIPTokenizer): Encode(text, true) gives <|startoftext|> ... <|endoftext|>;
//     pad with Special().PAD.
//
// Decode(ids, true) is processor.decode(ids, skip_special_tokens=True); a Stream
// gives the same text piece by piece for streaming.
package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Tokenizer turns text into token ids and back, as the checkpoint's HF tokenizer does.
type Tokenizer interface {
	// Encode returns HF's tokenizer(text)["input_ids"] when addSpecial is true, and
	// encode(text, add_special_tokens=False) otherwise. No truncation, no padding.
	// Invalid UTF-8 bytes are read as U+FFFD. A token that is neither in the
	// vocabulary nor covered by an unknown token (possible only with a vocabulary
	// lacking byte symbols and an unk_token) is left out.
	Encode(text string, addSpecial bool) []int
	// Tokens returns HF's tokenize(text): the vocabulary strings, without special
	// tokens added around the sequence.
	Tokens(text string) []string
	// Decode returns HF's decode(ids, skip_special_tokens=skipSpecial) with the
	// checkpoint's clean_up_tokenization_spaces. Ids outside the vocabulary decode as
	// the unknown token for WordPiece and are left out for BPE tokenizers (where HF
	// raises).
	Decode(ids []int, skipSpecial bool) string
	// NewStream starts an incremental decode (see Stream).
	NewStream(skipSpecial bool) *Stream
	// TokenToID looks a token string up among the added tokens, then the vocabulary.
	TokenToID(tok string) (int, bool)
	// IDToToken returns the token string of id (HF convert_ids_to_tokens).
	IDToToken(id int) (string, bool)
	// VocabSize is len(tokenizer) in HF: vocabulary plus added tokens.
	VocabSize() int
	// Special returns the ids of the special tokens.
	Special() SpecialTokens
}

// SpecialTokens holds the ids of a tokenizer's special tokens; a role the tokenizer
// does not define is -1.
type SpecialTokens struct {
	BOS, EOS, PAD, UNK, CLS, SEP, MASK int
	// Names maps the content of every special or added token (e.g. "[DEC]",
	// "<|endoftext|>") to its id.
	Names map[string]int
}

// Kind names a tokenizer family.
type Kind string

// The supported tokenizer families.
const (
	KindWordPiece Kind = "wordpiece" // BertTokenizer
	KindGPT2      Kind = "gpt2"      // GPT2Tokenizer (byte-level BPE)
	KindCLIP      Kind = "clip"      // CLIPTokenizer (BPE with </w>)
)

// Info is implemented by every Tokenizer returned by Load; it exposes settings the
// models need beyond the Tokenizer interface.
type Info interface {
	// MaxLength is model_max_length from tokenizer_config.json, 0 when absent
	// (HF then uses an unbounded sentinel).
	MaxLength() int
	// Kind is the tokenizer family.
	Kind() Kind
	// Class is the HF class name the tokenizer follows (e.g. "BertTokenizer").
	Class() string
}

// MaxLength returns tok's model_max_length, or 0 when tok does not know it.
func MaxLength(tok Tokenizer) int {
	if i, ok := tok.(Info); ok {
		return i.MaxLength()
	}
	return 0
}

// TokenizeJSON encodes text and returns {"ids": [...], "tokens": [...]} where tokens
// are the vocabulary strings of the ids (HF convert_ids_to_tokens), for
// `glimpse tokenize`.
func TokenizeJSON(tok Tokenizer, text string, addSpecial bool) ([]byte, error) {
	if tok == nil {
		return nil, fmt.Errorf("tokenizer: TokenizeJSON needs a tokenizer, got nil")
	}
	ids := tok.Encode(text, addSpecial)
	out := struct {
		IDs    []int    `json:"ids"`
		Tokens []string `json:"tokens"`
	}{IDs: ids, Tokens: make([]string, len(ids))}
	if out.IDs == nil {
		out.IDs = []int{}
	}
	for i, id := range ids {
		s, ok := tok.IDToToken(id)
		if !ok {
			return nil, fmt.Errorf("tokenizer: id %d produced by Encode has no token string", id)
		}
		out.Tokens[i] = s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<|endoftext|>" readable
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// addedToken is an entry of HF's added-tokens table (AddedToken).
type addedToken struct {
	content                                   string
	id                                        int
	special, normalized, lstrip, rstrip, word bool
}

// model is the family-specific part of a tokenizer.
type model interface {
	// tokenize is the slow tokenizer's _tokenize on a piece of text that contains no
	// added token.
	tokenize(t *tok, text string) []string
	// segment is convert_tokens_to_string. With final=false it returns only the prefix
	// that stays a prefix of the segment's text whatever tokens are appended.
	segment(t *tok, tokens []string, final bool) string
}

// tok is the concrete Tokenizer.
type tok struct {
	kind     Kind
	class    string
	m        model
	fromJSON bool // loaded from tokenizer.json (fast-tokenizer conventions for added tokens)

	vocab    map[string]int // base vocabulary
	idToTok  map[int]string // base vocabulary, reverse
	baseSize int            // len(vocab) (HF vocab_size)

	added      []addedToken // in registration order
	addedEnc   map[string]int
	addedDec   map[int]*addedToken
	addedIndex *[256][]*addedToken // by first byte, longest first; nil if none

	specialRoles   [7]string // bos, eos, unk, sep, pad, cls, mask contents ("" = none)
	hasRole        [7]bool
	additional     []string
	allSpecial     []string // HF all_special_tokens, ordered
	allSpecialIDs  map[int]bool
	legacyAdded    map[string]bool // decoded as separate sub-texts
	lowerProtected []string        // kept as is by the do_lower_case pre-pass
	lowerIndex     [256][]string

	doLowerCasePrepass bool
	addPrefixSpace     bool
	prefixIDs          []int
	suffixIDs          []int
	cleanup            bool
	errorsIgnore       bool
	maxLength          int
	unkID              int
}

const (
	roleBOS = iota
	roleEOS
	roleUNK
	roleSEP
	rolePAD
	roleCLS
	roleMASK
)

var roleKeys = [7]string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// MaxLength implements Info.
func (t *tok) MaxLength() int { return t.maxLength }

// Kind implements Info.
func (t *tok) Kind() Kind { return t.kind }

// Class implements Info.
func (t *tok) Class() string { return t.class }

// TokenToID implements Tokenizer.
func (t *tok) TokenToID(s string) (int, bool) {
	if id, ok := t.addedEnc[s]; ok {
		return id, true
	}
	id, ok := t.vocab[s]
	return id, ok
}

// IDToToken implements Tokenizer.
func (t *tok) IDToToken(id int) (string, bool) {
	if a, ok := t.addedDec[id]; ok {
		return a.content, true
	}
	s, ok := t.idToTok[id]
	return s, ok
}

// VocabSize implements Tokenizer.
func (t *tok) VocabSize() int {
	n := len(t.vocab)
	for s := range t.addedEnc {
		if _, ok := t.vocab[s]; !ok {
			n++
		}
	}
	return n
}

// Special implements Tokenizer.
func (t *tok) Special() SpecialTokens {
	id := func(r int) int {
		if !t.hasRole[r] {
			return -1
		}
		return t.convertTokenToID(t.specialRoles[r])
	}
	st := SpecialTokens{BOS: id(roleBOS), EOS: id(roleEOS), PAD: id(rolePAD), UNK: id(roleUNK),
		CLS: id(roleCLS), SEP: id(roleSEP), MASK: id(roleMASK), Names: map[string]int{}}
	for _, a := range t.added {
		st.Names[a.content] = a.id
	}
	for _, s := range t.allSpecial {
		if _, ok := st.Names[s]; !ok {
			st.Names[s] = t.convertTokenToID(s)
		}
	}
	return st
}

// convertTokenToID is _convert_token_to_id_with_added_voc: added tokens, then the
// vocabulary, then the unknown token's id (-1 if there is none).
func (t *tok) convertTokenToID(s string) int {
	if id, ok := t.addedEnc[s]; ok {
		return id
	}
	if id, ok := t.vocab[s]; ok {
		return id
	}
	return t.unkID
}

// finish computes the derived tables once vocabulary, added tokens and roles are set.
func (t *tok) finish() {
	t.addedEnc = map[string]int{}
	t.addedDec = map[int]*addedToken{}
	for i := range t.added {
		a := &t.added[i]
		t.addedEnc[a.content] = a.id
		t.addedDec[a.id] = a
	}
	t.addedIndex = nil
	for i := range t.added {
		a := &t.added[i]
		if a.content == "" || t.addedEnc[a.content] != a.id {
			continue
		}
		if t.addedIndex == nil {
			t.addedIndex = new([256][]*addedToken)
		}
		t.addedIndex[a.content[0]] = append(t.addedIndex[a.content[0]], a)
	}
	if t.addedIndex != nil {
		for _, l := range t.addedIndex {
			sort.SliceStable(l, func(i, j int) bool { return len(l[i].content) > len(l[j].content) })
		}
	}
	// all_special_tokens: role tokens in attribute order, then additional ones, deduplicated.
	seen := map[string]bool{}
	t.allSpecial = nil
	for r := 0; r < 7; r++ {
		if t.hasRole[r] && !seen[t.specialRoles[r]] {
			seen[t.specialRoles[r]] = true
			t.allSpecial = append(t.allSpecial, t.specialRoles[r])
		}
	}
	for _, s := range t.additional {
		if !seen[s] {
			seen[s] = true
			t.allSpecial = append(t.allSpecial, s)
		}
	}
	t.unkID = -1
	if t.hasRole[roleUNK] {
		if id, ok := t.addedEnc[t.specialRoles[roleUNK]]; ok {
			t.unkID = id
		} else if id, ok := t.vocab[t.specialRoles[roleUNK]]; ok {
			t.unkID = id
		}
	}
	t.allSpecialIDs = map[int]bool{}
	for _, s := range t.allSpecial {
		if id := t.convertTokenToID(s); id >= 0 {
			t.allSpecialIDs[id] = true
		}
	}
	// Fast tokenizers skip every added token flagged special.
	for _, a := range t.added {
		if a.special && t.fromJSON {
			t.allSpecialIDs[a.id] = true
		}
	}
	t.legacyAdded = map[string]bool{}
	for s := range t.addedEnc {
		if !seen[s] {
			t.legacyAdded[s] = true
		}
	}
	for _, s := range t.additional {
		if id := t.convertTokenToID(s); id >= t.baseSize {
			t.legacyAdded[s] = true
		}
	}
	t.lowerProtected = append([]string(nil), t.allSpecial...)
	for _, a := range t.added {
		if (!a.special && a.normalized) || t.fromJSON {
			// Fast tokenizers match added tokens before lower-casing the rest.
			t.lowerProtected = append(t.lowerProtected, a.content)
		}
	}
	if t.fromJSON {
		sort.SliceStable(t.lowerProtected, func(i, j int) bool { return len(t.lowerProtected[i]) > len(t.lowerProtected[j]) })
	}
	t.lowerIndex = [256][]string{}
	for _, p := range t.lowerProtected {
		if p != "" {
			t.lowerIndex[p[0]] = append(t.lowerIndex[p[0]], p)
		}
	}
}

// Tokens implements Tokenizer.
func (t *tok) Tokens(text string) []string {
	text = sanitizeUTF8(text)
	if t.addPrefixSpace {
		text = " " + text
	}
	if t.doLowerCasePrepass {
		text = t.lowerPrepass(text)
	}
	pieces := t.splitAdded(text)
	var out []string
	for _, p := range pieces {
		if p == "" {
			continue
		}
		if _, ok := t.addedEnc[p]; ok {
			out = append(out, p)
			continue
		}
		out = append(out, t.m.tokenize(t, p)...)
	}
	return out
}

// Encode implements Tokenizer.
func (t *tok) Encode(text string, addSpecial bool) []int {
	toks := t.Tokens(text)
	ids := make([]int, 0, len(toks)+len(t.prefixIDs)+len(t.suffixIDs))
	if addSpecial {
		ids = append(ids, t.prefixIDs...)
	}
	for _, s := range toks {
		if id := t.convertTokenToID(s); id >= 0 {
			ids = append(ids, id)
		}
	}
	if addSpecial {
		ids = append(ids, t.suffixIDs...)
	}
	return ids
}

// lowerPrepass lower-cases every character outside the special tokens (and
// non-special normalized added tokens), as the slow tokenizer's do_lower_case regex
// substitution does: the alternation tries the protected tokens in order at each
// position, else lower-cases one character ('.' does not match '\n').
func (t *tok) lowerPrepass(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); {
		matched := false
		for _, p := range t.lowerIndex[text[i]] {
			if strings.HasPrefix(text[i:], p) {
				b.WriteString(p)
				i += len(p)
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		r, n := decodeRune(text[i:])
		if r == '\n' {
			b.WriteByte('\n')
		} else {
			pyLowerRune(&b, r)
		}
		i += n
	}
	return b.String()
}

// splitAdded cuts text around added tokens (leftmost, longest match first, as HF's
// Trie does) and applies the tokens' lstrip/rstrip/single_word flags.
func (t *tok) splitAdded(text string) []string {
	if t.addedIndex == nil {
		return []string{text}
	}
	var pieces []string
	start := 0
	for i := 0; i < len(text); {
		var hit *addedToken
		for _, a := range t.addedIndex[text[i]] {
			if strings.HasPrefix(text[i:], a.content) {
				hit = a
				break
			}
		}
		if hit == nil {
			_, n := decodeRune(text[i:])
			i += n
			continue
		}
		if i > start {
			pieces = append(pieces, text[start:i])
		}
		pieces = append(pieces, hit.content)
		i += len(hit.content)
		start = i
	}
	if start < len(text) {
		pieces = append(pieces, text[start:])
	}
	for i, p := range pieces {
		id, ok := t.addedEnc[p]
		if !ok {
			continue
		}
		a := t.addedDec[id]
		var left, right string
		hasLeft, hasRight := i > 0, i < len(pieces)-1
		if hasLeft {
			left = pieces[i-1]
		}
		if hasRight {
			right = pieces[i+1]
		}
		if a.rstrip && right != "" {
			pieces[i+1] = pyLStrip(right)
		}
		if a.lstrip && left != "" {
			pieces[i-1] = pyRStrip(left)
		}
		if a.word && left != "" && !strings.HasSuffix(left, " ") {
			pieces[i-1] += p
			pieces[i] = ""
		} else if a.word && right != "" && !strings.HasPrefix(right, " ") {
			pieces[i+1] = p + pieces[i+1]
			pieces[i] = ""
		}
	}
	return pieces
}

// Decode implements Tokenizer.
func (t *tok) Decode(ids []int, skipSpecial bool) string {
	return t.cleanupText(t.joinText(ids, skipSpecial, true))
}

// tokenString is convert_ids_to_tokens for one id.
func (t *tok) tokenString(id int) (string, bool) {
	if a, ok := t.addedDec[id]; ok {
		return a.content, true
	}
	if s, ok := t.idToTok[id]; ok {
		return s, true
	}
	if t.kind == KindWordPiece && t.hasRole[roleUNK] {
		return t.specialRoles[roleUNK], true
	}
	return "", false
}

// joinText builds the text _decode produces before clean-up: runs of ordinary tokens
// go through convert_tokens_to_string, legacy added tokens stand alone, and the parts
// are joined with spaces (spaces_between_special_tokens=True). With final=false it
// returns only the prefix that no later id can change.
func (t *tok) joinText(ids []int, skipSpecial, final bool) string {
	var parts []string
	var cur []string
	for _, id := range ids {
		if skipSpecial && t.allSpecialIDs[id] {
			continue
		}
		s, ok := t.tokenString(id)
		if !ok {
			continue
		}
		if t.legacyAdded[s] {
			if len(cur) > 0 {
				if seg := t.m.segment(t, cur, true); seg != "" {
					parts = append(parts, seg)
				}
				cur = cur[:0]
			}
			parts = append(parts, s)
			continue
		}
		cur = append(cur, s)
	}
	text := strings.Join(parts, " ")
	if len(cur) == 0 {
		return text
	}
	seg := t.m.segment(t, cur, final)
	if len(parts) == 0 {
		return seg
	}
	// The separator is certain once the run exists, even while its text is empty: the
	// run either ends the text (joined even when empty) or is closed by a legacy
	// token, which is itself preceded by a separator.
	return text + " " + seg
}

// cleanupOps are clean_up_tokenization's replacements, applied in this order.
var cleanupOps = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

func (t *tok) cleanupText(s string) string {
	if !t.cleanup {
		return s
	}
	for _, op := range cleanupOps {
		s = strings.ReplaceAll(s, op[0], op[1])
	}
	return s
}

// cleanupStable applies the clean-up to s, a text that later tokens may extend, and
// returns the result cut where it could still change: at the first position where a
// pattern's match would depend on text that is not there yet.
func (t *tok) cleanupStable(s string) string {
	if !t.cleanup {
		return s
	}
	boundary := len(s)
	for _, op := range cleanupOps {
		p, r := op[0], op[1]
		if !strings.Contains(s, p) {
			// No match: the text is unchanged, only a partial match at the boundary
			// can make it uncertain earlier.
			for i := max(0, boundary-len(p)+1); i < boundary; i++ {
				if s[i] == p[0] && strings.HasPrefix(p, s[i:boundary]) {
					boundary = i
					break
				}
			}
			continue
		}
		var b strings.Builder
		b.Grow(len(s))
		newBoundary := -1
		i := 0
		for i < len(s) {
			if i >= boundary && newBoundary < 0 {
				newBoundary = b.Len()
			}
			if s[i] == p[0] {
				if strings.HasPrefix(s[i:], p) {
					if newBoundary < 0 && i+len(p) > boundary {
						newBoundary = b.Len()
					}
					b.WriteString(r)
					i += len(p)
					continue
				}
				if newBoundary < 0 && i < boundary && strings.HasPrefix(p, s[i:boundary]) {
					newBoundary = b.Len()
				}
			}
			b.WriteByte(s[i])
			i++
		}
		if newBoundary < 0 {
			newBoundary = b.Len()
		}
		s, boundary = b.String(), newBoundary
	}
	return s[:boundary]
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }
