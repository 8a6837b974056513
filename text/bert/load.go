package bert

import (
	"fmt"
	"github.com/glimpse-vlm/glimpse/internal/weights"
	"github.com/glimpse-vlm/glimpse/kernels"
	"math"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

// Names are the HF tensor names of a BLIP text model relative to its
// prefix ("text_decoder." or "text_encoder."); layer names take the layer
// index. Bound explicitly so a missing tensor fails at load with its name.
var names = struct {
	wordEmb, posEmb, embNorm            string
	q, k, v, attnOut, attnNorm          string
	cq, ck, cv, crossOut, crossNorm     string
	inter, out, outNorm                 string
	transform, transformNorm, dec, decB string
	predBias, encoderBody, decoderBody  string
	decoderLegacyBias                   string
}{
	wordEmb: "embeddings.word_embeddings.weight", posEmb: "embeddings.position_embeddings.weight",
	embNorm: "embeddings.LayerNorm",
	q:       "encoder.layer.%d.attention.self.query", k: "encoder.layer.%d.attention.self.key",
	v: "encoder.layer.%d.attention.self.value", attnOut: "encoder.layer.%d.attention.output.dense",
	attnNorm: "encoder.layer.%d.attention.output.LayerNorm",
	cq:       "encoder.layer.%d.crossattention.self.query", ck: "encoder.layer.%d.crossattention.self.key",
	cv: "encoder.layer.%d.crossattention.self.value", crossOut: "encoder.layer.%d.crossattention.output.dense",
	crossNorm: "encoder.layer.%d.crossattention.output.LayerNorm",
	inter:     "encoder.layer.%d.intermediate.dense", out: "encoder.layer.%d.output.dense",
	outNorm:   "encoder.layer.%d.output.LayerNorm",
	transform: "cls.predictions.transform.dense", transformNorm: "cls.predictions.transform.LayerNorm",
	dec: "cls.predictions.decoder.weight", predBias: "cls.predictions.bias",
	decoderLegacyBias: "cls.predictions.decoder.bias",
	// BlipTextLMHeadModel nests the transformer under "bert."; the
	// text_encoder (BlipTextModel) does not.
	decoderBody: "bert.", encoderBody: "",
}

// Load binds a BLIP text model's weights. prefix is the module prefix in
// the checkpoint: "text_decoder." loads BlipTextLMHeadModel (transformer
// under "bert.", plus the LM head), "text_encoder." loads BlipTextModel
// (no head) — withHead selects which. Cross-attention weights are loaded
// when cfg.CrossAttention is set. A missing LM-head decoder weight is tied
// to the word embeddings, as HF does.
func Load(ck *checkpoint.Checkpoint, prefix string, cfg Config, withHead bool) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	body := prefix + names.encoderBody
	if withHead {
		body = prefix + names.decoderBody
	}
	ld := &loader{Binder: &weights.Binder{Ck: ck, Model: "bert"}}
	h, inter, e := cfg.HiddenSize, cfg.IntermediateSize, cfg.EncoderHiddenSize
	m := &Model{cfg: cfg, prefix: prefix, body: body}
	var err error
	if m.wordEmb, err = ld.View(body+names.wordEmb, cfg.VocabSize, h); err != nil {
		return nil, err
	}
	if m.posEmb, err = ld.View(body+names.posEmb, cfg.MaxPositions, h); err != nil {
		return nil, err
	}
	if m.embNorm, err = ld.layerNorm(body+names.embNorm, h, cfg.LayerNormEps); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NumLayers; i++ {
		L := func(f string) string { return body + fmt.Sprintf(f, i) }
		layer := &Layer{}
		if layer.Self.QKV, err = ld.Fused([]string{L(names.q), L(names.k), L(names.v)}, h, h); err != nil {
			return nil, err
		}
		if layer.Self.Out, err = ld.Linear(L(names.attnOut), h, h, true); err != nil {
			return nil, err
		}
		if layer.Self.Norm, err = ld.layerNorm(L(names.attnNorm), h, cfg.LayerNormEps); err != nil {
			return nil, err
		}
		if cfg.CrossAttention {
			x := &CrossAttention{}
			if x.Query, err = ld.Linear(L(names.cq), h, h, true); err != nil {
				return nil, err
			}
			// The folded form too (CrossFolded); read before Fused,
			// which releases the file's pages.
			if x.Folded, err = ld.foldedCross(L(names.ck), L(names.cv), h, e, cfg.NumHeads); err != nil {
				return nil, err
			}
			if x.KV, err = ld.Fused([]string{L(names.ck), L(names.cv)}, h, e); err != nil {
				return nil, err
			}
			if x.Out, err = ld.Linear(L(names.crossOut), h, h, true); err != nil {
				return nil, err
			}
			if x.Norm, err = ld.layerNorm(L(names.crossNorm), h, cfg.LayerNormEps); err != nil {
				return nil, err
			}
			layer.Cross = x
		}
		if layer.Inter, err = ld.Linear(L(names.inter), inter, h, true); err != nil {
			return nil, err
		}
		if layer.Out, err = ld.Linear(L(names.out), h, inter, true); err != nil {
			return nil, err
		}
		if layer.Norm, err = ld.layerNorm(L(names.outNorm), h, cfg.LayerNormEps); err != nil {
			return nil, err
		}
		m.layers = append(m.layers, layer)
	}
	if withHead {
		hd := &LMHead{}
		if hd.Transform, err = ld.Linear(prefix+names.transform, h, h, true); err != nil {
			return nil, err
		}
		if hd.Norm, err = ld.layerNorm(prefix+names.transformNorm, h, cfg.LayerNormEps); err != nil {
			return nil, err
		}
		w := m.wordEmb // tied (HF tie_word_embeddings) when the file omits the decoder weight
		m.decW = body + names.wordEmb
		if ck.Has(prefix + names.dec) {
			m.decW = prefix + names.dec
			if w, err = ld.View(prefix+names.dec, cfg.VocabSize, h); err != nil {
				return nil, err
			}
		}
		biasName := prefix + names.predBias
		if !ck.Has(biasName) && ck.Has(prefix+names.decoderLegacyBias) {
			biasName = prefix + names.decoderLegacyBias
		}
		m.decB = biasName
		b, err := ld.View(biasName, cfg.VocabSize)
		if err != nil {
			return nil, err
		}
		hd.Decoder = kernels.NewLinear(w, cfg.VocabSize, h, b)
		m.head = hd
		if m.decW == body+names.wordEmb || sameBits(w, m.wordEmb) {
			// Tied: look token embeddings up in the packed LM head (the
			// same floats) instead of keeping a second vocabulary × hidden
			// table (94 MB for BLIP-base).
			m.wordEmb = nil
		}
	}
	return m, nil
}

// sameBits reports whether a and b hold the same float32 bit patterns.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
