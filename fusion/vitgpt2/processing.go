package vitgpt2

// textCodec is what captioning needs from the checkpoint's GPT-2 tokenizer.
type textCodec interface {
	// encode tokenizes a caption prefix without special tokens.
	encode(text string) ([]int, error)
	// encodeSpecial tokenizes as HF's tokenizer(text) does.
	encodeSpecial(text string) ([]int, error)
	// decode is GPT2Tokenizer.decode(ids, skip_special_tokens=True).
	decode(ids []int) string
	// stream starts an incremental detokenizer of generated ids (special
	// tokens skipped).
	stream() detokenizer
}

// detokenizer decodes generated ids incrementally.
type detokenizer interface {
	// add takes the next id and returns the text that became final.
	add(id int) string
	// flush returns the rest of the text.
	flush() string
}
