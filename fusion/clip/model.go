// Package clip serves Hugging Face CLIPModel checkpoints (e.g.
// openai/clip-vit-base-patch32): L2-normalised image and text embeddings
// in a shared space, and image–text matching by cosine similarity and
// CLIP's logit exp(logit_scale)·cosine.
//
//	image: visual_projection(post_layernorm(ViT(pixels)[CLS])) / ‖·‖
//	text:  text_projection(final_layer_norm(TextEncoder(ids))[eos]) / ‖·‖
//
// It registers itself with fusion as "CLIPModel". An ImageState holds the
// vision tower's last_hidden_state (no final norm, as HF returns it); the
// pooled output and the projection are computed from its CLS row.
package clip

import (
	"context"
	"errors"
	"fmt"
	"github.com/glimpse-vlm/glimpse/fusion/imagetower"
	"image"
	"math"
	"os"
	"path/filepath"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
	"github.com/glimpse-vlm/glimpse/text/cliptext"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

// Architecture is the config.json "architectures" entry this package serves.
const Architecture = "CLIPModel"

func init() {
	fusion.Register(Architecture, func(dir string) (fusion.Model, error) { return Load(dir) })
}

// HF tensor names of CLIPModel.
const (
	prefixVision  = "vision_model."
	prefixText    = "text_model."
	nameVisualPrj = "visual_projection.weight" // (projection_dim, vision D), no bias
	nameTextPrj   = "text_projection.weight"   // (projection_dim, text D), no bias
	nameLogit     = "logit_scale"              // scalar
)

// Model is a loaded CLIP checkpoint. It is safe for concurrent use.
type Model struct {
	cfg        Config
	vision     *vit.Encoder
	text       *cliptext.Model
	visualProj *kernels.Linear   // (P, Dv)
	textProj   *kernels.Linear   // (P, Dt)
	logitScale float32           // log of the inverse temperature
	tok        textEncoder       // nil when built with New
	tower      *imagetower.Tower // image processor (none when built with New) + vision tower
}

// Load opens a CLIP checkpoint folder: config.json, model.safetensors (or
// a sharded index), preprocessor_config.json and the CLIP tokenizer files.
func Load(dir string) (*Model, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	m, err := New(ck, cfg)
	if err != nil {
		return nil, err
	}
	if err := m.loadProcessing(dir); err != nil {
		return nil, err
	}
	return m, nil
}

// New builds the model from the weights in ck with cfg, without image
// processor or tokenizer (EncodePixels, ImageFeatures and TextFeatures
// work; EncodeImage, Tokenize, EmbedTexts and Match need Load). The
// weights are copied, so ck may be closed afterwards.
func New(ck *checkpoint.Checkpoint, cfg Config) (*Model, error) {
	m := &Model{cfg: cfg}
	var err error
	if m.vision, err = vit.Load(ck, prefixVision, cfg.Vision); err != nil {
		return nil, fmt.Errorf("clip: vision model: %w", err)
	}
	if m.tower, err = imagetower.New("clip", m.vision, nil); err != nil {
		return nil, err
	}
	if m.text, err = cliptext.Load(ck, prefixText, cfg.Text); err != nil {
		return nil, fmt.Errorf("clip: text model: %w", err)
	}
	p := cfg.ProjectionDim
	for _, pr := range []struct {
		name string
		in   int
		dst  **kernels.Linear
	}{
		{nameVisualPrj, cfg.Vision.HiddenSize, &m.visualProj}, {nameTextPrj, cfg.Text.HiddenSize, &m.textProj},
	} {
		if !ck.Has(pr.name) {
			return nil, fmt.Errorf("clip: missing tensor %q (expected shape [%d %d])", pr.name, p, pr.in)
		}
		w, err := ck.Float32(pr.name, p, pr.in)
		if err != nil {
			return nil, fmt.Errorf("clip (projection_dim %d): %w", p, err)
		}
		*pr.dst = kernels.NewLinear(append([]float32(nil), w...), p, pr.in, nil)
	}
	// HF initialises logit_scale to logit_scale_init_value; a checkpoint
	// normally overrides it. The file stores it as a 0-d (or 1-element)
	// tensor.
	m.logitScale = float32(cfg.LogitScaleInit)
	if ck.Has(nameLogit) {
		v, err := ck.Float32(nameLogit)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		if len(v) != 1 {
			return nil, fmt.Errorf("clip: tensor %q has %d values, expected one", nameLogit, len(v))
		}
		m.logitScale = v[0]
	}
	return m, nil
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Vision returns the vision tower.
func (m *Model) Vision() *vit.Encoder { return m.vision }

// Text returns the text encoder.
func (m *Model) Text() *cliptext.Model { return m.text }

// LogitScale returns exp(logit_scale), the factor from cosine to logit.
func (m *Model) LogitScale() float32 { return float32(math.Exp(float64(m.logitScale))) }

// Info describes the model.
func (m *Model) Info() fusion.Info {
	return fusion.Info{
		Family: "clip", Architecture: Architecture,
		Tasks:     []fusion.Task{fusion.TaskMatch, fusion.TaskEmbed},
		ImageSize: m.cfg.Vision.ImageSize, ImageTokens: m.vision.Tokens(),
		MaxTextLen: m.cfg.Text.MaxPositions, VocabSize: m.cfg.Text.VocabSize,
	}
}

// EncodePixels runs the vision tower on batch preprocessed images
// (pixel_values, batch×C×H×W) and returns each image's last_hidden_state.
func (m *Model) EncodePixels(ctx context.Context, pixels []float32, batch int) ([]*fusion.ImageState, error) {
	return m.tower.EncodePixels(ctx, pixels, batch)
}

// EncodeImage preprocesses img as the checkpoint's CLIPImageProcessor does
// and runs the vision tower.
func (m *Model) EncodeImage(ctx context.Context, img image.Image) (*fusion.ImageState, error) {
	return m.tower.EncodeImage(ctx, img)
}

// EncodeImages encodes several images as one batch.
func (m *Model) EncodeImages(ctx context.Context, imgs []image.Image) ([]*fusion.ImageState, error) {
	return m.tower.EncodeImages(ctx, imgs)
}

func (m *Model) checkState(img *fusion.ImageState) error { return m.tower.CheckState(img) }

// ImageFeatures returns get_image_features for each state:
// visual_projection(post_layernorm(CLS)), unnormalised (n×ProjectionDim).
func (m *Model) ImageFeatures(states []*fusion.ImageState) ([]float32, error) {
	t, d := m.vision.Tokens(), m.vision.Dim()
	hidden := make([]float32, 0, len(states)*t*d)
	for _, s := range states {
		if err := m.checkState(s); err != nil {
			return nil, err
		}
		hidden = append(hidden, s.Hidden...)
	}
	if len(states) == 0 {
		return nil, nil
	}
	pooled, err := m.vision.Pool(hidden, len(states))
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	out := make([]float32, len(states)*m.cfg.ProjectionDim)
	m.visualProj.Forward(out, pooled, len(states), kernels.ActNone)
	return out, nil
}

// padID is the id texts are padded with: the tokenizer's pad token when it
// has one (what CLIPProcessor(padding=True) uses), else
// text_config.pad_token_id. With the attention mask the pooled output does
// not depend on it.
func (m *Model) padID() int {
	if m.tok != nil {
		if id, ok := m.tok.pad(); ok {
			return id
		}
	}
	if m.cfg.Text.PadTokenID >= 0 {
		return m.cfg.Text.PadTokenID
	}
	return 0
}

// TextFeatures returns get_text_features for token-id sequences (each as
// the tokenizer makes it, with its start and end tokens): the sequences
// are right-padded to the longest with an attention mask, encoded as one
// batch, pooled and projected (n×ProjectionDim, unnormalised).
func (m *Model) TextFeatures(ctx context.Context, texts [][]int) ([]float32, error) {
	n := len(texts)
	if n == 0 {
		return nil, nil
	}
	L := 0
	for i, ids := range texts {
		if len(ids) == 0 {
			return nil, fmt.Errorf("clip: text %d has no tokens", i)
		}
		L = max(L, len(ids))
	}
	pad := m.padID()
	ids := make([]int, n*L)
	mask := make([]int, n*L)
	for i, row := range texts {
		for j := 0; j < L; j++ {
			if j < len(row) {
				ids[i*L+j], mask[i*L+j] = row[j], 1
			} else {
				ids[i*L+j] = pad
			}
		}
	}
	out, err := m.text.Forward(ctx, ids, mask, n, L, false)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	feats := make([]float32, n*m.cfg.ProjectionDim)
	m.textProj.Forward(feats, out.Pooled, n, kernels.ActNone)
	return feats, nil
}

// normalize divides each row (width d) by its L2 norm, as HF's
// x / x.norm(p=2, dim=-1, keepdim=True).
func normalize(x []float32, d int) {
	for r := 0; r+d <= len(x); r += d {
		row := x[r : r+d]
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		n := float32(math.Sqrt(s))
		for i := range row {
			row[i] /= n
		}
	}
}

func rows(x []float32, d int) [][]float32 {
	out := make([][]float32, 0, len(x)/d)
	for r := 0; r+d <= len(x); r += d {
		out = append(out, x[r:r+d:r+d])
	}
	return out
}

// EmbedImage returns HF's image_embeds: the normalised image features.
func (m *Model) EmbedImage(ctx context.Context, img *fusion.ImageState) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := m.ImageFeatures([]*fusion.ImageState{img})
	if err != nil {
		return nil, err
	}
	normalize(f, m.cfg.ProjectionDim)
	return f, nil
}

// tokenizeAll tokenizes texts as CLIPProcessor(text=texts) does.
func (m *Model) tokenizeAll(texts []string) ([][]int, error) {
	if m.tok == nil {
		return nil, errors.New("clip: no tokenizer (the model was built with New, not Load)")
	}
	out := make([][]int, len(texts))
	for i, s := range texts {
		ids, err := m.tok.encode(s)
		if err != nil {
			return nil, fmt.Errorf("clip: text %d: %w", i, err)
		}
		if len(ids) > m.cfg.Text.MaxPositions {
			return nil, fmt.Errorf("clip: text %d is %d tokens, longer than the model's %d positions; shorten it", i, len(ids), m.cfg.Text.MaxPositions)
		}
		out[i] = ids
	}
	return out, nil
}

// EmbedTexts returns HF's text_embeds for texts (tokenized, padded as
// CLIPProcessor(padding=True) does): the normalised text features.
func (m *Model) EmbedTexts(ctx context.Context, texts []string) ([][]float32, error) {
	ids, err := m.tokenizeAll(texts)
	if err != nil {
		return nil, err
	}
	f, err := m.TextFeatures(ctx, ids)
	if err != nil {
		return nil, err
	}
	normalize(f, m.cfg.ProjectionDim)
	return rows(f, m.cfg.ProjectionDim), nil
}

// Match scores texts against img: Cosine = image_embeds·text_embeds and
// Logit = exp(logit_scale)·Cosine (HF logits_per_image).
func (m *Model) Match(ctx context.Context, img *fusion.ImageState, texts []string) ([]fusion.MatchScore, error) {
	ie, err := m.EmbedImage(ctx, img)
	if err != nil {
		return nil, err
	}
	te, err := m.EmbedTexts(ctx, texts)
	if err != nil {
		return nil, err
	}
	scale := m.LogitScale()
	out := make([]fusion.MatchScore, len(te))
	for i, t := range te {
		var s float32
		for j := range t {
			s += ie[j] * t[j]
		}
		cos, logit := s, s*scale
		out[i] = fusion.MatchScore{Cosine: &cos, Logit: &logit}
	}
	return out, nil
}

// Tokenize returns the ids CLIPTokenizer(text) makes (with
// <|startoftext|> and <|endoftext|>).
func (m *Model) Tokenize(text string) ([]int, error) {
	if m.tok == nil {
		return nil, errors.New("clip: no tokenizer (the model was built with New, not Load)")
	}
	return m.tok.encode(text)
}

// Close releases the model.
func (m *Model) Close() error { return nil }
