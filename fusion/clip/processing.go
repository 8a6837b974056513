package clip

import "image"

// textEncoder is what CLIP needs from its checkpoint's tokenizer.
type textEncoder interface {
	// encode tokenizes as CLIPTokenizer(text) does: lower-cased,
	// <|startoftext|> … <|endoftext|>.
	encode(text string) ([]int, error)
	// pad returns the pad token id, if the tokenizer has one.
	pad() (int, bool)
}

// imagePreprocessor turns a decoded image into pixel_values (C×H×W) as the
// checkpoint's CLIPImageProcessor does.
type imagePreprocessor interface {
	pixels(img image.Image) ([]float32, error)
}
