package vitgpt2

import "image"

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

// imagePreprocessor turns a decoded image into the encoder's pixel_values
// (C×H×W float32) as the checkpoint's image processor does.
type imagePreprocessor interface {
	pixels(img image.Image) ([]float32, error)
}

// detokenizer decodes generated ids incrementally.
type detokenizer interface {
	// add takes the next id and returns the text that became final.
	add(id int) string
	// flush returns the rest of the text.
	flush() string
}
