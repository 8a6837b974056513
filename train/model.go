package train

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/glimpse-vlm/glimpse/fusion/blip"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
	"github.com/glimpse-vlm/glimpse/text/bert"
	"github.com/glimpse-vlm/glimpse/text/tokenizer"
	"github.com/glimpse-vlm/glimpse/vision"
	"github.com/glimpse-vlm/glimpse/vision/vit"
)

// Architecture names, as in config.json.
const (
	ArchCaption   = blip.ArchCaption
	ArchVQA       = blip.ArchVQA
	ArchRetrieval = blip.ArchRetrieval
)

// VisionConfig sizes a BLIP vision_config.
type VisionConfig struct {
	ImageSize, PatchSize, Hidden, Layers, Heads, Intermediate int
	Eps                                                       float32 // layer_norm_eps (1e-5)
}

func (c VisionConfig) grid() int   { return c.ImageSize / c.PatchSize }
func (c VisionConfig) tokens() int { return c.grid()*c.grid() + 1 }

// TextConfig sizes a BLIP text_config.
type TextConfig struct {
	Vocab, Hidden, Layers, Heads, Intermediate, MaxPositions int
	Eps                                                      float32 // layer_norm_eps (1e-12)
}

// Config sizes a BLIP model.
type Config struct {
	Vision VisionConfig
	Text   TextConfig
	// ProjDim is image_text_hidden_size (retrieval projections).
	ProjDim int
}

// Model is a BLIP model of one architecture in training form: its fp32
// master weights with gradients and AdamW moments (Params, by Hugging Face
// tensor name), and the serving modules (vit.Encoder, bert.Model, the
// retrieval heads) built from them by the serving loaders, which run the
// forward passes and, with their recorded activations, the backward
// passes. The modules are rebuilt whenever the weights change (Params
// version), so the training forward is the serving forward.
type Model struct {
	Arch   string
	Cfg    Config
	Params *Params // gradients of this model (a worker replica has its own)

	master  *Params // the weights (and their version); == Params except in replicas
	net     *modules
	blipCfg blip.Config

	auxHead   *lin // transient per-patch shape/size head (aux loss)
	auxLayout *lin // transient CLS layout head (aux loss)

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

// modules are the serving modules of a model, rebuilt from the master
// weights when they change; shared by a model and its worker replicas.
type modules struct {
	mu      sync.Mutex
	ck      *checkpoint.Checkpoint // in-memory view of the master weights
	built   bool
	version uint64
	cur     built
}

// built is one build of the serving modules.
type built struct {
	vision *vit.Encoder
	dec    *bert.Model // text_decoder (caption, VQA)
	enc    *bert.Model // text_encoder (VQA, retrieval)
	heads  blip.RetrievalHeads
}

// NewModel creates a randomly initialised model (seeded) of arch with the
// given tokenizer/processor files (name → content: vocab.txt,
// tokenizer_config.json, special_tokens_map.json, added_tokens.json,
// preprocessor_config.json).
func NewModel(arch string, cfg Config, files map[string][]byte, seed uint64) (*Model, error) {
	return newModel(arch, cfg, files, seed, nil)
}

// newModel is NewModel with the config.json the serving modules are
// configured from (nil: the one Save writes for cfg).
func newModel(arch string, cfg Config, files map[string][]byte, seed uint64, rawConfig []byte) (*Model, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 0x1f83d9abfb41bd6b))
	m := &Model{Arch: arch, Cfg: cfg, Params: NewParams(), files: files, rawConfig: rawConfig, net: &modules{}}
	m.master = m.Params
	ps := m.Params
	if err := addArch(ps, r, arch, cfg); err != nil {
		return nil, err
	}
	m.auxHead = addLinear(ps, r, "aux.patch_head", auxShapes+auxSizes, cfg.Vision.Hidden)
	m.auxLayout = addLinear(ps, r, "aux.layout_head", auxLayouts, cfg.Vision.Hidden)
	for _, l := range []*lin{m.auxHead, m.auxLayout} {
		ps.Get(l.w).Transient, ps.Get(l.b).Transient = true, true
	}
	var err error
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
	m.pad, m.sep, m.bos = sp.PAD, sp.SEP, sp.BOS
	if m.bos < 0 || m.sep < 0 {
		return nil, fmt.Errorf("train: the tokenizer needs a bos token ([DEC]) and a sep token ([SEP])")
	}
	raw := rawConfig
	if raw == nil {
		if raw, err = json.Marshal(m.hfConfig(false)); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if m.blipCfg, err = blip.ParseConfig(raw); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return m, nil
}

// addArch creates the tensors of arch (HF's names, from-scratch
// initialisation), vision first.
func addArch(ps *Params, r *rand.Rand, arch string, cfg Config) error {
	addVision(ps, r, cfg.Vision)
	switch arch {
	case ArchCaption:
		addText(ps, r, cfg.Text, cfg.Vision.Hidden, "text_decoder.bert.", "text_decoder.")
	case ArchVQA:
		addText(ps, r, cfg.Text, cfg.Vision.Hidden, "text_encoder.", "")
		addText(ps, r, cfg.Text, cfg.Text.Hidden, "text_decoder.bert.", "text_decoder.")
	case ArchRetrieval:
		addText(ps, r, cfg.Text, cfg.Vision.Hidden, "text_encoder.", "")
		addLinear(ps, r, "vision_proj", cfg.ProjDim, cfg.Vision.Hidden)
		addLinear(ps, r, "text_proj", cfg.ProjDim, cfg.Text.Hidden)
		addLinear(ps, r, "itm_head", 2, cfg.Text.Hidden)
	default:
		return fmt.Errorf("train: unsupported architecture %q (supported: %s, %s, %s)", arch, ArchCaption, ArchVQA, ArchRetrieval)
	}
	return nil
}

// check rejects sizes the models cannot have.
func (c Config) check() error {
	v, t := c.Vision, c.Text
	if v.PatchSize <= 0 || v.ImageSize <= 0 || v.ImageSize%v.PatchSize != 0 || v.Heads <= 0 || v.Hidden <= 0 || v.Hidden%v.Heads != 0 || v.Layers <= 0 || v.Intermediate <= 0 {
		return fmt.Errorf("train: vision config %+v: sizes must be positive, image_size a multiple of patch_size and hidden_size of num_attention_heads", v)
	}
	if t.Heads <= 0 || t.Hidden <= 0 || t.Hidden%t.Heads != 0 || t.Layers <= 0 || t.Intermediate <= 0 || t.Vocab <= 0 || t.MaxPositions <= 0 {
		return fmt.Errorf("train: text config %+v: sizes must be positive and hidden_size a multiple of num_attention_heads", t)
	}
	if c.ProjDim <= 0 {
		return fmt.Errorf("train: image_text_hidden_size %d, must be positive", c.ProjDim)
	}
	return nil
}

// addVision creates BLIP's vision_model.* tensors (the initialisation of a
// model trained from scratch).
func addVision(ps *Params, r *rand.Rand, c VisionConfig) {
	pre := "vision_model."
	d, k := c.Hidden, 3*c.PatchSize*c.PatchSize
	ps.add(pre+"embeddings.class_embedding", []int{1, 1, d}, Normal(r, 0.02), true)
	patch := addLinear(ps, r, pre+"embeddings.patch_embedding", d, k)
	ps.Get(patch.w).Shape = []int{d, 3, c.PatchSize, c.PatchSize}
	ps.add(pre+"embeddings.position_embedding", []int{1, c.tokens(), d}, Normal(r, 0.02), true)
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("%sencoder.layers.%d.", pre, i)
		addNorm(ps, p+"layer_norm1", d)
		addLinear(ps, r, p+"self_attn.qkv", 3*d, d)
		addLinear(ps, r, p+"self_attn.projection", d, d)
		addNorm(ps, p+"layer_norm2", d)
		addLinear(ps, r, p+"mlp.fc1", c.Intermediate, d)
		addLinear(ps, r, p+"mlp.fc2", d, c.Intermediate)
	}
	addNorm(ps, pre+"post_layernorm", d)
}

// addText creates a BLIP text model's tensors under prefix
// ("text_encoder." or "text_decoder.bert."), with cross-attention from
// encoderHidden-wide states; headPrefix (e.g. "text_decoder.") adds the LM
// head, whose decoder weight is tied to the word embeddings.
func addText(ps *Params, r *rand.Rand, c TextConfig, encoderHidden int, prefix, headPrefix string) {
	h := c.Hidden
	word := ps.add(prefix+"embeddings.word_embeddings.weight", []int{c.Vocab, h}, Normal(r, 0.02), false)
	ps.add(prefix+"embeddings.position_embeddings.weight", []int{c.MaxPositions, h}, Normal(r, 0.02), true)
	addNorm(ps, prefix+"embeddings.LayerNorm", h)
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("%sencoder.layer.%d.", prefix, i)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			addLinear(ps, r, p+n, h, h)
		}
		addNorm(ps, p+"attention.output.LayerNorm", h)
		addLinear(ps, r, p+"crossattention.self.query", h, h)
		addLinear(ps, r, p+"crossattention.self.key", h, encoderHidden)
		addLinear(ps, r, p+"crossattention.self.value", h, encoderHidden)
		addLinear(ps, r, p+"crossattention.output.dense", h, h)
		addNorm(ps, p+"crossattention.output.LayerNorm", h)
		addLinear(ps, r, p+"intermediate.dense", c.Intermediate, h)
		addLinear(ps, r, p+"output.dense", h, c.Intermediate)
		addNorm(ps, p+"output.LayerNorm", h)
	}
	if headPrefix != "" {
		addLinear(ps, r, headPrefix+"cls.predictions.transform.dense", h, h)
		addNorm(ps, headPrefix+"cls.predictions.transform.LayerNorm", h)
		ps.add(headPrefix+"cls.predictions.bias", []int{c.Vocab}, Const(0), true)
		ps.alias(word, headPrefix+"cls.predictions.decoder.weight")
	}
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
	cfg := configOf(bc)
	files, err := readFolderFiles(dir)
	if err != nil {
		return nil, err
	}
	m, err := newModel(bc.Architectures[0], cfg, files, 0, raw)
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", dir, err)
	}
	if err := m.LoadWeights(dir, ""); err != nil {
		return nil, err
	}
	return m, nil
}

// configOf returns the sizes of a parsed BLIP config.
func configOf(bc blip.Config) Config {
	return Config{
		Vision: VisionConfig{ImageSize: bc.Vision.ImageSize, PatchSize: bc.Vision.PatchSize, Hidden: bc.Vision.HiddenSize,
			Layers: bc.Vision.NumLayers, Heads: bc.Vision.NumHeads, Intermediate: bc.Vision.IntermediateSize, Eps: bc.Vision.LayerNormEps},
		Text: TextConfig{Vocab: bc.Text.VocabSize, Hidden: bc.Text.HiddenSize, Layers: bc.Text.NumLayers, Heads: bc.Text.NumHeads,
			Intermediate: bc.Text.IntermediateSize, MaxPositions: bc.Text.MaxPositions, Eps: bc.Text.LayerNormEps},
		ProjDim: bc.ImageTextHiddenSize,
	}
}

// readFolderFiles reads the tokenizer, preprocessor and generation files
// of a folder (name → content).
func readFolderFiles(dir string) (map[string][]byte, error) {
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
	return files, nil
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
	for _, p := range m.master.List() {
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
	m.master.Touch()
	return nil
}

// modules returns the serving modules built from the current weights,
// rebuilding them (through the serving loaders, from an in-memory view of
// the master weights) when the weights changed since the last build.
func (m *Model) modules() (built, error) {
	n := m.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.built && n.version == m.master.version {
		return n.cur, nil
	}
	if n.ck == nil {
		ts := map[string]checkpoint.MemTensor{}
		for _, p := range m.master.List() {
			if p.Transient {
				continue
			}
			ts[p.Name] = checkpoint.MemTensor{Shape: p.Shape, Data: p.W}
			for _, a := range p.Alias {
				ts[a] = checkpoint.MemTensor{Shape: p.Shape, Data: p.W}
			}
		}
		n.ck = checkpoint.FromFloat32(ts)
	}
	n.cur, n.built = built{}, false // let the previous build go before packing the next
	var b built
	var err error
	c := m.blipCfg
	if b.vision, err = vit.Load(n.ck, "vision_model.", c.Vision); err != nil {
		return b, fmt.Errorf("train: %w", err)
	}
	if m.Arch != ArchRetrieval {
		if b.dec, err = bert.Load(n.ck, "text_decoder.", c.Text, true); err != nil {
			return b, fmt.Errorf("train: %w", err)
		}
	}
	if m.Arch != ArchCaption {
		if b.enc, err = bert.Load(n.ck, "text_encoder.", c.Text, false); err != nil {
			return b, fmt.Errorf("train: %w", err)
		}
	}
	if m.Arch == ArchRetrieval {
		if b.heads, err = blip.LoadRetrievalHeads(n.ck, c); err != nil {
			return b, fmt.Errorf("train: %w", err)
		}
	}
	n.cur, n.built, n.version = b, true, m.master.version
	return b, nil
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

// beginLoss starts a loss of the architecture arch (what names it in the
// error otherwise): it checks that m is one, builds the modules and runs
// the vision encoder on pixels, recording.
func (m *Model) beginLoss(arch, what string, pixels []float32) (built, []float32, *vit.Tape, error) {
	if m.Arch != arch {
		return built{}, nil, nil, fmt.Errorf("train: %s needs a %s, this is a %s", what, arch, m.Arch)
	}
	b, err := m.modules()
	if err != nil {
		return built{}, nil, nil, err
	}
	img, vt, err := m.encodeImage(b, pixels)
	return b, img, vt, err
}

// encodeImage runs the vision encoder on one image, recording.
func (m *Model) encodeImage(b built, pixels []float32) ([]float32, *vit.Tape, error) {
	tape := &vit.Tape{}
	img, err := b.vision.ForwardTape(pixels, 1, tape)
	if err != nil {
		return nil, nil, fmt.Errorf("train: %w", err)
	}
	return img, tape, nil
}

// lmLoss runs the decoder over ids (causal) with cross-attention to enc,
// adds the gradient of weight·(mean next-token loss) and returns the loss
// and d(enc) (nil unless needEnc).
func (m *Model) lmLoss(dec *bert.Model, ids []int, enc []float32, encLen int, weight, smoothing float32, needEnc bool) (float64, []float32, error) {
	cross, err := dec.CrossKV(enc, encLen, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("train: %w", err)
	}
	ws := &bert.Workspace{Tape: &bert.Tape{}}
	h, err := dec.Forward(ws, []bert.Seq{{Tokens: ids, Cache: &bert.Cache{}, Cross: cross}}, true)
	if err != nil {
		return 0, nil, fmt.Errorf("train: %w", err)
	}
	L, V := len(ids), m.Cfg.Text.Vocab
	logits, err := dec.Logits(ws, h, L)
	if err != nil {
		return 0, nil, fmt.Errorf("train: %w", err)
	}
	targets := make([]int, L)
	for i := range targets {
		targets[i] = -100
		if i+1 < L {
			targets[i] = ids[i+1]
		}
	}
	dl := make([]float32, L*V)
	loss, _ := kernels.CrossEntropy(logits, L, V, targets, -100, smoothing, dl, weight)
	dh, err := dec.LogitsBackward(ws.Tape, dl, m.Params)
	if err != nil {
		return 0, nil, fmt.Errorf("train: %w", err)
	}
	denc, err := dec.Backward(ws.Tape, dh, m.Params, needEnc)
	if err != nil {
		return 0, nil, fmt.Errorf("train: %w", err)
	}
	return loss, denc, nil
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
	logits := m.auxHead.forward(m.Params, patches, n)
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
	m.auxHead.backward(m.Params, dl, patches, dimg[d:], n)
	var l3 float64
	if aux.Layout >= 0 && aux.Layout < auxLayouts {
		ll := m.auxLayout.forward(m.Params, img[:d], 1)
		dll := make([]float32, auxLayouts)
		l3, _ = kernels.CrossEntropy(ll, 1, auxLayouts, []int{aux.Layout}, -100, 0, dll, w)
		m.auxLayout.backward(m.Params, dll, img[:d], dimg[:d], 1)
	}
	return float64(aux.Weight) * (l1 + l2 + l3)
}

// CaptionLoss accumulates the gradient of weight × the captioning loss of
// one (pixels, caption) pair and returns the loss. HF's decoder uses label
// smoothing 0.1.
func (m *Model) CaptionLoss(pixels []float32, caption string, weight float32) (float64, error) {
	return m.CaptionLossAux(pixels, caption, nil, weight)
}

// CaptionLossAux is CaptionLoss plus the auxiliary per-patch loss (aux
// may be nil); the returned loss includes it.
func (m *Model) CaptionLossAux(pixels []float32, caption string, aux *Aux, weight float32) (float64, error) {
	b, img, vt, err := m.beginLoss(ArchCaption, "a caption loss", pixels)
	if err != nil {
		return 0, err
	}
	train := !m.visionFrozen()
	loss, dimg, err := m.lmLoss(b.dec, m.decoderIDs(caption), img, m.Cfg.Vision.tokens(), weight, 0.1, train)
	if err != nil || !train {
		return loss, err
	}
	loss += m.auxLoss(img, dimg, aux, weight)
	return loss, m.visionBackward(b, vt, dimg)
}

func (m *Model) visionBackward(b built, vt *vit.Tape, dimg []float32) error {
	if err := b.vision.Backward(vt, dimg, m.Params); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// VQALoss accumulates the gradient of weight × the answer loss of one
// (pixels, question, answer) triple and returns the loss.
func (m *Model) VQALoss(pixels []float32, question, answer string, weight float32) (float64, error) {
	return m.VQALossAux(pixels, question, answer, nil, weight)
}

// VQALossAux is VQALoss plus the auxiliary per-patch loss (aux may be nil).
func (m *Model) VQALossAux(pixels []float32, question, answer string, aux *Aux, weight float32) (float64, error) {
	b, img, vt, err := m.beginLoss(ArchVQA, "a VQA loss", pixels)
	if err != nil {
		return 0, err
	}
	// question states: text_encoder(question) cross-attending to the image
	q := m.Encode(question)
	cross, err := b.enc.CrossKV(img, m.Cfg.Vision.tokens(), nil)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	ws := &bert.Workspace{Tape: &bert.Tape{}}
	qs, err := b.enc.Forward(ws, []bert.Seq{{Tokens: q, Cache: &bert.Cache{}, Cross: cross}}, false)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	qs = append([]float32(nil), qs...)
	loss, dq, err := m.lmLoss(b.dec, m.decoderIDs(answer), qs, len(q), weight, 0, true)
	if err != nil {
		return 0, err
	}
	train := !m.visionFrozen()
	dimg, err := b.enc.Backward(ws.Tape, dq, m.Params, train)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	if !train {
		return loss, nil
	}
	loss += m.auxLoss(img, dimg, aux, weight)
	return loss, m.visionBackward(b, vt, dimg)
}

// RetrievalLoss accumulates the gradient of weight × (ITM loss + ITC
// loss) for one image, its true caption and negative captions, and returns
// the loss. ITM: binary cross-entropy of itm_head over the true caption
// and every negative (the true pair weighted as all negatives together).
// ITC: cross-entropy of cos/τ over [true, negatives…] with τ = temp.
func (m *Model) RetrievalLoss(pixels []float32, caption string, negatives []string, weight float32, temp float64) (float64, error) {
	return m.RetrievalLossAux(pixels, caption, negatives, nil, weight, temp)
}

// RetrievalLossAux is RetrievalLoss plus the auxiliary per-patch loss (aux
// may be nil).
func (m *Model) RetrievalLossAux(pixels []float32, caption string, negatives []string, aux *Aux, weight float32, temp float64) (float64, error) {
	if len(negatives) == 0 && m.Arch == ArchRetrieval {
		return 0, fmt.Errorf("train: a retrieval loss needs at least one negative caption")
	}
	b, img, vt, err := m.beginLoss(ArchRetrieval, "a retrieval loss", pixels)
	if err != nil {
		return 0, err
	}
	t, ht, dv := m.Cfg.Vision.tokens(), m.Cfg.Text.Hidden, m.Cfg.Vision.Hidden
	texts := append([]string{caption}, negatives...)
	seqs := make([]bert.Seq, len(texts))
	starts := make([]int, len(texts))
	rows := 0
	for i, text := range texts {
		seqs[i] = bert.Seq{Tokens: m.Encode(text), Cache: &bert.Cache{}}
		starts[i] = rows
		rows += len(seqs[i].Tokens)
	}
	train := !m.visionFrozen()

	// ITM: itm_head(text_encoder(text, image)[CLS]), all texts as one batch.
	cross, err := b.enc.CrossKV(img, t, nil)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	for i := range seqs {
		seqs[i].Cross = cross
	}
	ws := &bert.Workspace{Tape: &bert.Tape{}}
	h, err := b.enc.Forward(ws, seqs, false)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	var loss float64
	nNeg := float32(len(negatives))
	dh := make([]float32, rows*ht)
	for i := range texts {
		cls := h[starts[i]*ht : starts[i]*ht+ht]
		var logits [2]float32
		b.heads.ITM.Forward(logits[:], cls, 1, kernels.ActNone)
		label, w := 0, weight*0.5/nNeg
		if i == 0 {
			label, w = 1, weight*0.5
		}
		var dl [2]float32
		l, _ := kernels.CrossEntropy(logits[:], 1, 2, []int{label}, -100, 0, dl[:], w)
		if i == 0 {
			loss += 0.5 * l
		} else {
			loss += 0.5 * l / float64(nNeg)
		}
		m.linearBackward("itm_head", dh[starts[i]*ht:starts[i]*ht+ht], dl[:], cls, 1, ht, 2)
	}
	dimg, err := b.enc.Backward(ws.Tape, dh, m.Params, train)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	if dimg == nil {
		dimg = make([]float32, len(img))
	}

	// ITC: normalize(vision_proj(image[CLS])) · normalize(text_proj(text_encoder(text)[CLS])) / τ
	p := m.Cfg.ProjDim
	iv := make([]float32, p)
	b.heads.VisionProj.Forward(iv, img[:dv], 1, kernels.ActNone)
	in, inorm := normalize(iv)
	for i := range seqs {
		seqs[i] = bert.Seq{Tokens: seqs[i].Tokens, Cache: &bert.Cache{}}
	}
	ws = &bert.Workspace{Tape: &bert.Tape{}}
	if h, err = b.enc.Forward(ws, seqs, false); err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	type feat struct {
		cls, norm []float32
		n         float64
	}
	feats := make([]feat, len(texts))
	logits := make([]float32, len(texts))
	for i := range texts {
		cls := h[starts[i]*ht : starts[i]*ht+ht]
		tp := make([]float32, p)
		b.heads.TextProj.Forward(tp, cls, 1, kernels.ActNone)
		nv, nn := normalize(tp)
		feats[i] = feat{append([]float32(nil), cls...), nv, nn}
		var s float32
		for j := 0; j < p; j++ {
			s += in[j] * nv[j]
		}
		logits[i] = float32(float64(s) / temp)
	}
	dl := make([]float32, len(texts))
	l, _ := kernels.CrossEntropy(logits, 1, len(texts), []int{0}, -100, 0, dl, weight)
	loss += l
	din := make([]float32, p)
	dh = make([]float32, rows*ht)
	for i, f := range feats {
		g := float32(float64(dl[i]) / temp)
		dn := make([]float32, p)
		for j := 0; j < p; j++ {
			din[j] += g * f.norm[j]
			dn[j] = g * in[j]
		}
		dp := normalizeBack(dn, f.norm, f.n)
		m.linearBackward("text_proj", dh[starts[i]*ht:starts[i]*ht+ht], dp, f.cls, 1, ht, p)
	}
	if _, err := b.enc.Backward(ws.Tape, dh, m.Params, false); err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	div := normalizeBack(din, in, inorm)
	m.linearBackward("vision_proj", dimg[:dv], div, img[:dv], 1, dv, p)
	if !train {
		return loss, nil
	}
	loss += m.auxLoss(img, dimg, aux, weight)
	return loss, m.visionBackward(b, vt, dimg)
}

// linearBackward is the backward of the nn.Linear name (out×in, with
// bias): dx (rows×in, nil to skip) += dy·W; the gradients accumulate.
func (m *Model) linearBackward(name string, dx, dy, x []float32, rows, in, out int) {
	kernels.LinearBackward(dx, m.Params.Grad(name+".weight"), m.Params.Grad(name+".bias"), dy, x, m.Params.Weight(name+".weight"), rows, in, out)
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

func (m *Model) visionFrozen() bool {
	return m.Params.Get("vision_model.embeddings.class_embedding").Frozen
}

// replica returns a model of the same architecture that shares m's
// weights, frozen flags and serving modules but has its own gradients
// (one per worker goroutine).
func (m *Model) replica() *Model {
	r := *m
	r.Params = m.Params.shadow()
	return &r
}
