// Package vitgpt2 serves Hugging Face VisionEncoderDecoderModel checkpoints
// made of a ViT encoder and a GPT-2 decoder with cross-attention (e.g.
// nlpconnect/vit-gpt2-image-captioning): image captioning, optionally
// continuing a text prefix.
//
// It registers itself with fusion as "VisionEncoderDecoderModel".
//
// An ImageState holds the ViT last_hidden_state exactly as HF's
// encoder_last_hidden_state (before enc_to_dec_proj), so it is the same
// tensor whatever decoder reads it. Each Caption request projects it with
// enc_to_dec_proj (when the checkpoint has one) and computes the decoder's
// cross-attention keys and values once, then reuses them at every step and
// for every beam.
package vitgpt2

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
	"github.com/glimpse-vlm/glimpse/text/generate"
	"github.com/glimpse-vlm/glimpse/text/gpt2"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

// Architecture is the config.json "architectures" entry this package serves.
const Architecture = "VisionEncoderDecoderModel"

func init() {
	fusion.Register(Architecture, func(dir string) (fusion.Model, error) { return Load(dir) })
}

// HF tensor names of VisionEncoderDecoderModel's own weights and prefixes.
const (
	prefixEncoder = "encoder."
	prefixDecoder = "decoder."
	nameEncToDec  = "enc_to_dec_proj" // Linear (decoder n_embd, encoder hidden_size)
)

// Model is a loaded ViT-GPT2 checkpoint. It is safe for concurrent use.
type Model struct {
	cfg      Config
	gen      Generation
	enc      *vit.Encoder
	dec      *gpt2.Model
	encToDec *kernels.Linear // (n_embd, encoder D) or nil when the widths match
	text     textCodec       // tokenizer; nil when built from weights only
	images   imagePreprocessor
	batch    *generate.Batcher[gpt2.RowStep] // batches concurrent requests' decoding steps
}

// Load opens a ViT-GPT2 checkpoint folder: config.json,
// model.safetensors (or a sharded index), generation_config.json
// (optional), preprocessor_config.json and the GPT-2 tokenizer files.
func Load(dir string) (*Model, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("vitgpt2: %w", err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	gen, err := readGeneration(dir, raw)
	if err != nil {
		return nil, err
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	m, err := New(ck, cfg, gen)
	if err != nil {
		return nil, err
	}
	if err := m.loadProcessing(dir); err != nil {
		return nil, err
	}
	return m, nil
}

// New builds the model from weights in ck (names under "encoder." and
// "decoder."), with the given configuration and generation defaults, and
// no image processor or tokenizer: EncodePixels and CaptionIDs work,
// EncodeImage, Tokenize and Caption need Load. The weights are copied,
// so ck may be closed afterwards.
func New(ck *checkpoint.Checkpoint, cfg Config, gen Generation) (*Model, error) {
	m := &Model{cfg: cfg, gen: gen}
	var err error
	if m.enc, err = vit.Load(ck, prefixEncoder, cfg.Encoder); err != nil {
		return nil, fmt.Errorf("vitgpt2: encoder: %w", err)
	}
	if m.dec, err = gpt2.Load(ck, prefixDecoder, cfg.Decoder); err != nil {
		return nil, fmt.Errorf("vitgpt2: decoder: %w", err)
	}
	m.batch = m.dec.NewBatcher()
	if cfg.EncToDecProj {
		out, in := cfg.Decoder.NEmbd, cfg.Encoder.HiddenSize
		w, err := ck.Float32(nameEncToDec+".weight", out, in)
		if err != nil {
			return nil, fmt.Errorf("vitgpt2: encoder hidden_size %d ≠ decoder n_embd %d needs enc_to_dec_proj: %w", in, out, err)
		}
		b, err := ck.Float32(nameEncToDec+".bias", out)
		if err != nil {
			return nil, fmt.Errorf("vitgpt2: %w", err)
		}
		m.encToDec = kernels.NewLinear(append([]float32(nil), w...), out, in, append([]float32(nil), b...))
	}
	v := cfg.Decoder.VocabSize
	if gen.DecoderStartTokenID < 0 || gen.DecoderStartTokenID >= v {
		return nil, fmt.Errorf("vitgpt2: decoder_start_token_id %d is outside the decoder vocabulary [0, %d)", gen.DecoderStartTokenID, v)
	}
	return m, nil
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Generation returns the checkpoint's resolved decoding defaults.
func (m *Model) Generation() Generation { return m.gen }

// Encoder returns the ViT encoder.
func (m *Model) Encoder() *vit.Encoder { return m.enc }

// Decoder returns the GPT-2 decoder.
func (m *Model) Decoder() *gpt2.Model { return m.dec }

// Info describes the model.
func (m *Model) Info() fusion.Info {
	return fusion.Info{
		Family:       "vit-gpt2",
		Architecture: Architecture,
		Tasks:        []fusion.Task{fusion.TaskCaption},
		ImageSize:    m.cfg.Encoder.ImageSize,
		ImageTokens:  m.enc.Tokens(),
		MaxTextLen:   m.cfg.Decoder.NPositions,
		VocabSize:    m.cfg.Decoder.VocabSize,
	}
}

// EncodePixels runs the ViT on batch preprocessed images (batch×C×H×W,
// what the image processor returns as pixel_values) and returns one state
// per image: HF's encoder_last_hidden_state.
func (m *Model) EncodePixels(ctx context.Context, pixels []float32, batch int) ([]*fusion.ImageState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := m.enc.Forward(pixels, batch)
	if err != nil {
		return nil, fmt.Errorf("vitgpt2: %w", err)
	}
	t, d := m.enc.Tokens(), m.enc.Dim()
	out := make([]*fusion.ImageState, batch)
	for b := range out {
		out[b] = &fusion.ImageState{Tokens: t, Dim: d, Hidden: h[b*t*d : (b+1)*t*d : (b+1)*t*d]}
	}
	return out, nil
}

// EncodeImage preprocesses img as the checkpoint's ViTImageProcessor does
// and runs the encoder.
func (m *Model) EncodeImage(ctx context.Context, img image.Image) (*fusion.ImageState, error) {
	s, err := m.EncodeImages(ctx, []image.Image{img})
	if err != nil {
		return nil, err
	}
	return s[0], nil
}

// EncodeImages encodes several images as one batch.
func (m *Model) EncodeImages(ctx context.Context, imgs []image.Image) ([]*fusion.ImageState, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	if m.images == nil {
		return nil, fmt.Errorf("vitgpt2: no image processor (the model was built with New, not Load)")
	}
	per := m.cfg.Encoder.NumChannels * m.cfg.Encoder.ImageSize * m.cfg.Encoder.ImageSize
	pixels := make([]float32, 0, len(imgs)*per)
	for i, img := range imgs {
		if img == nil {
			return nil, fmt.Errorf("vitgpt2: image %d is nil", i)
		}
		p, err := m.images.pixels(img)
		if err != nil {
			return nil, fmt.Errorf("vitgpt2: image %d: %w", i, err)
		}
		if len(p) != per {
			return nil, fmt.Errorf("vitgpt2: image %d: the image processor made %d values, the encoder takes %d×%d×%d = %d (preprocessor_config.json size and config.json encoder image_size disagree)",
				i, len(p), m.cfg.Encoder.NumChannels, m.cfg.Encoder.ImageSize, m.cfg.Encoder.ImageSize, per)
		}
		pixels = append(pixels, p...)
	}
	return m.EncodePixels(ctx, pixels, len(imgs))
}

// cross projects an image state for the decoder (enc_to_dec_proj, when
// present) and computes its cross-attention keys and values.
func (m *Model) cross(img *fusion.ImageState) (*gpt2.Cross, error) {
	if img == nil {
		return nil, fmt.Errorf("vitgpt2: nil image state")
	}
	t, d := m.enc.Tokens(), m.enc.Dim()
	if img.Tokens != t || img.Dim != d || len(img.Hidden) != t*d {
		return nil, fmt.Errorf("vitgpt2: image state is %d×%d (%d values), this model's encoder makes %d×%d: was it encoded by another model?",
			img.Tokens, img.Dim, len(img.Hidden), t, d)
	}
	enc := img.Hidden
	if m.encToDec != nil {
		proj := make([]float32, t*m.cfg.Decoder.NEmbd)
		m.encToDec.Forward(proj, enc, t, kernels.ActNone)
		enc = proj
	}
	return m.dec.NewCross(enc, t)
}

// Close releases the model (its weights are garbage collected).
func (m *Model) Close() error { return nil }
