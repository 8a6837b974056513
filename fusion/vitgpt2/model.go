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
	"github.com/glimpse-vlm/glimpse/fusion/imagetower"
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
	encToDec *kernels.Linear                 // (n_embd, encoder D) or nil when the widths match
	text     textCodec                       // tokenizer; nil when built from weights only
	tower    *imagetower.Tower               // image processor (none when built with New) + encoder
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
	if m.tower, err = imagetower.New("vitgpt2", m.enc, nil); err != nil {
		return nil, err
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

// EncodePixels runs the ViT on batch preprocessed images (batch×C×H×W)
// and returns each image's last_hidden_state, as HF's encoder returns it
// (enc_to_dec_proj is applied per request, in cross).
func (m *Model) EncodePixels(ctx context.Context, pixels []float32, batch int) ([]*fusion.ImageState, error) {
	return m.tower.EncodePixels(ctx, pixels, batch)
}

// EncodeImage preprocesses img as the checkpoint's ViTImageProcessor does
// and runs the encoder.
func (m *Model) EncodeImage(ctx context.Context, img image.Image) (*fusion.ImageState, error) {
	return m.tower.EncodeImage(ctx, img)
}

// EncodeImages encodes several images as one batch.
func (m *Model) EncodeImages(ctx context.Context, imgs []image.Image) ([]*fusion.ImageState, error) {
	return m.tower.EncodeImages(ctx, imgs)
}

// cross projects an image state for the decoder (enc_to_dec_proj, when
// present) and computes its cross-attention keys and values.
func (m *Model) cross(img *fusion.ImageState) (*gpt2.Cross, error) {
	if err := m.tower.CheckState(img); err != nil {
		return nil, err
	}
	t := img.Tokens
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
