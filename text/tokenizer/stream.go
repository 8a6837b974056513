package tokenizer

import "strings"

// Stream decodes ids incrementally for streaming. Add returns the text that became
// final with the new id (possibly ""), Flush returns the rest; the concatenation of all
// pieces equals Decode(all ids, skipSpecial). A piece never ends inside a UTF-8
// sequence: bytes of a character split across tokens are held back until the
// character is complete, and so is text that a later token could still change (a
// "##" continuation, clean-up of " ." or " n't", stripped trailing white space).
//
// Each Add re-decodes the ids seen so far (linear in their number), which is
// negligible next to a model step. A Stream is not safe for concurrent use.
type Stream struct {
	t       *tok
	skip    bool
	ids     []int
	emitted strings.Builder
	done    bool
}

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
	}
	s.ids = append(s.ids, id)
	stable := s.t.cleanupStable(s.t.joinText(s.ids, s.skip, false))
	return s.advance(stable)
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
