package gpt2

import (
	"fmt"

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

type loader struct {
	ck     *checkpoint.Checkpoint
	prefix string
	cfg    Config
}

// tensor reads prefix+name with the expected shape, copying it so the model
// does not depend on the checkpoint's memory.
func (ld *loader) tensor(name string, shape ...int) ([]float32, error) {
	full := ld.prefix + name
	if !ld.ck.Has(full) {
		return nil, fmt.Errorf("gpt2: missing tensor %q (expected shape %v; is the prefix %q right?)", full, shape, ld.prefix)
	}
	w, err := ld.ck.Float32(full, shape...)
	if err != nil {
		return nil, fmt.Errorf("gpt2 (config n_embd=%d, n_inner=%d, vocab_size=%d, n_positions=%d): %w",
			ld.cfg.NEmbd, ld.cfg.NInner, ld.cfg.VocabSize, ld.cfg.NPositions, err)
	}
	return append([]float32(nil), w...), nil
}

// conv1D loads a Conv1D (weight [in, out], bias [out]) as a Linear.
func (ld *loader) conv1D(name string, in, out int) (*kernels.Linear, error) {
	w, err := ld.tensor(name+".weight", in, out)
	if err != nil {
		return nil, err
	}
	b, err := ld.tensor(name+".bias", out)
	if err != nil {
		return nil, err
	}
	return kernels.NewLinearInOut(w, in, out, b), nil
}

func (ld *loader) layerNorm(name string) (layerNorm, error) {
	d := ld.cfg.NEmbd
	g, err := ld.tensor(name+".weight", d)
	if err != nil {
		return layerNorm{}, err
	}
	b, err := ld.tensor(name+".bias", d)
	if err != nil {
		return layerNorm{}, err
	}
	return layerNorm{gamma: g, beta: b, eps: ld.cfg.LayerNormEps}, nil
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
	ld := &loader{ck: ck, prefix: prefix, cfg: cfg}
	d, v, in := cfg.NEmbd, cfg.VocabSize, cfg.NInner
	m := &Model{cfg: cfg}
	var err error
	if m.wte, err = ld.tensor(nameWTE, v, d); err != nil {
		return nil, err
	}
	if m.wpe, err = ld.tensor(nameWPE, cfg.NPositions, d); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NLayer; i++ {
		at := func(f string) string { return fmt.Sprintf(f, i) }
		b := &block{}
		if b.ln1, err = ld.layerNorm(at(nameLn1)); err != nil {
			return nil, err
		}
		if b.attn, err = ld.conv1D(at(nameAttn), d, 3*d); err != nil {
			return nil, err
		}
		if b.attnProj, err = ld.conv1D(at(nameAttnProj), d, d); err != nil {
			return nil, err
		}
		if cfg.AddCrossAttention {
			if b.lnCross, err = ld.layerNorm(at(nameLnCross)); err != nil {
				return nil, err
			}
			if b.crossQ, err = ld.conv1D(at(nameCrossQ), d, d); err != nil {
				return nil, err
			}
			if b.crossKV, err = ld.conv1D(at(nameCrossKV), d, 2*d); err != nil {
				return nil, err
			}
			if b.crossProj, err = ld.conv1D(at(nameCrossProj), d, d); err != nil {
				return nil, err
			}
		}
		if b.ln2, err = ld.layerNorm(at(nameLn2)); err != nil {
			return nil, err
		}
		if b.fc, err = ld.conv1D(at(nameFC), d, in); err != nil {
			return nil, err
		}
		if b.fcProj, err = ld.conv1D(at(nameFCProj), in, d); err != nil {
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
		if head, err = ld.tensor(nameLMHead, v, d); err != nil {
			return nil, err
		}
	}
	m.lmHead = kernels.NewLinear(head, v, d, nil) // (V, D) as nn.Linear, no bias
	return m, nil
}
