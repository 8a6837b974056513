package gpt2

import (
	"fmt"
	"github.com/glimpse-vlm/glimpse/internal/weights"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

// HF tensor names of GPT2LMHeadModel, relative to the model prefix (e.g.
// "decoder." inside a VisionEncoderDecoderModel). Block names contain %d
// for the block index; Conv1D weights are stored [in, out].
const (
	nameWTE    = "transformer.wte.weight" // (V, D)
	nameWPE    = "transformer.wpe.weight" // (P, D)
	nameLnF    = "transformer.ln_f"
	nameLMHead = "lm_head.weight" // (V, D); absent when tied to wte

	nameLn1       = "transformer.h.%d.ln_1"
	nameAttn      = "transformer.h.%d.attn.c_attn" // (D, 3D)
	nameAttnProj  = "transformer.h.%d.attn.c_proj" // (D, D)
	nameLnCross   = "transformer.h.%d.ln_cross_attn"
	nameCrossQ    = "transformer.h.%d.crossattention.q_attn" // (D, D)
	nameCrossKV   = "transformer.h.%d.crossattention.c_attn" // (D, 2D)
	nameCrossProj = "transformer.h.%d.crossattention.c_proj" // (D, D)
	nameLn2       = "transformer.h.%d.ln_2"
	nameFC        = "transformer.h.%d.mlp.c_fc"   // (D, I)
	nameFCProj    = "transformer.h.%d.mlp.c_proj" // (I, D)
)

// loader binds the decoder's weights (copies: the model does not depend on
// the checkpoint's memory).
type loader struct {
	*weights.Binder
	cfg Config
}

func (ld *loader) layerNorm(name string) (layerNorm, error) {
	g, b, err := ld.Norm(name, ld.cfg.NEmbd)
	return layerNorm{gamma: g, beta: b, eps: ld.cfg.LayerNormEps}, err
}

// Load binds a GPT2LMHeadModel's weights from ck under prefix ("" for a
// plain GPT-2 checkpoint, "decoder." inside VisionEncoderDecoderModel),
// checking every shape against cfg. The LM head is tied to wte when
// cfg.TieWordEmbeddings is true (as HF ties it; lm_head.weight is then
// usually absent from the file) and read from lm_head.weight otherwise.
func Load(ck *checkpoint.Checkpoint, prefix string, cfg Config) (*Model, error) {
	if ck == nil {
		return nil, fmt.Errorf("gpt2: Load: nil checkpoint")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ld := &loader{cfg: cfg, Binder: &weights.Binder{Ck: ck, Prefix: prefix, Model: "gpt2",
		Config: fmt.Sprintf("config n_embd=%d, n_inner=%d, vocab_size=%d, n_positions=%d", cfg.NEmbd, cfg.NInner, cfg.VocabSize, cfg.NPositions)}}
	d, v, in := cfg.NEmbd, cfg.VocabSize, cfg.NInner
	m := &Model{cfg: cfg}
	var err error
	if m.wte, err = ld.Tensor(nameWTE, v, d); err != nil {
		return nil, err
	}
	if m.wpe, err = ld.Tensor(nameWPE, cfg.NPositions, d); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NLayer; i++ {
		at := func(f string) string { return fmt.Sprintf(f, i) }
		b := &block{}
		if b.ln1, err = ld.layerNorm(at(nameLn1)); err != nil {
			return nil, err
		}
		if b.attn, err = ld.Conv1D(at(nameAttn), d, 3*d); err != nil {
			return nil, err
		}
		if b.attnProj, err = ld.Conv1D(at(nameAttnProj), d, d); err != nil {
			return nil, err
		}
		if cfg.AddCrossAttention {
			if b.lnCross, err = ld.layerNorm(at(nameLnCross)); err != nil {
				return nil, err
			}
			if b.crossQ, err = ld.Conv1D(at(nameCrossQ), d, d); err != nil {
				return nil, err
			}
			if b.crossKV, err = ld.Conv1D(at(nameCrossKV), d, 2*d); err != nil {
				return nil, err
			}
			if b.crossProj, err = ld.Conv1D(at(nameCrossProj), d, d); err != nil {
				return nil, err
			}
		}
		if b.ln2, err = ld.layerNorm(at(nameLn2)); err != nil {
			return nil, err
		}
		if b.fc, err = ld.Conv1D(at(nameFC), d, in); err != nil {
			return nil, err
		}
		if b.fcProj, err = ld.Conv1D(at(nameFCProj), in, d); err != nil {
			return nil, err
		}
		b.scale = attnScale(cfg, i)
		m.blocks = append(m.blocks, b)
	}
	if m.lnF, err = ld.layerNorm(nameLnF); err != nil {
		return nil, err
	}
	head := m.wte
	if !cfg.TieWordEmbeddings {
		if !ck.Has(prefix + nameLMHead) {
			return nil, fmt.Errorf("gpt2: missing tensor %q (expected shape [%d %d]): tie_word_embeddings is false, so the LM head is not tied to %q",
				prefix+nameLMHead, v, d, prefix+nameWTE)
		}
		if head, err = ld.Tensor(nameLMHead, v, d); err != nil {
			return nil, err
		}
	}
	m.lmHead = kernels.NewLinear(head, v, d, nil) // (V, D) as nn.Linear, no bias
	return m, nil
}
