package clip

// textEncoder is what CLIP needs from its checkpoint's tokenizer.
type textEncoder interface {
	// encode tokenizes as CLIPTokenizer(text) does: lower-cased,
	// <|startoftext|> … <|endoftext|>.
	encode(text string) ([]int, error)
	// pad returns the pad token id, if the tokenizer has one.
	pad() (int, bool)
}
