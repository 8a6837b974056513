package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// Stream decodes ids incrementally for streaming. Add returns the text that became
// final with the new id (possibly ""), Flush returns the rest; the concatenation of all
// pieces equals Decode(all ids, skipSpecial). A piece never ends inside a UTF-8
// sequence: bytes of a character split across tokens are held back until the
// character is complete, and so is text that a later token could still change (a
// "##" continuation, clean-up of " ." or " n't", stripped trailing white space).
//
// Add re-decodes only the ids since a recent anchor token after which decoding
// provably continues independently of what came before, so its cost does not grow with
// the length of the stream. A Stream is not safe for concurrent use.
type Stream struct {
	t       *tok
	skip    bool
	ids     []int
	emitted strings.Builder
	done    bool

	// The ids from base on are decoded as a window: the stable text is prefix
	// followed by the window's stable text minus its first anchorLen bytes (the
	// anchor token's own text, ids[base]).
	base      int
	prefix    string
	anchorLen int
	nextTry   int
}

// streamWindow is how many ids a Stream lets accumulate past its anchor before it
// looks for a newer one (a variable so that tests can exercise small windows).
var streamWindow = 32

// NewStream implements Tokenizer.
func (t *tok) NewStream(skipSpecial bool) *Stream {
	return &Stream{t: t, skip: skipSpecial}
}

// Add appends id and returns the newly final text.
func (s *Stream) Add(id int) string {
	if s.done {
		s.done = false
		s.ids = s.ids[:0]
		s.emitted.Reset()
		s.base, s.prefix, s.anchorLen, s.nextTry = 0, "", 0, 0
	}
	s.ids = append(s.ids, id)
	stable := s.stable(s.base, s.prefix, s.anchorLen)
	if len(s.ids)-s.base > 2*streamWindow && len(s.ids) >= s.nextTry {
		if !s.rebase(stable) {
			s.nextTry = len(s.ids) + streamWindow/4 // no anchor now: retry a little later
		}
	}
	return s.advance(stable)
}

// stable returns the stable text when decoding from the anchor at base.
func (s *Stream) stable(base int, prefix string, anchorLen int) string {
	w := s.t.cleanupStable(s.t.joinText(s.ids[base:], s.skip, false))
	if base == 0 {
		return w
	}
	if len(w) <= anchorLen {
		return prefix
	}
	return prefix + w[anchorLen:]
}

// rebase moves the anchor to a recent token where decoding restarts cleanly. The
// conditions make Decode(ids) = Decode(ids[:k+1]) + (decode of ids[k:] minus the
// anchor's text) for every continuation; the result is also checked against the
// current window before it is used.
func (s *Stream) rebase(current string) bool {
	t := s.t
	for k := len(s.ids) - streamWindow; k > s.base; k-- {
		a, ok := s.anchorText(k)
		if !ok {
			continue
		}
		if !strings.HasSuffix(t.joinText(s.ids[s.base:k+1], s.skip, true), a) {
			continue
		}
		ca := t.cleanupText(a)
		w := t.cleanupStable(t.joinText(s.ids[k:], s.skip, false))
		if !strings.HasPrefix(w, ca) {
			continue
		}
		prefix := s.decodeRange(k + 1)
		if prefix+w[len(ca):] != current {
			continue
		}
		s.base, s.prefix, s.anchorLen = k, prefix, len(ca)
		return true
	}
	return false
}

// decodeRange is Decode(ids[:end]) computed through the current anchor.
func (s *Stream) decodeRange(end int) string {
	w := s.t.Decode(s.ids[s.base:end], s.skip)
	if s.base == 0 {
		return w
	}
	return s.prefix + w[min(s.anchorLen, len(w)):]
}

// anchorText reports whether ids[k] can anchor a window, and its decoded text: an
// ordinary token that decodes to complete characters on its own, ends in a character
// that no clean-up pattern can continue from, and (for WordPiece) cannot glue to its
// neighbours.
func (s *Stream) anchorText(k int) (string, bool) {
	t := s.t
	id := s.ids[k]
	if s.skip && t.allSpecialIDs[id] {
		return "", false
	}
	tokStr, ok := t.tokenString(id)
	if !ok || tokStr == "" || t.legacyAdded[tokStr] {
		return "", false
	}
	prev := -1
	for j := k - 1; j >= s.base; j-- {
		if !(s.skip && t.allSpecialIDs[s.ids[j]]) {
			if ps, ok := t.tokenString(s.ids[j]); ok {
				if t.legacyAdded[ps] {
					return "", false // keep segment bookkeeping simple
				}
				prev = j
				break
			}
		}
	}
	if prev < 0 {
		return "", false
	}
	prevStr, _ := t.tokenString(s.ids[prev])
	switch t.kind {
	case KindWordPiece:
		if strings.ContainsRune(tokStr, '#') || strings.IndexFunc(tokStr, pyIsSpace) >= 0 ||
			strings.ContainsRune(prevStr, '#') || strings.IndexFunc(prevStr, pyIsSpace) >= 0 || prevStr == "" {
			return "", false
		}
	case KindGPT2, KindCLIP:
		b := byteDecodeTokens([]string{tokStr})
		if !utf8.Valid(b) || !utf8.Valid(byteDecodeTokens([]string{prevStr})) {
			return "", false
		}
		if t.kind == KindCLIP {
			body := strings.TrimSuffix(string(b), "</w>")
			if strings.ContainsAny(body, "</>") || !strings.HasSuffix(prevStr, "</w>") ||
				strings.IndexFunc(body, pyIsSpace) >= 0 || body == "" {
				return "", false
			}
		}
	}
	a := t.joinText([]int{id}, s.skip, true) // before clean-up
	if a == "" {
		return "", false
	}
	last, _ := utf8.DecodeLastRuneInString(a)
	if pyIsSpace(last) || last == utf8.RuneError {
		return "", false
	}
	// No clean-up pattern may have a proper prefix ending the anchor.
	for _, op := range cleanupOps {
		p := op[0]
		for n := 1; n < len(p); n++ {
			if strings.HasSuffix(a, p[:n]) {
				return "", false
			}
		}
	}
	return a, true
}

// Flush returns the text not yet returned; the Stream then starts over.
func (s *Stream) Flush() string {
	piece := s.advance(s.t.Decode(s.ids, s.skip))
	s.done = true
	return piece
}

// Text returns everything returned so far.
func (s *Stream) Text() string { return s.emitted.String() }

// IDs returns the ids added so far.
func (s *Stream) IDs() []int { return s.ids }

func (s *Stream) advance(text string) string {
	n := s.emitted.Len()
	if len(text) <= n {
		return ""
	}
	// text and the emitted text are both prefixes of the final decode, so text
	// extends what was emitted.
	piece := text[n:]
	s.emitted.WriteString(piece)
	return piece
}
