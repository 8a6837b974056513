package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// TextConfig is a BLIP text_config.
type TextConfig struct {
	Vocab, Hidden, Layers, Heads, Intermediate, MaxPositions int
	EncoderHidden                                            int // cross-attention key/value input width
	Eps                                                      float32
}

// Text is BLIP's text transformer (BlipTextModel, post-norm BERT layers
// with cross-attention), optionally with its LM head (BlipTextLMHeadModel's
// cls.predictions, decoder weight tied to the word embeddings).
type Text struct {
	cfg      TextConfig
	causal   bool
	word     *Param
	pos      *Param
	embLN    *norm
	layers   []*textLayer
	hasHead  bool
	tr       *lin
	trLN     *norm
	headBias *Param
}

type textLayer struct {
	q, k, v, ao    *lin
	aln            *norm
	cq, ck, cv, co *lin
	cln            *norm
	inter, out     *lin
	oln            *norm
}

// newText creates a text model with tensors named prefix+"embeddings…"
// (prefix "text_encoder." or "text_decoder.bert."); headPrefix (e.g.
// "text_decoder.") adds the LM head, "" none.
func newText(ps *Params, r *rand.Rand, c TextConfig, prefix, headPrefix string, causal bool) (*Text, error) {
	if c.Heads <= 0 || c.Hidden%c.Heads != 0 {
		return nil, fmt.Errorf("train: text config: hidden_size %d is not a multiple of num_attention_heads %d", c.Hidden, c.Heads)
	}
	h := c.Hidden
	t := &Text{cfg: c, causal: causal}
	t.word = ps.add(prefix+"embeddings.word_embeddings.weight", []int{c.Vocab, h}, Normal(r, 0.02), false)
	t.pos = ps.add(prefix+"embeddings.position_embeddings.weight", []int{c.MaxPositions, h}, Normal(r, 0.02), true)
	t.embLN = newNorm(ps, prefix+"embeddings.LayerNorm", h, c.Eps)
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("%sencoder.layer.%d.", prefix, i)
		t.layers = append(t.layers, &textLayer{
			q:     newLin(ps, r, p+"attention.self.query", h, h),
			k:     newLin(ps, r, p+"attention.self.key", h, h),
			v:     newLin(ps, r, p+"attention.self.value", h, h),
			ao:    newLin(ps, r, p+"attention.output.dense", h, h),
			aln:   newNorm(ps, p+"attention.output.LayerNorm", h, c.Eps),
			cq:    newLin(ps, r, p+"crossattention.self.query", h, h),
			ck:    newLin(ps, r, p+"crossattention.self.key", h, c.EncoderHidden),
			cv:    newLin(ps, r, p+"crossattention.self.value", h, c.EncoderHidden),
			co:    newLin(ps, r, p+"crossattention.output.dense", h, h),
			cln:   newNorm(ps, p+"crossattention.output.LayerNorm", h, c.Eps),
			inter: newLin(ps, r, p+"intermediate.dense", c.Intermediate, h),
			out:   newLin(ps, r, p+"output.dense", h, c.Intermediate),
			oln:   newNorm(ps, p+"output.LayerNorm", h, c.Eps),
		})
	}
	if headPrefix != "" {
		t.hasHead = true
		t.tr = newLin(ps, r, headPrefix+"cls.predictions.transform.dense", h, h)
		t.trLN = newNorm(ps, headPrefix+"cls.predictions.transform.LayerNorm", h, c.Eps)
		t.headBias = ps.add(headPrefix+"cls.predictions.bias", []int{c.Vocab}, Const(0), true)
		t.word.Alias = []string{headPrefix + "cls.predictions.decoder.weight"}
	}
	return t, nil
}

type textCtx struct {
	ids    []int
	emb    []float32 // before embeddings.LayerNorm
	enc    []float32 // cross-attention input (nil: none)
	encLen int
	layers []*tlCtx
	hidden []float32
	// head
	tr, trAct, trN []float32
}

type tlCtx struct {
	x, q, k, v, actx, a, ares      []float32
	at                             *attnCtx
	cin, cq, ck, cv, cctx, c, cres []float32
	cat                            *attnCtx
	inter, interAct, ores          []float32
}

// forward runs ids (positions 0…len−1) with cross-attention to enc
// (encLen rows of EncoderHidden; nil skips cross-attention, as HF without
// encoder_hidden_states) and returns the last hidden states (L×H).
func (t *Text) forward(ids []int, enc []float32, encLen int) ([]float32, *textCtx) {
	c := t.cfg
	h, L := c.Hidden, len(ids)
	ctx := &textCtx{ids: ids, enc: enc, encLen: encLen}
	emb := make([]float32, L*h)
	kernels.Gather(emb, t.word.W, h, ids)
	kernels.Add(emb, emb, t.pos.W[:L*h])
	ctx.emb = emb
	x := t.embLN.forward(emb, L)
	for _, l := range t.layers {
		lc := &tlCtx{x: x}
		lc.q, lc.k, lc.v = l.q.forward(x, L), l.k.forward(x, L), l.v.forward(x, L)
		lc.actx, lc.at = attention(c.Heads, h, lc.q, lc.k, lc.v, L, L, t.causal, nil)
		lc.ares = sum(l.ao.forward(lc.actx, L), x)
		lc.a = l.aln.forward(lc.ares, L)
		cur := lc.a
		if enc != nil {
			lc.cin = cur
			lc.cq = l.cq.forward(cur, L)
			lc.ck, lc.cv = l.ck.forward(enc, encLen), l.cv.forward(enc, encLen)
			lc.cctx, lc.cat = attention(c.Heads, h, lc.cq, lc.ck, lc.cv, L, encLen, false, nil)
			lc.cres = sum(l.co.forward(lc.cctx, L), cur)
			lc.c = l.cln.forward(lc.cres, L)
			cur = lc.c
		}
		lc.inter = l.inter.forward(cur, L)
		lc.interAct = act(kernels.ActGELU, lc.inter)
		lc.ores = sum(l.out.forward(lc.interAct, L), cur)
		x = l.oln.forward(lc.ores, L)
		ctx.layers = append(ctx.layers, lc)
	}
	ctx.hidden = x
	return x, ctx
}

// logits applies the LM head to hidden states (L×H) → L×V.
func (t *Text) logits(ctx *textCtx) []float32 {
	c := t.cfg
	L := len(ctx.ids)
	ctx.tr = t.tr.forward(ctx.hidden, L)
	ctx.trAct = act(kernels.ActGELU, ctx.tr)
	ctx.trN = t.trLN.forward(ctx.trAct, L)
	out := make([]float32, L*c.Vocab)
	kernels.Gemm(false, true, L, c.Vocab, c.Hidden, 1, ctx.trN, c.Hidden, t.word.W, c.Hidden, 0, out, c.Vocab)
	kernels.AddBiasAct(out, L, c.Vocab, c.Vocab, t.headBias.W, kernels.ActNone)
	return out
}

// logitsBackward returns d(hidden) from d(logits).
func (t *Text) logitsBackward(ctx *textCtx, dlogits []float32) []float32 {
	c := t.cfg
	L := len(ctx.ids)
	dtrN := make([]float32, L*c.Hidden)
	kernels.LinearBackward(dtrN, t.word.G, t.headBias.G, dlogits, ctx.trN, t.word.W, L, c.Hidden, c.Vocab)
	dtrAct := t.trLN.backward(dtrN, ctx.trAct, L)
	dtr := actBack(kernels.ActGELU, dtrAct, ctx.tr)
	return t.tr.backward(dtr, ctx.hidden, L, true)
}

// backward accumulates gradients from d(hidden) and returns d(enc) (nil
// without cross-attention or if !needEnc).
func (t *Text) backward(ctx *textCtx, dhidden []float32, needEnc bool) []float32 {
	c := t.cfg
	h, L := c.Hidden, len(ctx.ids)
	var denc []float32
	if ctx.enc != nil && needEnc {
		denc = make([]float32, len(ctx.enc))
	}
	dx := dhidden
	for i := len(t.layers) - 1; i >= 0; i-- {
		l, lc := t.layers[i], ctx.layers[i]
		dores := l.oln.backward(dx, lc.ores, L)
		dia := l.out.backward(dores, lc.interAct, L, true)
		di := actBack(kernels.ActGELU, dia, lc.inter)
		dcur := l.inter.backward(di, cInput(lc), L, true)
		addInto(dcur, dores)
		if ctx.enc != nil {
			dcres := l.cln.backward(dcur, lc.cres, L)
			dcctx := l.co.backward(dcres, lc.cctx, L, true)
			dq, dk, dv := lc.cat.backward(dcctx)
			dcin := l.cq.backward(dq, lc.cin, L, true)
			e1 := l.ck.backward(dk, ctx.enc, ctx.encLen, needEnc)
			e2 := l.cv.backward(dv, ctx.enc, ctx.encLen, needEnc)
			if denc != nil {
				addInto(denc, e1)
				addInto(denc, e2)
			}
			addInto(dcin, dcres)
			dcur = dcin
		}
		dares := l.aln.backward(dcur, lc.ares, L)
		dactx := l.ao.backward(dares, lc.actx, L, true)
		dq, dk, dv := lc.at.backward(dactx)
		dxn := l.q.backward(dq, lc.x, L, true)
		addInto(dxn, l.k.backward(dk, lc.x, L, true))
		addInto(dxn, l.v.backward(dv, lc.x, L, true))
		addInto(dxn, dares)
		dx = dxn
	}
	demb := t.embLN.backward(dx, ctx.emb, L)
	addInto(t.pos.G[:L*h], demb)
	kernels.EmbeddingBackward(t.word.G, demb, h, ctx.ids)
	_ = c
	return denc
}

// cInput is the FFN input of a layer: the cross-attention output if any,
// else the self-attention output.
func cInput(lc *tlCtx) []float32 {
	if lc.c != nil {
		return lc.c
	}
	return lc.a
}
