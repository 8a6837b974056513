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

// VQAModel is BlipForQuestionAnswering: the question is encoded by
// text_encoder (bidirectional, cross-attending to the image); the answer
// decoder (text_decoder) starts from bos and cross-attends to the question
// states. It implements fusion.Model and fusion.Answerer.
type VQAModel struct {
	*base
	enc   *bert.Model
	dec   *bert.Model
	batch *generate.Batcher[bert.Seq] // batches concurrent requests' answer steps
}

var (
	_ fusion.Model    = (*VQAModel)(nil)
	_ fusion.Answerer = (*VQAModel)(nil)
)

// LoadVQA loads a BlipForQuestionAnswering checkpoint folder.
func LoadVQA(dir string) (*VQAModel, error) {
	return loadArch(dir, ArchVQA, newVQA)
}

// NewVQA builds a VQA model from an opened checkpoint and a parsed config.
func NewVQA(ck *checkpoint.Checkpoint, cfg Config) (*VQAModel, error) {
	return newArch(ck, cfg, ArchVQA, newVQA)
}

func newVQA(b *base) (*VQAModel, error) {
	if b.cfg.Text.HiddenSize != b.cfg.Vision.HiddenSize {
		return nil, fmt.Errorf("blip: %s needs text hidden_size (%d) = vision hidden_size (%d): the answer decoder's cross-attention reads question states through encoder_hidden_size-wide projections",
			b.arch, b.cfg.Text.HiddenSize, b.cfg.Vision.HiddenSize)
	}
	if !b.cfg.Text.CrossAttention {
		return nil, fmt.Errorf("blip: %s: text_config.is_decoder is false, but VQA needs cross-attention", b.arch)
	}
	enc, err := b.loadText("text_encoder.", false)
	if err != nil {
		return nil, err
	}
	dec, err := b.loadText("text_decoder.", true)
	if err != nil {
		return nil, err
	}
	return &VQAModel{base: b, enc: enc, dec: dec, batch: newDecoderBatcher(dec)}, nil
}

// Info implements fusion.Model.
func (m *VQAModel) Info() fusion.Info { return m.info(fusion.TaskAnswer) }

// QuestionStates runs text_encoder over question ids (as the processor
// makes them, [CLS] … [SEP], fed as is) with cross-attention to the image
// and returns question_embeds (len(ids)×H).
func (m *VQAModel) QuestionStates(img *fusion.ImageState, ids []int) ([]float32, error) {
	if err := m.checkState(img); err != nil {
		return nil, err
	}
	cross, err := crossState(m.enc, img.Hidden, img.Tokens, len(ids))
	if err != nil {
		return nil, err
	}
	var ws bert.Workspace
	h, err := m.enc.Forward(&ws, []bert.Seq{{Tokens: ids, Cache: &bert.Cache{}, Cross: cross}}, false)
	if err != nil {
		return nil, fmt.Errorf("blip: question encoder: %w", err)
	}
	return append([]float32(nil), h...), nil
}

// AnswerIDs decodes an answer for question ids: the decoder starts from
// bos and cross-attends to all question states (HF's all-ones mask).
func (m *VQAModel) AnswerIDs(ctx context.Context, img *fusion.ImageState, question []int, cfg generate.Config, onToken func(int, float32) error) (*generate.Result, error) {
	q, err := m.QuestionStates(img, question)
	if err != nil {
		return nil, err
	}
	cross, err := crossState(m.dec, q, len(question), max(cfg.NumBeams, 1)*(1+cfg.MaxNewTokens))
	if err != nil {
		return nil, err
	}
	return decodeIDs(ctx, m.dec, cross, []int{m.cfg.Text.BOS}, cfg, onToken, m.batch)
}

// DecodeConfig returns the decoding settings a request gets (the answer
// prompt is the single bos token).
func (m *VQAModel) DecodeConfig(opts fusion.GenerateOptions) (generate.Config, error) {
	return decodeConfig(m.cfg.Text, opts, 1)
}

// Answer implements fusion.Answerer.
func (m *VQAModel) Answer(ctx context.Context, img *fusion.ImageState, question string, opts fusion.GenerateOptions, on fusion.OnToken) (*fusion.Generation, error) {
	if question == "" {
		return nil, fmt.Errorf("blip: empty question")
	}
	ids, err := m.Tokenize(question)
	if err != nil {
		return nil, err
	}
	cfg, err := m.DecodeConfig(opts)
	if err != nil {
		return nil, err
	}
	start := []int{m.cfg.Text.BOS}
	st, err := m.newStreamer(start, on, opts.Stop...)
	if err != nil {
		return nil, err
	}
	res, err := m.AnswerIDs(ctx, img, ids, cfg, st.token)
	if res == nil {
		return nil, err
	}
	if errors.Is(err, errStop) && st.stopped {
		err = nil
	}
	if err == nil {
		err = st.end()
	}
	return m.finishStreamed(start, res, len(ids), st), err
}

// questionStatesMasked is QuestionStates with HF's attention_mask (a
// padded batch row); used by the golden tests.
func (m *VQAModel) questionStatesMasked(img *fusion.ImageState, ids, mask []int) ([]float32, error) {
	if err := m.checkState(img); err != nil {
		return nil, err
	}
	cross, err := crossState(m.enc, img.Hidden, img.Tokens, len(ids))
	if err != nil {
		return nil, err
	}
	var ws bert.Workspace
	h, err := m.enc.Forward(&ws, []bert.Seq{{Tokens: ids, Cache: &bert.Cache{}, Cross: cross, Mask: mask}}, false)
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), h...), nil
}
