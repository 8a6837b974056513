package blip

// loadProcessors loads the folder's tokenizer and image processor.
// (Wired to text/tokenizer and vision once those packages land; until
// then SetTokenizer / SetImageProcessor provide them.)
func (b *base) loadProcessors(dir string) error {
	_ = dir
	return nil
}
