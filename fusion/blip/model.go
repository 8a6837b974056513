// Package blip serves Hugging Face BLIP checkpoints:
// BlipForConditionalGeneration (captions, also continuing a text prefix),
// BlipForQuestionAnswering (answers) and BlipForImageTextRetrieval (ITM
// match probability, ITC cosine, embeddings). The three architectures
// register themselves with fusion in init.
package blip

import (
	"context"
	"fmt"
	"github.com/glimpse-vlm/glimpse/fusion/imagetower"
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
	tower  *imagetower.Tower   // image processor + vision tower (no processor until SetImageProcessor for NewCaption & co.)
	tok    tokenizer.Tokenizer // the folder's tokenizer (nil for NewCaption & co. until SetTokenizer)
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
	proc, err := vision.LoadProcessor(dir)
	if err != nil {
		ck.Close()
		return nil, fmt.Errorf("blip: %w", err)
	}
	if err := b.SetImageProcessor(proc); err != nil {
		ck.Close()
		return nil, err
	}
	return b, nil
}

// loadArch loads the checkpoint folder dir as arch and builds the task
// model on its base (LoadCaption, LoadVQA, LoadRetrieval).
func loadArch[M any](dir, arch string, build func(*base) (M, error)) (M, error) {
	var none M
	b, err := loadBase(dir, arch)
	if err != nil {
		return none, err
	}
	m, err := build(b)
	if err != nil {
		b.Close()
		return none, err
	}
	return m, nil
}

// newArch builds the task model of arch from an opened checkpoint and a
// parsed config (NewCaption, NewVQA, NewRetrieval); the checkpoint stays
// the caller's on error.
func newArch[M any](ck *checkpoint.Checkpoint, cfg Config, arch string, build func(*base) (M, error)) (M, error) {
	var none M
	b, err := newBase(ck, cfg, arch)
	if err != nil {
		return none, err
	}
	return build(b)
}

// newBase binds the vision tower of an opened checkpoint.
func newBase(ck *checkpoint.Checkpoint, cfg Config, arch string) (*base, error) {
	enc, err := vit.Load(ck, "vision_model.", cfg.Vision)
	if err != nil {
		return nil, fmt.Errorf("blip: %w", err)
	}
	tower, err := imagetower.New("blip", enc, nil)
	if err != nil {
		return nil, err
	}
	return &base{arch: arch, cfg: cfg, ck: ck, vision: enc, tower: tower}, nil
}

// Config returns the parsed config.json.
func (b *base) Config() Config { return b.cfg }

// SetTokenizer replaces the tokenizer (models built with NewCaption,
// NewVQA or NewRetrieval have none).
func (b *base) SetTokenizer(t tokenizer.Tokenizer) { b.tok = t }

// SetImageProcessor replaces the image processor; it must make the images
// the vision tower takes.
func (b *base) SetImageProcessor(p *vision.Processor) error { return b.tower.SetProcessor(p) }

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
	return b.tower.EncodePixels(ctx, pixels, batch)
}

// EncodeImage implements fusion.Model.
func (b *base) EncodeImage(ctx context.Context, img image.Image) (*fusion.ImageState, error) {
	return b.tower.EncodeImage(ctx, img)
}

// EncodeImages implements fusion.Model.
func (b *base) EncodeImages(ctx context.Context, imgs []image.Image) ([]*fusion.ImageState, error) {
	return b.tower.EncodeImages(ctx, imgs)
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
func (b *base) checkState(img *fusion.ImageState) error { return b.tower.CheckState(img) }

// loadText binds a text model of the checkpoint.
func (b *base) loadText(prefix string, withHead bool) (*bert.Model, error) {
	m, err := bert.Load(b.ck, prefix, b.cfg.Text, withHead)
	if err != nil {
		return nil, fmt.Errorf("blip: %s: %w", b.arch, err)
	}
	// The vision and text weights are packed or copied now: drop the file
	// pages read while loading (the few tensors used in place, e.g. the
	// word embeddings, come back page by page as they are read).
	b.ck.EvictAll()
	return m, nil
}
