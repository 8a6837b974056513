// Package blip serves Hugging Face BLIP checkpoints:
// BlipForConditionalGeneration (captions, also continuing a text prefix),
// BlipForQuestionAnswering (answers) and BlipForImageTextRetrieval (ITM
// match probability, ITC cosine, embeddings). The three architectures
// register themselves with fusion in init.
package blip

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/text/bert"
	"github.com/glimpse-vlm/glimpse/text/tokenizer"
	"github.com/glimpse-vlm/glimpse/vision"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

// Architecture names (config.json "architectures").
const (
	ArchCaption   = "BlipForConditionalGeneration"
	ArchVQA       = "BlipForQuestionAnswering"
	ArchRetrieval = "BlipForImageTextRetrieval"
)

func init() {
	fusion.Register(ArchCaption, func(dir string) (fusion.Model, error) { return LoadCaption(dir) })
	fusion.Register(ArchVQA, func(dir string) (fusion.Model, error) { return LoadVQA(dir) })
	fusion.Register(ArchRetrieval, func(dir string) (fusion.Model, error) { return LoadRetrieval(dir) })
}

// base is what the three architectures share: the checkpoint, the vision
// tower, the tokenizer and the image processor.
type base struct {
	arch   string
	cfg    Config
	ck     *checkpoint.Checkpoint
	vision *vit.Encoder
	tok    tokenizer.Tokenizer // the folder's tokenizer (nil for NewCaption & co. until SetTokenizer)
	proc   *vision.Processor   // the folder's image processor (nil until SetImageProcessor)
}

// loadBase opens dir's config.json, weights, tokenizer files and
// preprocessor_config.json, and binds the vision tower.
func loadBase(dir, arch string) (*base, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("blip: %w (a checkpoint folder needs config.json)", err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("blip: %w", err)
	}
	b, err := newBase(ck, cfg, arch)
	if err != nil {
		ck.Close()
		return nil, err
	}
	if b.tok, err = tokenizer.Load(dir); err != nil {
		ck.Close()
		return nil, fmt.Errorf("blip: %w", err)
	}
	if b.proc, err = vision.LoadProcessor(dir); err != nil {
		ck.Close()
		return nil, fmt.Errorf("blip: %w", err)
	}
	// A fixed output size must match the vision tower (a size that depends
	// on the image is checked per image in EncodeImages).
	if h, w := b.proc.OutputSize(); (h != 0 || w != 0) && (h != cfg.Vision.ImageSize || w != cfg.Vision.ImageSize) {
		ck.Close()
		return nil, fmt.Errorf("blip: preprocessor_config.json makes %d×%d images, vision_config.image_size is %d", h, w, cfg.Vision.ImageSize)
	}
	return b, nil
}

// newBase binds the vision tower of an opened checkpoint.
func newBase(ck *checkpoint.Checkpoint, cfg Config, arch string) (*base, error) {
	enc, err := vit.Load(ck, "vision_model.", cfg.Vision)
	if err != nil {
		return nil, fmt.Errorf("blip: %w", err)
	}
	return &base{arch: arch, cfg: cfg, ck: ck, vision: enc}, nil
}

// Config returns the parsed config.json.
func (b *base) Config() Config { return b.cfg }

// SetTokenizer replaces the tokenizer (models built with NewCaption,
// NewVQA or NewRetrieval have none).
func (b *base) SetTokenizer(t tokenizer.Tokenizer) { b.tok = t }

// SetImageProcessor replaces the image processor.
func (b *base) SetImageProcessor(p *vision.Processor) { b.proc = p }

func (b *base) info(tasks ...fusion.Task) fusion.Info {
	return fusion.Info{
		Family: "blip", Architecture: b.arch, Tasks: tasks,
		ImageSize: b.cfg.Vision.ImageSize, ImageTokens: b.vision.Tokens(),
		MaxTextLen: b.cfg.Text.MaxPositions, VocabSize: b.cfg.Text.VocabSize,
	}
}

// EncodePixels runs the vision tower on preprocessed pixels (batch×3×S×S,
// S = vision image_size) and returns one ImageState per image
// (last_hidden_state after post_layernorm).
func (b *base) EncodePixels(ctx context.Context, pixels []float32, batch int) ([]*fusion.ImageState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := b.vision.Forward(pixels, batch)
	if err != nil {
		return nil, fmt.Errorf("blip: vision encoder: %w", err)
	}
	t, d := b.vision.Tokens(), b.vision.Dim()
	out := make([]*fusion.ImageState, batch)
	for i := range out {
		out[i] = &fusion.ImageState{Tokens: t, Dim: d, Hidden: h[i*t*d : (i+1)*t*d : (i+1)*t*d]}
	}
	return out, nil
}

// EncodeImage implements fusion.Model.
func (b *base) EncodeImage(ctx context.Context, img image.Image) (*fusion.ImageState, error) {
	s, err := b.EncodeImages(ctx, []image.Image{img})
	if err != nil {
		return nil, err
	}
	return s[0], nil
}

// EncodeImages implements fusion.Model.
func (b *base) EncodeImages(ctx context.Context, imgs []image.Image) ([]*fusion.ImageState, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	if b.proc == nil {
		return nil, fmt.Errorf("blip: no image processor loaded (preprocessor_config.json)")
	}
	s := b.cfg.Vision.ImageSize
	per := 3 * s * s
	pixels := make([]float32, 0, len(imgs)*per)
	for i, img := range imgs {
		if img == nil {
			return nil, fmt.Errorf("blip: image %d is nil", i)
		}
		rgb, ok := img.(*vision.RGB)
		if !ok {
			rgb = vision.ToRGB(img)
		}
		p := b.proc.Preprocess(rgb)
		if len(p) != per {
			return nil, fmt.Errorf("blip: image %d: the image processor made %d values, the vision model takes 3×%d×%d (check preprocessor_config.json size against vision_config.image_size)", i, len(p), s, s)
		}
		pixels = append(pixels, p...)
	}
	return b.EncodePixels(ctx, pixels, len(imgs))
}

// Tokenize implements fusion.Model.
func (b *base) Tokenize(text string) ([]int, error) {
	if b.tok == nil {
		return nil, fmt.Errorf("blip: no tokenizer loaded (vocab.txt / tokenizer.json)")
	}
	return b.tok.Encode(text, true), nil
}

// Close implements fusion.Model. The model must not be used afterwards.
func (b *base) Close() error { return b.ck.Close() }

// checkState validates an ImageState against the vision tower.
func (b *base) checkState(img *fusion.ImageState) error {
	if img == nil {
		return fmt.Errorf("blip: nil image state")
	}
	if img.Tokens != b.vision.Tokens() || img.Dim != b.vision.Dim() || len(img.Hidden) != img.Tokens*img.Dim {
		return fmt.Errorf("blip: image state is %d×%d (%d values), this model's vision tower makes %d×%d: was it encoded by another model?",
			img.Tokens, img.Dim, len(img.Hidden), b.vision.Tokens(), b.vision.Dim())
	}
	return nil
}

// loadText binds a text model of the checkpoint.
func (b *base) loadText(prefix string, withHead bool) (*bert.Model, error) {
	m, err := bert.Load(b.ck, prefix, b.cfg.Text, withHead)
	if err != nil {
		return nil, fmt.Errorf("blip: %s: %w", b.arch, err)
	}
	return m, nil
}
