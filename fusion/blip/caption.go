package blip

import (
	"context"
	"errors"
	"fmt"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/text/bert"
	"github.com/glimpse-vlm/glimpse/text/generate"
)

// CaptionModel is BlipForConditionalGeneration: vision_model + a text
// decoder (text_decoder.*) that cross-attends to the image states. It
// implements fusion.Model and fusion.Captioner.
type CaptionModel struct {
	*base
	dec   *bert.Model
	batch *generate.Batcher[bert.Seq] // batches concurrent requests' steps
}

var (
	_ fusion.Model     = (*CaptionModel)(nil)
	_ fusion.Captioner = (*CaptionModel)(nil)
)

// LoadCaption loads a BlipForConditionalGeneration checkpoint folder.
func LoadCaption(dir string) (*CaptionModel, error) {
	return loadArch(dir, ArchCaption, newCaption)
}

// NewCaption builds a captioning model from an opened checkpoint and a
// parsed config (e.g. random weights in memory for benchmarks). The
// tokenizer and image processor are unset.
func NewCaption(ck *checkpoint.Checkpoint, cfg Config) (*CaptionModel, error) {
	return newArch(ck, cfg, ArchCaption, newCaption)
}

func newCaption(b *base) (*CaptionModel, error) {
	dec, err := b.loadText("text_decoder.", true)
	if err != nil {
		return nil, err
	}
	if !dec.HasCrossAttention() {
		return nil, fmt.Errorf("blip: %s: text_config.is_decoder is false, but the caption decoder needs cross-attention", b.arch)
	}
	return &CaptionModel{base: b, dec: dec, batch: newDecoderBatcher(dec)}, nil
}

// Info implements fusion.Model.
func (m *CaptionModel) Info() fusion.Info { return m.info(fusion.TaskCaption) }

// CaptionPrompt returns the decoder prompt HF's generate builds from the
// processor's ids for a text prefix ([CLS] … [SEP]): column 0 replaced by
// bos ([DEC]) and the final [SEP] dropped. Without a prefix (nil ids) it
// is [bos].
func (m *CaptionModel) CaptionPrompt(prefixIDs []int) []int {
	if len(prefixIDs) == 0 {
		// HF: [[bos, eos]] then the last column is dropped.
		return []int{m.cfg.Text.BOS}
	}
	p := append([]int{}, prefixIDs...)
	p[0] = m.cfg.Text.BOS
	if len(p) > 1 {
		p = p[:len(p)-1]
	}
	return p
}

// CaptionIDs decodes a caption for an encoded image from a decoder prompt
// (CaptionPrompt's output) and returns the generated ids (after the
// prompt, with the final [SEP] if produced). onToken (may be nil) gets
// tokens as they are chosen (beam search: at the end). Concurrent calls
// share batched decoding steps.
func (m *CaptionModel) CaptionIDs(ctx context.Context, img *fusion.ImageState, prompt []int, cfg generate.Config, onToken func(int, float32) error) (*generate.Result, error) {
	if err := m.checkState(img); err != nil {
		return nil, err
	}
	// Folded for short captions: the request holds the image states laid
	// out as keys (2 MB for BLIP-base) rather than every layer's keys and
	// values (43 MB); projected for long beam searches, where the folded
	// form's cost per token outgrows the projection.
	rows := max(cfg.NumBeams, 1) * (len(prompt) + cfg.MaxNewTokens)
	cross, err := crossState(m.dec, img.Hidden, img.Tokens, rows)
	if err != nil {
		return nil, err
	}
	return decodeIDs(ctx, m.dec, cross, prompt, cfg, onToken, m.batch)
}

// DecodeConfig returns the decoding settings a request gets for a prompt
// of promptLen tokens (options over the checkpoint's defaults).
func (m *CaptionModel) DecodeConfig(opts fusion.GenerateOptions, promptLen int) (generate.Config, error) {
	return decodeConfig(m.cfg.Text, opts, promptLen)
}

// Caption implements fusion.Captioner. A non-empty prompt is tokenized as
// HF's processor does and continued (the text includes it, normalised).
func (m *CaptionModel) Caption(ctx context.Context, img *fusion.ImageState, prompt string, opts fusion.GenerateOptions, on fusion.OnToken) (*fusion.Generation, error) {
	var prefix []int
	if prompt != "" {
		var err error
		if prefix, err = m.Tokenize(prompt); err != nil {
			return nil, err
		}
	}
	p := m.CaptionPrompt(prefix)
	cfg, err := m.DecodeConfig(opts, len(p))
	if err != nil {
		return nil, err
	}
	st, err := m.newStreamer(p, on, opts.Stop...)
	if err != nil {
		return nil, err
	}
	res, err := m.CaptionIDs(ctx, img, p, cfg, st.token)
	if res == nil {
		return nil, err
	}
	if errors.Is(err, errStop) && st.stopped {
		err = nil
	}
	if err == nil {
		err = st.end()
	}
	return m.finishStreamed(p, res, len(p), st), err
}
