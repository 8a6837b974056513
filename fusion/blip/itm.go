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
	return loadArch(dir, ArchRetrieval, newRetrieval)
}

// NewRetrieval builds a retrieval model from an opened checkpoint and a
// parsed config.
func NewRetrieval(ck *checkpoint.Checkpoint, cfg Config) (*RetrievalModel, error) {
	return newArch(ck, cfg, ArchRetrieval, newRetrieval)
}

func newRetrieval(b *base) (*RetrievalModel, error) {
	if !b.cfg.Text.CrossAttention {
		return nil, fmt.Errorf("blip: %s: text_config.is_decoder is false, but the ITM head needs cross-attention", b.arch)
	}
	enc, err := b.loadText("text_encoder.", false)
	if err != nil {
		return nil, err
	}
	hd, err := LoadRetrievalHeads(b.ck, b.cfg)
	if err != nil {
		return nil, fmt.Errorf("blip: %s: %w", b.arch, err)
	}
	return &RetrievalModel{base: b, enc: enc, itmHead: hd.ITM, visionProj: hd.VisionProj, textProj: hd.TextProj}, nil
}

// RetrievalHeads are BlipForImageTextRetrieval's linear heads.
type RetrievalHeads struct {
	ITM        *kernels.Linear // itm_head: (2, H_text)
	VisionProj *kernels.Linear // vision_proj: (image_text_hidden_size, H_vision)
	TextProj   *kernels.Linear // text_proj: (image_text_hidden_size, H_text)
}

// LoadRetrievalHeads binds itm_head, vision_proj and text_proj from ck,
// checking their shapes against cfg. The training package builds its
// retrieval heads through it, as RetrievalModel does.
func LoadRetrievalHeads(ck *checkpoint.Checkpoint, cfg Config) (RetrievalHeads, error) {
	var hd RetrievalHeads
	ht, hv, p := cfg.Text.HiddenSize, cfg.Vision.HiddenSize, cfg.ImageTextHiddenSize
	for _, l := range []struct {
		dst     **kernels.Linear
		name    string
		out, in int
	}{
		{&hd.ITM, "itm_head", 2, ht},
		{&hd.VisionProj, "vision_proj", p, hv},
		{&hd.TextProj, "text_proj", p, ht},
	} {
		w, err := ck.Float32(l.name+".weight", l.out, l.in)
		if err != nil {
			return hd, err
		}
		bias, err := ck.Float32(l.name+".bias", l.out)
		if err != nil {
			return hd, err
		}
		*l.dst = kernels.NewLinear(w, l.out, l.in, bias)
	}
	return hd, nil
}

// Info implements fusion.Model.
func (m *RetrievalModel) Info() fusion.Info { return m.info(fusion.TaskMatch, fusion.TaskEmbed) }

// ITMLogits returns itm_head(question_embeds[0]) for text ids ([CLS] …
// [SEP], fed as is) cross-attending to the image: [no-match, match].
func (m *RetrievalModel) ITMLogits(img *fusion.ImageState, ids []int) ([2]float32, error) {
	out, err := m.itmLogits(img, [][]int{ids})
	if err != nil {
		return [2]float32{}, err
	}
	return out[0], nil
}

// itmLogits scores several texts against one image: the image's
// cross-attention state is made once and all texts run through the text
// encoder as one batch.
func (m *RetrievalModel) itmLogits(img *fusion.ImageState, texts [][]int) ([][2]float32, error) {
	if err := m.checkState(img); err != nil {
		return nil, err
	}
	rows := 0
	for _, t := range texts {
		rows += len(t)
	}
	cross, err := crossState(m.enc, img.Hidden, img.Tokens, rows)
	if err != nil {
		return nil, err
	}
	cls, err := m.encodeCLS(texts, cross)
	if err != nil {
		return nil, err
	}
	out := make([][2]float32, len(texts))
	for i := range out {
		m.itmHead.Forward(out[i][:], cls[i], 1, kernels.ActNone)
	}
	return out, nil
}

// encodeCLS runs the text encoder over texts as one batch (each with its
// own positions and attention) and returns each text's first ([CLS]) state.
func (m *RetrievalModel) encodeCLS(texts [][]int, cross *bert.CrossKV) ([][]float32, error) {
	seqs := make([]bert.Seq, len(texts))
	for i, ids := range texts {
		seqs[i] = bert.Seq{Tokens: ids, Cache: &bert.Cache{}, Cross: cross}
	}
	var ws bert.Workspace
	h, err := m.enc.Forward(&ws, seqs, false)
	if err != nil {
		return nil, fmt.Errorf("blip: text encoder: %w", err)
	}
	d := m.cfg.Text.HiddenSize
	out := make([][]float32, len(texts))
	row := 0
	for i, ids := range texts {
		out[i] = append([]float32(nil), h[row*d:(row+1)*d]...)
		row += len(ids)
	}
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
	f, err := m.textFeatures([][]int{ids})
	if err != nil {
		return nil, err
	}
	return f[0], nil
}

func (m *RetrievalModel) textFeatures(texts [][]int) ([][]float32, error) {
	cls, err := m.encodeCLS(texts, nil)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, c := range cls {
		out[i] = make([]float32, m.cfg.ImageTextHiddenSize)
		m.textProj.Forward(out[i], c, 1, kernels.ActNone)
		normalize(out[i])
	}
	return out, nil
}

// MatchIDs scores token ids against an image: the ITM probability
// softmax(itm logits)[1] and the ITC cosine of the normalised features.
func (m *RetrievalModel) MatchIDs(img *fusion.ImageState, texts [][]int) ([]fusion.MatchScore, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	for i, ids := range texts {
		if len(ids) == 0 {
			return nil, fmt.Errorf("blip: text %d has no tokens", i)
		}
	}
	logits, err := m.itmLogits(img, texts)
	if err != nil {
		return nil, err
	}
	imgF, err := m.ImageFeature(img)
	if err != nil {
		return nil, err
	}
	txtF, err := m.textFeatures(texts)
	if err != nil {
		return nil, err
	}
	out := make([]fusion.MatchScore, len(texts))
	for i := range texts {
		lg := logits[i]
		kernels.Softmax(lg[:])
		p, cos := lg[1], dot(imgF, txtF[i])
		out[i] = fusion.MatchScore{ITMProbability: &p, Cosine: &cos}
	}
	return out, nil
}

// tokenizeAll tokenizes texts as HF's processor does, one by one.
func (m *RetrievalModel) tokenizeAll(texts []string) ([][]int, error) {
	out := make([][]int, len(texts))
	for i, t := range texts {
		ids, err := m.Tokenize(t)
		if err != nil {
			return nil, fmt.Errorf("blip: text %d: %w", i, err)
		}
		out[i] = ids
	}
	return out, nil
}

// Match implements fusion.Matcher.
func (m *RetrievalModel) Match(ctx context.Context, img *fusion.ImageState, texts []string) ([]fusion.MatchScore, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids, err := m.tokenizeAll(texts)
	if err != nil {
		return nil, err
	}
	return m.MatchIDs(img, ids)
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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(texts) == 0 {
		return nil, nil
	}
	ids, err := m.tokenizeAll(texts)
	if err != nil {
		return nil, err
	}
	return m.textFeatures(ids)
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
