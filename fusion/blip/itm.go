package blip

import (
	"context"
	"fmt"
	"math"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
	"github.com/glimpse-vlm/glimpse/text/bert"
)

// RetrievalModel is BlipForImageTextRetrieval: text_encoder (with
// cross-attention to the image for ITM, text-only for ITC), itm_head,
// vision_proj and text_proj. It implements fusion.Model, fusion.Matcher
// and fusion.Embedder.
type RetrievalModel struct {
	*base
	enc        *bert.Model
	itmHead    *kernels.Linear // itm_head: (2, H_text)
	visionProj *kernels.Linear // vision_proj: (image_text_hidden_size, H_vision)
	textProj   *kernels.Linear // text_proj: (image_text_hidden_size, H_text)
}

var (
	_ fusion.Model    = (*RetrievalModel)(nil)
	_ fusion.Matcher  = (*RetrievalModel)(nil)
	_ fusion.Embedder = (*RetrievalModel)(nil)
)

// LoadRetrieval loads a BlipForImageTextRetrieval checkpoint folder.
func LoadRetrieval(dir string) (*RetrievalModel, error) {
	b, err := loadBase(dir, ArchRetrieval)
	if err != nil {
		return nil, err
	}
	m, err := newRetrieval(b)
	if err != nil {
		b.Close()
		return nil, err
	}
	return m, nil
}

// NewRetrieval builds a retrieval model from an opened checkpoint and a
// parsed config.
func NewRetrieval(ck *checkpoint.Checkpoint, cfg Config) (*RetrievalModel, error) {
	b, err := newBase(ck, cfg, ArchRetrieval)
	if err != nil {
		return nil, err
	}
	return newRetrieval(b)
}

func newRetrieval(b *base) (*RetrievalModel, error) {
	if !b.cfg.Text.CrossAttention {
		return nil, fmt.Errorf("blip: %s: text_config.is_decoder is false, but the ITM head needs cross-attention", b.arch)
	}
	enc, err := b.loadText("text_encoder.", false)
	if err != nil {
		return nil, err
	}
	m := &RetrievalModel{base: b, enc: enc}
	ht, hv, p := b.cfg.Text.HiddenSize, b.cfg.Vision.HiddenSize, b.cfg.ImageTextHiddenSize
	for _, l := range []struct {
		dst     **kernels.Linear
		name    string
		out, in int
	}{
		{&m.itmHead, "itm_head", 2, ht},
		{&m.visionProj, "vision_proj", p, hv},
		{&m.textProj, "text_proj", p, ht},
	} {
		w, err := b.ck.Float32(l.name+".weight", l.out, l.in)
		if err != nil {
			return nil, fmt.Errorf("blip: %s: %w", b.arch, err)
		}
		bias, err := b.ck.Float32(l.name+".bias", l.out)
		if err != nil {
			return nil, fmt.Errorf("blip: %s: %w", b.arch, err)
		}
		*l.dst = kernels.NewLinear(w, l.out, l.in, bias)
	}
	return m, nil
}

// Info implements fusion.Model.
func (m *RetrievalModel) Info() fusion.Info { return m.info(fusion.TaskMatch, fusion.TaskEmbed) }

// ITMLogits returns itm_head(question_embeds[0]) for text ids ([CLS] …
// [SEP], fed as is) cross-attending to the image: [no-match, match].
func (m *RetrievalModel) ITMLogits(img *fusion.ImageState, ids []int) ([2]float32, error) {
	var out [2]float32
	if err := m.checkState(img); err != nil {
		return out, err
	}
	cross, err := m.enc.CrossKV(img.Hidden, img.Tokens, nil)
	if err != nil {
		return out, err
	}
	var ws bert.Workspace
	h, err := m.enc.Forward(&ws, []bert.Seq{{Tokens: ids, Cache: &bert.Cache{}, Cross: cross}}, false)
	if err != nil {
		return out, fmt.Errorf("blip: text encoder: %w", err)
	}
	m.itmHead.Forward(out[:], h[:m.cfg.Text.HiddenSize], 1, kernels.ActNone)
	return out, nil
}

// ImageFeature is normalize(vision_proj(image_embeds[0])).
func (m *RetrievalModel) ImageFeature(img *fusion.ImageState) ([]float32, error) {
	if err := m.checkState(img); err != nil {
		return nil, err
	}
	out := make([]float32, m.cfg.ImageTextHiddenSize)
	m.visionProj.Forward(out, img.Hidden[:img.Dim], 1, kernels.ActNone)
	normalize(out)
	return out, nil
}

// TextFeature is normalize(text_proj(text_encoder(ids)[0])), text only.
func (m *RetrievalModel) TextFeature(ids []int) ([]float32, error) {
	var ws bert.Workspace
	h, err := m.enc.Forward(&ws, []bert.Seq{{Tokens: ids, Cache: &bert.Cache{}}}, false)
	if err != nil {
		return nil, fmt.Errorf("blip: text encoder: %w", err)
	}
	out := make([]float32, m.cfg.ImageTextHiddenSize)
	m.textProj.Forward(out, h[:m.cfg.Text.HiddenSize], 1, kernels.ActNone)
	normalize(out)
	return out, nil
}

// MatchIDs scores token ids against an image: the ITM probability
// softmax(itm logits)[1] and the ITC cosine of the normalised features.
func (m *RetrievalModel) MatchIDs(img *fusion.ImageState, ids []int) (fusion.MatchScore, error) {
	logits, err := m.ITMLogits(img, ids)
	if err != nil {
		return fusion.MatchScore{}, err
	}
	kernels.Softmax(logits[:])
	p := logits[1]
	imgF, err := m.ImageFeature(img)
	if err != nil {
		return fusion.MatchScore{}, err
	}
	txtF, err := m.TextFeature(ids)
	if err != nil {
		return fusion.MatchScore{}, err
	}
	cos := dot(imgF, txtF)
	return fusion.MatchScore{ITMProbability: &p, Cosine: &cos}, nil
}

// Match implements fusion.Matcher.
func (m *RetrievalModel) Match(ctx context.Context, img *fusion.ImageState, texts []string) ([]fusion.MatchScore, error) {
	out := make([]fusion.MatchScore, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ids, err := m.Tokenize(t)
		if err != nil {
			return nil, fmt.Errorf("blip: text %d: %w", i, err)
		}
		if out[i], err = m.MatchIDs(img, ids); err != nil {
			return nil, fmt.Errorf("blip: text %d: %w", i, err)
		}
	}
	return out, nil
}

// EmbedImage implements fusion.Embedder.
func (m *RetrievalModel) EmbedImage(ctx context.Context, img *fusion.ImageState) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.ImageFeature(img)
}

// EmbedTexts implements fusion.Embedder.
func (m *RetrievalModel) EmbedTexts(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ids, err := m.Tokenize(t)
		if err != nil {
			return nil, fmt.Errorf("blip: text %d: %w", i, err)
		}
		if out[i], err = m.TextFeature(ids); err != nil {
			return nil, fmt.Errorf("blip: text %d: %w", i, err)
		}
	}
	return out, nil
}

// normalize divides x by max(‖x‖₂, 1e-12) in place (torch F.normalize).
func normalize(x []float32) {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	n := math.Max(math.Sqrt(s), 1e-12)
	for i := range x {
		x[i] = float32(float64(x[i]) / n)
	}
}

func dot(a, b []float32) float32 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return float32(s)
}
