package train

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/glimpse-vlm/glimpse/fusion/blip"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
	"github.com/glimpse-vlm/glimpse/text/tokenizer"
	"github.com/glimpse-vlm/glimpse/vision"
)

// Architecture names, as in config.json.
const (
	ArchCaption   = blip.ArchCaption
	ArchVQA       = blip.ArchVQA
	ArchRetrieval = blip.ArchRetrieval
)

// Config sizes a BLIP model.
type Config struct {
	Vision VisionConfig
	Text   TextConfig
	// ProjDim is image_text_hidden_size (retrieval projections).
	ProjDim int
}

// Model is a BLIP model of one architecture in training form, with the
// tokenizer and image processor of its folder.
type Model struct {
	Arch   string
	Cfg    Config
	Params *Params

	vision               *Vision
	dec                  *Text // caption, VQA
	enc                  *Text // VQA, retrieval
	visionProj, textProj *lin
	itmHead              *lin
	auxHead              *lin // transient per-patch shape/size head (aux loss)
	auxLayout            *lin // transient CLS layout head (aux loss)

	Tok  tokenizer.Tokenizer
	Proc *vision.Processor
	// files are the tokenizer and preprocessor files written with the model.
	files map[string][]byte
	// rawConfig is the base folder's config.json (Load), written unchanged.
	rawConfig []byte
	bos       int
	sep       int
	pad       int
}

// NewModel creates a randomly initialised model (seeded) of arch with the
// given tokenizer/processor files (name → content: vocab.txt,
// tokenizer_config.json, special_tokens_map.json, added_tokens.json,
// preprocessor_config.json).
func NewModel(arch string, cfg Config, files map[string][]byte, seed uint64) (*Model, error) {
	r := rand.New(rand.NewPCG(seed, 0x1f83d9abfb41bd6b))
	m := &Model{Arch: arch, Cfg: cfg, Params: NewParams(), files: files}
	var err error
	if m.vision, err = newVision(m.Params, r, cfg.Vision); err != nil {
		return nil, err
	}
	cfg.Text.EncoderHidden = cfg.Vision.Hidden
	switch arch {
	case ArchCaption:
		m.dec, err = newText(m.Params, r, cfg.Text, "text_decoder.bert.", "text_decoder.", true)
	case ArchVQA:
		if m.enc, err = newText(m.Params, r, cfg.Text, "text_encoder.", "", false); err == nil {
			dc := cfg.Text
			dc.EncoderHidden = cfg.Text.Hidden
			m.dec, err = newText(m.Params, r, dc, "text_decoder.bert.", "text_decoder.", true)
		}
	case ArchRetrieval:
		m.enc, err = newText(m.Params, r, cfg.Text, "text_encoder.", "", false)
		m.visionProj = newLin(m.Params, r, "vision_proj", cfg.ProjDim, cfg.Vision.Hidden)
		m.textProj = newLin(m.Params, r, "text_proj", cfg.ProjDim, cfg.Text.Hidden)
		m.itmHead = newLin(m.Params, r, "itm_head", 2, cfg.Text.Hidden)
	default:
		return nil, fmt.Errorf("train: unsupported architecture %q (supported: %s, %s, %s)", arch, ArchCaption, ArchVQA, ArchRetrieval)
	}
	if err != nil {
		return nil, err
	}
	m.auxHead = newLin(m.Params, r, "aux.patch_head", auxShapes+auxSizes, cfg.Vision.Hidden)
	m.auxHead.W.Transient, m.auxHead.B.Transient = true, true
	m.auxLayout = newLin(m.Params, r, "aux.layout_head", auxLayouts, cfg.Vision.Hidden)
	m.auxLayout.W.Transient, m.auxLayout.B.Transient = true, true
	if m.Tok, err = tokenizer.LoadFiles(files); err != nil {
		return nil, fmt.Errorf("train: tokenizer: %w", err)
	}
	if m.Proc, err = vision.NewProcessor(files["preprocessor_config.json"]); err != nil {
		return nil, fmt.Errorf("train: preprocessor_config.json: %w", err)
	}
	if h, w := m.Proc.OutputSize(); h != cfg.Vision.ImageSize || w != cfg.Vision.ImageSize {
		return nil, fmt.Errorf("train: preprocessor makes %d×%d images, vision image_size is %d", h, w, cfg.Vision.ImageSize)
	}
	sp := m.Tok.Special()
	m.pad = sp.PAD
	m.sep = sp.SEP
	m.bos = sp.BOS
	if m.bos < 0 || m.sep < 0 {
		return nil, fmt.Errorf("train: the tokenizer needs a bos token ([DEC]) and a sep token ([SEP])")
	}
	return m, nil
}

// Load reads an HF BLIP folder (config.json, model.safetensors, tokenizer
// and preprocessor files) into a trainable model: the base of finetune.
func Load(dir string) (*Model, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("train: %w (a BLIP folder needs config.json)", err)
	}
	bc, err := blip.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if len(bc.Architectures) == 0 {
		return nil, fmt.Errorf("train: %s/config.json has no architectures", dir)
	}
	if bc.Text.Act != kernels.ActGELU || bc.Vision.Act != kernels.ActGELU {
		return nil, fmt.Errorf("train: only hidden_act \"gelu\" is supported for training (text %s, vision %s)", bc.Text.Act, bc.Vision.Act)
	}
	cfg := Config{
		Vision: VisionConfig{ImageSize: bc.Vision.ImageSize, PatchSize: bc.Vision.PatchSize, Hidden: bc.Vision.HiddenSize,
			Layers: bc.Vision.NumLayers, Heads: bc.Vision.NumHeads, Intermediate: bc.Vision.IntermediateSize, Eps: float32(bc.Vision.LayerNormEps)},
		Text: TextConfig{Vocab: bc.Text.VocabSize, Hidden: bc.Text.HiddenSize, Layers: bc.Text.NumLayers, Heads: bc.Text.NumHeads,
			Intermediate: bc.Text.IntermediateSize, MaxPositions: bc.Text.MaxPositions, Eps: float32(bc.Text.LayerNormEps)},
		ProjDim: bc.ImageTextHiddenSize,
	}
	files := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && (n == "vocab.txt" || n == "tokenizer.json" || n == "preprocessor_config.json" || n == "generation_config.json" ||
			strings.HasPrefix(n, "tokenizer_config") || n == "special_tokens_map.json" || n == "added_tokens.json") {
			if files[n], err = os.ReadFile(filepath.Join(dir, n)); err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
		}
	}
	m, err := NewModel(bc.Architectures[0], cfg, files, 0)
	if err != nil {
		return nil, err
	}
	if err := m.LoadWeights(dir, ""); err != nil {
		return nil, err
	}
	m.rawConfig = raw
	return m, nil
}

// LoadWeights copies the tensors of dir/model.safetensors whose names
// start with prefix ("" = all of the model's tensors, which must all be
// present) into the model.
func (m *Model) LoadWeights(dir, prefix string) error {
	ck, err := checkpoint.Open(dir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer ck.Close()
	n := 0
	for _, p := range m.Params.List() {
		if !strings.HasPrefix(p.Name, prefix) || p.Transient {
			continue
		}
		w, err := ck.Float32(p.Name, p.Shape...)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		copy(p.W, w)
		n++
	}
	if n == 0 {
		return fmt.Errorf("train: %s has no tensors named %s*", dir, prefix)
	}
	return nil
}

// Pixels preprocesses an image exactly as the serving processor does.
func (m *Model) Pixels(img image.Image) []float32 {
	return m.Proc.Preprocess(vision.ToRGB(img))
}

// Encode tokenizes text as the processor does ([CLS] … [SEP]).
func (m *Model) Encode(text string) []int {
	ids := m.Tok.Encode(text, true)
	if max := m.Cfg.Text.MaxPositions; len(ids) > max {
		ids = append(ids[:max-1:max-1], m.sep)
	}
	return ids
}

// decoderIDs makes the decoder input: [CLS] replaced by bos.
func (m *Model) decoderIDs(text string) []int {
	ids := m.Encode(text)
	ids[0] = m.bos
	return ids
}

// lmLoss runs the decoder over ids with cross-attention to enc, adds the
// gradient of weight·(mean next-token loss) and returns the loss and
// d(enc).
func (m *Model) lmLoss(ids []int, enc []float32, encLen int, weight float32, smoothing float32, needEnc bool) (float64, []float32) {
	_, ctx := m.dec.forward(ids, enc, encLen)
	logits := m.dec.logits(ctx)
	L, V := len(ids), m.Cfg.Text.Vocab
	targets := make([]int, L)
	for i := range targets {
		targets[i] = -100
		if i+1 < L {
			targets[i] = ids[i+1]
		}
	}
	dl := make([]float32, L*V)
	loss, _ := kernels.CrossEntropy(logits, L, V, targets, -100, smoothing, dl, weight)
	dh := m.dec.logitsBackward(ctx, dl)
	return loss, m.dec.backward(ctx, dh, needEnc)
}

// Aux holds dense per-patch targets for an auxiliary vision loss (not
// part of the saved model): Shape and Size per patch (row-major grid),
// 0 = background, else 1 + class index.
type Aux struct {
	Shape, Size []int
	// Layout is the scene's layout class (predicted from the CLS state).
	Layout int
	Weight float32
}

const auxShapes, auxSizes, auxLayouts = 5, 3, 4

// auxLoss adds the auxiliary per-patch classification loss of image states
// img (T×D, CLS first) to dimg and returns it.
func (m *Model) auxLoss(img, dimg []float32, aux *Aux, weight float32) float64 {
	if aux == nil || m.visionFrozen() {
		return 0
	}
	d := m.Cfg.Vision.Hidden
	n := m.Cfg.Vision.tokens() - 1
	if len(aux.Shape) != n || len(aux.Size) != n {
		return 0
	}
	patches := img[d:]
	logits := m.auxHead.forward(patches, n)
	k := auxShapes + auxSizes
	shapeL, sizeL := make([]float32, n*auxShapes), make([]float32, n*auxSizes)
	for i := 0; i < n; i++ {
		copy(shapeL[i*auxShapes:(i+1)*auxShapes], logits[i*k:i*k+auxShapes])
		copy(sizeL[i*auxSizes:(i+1)*auxSizes], logits[i*k+auxShapes:(i+1)*k])
	}
	dShape, dSize := make([]float32, len(shapeL)), make([]float32, len(sizeL))
	w := weight * aux.Weight
	l1, _ := kernels.CrossEntropy(shapeL, n, auxShapes, aux.Shape, -100, 0, dShape, w)
	l2, _ := kernels.CrossEntropy(sizeL, n, auxSizes, aux.Size, -100, 0, dSize, w)
	dl := make([]float32, n*k)
	for i := 0; i < n; i++ {
		copy(dl[i*k:i*k+auxShapes], dShape[i*auxShapes:(i+1)*auxShapes])
		copy(dl[i*k+auxShapes:(i+1)*k], dSize[i*auxSizes:(i+1)*auxSizes])
	}
	addInto(dimg[d:], m.auxHead.backward(dl, patches, n, true))
	var l3 float64
	if aux.Layout >= 0 && aux.Layout < auxLayouts {
		ll := m.auxLayout.forward(img[:d], 1)
		dll := make([]float32, auxLayouts)
		l3, _ = kernels.CrossEntropy(ll, 1, auxLayouts, []int{aux.Layout}, -100, 0, dll, w)
		addInto(dimg[:d], m.auxLayout.backward(dll, img[:d], 1, true))
	}
	return float64(aux.Weight) * (l1 + l2 + l3)
}

// CaptionLoss accumulates the gradient of weight × the captioning loss of
// one (pixels, caption) pair and returns the loss. HF's decoder uses label
// smoothing 0.1.
func (m *Model) CaptionLoss(pixels []float32, caption string, weight float32) float64 {
	return m.CaptionLossAux(pixels, caption, nil, weight)
}

// CaptionLossAux is CaptionLoss plus the auxiliary per-patch loss (aux
// may be nil); the returned loss includes it.
func (m *Model) CaptionLossAux(pixels []float32, caption string, aux *Aux, weight float32) float64 {
	img, vctx := m.vision.forward(pixels)
	loss, dimg := m.lmLoss(m.decoderIDs(caption), img, m.Cfg.Vision.tokens(), weight, 0.1, !m.visionFrozen())
	if dimg != nil {
		loss += m.auxLoss(img, dimg, aux, weight)
		m.vision.backward(vctx, dimg)
	}
	return loss
}

// VQALoss accumulates the gradient of weight × the answer loss of one
// (pixels, question, answer) triple and returns the loss.
func (m *Model) VQALoss(pixels []float32, question, answer string, weight float32) float64 {
	return m.VQALossAux(pixels, question, answer, nil, weight)
}

// VQALossAux is VQALoss plus the auxiliary per-patch loss (aux may be nil).
func (m *Model) VQALossAux(pixels []float32, question, answer string, aux *Aux, weight float32) float64 {
	img, vctx := m.vision.forward(pixels)
	q := m.Encode(question)
	qs, qctx := m.enc.forward(q, img, m.Cfg.Vision.tokens())
	loss, dq := m.lmLoss(m.decoderIDs(answer), qs, len(q), weight, 0, true)
	dimg := m.enc.backward(qctx, dq, !m.visionFrozen())
	if dimg != nil {
		loss += m.auxLoss(img, dimg, aux, weight)
		m.vision.backward(vctx, dimg)
	}
	return loss
}

// RetrievalLoss accumulates the gradient of weight × (ITM loss + ITC
// loss) for one image, its true caption and negative captions, and returns
// the loss. ITM: binary cross-entropy of itm_head over the true caption
// and every negative (the true pair weighted as all negatives together).
// ITC: cross-entropy of cos/τ over [true, negatives…] with τ = temp.
func (m *Model) RetrievalLoss(pixels []float32, caption string, negatives []string, weight float32, temp float64) float64 {
	return m.RetrievalLossAux(pixels, caption, negatives, nil, weight, temp)
}

// RetrievalLossAux is RetrievalLoss plus the auxiliary per-patch loss (aux
// may be nil).
func (m *Model) RetrievalLossAux(pixels []float32, caption string, negatives []string, aux *Aux, weight float32, temp float64) float64 {
	t := m.Cfg.Vision.tokens()
	img, vctx := m.vision.forward(pixels)
	dimg := make([]float32, len(img))
	var loss float64
	// ITM
	texts := append([]string{caption}, negatives...)
	nNeg := float32(len(negatives))
	for i, text := range texts {
		ids := m.Encode(text)
		h, ctx := m.enc.forward(ids, img, t)
		cls := h[:m.Cfg.Text.Hidden]
		logits := m.itmHead.forward(cls, 1)
		label := 0
		w := weight * 0.5 / nNeg
		if i == 0 {
			label, w = 1, weight*0.5
		}
		dl := make([]float32, 2)
		l, _ := kernels.CrossEntropy(logits, 1, 2, []int{label}, -100, 0, dl, w)
		if i == 0 {
			loss += 0.5 * l
		} else {
			loss += 0.5 * l / float64(nNeg)
		}
		dcls := m.itmHead.backward(dl, cls, 1, true)
		dh := make([]float32, len(h))
		copy(dh, dcls)
		addInto(dimg, m.enc.backward(ctx, dh, true))
	}
	// ITC
	d := m.Cfg.ProjDim
	iv := m.visionProj.forward(img[:m.Cfg.Vision.Hidden], 1)
	in, inorm := normalize(iv)
	type tf struct {
		ctx        *textCtx
		proj, norm []float32
		n          float64
	}
	feats := make([]tf, len(texts))
	logits := make([]float32, len(texts))
	for i, text := range texts {
		h, ctx := m.enc.forward(m.Encode(text), nil, 0)
		p := m.textProj.forward(h[:m.Cfg.Text.Hidden], 1)
		nv, nn := normalize(p)
		feats[i] = tf{ctx, p, nv, nn}
		var s float32
		for j := 0; j < d; j++ {
			s += in[j] * nv[j]
		}
		logits[i] = float32(float64(s) / temp)
	}
	dl := make([]float32, len(texts))
	l, _ := kernels.CrossEntropy(logits, 1, len(texts), []int{0}, -100, 0, dl, weight)
	loss += l
	din := make([]float32, d)
	for i, f := range feats {
		g := float32(float64(dl[i]) / temp)
		dn := make([]float32, d)
		for j := 0; j < d; j++ {
			din[j] += g * f.norm[j]
			dn[j] = g * in[j]
		}
		dp := normalizeBack(dn, f.norm, f.n)
		dcls := m.textProj.backward(dp, f.ctx.hidden[:m.Cfg.Text.Hidden], 1, true)
		dh := make([]float32, len(f.ctx.hidden))
		copy(dh, dcls)
		m.enc.backward(f.ctx, dh, false)
	}
	div := normalizeBack(din, in, inorm)
	addInto(dimg[:m.Cfg.Vision.Hidden], m.visionProj.backward(div, img[:m.Cfg.Vision.Hidden], 1, true))
	if !m.visionFrozen() {
		loss += m.auxLoss(img, dimg, aux, weight)
		m.vision.backward(vctx, dimg)
	}
	return loss
}

// normalize returns x/‖x‖ and ‖x‖.
func normalize(x []float32) ([]float32, float64) {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	n := math.Max(math.Sqrt(s), 1e-12)
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(float64(v) / n)
	}
	return y, n
}

// normalizeBack maps d(x/‖x‖) to dx: (dy − y·(y·dy))/‖x‖.
func normalizeBack(dy, y []float32, n float64) []float32 {
	var dot float64
	for i := range y {
		dot += float64(y[i]) * float64(dy[i])
	}
	dx := make([]float32, len(y))
	for i := range y {
		dx[i] = float32((float64(dy[i]) - float64(y[i])*dot) / n)
	}
	return dx
}

// FreezeVision stops updates (and gradient computation) of vision_model.*.
func (m *Model) FreezeVision(frozen bool) {
	for _, p := range m.Params.List() {
		if strings.HasPrefix(p.Name, "vision_model.") {
			p.Frozen = frozen
		}
	}
}

func (m *Model) visionFrozen() bool { return m.vision.cls.Frozen }

// replica returns a model of the same architecture that shares m's
// weights (W slices) and frozen flags but has its own gradients.
func (m *Model) replica() (*Model, error) {
	r, err := NewModel(m.Arch, m.Cfg, m.files, 0)
	if err != nil {
		return nil, err
	}
	a, b := m.Params.List(), r.Params.List()
	if len(a) != len(b) {
		return nil, fmt.Errorf("train: replica has %d tensors, model %d", len(b), len(a))
	}
	for i := range a {
		b[i].W = a[i].W
		b[i].Frozen = a[i].Frozen
	}
	return r, nil
}
