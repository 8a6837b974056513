// Package cliptext is CLIP's text encoder (HF CLIPTextTransformer): token
// and position embeddings, pre-norm causal transformer layers, a final
// LayerNorm, and pooling at the end-of-text token:
//
//	x = token_embedding[ids] + position_embedding[0..L-1]
//	x = x + SelfAttn(layer_norm1(x))   causal mask + padding mask
//	x = x + MLP(layer_norm2(x))        fc1 → act → fc2
//	last = final_layer_norm(x);  pooled = last[PoolIndex(ids)]
//
// The projection into the joint embedding space (text_projection) belongs
// to CLIPModel and lives in fusion/clip.
package cliptext

import (
	"context"
	"fmt"
	"github.com/glimpse-vlm/glimpse/internal/weights"
	"math"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/kernels"
)

// maskValue is torch.finfo(float32).min, what HF adds to masked scores.
const maskValue = -math.MaxFloat32

// HF tensor names of CLIPTextTransformer relative to its prefix
// ("text_model." in CLIPModel); layer names contain %d.
const (
	nameTokenEmb = "embeddings.token_embedding.weight"    // (V, D)
	namePosEmb   = "embeddings.position_embedding.weight" // (P, D)
	nameFinalLN  = "final_layer_norm"
	nameLN1      = "encoder.layers.%d.layer_norm1"
	nameQ        = "encoder.layers.%d.self_attn.q_proj"   // (D, D)
	nameK        = "encoder.layers.%d.self_attn.k_proj"   // (D, D)
	nameV        = "encoder.layers.%d.self_attn.v_proj"   // (D, D)
	nameOut      = "encoder.layers.%d.self_attn.out_proj" // (D, D)
	nameLN2      = "encoder.layers.%d.layer_norm2"
	nameFC1      = "encoder.layers.%d.mlp.fc1" // (I, D)
	nameFC2      = "encoder.layers.%d.mlp.fc2" // (D, I)
)

// Model is a loaded CLIP text encoder; immutable and safe for concurrent use.
type Model struct {
	cfg     Config
	tokEmb  []float32 // (V, D)
	posEmb  []float32 // (P, D)
	layers  []*layer
	finalLN layerNorm // (D)
}

// layer is one pre-norm encoder layer.
type layer struct {
	ln1 layerNorm       // (D)
	qkv *kernels.Linear // (3D, D): rows [q_proj; k_proj; v_proj], bias (3D)
	out *kernels.Linear // out_proj (D, D)
	ln2 layerNorm       // (D)
	fc1 *kernels.Linear // (I, D), followed by the activation
	fc2 *kernels.Linear // (D, I)
}

type layerNorm struct {
	gamma, beta []float32 // (D)
	eps         float32
}

func (n *layerNorm) forward(out, x []float32, rows int) {
	d := len(n.gamma)
	kernels.LayerNorm(out, x, rows, d, d, n.gamma, n.beta, n.eps)
}

// Config returns the configuration the model was loaded with.
func (m *Model) Config() Config { return m.cfg }

// loader binds the encoder's weights (copies: the model does not depend on
// the checkpoint's memory).
type loader struct {
	*weights.Binder
	cfg Config
}

func (ld *loader) layerNorm(name string) (layerNorm, error) {
	g, b, err := ld.Norm(name, ld.cfg.HiddenSize)
	return layerNorm{gamma: g, beta: b, eps: ld.cfg.LayerNormEps}, err
}

// Load binds the text encoder's weights from ck under prefix ("text_model."
// in CLIPModel), checking every shape against cfg.
func Load(ck *checkpoint.Checkpoint, prefix string, cfg Config) (*Model, error) {
	if ck == nil {
		return nil, fmt.Errorf("cliptext: Load: nil checkpoint")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ld := &loader{cfg: cfg, Binder: &weights.Binder{Ck: ck, Prefix: prefix, Model: "cliptext",
		Config: fmt.Sprintf("text_config hidden_size=%d, intermediate_size=%d, vocab_size=%d, max_position_embeddings=%d",
			cfg.HiddenSize, cfg.IntermediateSize, cfg.VocabSize, cfg.MaxPositions)}}
	d, in := cfg.HiddenSize, cfg.IntermediateSize
	m := &Model{cfg: cfg}
	var err error
	if m.tokEmb, err = ld.Tensor(nameTokenEmb, cfg.VocabSize, d); err != nil {
		return nil, err
	}
	if m.posEmb, err = ld.Tensor(namePosEmb, cfg.MaxPositions, d); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NumLayers; i++ {
		at := func(f string) string { return fmt.Sprintf(f, i) }
		l := &layer{}
		if l.ln1, err = ld.layerNorm(at(nameLN1)); err != nil {
			return nil, err
		}
		// q, k and v as one (3D, D) projection.
		if l.qkv, err = ld.Fused([]string{at(nameQ), at(nameK), at(nameV)}, d, d); err != nil {
			return nil, err
		}
		if l.out, err = ld.Linear(at(nameOut), d, d, true); err != nil {
			return nil, err
		}
		if l.ln2, err = ld.layerNorm(at(nameLN2)); err != nil {
			return nil, err
		}
		if l.fc1, err = ld.Linear(at(nameFC1), in, d, true); err != nil {
			return nil, err
		}
		if l.fc2, err = ld.Linear(at(nameFC2), d, in, true); err != nil {
			return nil, err
		}
		m.layers = append(m.layers, l)
	}
	if m.finalLN, err = ld.layerNorm(nameFinalLN); err != nil {
		return nil, err
	}
	return m, nil
}

// Output is the text encoder's result for a batch of sequences.
type Output struct {
	// LastHidden is (batch, L, D) after final_layer_norm.
	LastHidden []float32
	// Pooled is (batch, D): LastHidden at each row's PoolIndex.
	Pooled []float32
	// Hidden, when asked for, are HF's hidden_states: NumLayers+1 arrays of
	// (batch, L, D), index 0 the embeddings and index i the output of
	// layer i (before final_layer_norm).
	Hidden [][]float32
}

// Forward encodes batch rows of seqLen ids (row-major, padded as the
// tokenizer pads them) with attention mask mask (1 = real token, 0 =
// padding; nil = all ones). Each row's result depends only on its real
// tokens when the padding follows them.
func (m *Model) Forward(ctx context.Context, ids, mask []int, batch, seqLen int, wantHidden bool) (*Output, error) {
	c := m.cfg
	d := c.HiddenSize
	if batch <= 0 || seqLen <= 0 || len(ids) != batch*seqLen {
		return nil, fmt.Errorf("cliptext: %d ids for batch %d × length %d", len(ids), batch, seqLen)
	}
	if seqLen > c.MaxPositions {
		return nil, fmt.Errorf("cliptext: %d tokens exceed the model's max_position_embeddings %d; shorten the text", seqLen, c.MaxPositions)
	}
	if mask != nil && len(mask) != len(ids) {
		return nil, fmt.Errorf("cliptext: attention mask has %d entries for %d ids", len(mask), len(ids))
	}
	for i, id := range ids {
		if id < 0 || id >= c.VocabSize {
			return nil, fmt.Errorf("cliptext: row %d position %d: token id %d outside the vocabulary [0, %d)", i/seqLen, i%seqLen, id, c.VocabSize)
		}
	}
	rows := batch * seqLen
	out := &Output{}
	record := func(h []float32) {
		if wantHidden {
			out.Hidden = append(out.Hidden, append([]float32(nil), h...))
		}
	}

	// x = token_embedding[ids] + position_embedding[0..L-1]
	h := make([]float32, rows*d)
	kernels.Gather(h, m.tokEmb, d, ids)
	for b := 0; b < batch; b++ {
		x := h[b*seqLen*d : (b+1)*seqLen*d]
		kernels.Add(x, x, m.posEmb[:seqLen*d])
	}
	record(h)

	var keyBias [][]float32
	if mask != nil {
		keyBias = make([][]float32, batch)
		for b := range keyBias {
			kb := make([]float32, seqLen)
			for j := range kb {
				if mask[b*seqLen+j] == 0 {
					kb[j] = maskValue
				}
			}
			keyBias[b] = kb
		}
	}
	x := make([]float32, rows*d)
	qkv := make([]float32, rows*3*d)
	att := make([]float32, rows*d)
	tmp := make([]float32, rows*d)
	mid := make([]float32, rows*c.IntermediateSize)
	hd := d / c.NumHeads
	ap := kernels.AttentionParams{Heads: c.NumHeads, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd))), Causal: true}
	for _, l := range m.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// x = x + out_proj(Attention(qkv(layer_norm1(x))))
		l.ln1.forward(x, h, rows)
		l.qkv.Forward(qkv, x, rows, kernels.ActNone)
		for b := 0; b < batch; b++ {
			ap.KeyBias = nil
			if keyBias != nil {
				ap.KeyBias = keyBias[b]
			}
			q := qkv[b*seqLen*3*d:]
			kernels.Attention(ap, q, seqLen, 3*d, q[d:], 3*d, q[2*d:], 3*d, seqLen, att[b*seqLen*d:], d)
		}
		l.out.Forward(tmp, att, rows, kernels.ActNone)
		kernels.Add(h, h, tmp)

		// x = x + fc2(act(fc1(layer_norm2(x))))
		l.ln2.forward(x, h, rows)
		l.fc1.Forward(mid, x, rows, c.Act)
		l.fc2.Forward(tmp, mid, rows, kernels.ActNone)
		kernels.Add(h, h, tmp)
		record(h)
	}
	m.finalLN.forward(h, h, rows)
	out.LastHidden = h
	out.Pooled = make([]float32, batch*d)
	for b := 0; b < batch; b++ {
		p := c.PoolIndex(ids[b*seqLen : (b+1)*seqLen])
		copy(out.Pooled[b*d:(b+1)*d], h[(b*seqLen+p)*d:(b*seqLen+p+1)*d])
	}
	return out, nil
}
