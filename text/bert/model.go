package bert

import (
	"fmt"
	"math"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Model is a loaded BLIP text transformer, optionally with its LM head.
// It is immutable after Load and safe for concurrent use; per-call state
// lives in Workspace, Cache and CrossKV values owned by the caller.
type Model struct {
	cfg     Config
	prefix  string    // the Load prefix (Backward names gradients with it)
	body    string    // prefix of the transformer's tensors (prefix + "bert." for the LM-head model)
	decW    string    // tensor the LM head's decoder weight was read from (tied: the word embeddings)
	decB    string    // tensor of the LM head's bias
	wordEmb []float32 // (vocab, H); nil when tied to the LM head (embeddings are read from its packed weight)
	posEmb  []float32 // (max_positions, H)
	embNorm LayerNorm // embeddings.LayerNorm (H)
	layers  []*Layer
	head    *LMHead // nil without an LM head
}

// LayerNorm is a LayerNorm's weights.
type LayerNorm struct {
	Gamma, Beta []float32 // (H), (H)
	Eps         float32
}

// Forward normalises rows rows of x (len(Gamma) wide) into out (may alias x).
func (n *LayerNorm) Forward(out, x []float32, rows int) {
	d := len(n.Gamma)
	kernels.LayerNorm(out, x, rows, d, d, n.Gamma, n.Beta, n.Eps)
}

// SelfAttention is a layer's attention block (attention.*).
type SelfAttention struct {
	QKV  *kernels.Linear // fused [query; key; value]: (3H, H)
	Out  *kernels.Linear // output.dense: (H, H)
	Norm LayerNorm       // output.LayerNorm (H)
}

// CrossAttention is a layer's cross-attention block (crossattention.*).
type CrossAttention struct {
	Query *kernels.Linear // self.query: (H, H)
	KV    *kernels.Linear // fused [self.key; self.value]: (2H, encoder_hidden_size)
	Out   *kernels.Linear // output.dense: (H, H)
	Norm  LayerNorm       // output.LayerNorm (H)
	// Folded holds the key and value weights split by head for
	// CrossFolded states.
	Folded *FoldedCross
}

// FoldedCross is a cross-attention's key and value projections split by
// head, for attending to the encoder states themselves instead of to
// keys and values projected from them. For head j with query q_j, keys
// k_i = Wk_j·e_i + bk_j and values v_i = Wv_j·e_i + bv_j over encoder
// states e_i:
//
//	q_j·k_i = (q_j·Wk_j)·e_i + q_j·bk_j
//	Σ_i p_i·v_i = Wv_j·(Σ_i p_i·e_i) + bv_j      (Σ_i p_i = 1)
//
// and q_j·bk_j, the same for every key, cancels in the softmax. So a head
// carries its query into the encoder's space (Key), attends there with the
// usual scale, and projects the weighted sum of states (Value).
type FoldedCross struct {
	Key   []*kernels.Linear // per head: HeadDim → encoder_hidden_size, y = q_j·Wk_j (no bias)
	Value []*kernels.Linear // per head: encoder_hidden_size → HeadDim, y = Wv_j·s + bv_j
}

// Layer is one post-norm BERT layer (encoder.layer.i).
type Layer struct {
	Self  SelfAttention
	Cross *CrossAttention // nil when the checkpoint has no cross-attention
	Inter *kernels.Linear // intermediate.dense: (I, H), with the activation
	Out   *kernels.Linear // output.dense: (H, I)
	Norm  LayerNorm       // output.LayerNorm (H)
}

// LMHead is cls.predictions: transform.dense → act → transform.LayerNorm →
// decoder (+ bias).
type LMHead struct {
	Transform *kernels.Linear // transform.dense: (H, H)
	Norm      LayerNorm       // transform.LayerNorm (H)
	Decoder   *kernels.Linear // decoder.weight (V, H) with bias predictions.bias (V)
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// HasHead reports whether the model has an LM head (Logits works).
func (m *Model) HasHead() bool { return m.head != nil }

// HasCrossAttention reports whether the layers carry cross-attention.
func (m *Model) HasCrossAttention() bool { return len(m.layers) > 0 && m.layers[0].Cross != nil }

// Cache is one sequence's self-attention key/value cache. The zero value
// is an empty cache; it grows as tokens are appended.
type Cache struct {
	k, v [][]float32 // per layer: (Len, H)
	n    int
}

// Len is the number of cached positions.
func (c *Cache) Len() int { return c.n }

// Clone returns an independent copy (beam search forks sequences).
func (c *Cache) Clone() *Cache {
	out := &Cache{n: c.n, k: make([][]float32, len(c.k)), v: make([][]float32, len(c.v))}
	for l := range c.k {
		out.k[l] = append(make([]float32, 0, cap(c.k[l])), c.k[l]...)
		out.v[l] = append(make([]float32, 0, cap(c.v[l])), c.v[l]...)
	}
	return out
}

// CopyFrom makes c a copy of src, reusing c's buffers.
func (c *Cache) CopyFrom(src *Cache) {
	if len(c.k) != len(src.k) {
		c.k = make([][]float32, len(src.k))
		c.v = make([][]float32, len(src.v))
	}
	for l := range src.k {
		c.k[l] = append(c.k[l][:0], src.k[l]...)
		c.v[l] = append(c.v[l][:0], src.v[l]...)
	}
	c.n = src.n
}

// Bytes is the memory the cache holds.
func (c *Cache) Bytes() int {
	n := 0
	for l := range c.k {
		n += 4 * (cap(c.k[l]) + cap(c.v[l]))
	}
	return n
}

// CrossKV is one request's cross-attention state over its encoder states
// (image or question), made once and shared, read-only, by all of that
// request's sequences (beams) and decoding steps. (*Model).CrossKV
// projects every layer's keys and values; (*Model).CrossFolded keeps only
// the encoder states, laid out once as keys, and attends to them through
// the layers' FoldedCross weights.
type CrossKV struct {
	keys []*kernels.AttentionKeys // per layer: the keys, laid out once for the attention kernel (projected form)
	v    [][]float32              // per layer: (Len, H) values (projected form)
	// states are the encoder states laid out as the keys of one attention
	// head of encoder_hidden_size (folded form; nil otherwise).
	states *kernels.AttentionKeys
	layers int // the number of layers of the model it was made for
	n      int
	bias   []float32 // (Len) additive key bias from the encoder mask, or nil
	enc    []float32 // the encoder states it was computed from (the caller's slice; folded attention and Backward read it)
}

// Len is the number of encoder positions.
func (x *CrossKV) Len() int { return x.n }

// Folded reports whether x attends through the folded weights
// (CrossFolded) rather than projected keys and values.
func (x *CrossKV) Folded() bool { return x.states != nil }

// Bytes is the memory x holds beyond the encoder states it was made from:
// the keys and values (projected form) or the states laid out as keys
// (folded form).
func (x *CrossKV) Bytes() int {
	n := 4 * len(x.bias)
	if x.states != nil {
		n += x.states.Bytes()
	}
	for l := range x.v {
		n += 4*len(x.v[l]) + x.keys[l].Bytes()
	}
	return n
}

// maskMin is torch.finfo(float32).min, HF's additive value for masked
// encoder positions.
const maskMin = -math.MaxFloat32

// CrossKV projects encoder states enc (encLen rows of encoder_hidden_size)
// into every layer's cross-attention keys and values. mask, if not nil,
// has encLen entries (0 = masked, as HF's encoder_attention_mask; nil =
// all ones).
func (m *Model) CrossKV(enc []float32, encLen int, mask []int) (*CrossKV, error) {
	x, err := m.newCross(enc, encLen, mask)
	if err != nil {
		return nil, err
	}
	x.keys, x.v = make([]*kernels.AttentionKeys, len(m.layers)), make([][]float32, len(m.layers))
	h := m.cfg.HiddenSize
	kv := make([]float32, encLen*2*h) // [keys | values] of one layer
	for l, layer := range m.layers {
		layer.Cross.KV.Forward(kv, enc, encLen, kernels.ActNone)
		// The keys are laid out for the kernel once here, not at every
		// decoding step; the values are kept as rows.
		x.keys[l] = kernels.PrepareKeys(m.attentionParams(), kv, 2*h, encLen)
		x.v[l] = make([]float32, encLen*h)
		for j := 0; j < encLen; j++ {
			copy(x.v[l][j*h:(j+1)*h], kv[j*2*h+h:(j+1)*2*h])
		}
	}
	return x, nil
}

// CrossFolded is CrossKV's folded form (see FoldedCross): it keeps the
// encoder states enc (the caller's slice, which must not change while x is
// used) and lays them out once as keys, instead of projecting every
// layer's keys and values. The two forms compute the same function in a
// different order of float32 sums (results agree to rounding; each form is
// bit-for-bit batch invariant on its own). The folded form holds about
// 2·layers·H/encoder_hidden_size times less memory per request (24 times
// for BLIP-base) and costs no projection up front, for about
// 2·heads·encLen·encoder_hidden_size multiply-adds per layer and query
// token: it suits serving (captions, answers, questions and texts of a few
// dozen tokens); training, which runs many long sequences over the same
// states, is cheaper projected.
func (m *Model) CrossFolded(enc []float32, encLen int, mask []int) (*CrossKV, error) {
	x, err := m.newCross(enc, encLen, mask)
	if err != nil {
		return nil, err
	}
	e := m.cfg.EncoderHiddenSize
	x.states = kernels.PrepareKeys(m.foldedParams(), x.enc, e, encLen)
	return x, nil
}

// FoldedCheaper reports whether cross-attention of rows query tokens in
// all (every sequence and step that will use the state) over encLen
// encoder states takes fewer multiply-adds folded (CrossFolded: per row
// and layer 2·heads·encLen·E for the attention and 2·H·E for the per-head
// products) than projected (CrossKV: 2·H·E·encLen per layer once, then
// 2·encLen·H per row), with H the hidden and E the encoder width. For BLIP-base
// over a 384-px image that is up to 62 rows. Memory is not part of
// it: the folded state is far smaller, which is what decoding, with many
// requests live at once, needs most.
func (m *Model) FoldedCheaper(encLen, rows int) bool {
	h, e, heads := int64(m.cfg.HiddenSize), int64(m.cfg.EncoderHiddenSize), int64(m.cfg.NumHeads)
	n, r := int64(encLen), int64(rows)
	folded := r * (2*heads*n*e + 2*h*e)
	projected := 2*h*e*n + r*2*n*h
	return folded < projected
}

// CrossBytes is what CrossKV (folded false) or CrossFolded (true) holds
// over encLen encoder states without a mask (its Bytes), for memory
// accounting before the state is made: the keys laid out for the
// attention kernel (padded per head) and the values of every layer, or
// the states laid out once as keys (the states themselves belong to the
// caller).
func (m *Model) CrossBytes(encLen int, folded bool) int64 {
	if folded {
		return int64(kernels.AttentionKeysBytes(m.foldedParams(), encLen))
	}
	keys := int64(kernels.AttentionKeysBytes(m.attentionParams(), encLen))
	return int64(len(m.layers)) * (keys + int64(encLen)*int64(m.cfg.HiddenSize)*4)
}

// newCross checks encoder states and their mask and returns a CrossKV with
// neither form filled in.
func (m *Model) newCross(enc []float32, encLen int, mask []int) (*CrossKV, error) {
	if !m.HasCrossAttention() {
		return nil, fmt.Errorf("bert: this text model has no cross-attention weights (is_decoder false)")
	}
	e := m.cfg.EncoderHiddenSize
	if encLen <= 0 || len(enc) < encLen*e {
		return nil, fmt.Errorf("bert: encoder states: %d values for %d positions of width %d", len(enc), encLen, e)
	}
	if mask != nil && len(mask) != encLen {
		return nil, fmt.Errorf("bert: encoder mask has %d entries for %d positions", len(mask), encLen)
	}
	x := &CrossKV{n: encLen, layers: len(m.layers), enc: enc[:encLen*e]}
	if mask != nil {
		x.bias = make([]float32, encLen)
		for i, v := range mask {
			if v == 0 {
				x.bias[i] = maskMin
			}
		}
	}
	return x, nil
}

// foldedParams are the parameters of folded cross-attention: one head as
// wide as the encoder states, with the layers' scale 1/√(H/heads).
func (m *Model) foldedParams() kernels.AttentionParams {
	return kernels.AttentionParams{Heads: 1, HeadDim: m.cfg.EncoderHiddenSize, Scale: m.attentionParams().Scale}
}

// Seq is one sequence in a Forward batch.
type Seq struct {
	// Tokens are the new token ids, appended after the cached positions
	// (positions Cache.Len() … Cache.Len()+len(Tokens)−1).
	Tokens []int
	// Cache is the sequence's self-attention cache; Forward appends the
	// new keys and values. It must not be nil.
	Cache *Cache
	// Cross, if not nil, is the request's cross-attention state; nil skips
	// cross-attention (HF: no encoder_hidden_states).
	Cross *CrossKV
	// Mask, if not nil, is HF's attention_mask over all Cache.Len()+
	// len(Tokens) positions (1 = attend, 0 = padding, additive −10000).
	Mask []int
}

// Workspace holds Forward's scratch buffers; reuse one per caller
// (it is not safe for concurrent use). The zero value is ready.
type Workspace struct {
	h, qkv, ctx, tmp, mid, q []float32
	fq, fctx                 []float32   // folded cross-attention: queries and contexts in the encoder's space
	bias                     [][]float32 // per sequence: its attention mask as additive key bias
	attn                     []kernels.AttentionSeq
	headX, logits            []float32
	// Tape, if not nil, makes Forward and Logits record in it the
	// activations Backward and LogitsBackward need (training). Serving
	// leaves it nil.
	Tape *Tape
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Forward runs the text transformer over the new tokens of every sequence
// (stacked in order) and returns their final hidden states (Σ len(Tokens)
// rows of H), valid until the next call with ws. causal selects the
// decoder's causal self-attention (BlipTextLMHeadModel); otherwise it is
// bidirectional (the VQA/ITM text_encoder).
func (m *Model) Forward(ws *Workspace, seqs []Seq, causal bool) ([]float32, error) {
	c := m.cfg
	h := c.HiddenSize
	rows := 0
	for i, s := range seqs {
		if len(s.Tokens) == 0 || s.Cache == nil {
			return nil, fmt.Errorf("bert: sequence %d: no tokens or no cache", i)
		}
		if end := s.Cache.n + len(s.Tokens); end > c.MaxPositions {
			return nil, fmt.Errorf("bert: sequence %d reaches %d positions, the model has %d (max_position_embeddings)", i, end, c.MaxPositions)
		}
		if s.Mask != nil && len(s.Mask) != s.Cache.n+len(s.Tokens) {
			return nil, fmt.Errorf("bert: sequence %d: attention mask has %d entries for %d positions", i, len(s.Mask), s.Cache.n+len(s.Tokens))
		}
		if x := s.Cross; x != nil && (!m.HasCrossAttention() || x.layers != len(m.layers) || len(x.enc) != x.n*c.EncoderHiddenSize) {
			return nil, fmt.Errorf("bert: sequence %d: cross-attention state does not belong to this model", i)
		}
		for _, id := range s.Tokens {
			if id < 0 || id >= c.VocabSize {
				return nil, fmt.Errorf("bert: sequence %d: token id %d outside the vocabulary [0, %d)", i, id, c.VocabSize)
			}
		}
		rows += len(s.Tokens)
	}
	if ws.Tape != nil {
		if err := ws.Tape.start(m, seqs, causal); err != nil {
			return nil, err
		}
	}
	ws.h = grow(ws.h, rows*h)
	ws.qkv = grow(ws.qkv, rows*3*h)
	ws.ctx = grow(ws.ctx, rows*h)
	ws.tmp = grow(ws.tmp, rows*h)
	ws.q = grow(ws.q, rows*h)
	ws.mid = grow(ws.mid, rows*c.IntermediateSize)

	m.embed(ws.h, ws.tmp, seqs, ws.Tape)
	for l, layer := range m.layers {
		layer.forward(m, l, ws, seqs, rows, causal)
	}
	for _, s := range seqs {
		s.Cache.n += len(s.Tokens)
	}
	return ws.h, nil
}

// embed writes word + position embeddings, layer-normed, for the new
// tokens into out, using tmp (same size) as scratch.
func (m *Model) embed(out, tmp []float32, seqs []Seq, tape *Tape) {
	h := m.cfg.HiddenSize
	r := 0
	pos := make([]int, 0, 8)
	for _, s := range seqs {
		n := len(s.Tokens)
		dst := out[r*h : (r+n)*h]
		if m.wordEmb != nil {
			kernels.Gather(dst, m.wordEmb, h, s.Tokens)
		} else {
			m.head.Decoder.WeightRows(dst, s.Tokens)
		}
		pos = pos[:0]
		for i := 0; i < n; i++ {
			pos = append(pos, s.Cache.n+i)
		}
		posRows := tmp[r*h : (r+n)*h]
		kernels.Gather(posRows, m.posEmb, h, pos)
		kernels.Add(dst, dst, posRows)
		r += n
	}
	if tape != nil {
		tape.emb = clone(out[:r*h])
	}
	m.embNorm.Forward(out, out, r)
}

// attentionParams are the heads, head width and 1/√head width of every
// attention of the model.
func (m *Model) attentionParams() kernels.AttentionParams {
	hd := m.cfg.HiddenSize / m.cfg.NumHeads
	return kernels.AttentionParams{Heads: m.cfg.NumHeads, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd)))}
}

// forward applies layer l in place to ws.h (rows stacked new tokens). The
// attentions of all sequences run as one batch on the worker pool
// (kernels.AttentionBatch: each sequence's result is what it gets alone).
func (layer *Layer) forward(m *Model, l int, ws *Workspace, seqs []Seq, rows int, causal bool) {
	c := m.cfg
	h := c.HiddenSize
	ap := m.attentionParams()
	var rec *layerTape
	if ws.Tape != nil {
		rec = &ws.Tape.layers[l]
		rec.x = clone(ws.h[:rows*h])
	}

	// h = LN(h + dense(SelfAttention(h)))
	layer.Self.QKV.Forward(ws.qkv, ws.h, rows, kernels.ActNone)
	r := 0
	ws.attn = ws.attn[:0]
	for len(ws.bias) < len(seqs) {
		ws.bias = append(ws.bias, nil)
	}
	for si, s := range seqs {
		n := len(s.Tokens)
		cache := s.Cache
		if len(cache.k) != len(m.layers) {
			cache.k = make([][]float32, len(m.layers))
			cache.v = make([][]float32, len(m.layers))
		}
		past := cache.n
		// Append the new keys and values (columns H..2H and 2H..3H).
		cache.k[l] = cache.k[l][:past*h]
		cache.v[l] = cache.v[l][:past*h]
		for i := 0; i < n; i++ {
			row := ws.qkv[(r+i)*3*h:]
			cache.k[l] = append(cache.k[l], row[h:2*h]...)
			cache.v[l] = append(cache.v[l], row[2*h:3*h]...)
		}
		var bias []float32
		if s.Mask != nil {
			bias = grow(ws.bias[si], len(s.Mask))
			for j, v := range s.Mask {
				bias[j] = 0
				if v == 0 {
					bias[j] = -10000
				}
			}
			ws.bias[si] = bias
		}
		ws.attn = append(ws.attn, kernels.AttentionSeq{Q: ws.qkv[r*3*h:], QLen: n, LDQ: 3 * h,
			K: cache.k[l], LDK: h, V: cache.v[l], LDV: h, KLen: past + n, KeyBias: bias, Out: ws.ctx[r*h:], LDO: h})
		r += n
	}
	self := ap
	self.Causal = causal
	kernels.AttentionBatch(self, ws.attn)
	layer.Self.Out.Forward(ws.tmp, ws.ctx, rows, kernels.ActNone)
	kernels.Add(ws.h, ws.h, ws.tmp)
	if rec != nil {
		rec.qkv, rec.ctx, rec.ares = clone(ws.qkv[:rows*3*h]), clone(ws.ctx[:rows*h]), clone(ws.h[:rows*h])
	}
	layer.Self.Norm.Forward(ws.h, ws.h, rows)

	// h = LN(h + dense(CrossAttention(h, encoder))) for sequences with an encoder.
	if layer.Cross != nil && anyCross(seqs) {
		layer.Cross.Query.Forward(ws.q, ws.h, rows, kernels.ActNone)
		layer.Cross.attend(m, l, ws, seqs, rows)
		layer.Cross.Out.Forward(ws.tmp, ws.ctx, rows, kernels.ActNone)
		if allCross(seqs) {
			if rec != nil {
				rec.a = clone(ws.h[:rows*h])
			}
			kernels.Add(ws.h, ws.h, ws.tmp)
			if rec != nil {
				rec.cq, rec.cctx, rec.cres = clone(ws.q[:rows*h]), clone(ws.ctx[:rows*h]), clone(ws.h[:rows*h])
			}
			layer.Cross.Norm.Forward(ws.h, ws.h, rows)
		} else { // mixed batch: apply only to rows of sequences with an encoder
			r = 0
			for _, s := range seqs {
				n := len(s.Tokens)
				if s.Cross != nil {
					seg := ws.h[r*h : (r+n)*h]
					kernels.Add(seg, seg, ws.tmp[r*h:(r+n)*h])
					layer.Cross.Norm.Forward(seg, seg, n)
				}
				r += n
			}
		}
	}

	// h = LN(h + dense2(act(dense1(h))))
	if rec != nil {
		rec.f = clone(ws.h[:rows*h])
	}
	layer.Inter.Forward(ws.mid, ws.h, rows, c.Act)
	layer.Out.Forward(ws.tmp, ws.mid, rows, kernels.ActNone)
	kernels.Add(ws.h, ws.h, ws.tmp)
	if rec != nil {
		rec.mid, rec.ores = clone(ws.mid[:rows*c.IntermediateSize]), clone(ws.h[:rows*h])
	}
	layer.Norm.Forward(ws.h, ws.h, rows)
}

// attend writes into ws.ctx the cross-attention context of the rows of
// every sequence with an encoder, from their queries in ws.q: folded
// states first (they write every row), then projected keys and values.
func (x *CrossAttention) attend(m *Model, l int, ws *Workspace, seqs []Seq, rows int) {
	h := m.cfg.HiddenSize
	folded, projected := 0, false
	for _, s := range seqs {
		if c := s.Cross; c != nil && c.Folded() {
			folded++
		} else if c != nil {
			projected = true
		}
	}
	if folded > 0 {
		x.attendFolded(m, ws, seqs, rows, folded)
	}
	if !projected {
		return
	}
	r := 0
	ws.attn = ws.attn[:0]
	for _, s := range seqs {
		n := len(s.Tokens)
		if c := s.Cross; c != nil && !c.Folded() {
			ws.attn = append(ws.attn, kernels.AttentionSeq{Q: ws.q[r*h:], QLen: n, LDQ: h,
				Keys: c.keys[l], V: c.v[l], LDV: h, KLen: c.n, KeyBias: c.bias, Out: ws.ctx[r*h:], LDO: h})
		}
		r += n
	}
	kernels.AttentionBatch(m.attentionParams(), ws.attn)
}

// attendFolded is cross-attention through FoldedCross for the sequences
// with folded states (folded of them): each row's query of head j becomes
// q_j·Wk_j, a query of one attention head as wide as the encoder states
// whose keys and values are those states; the contexts are projected back
// by Wv_j (+ bv_j). It writes every row of ws.ctx (rows of other
// sequences get a context of zero states, overwritten or ignored later).
func (x *CrossAttention) attendFolded(m *Model, ws *Workspace, seqs []Seq, rows, folded int) {
	c := m.cfg
	h, heads, e := c.HiddenSize, c.NumHeads, c.EncoderHiddenSize
	hd := h / heads
	f := x.Folded
	// Row r·heads+j of fq / fctx is row r's head j in the encoder's space.
	ws.fq = grow(ws.fq, rows*heads*e)
	ws.fctx = grow(ws.fctx, rows*heads*e)
	for j, k := range f.Key {
		k.ForwardLD(ws.fq[j*e:], heads*e, ws.q[j*hd:], h, rows, kernels.ActNone)
	}
	// Queries of one sequence are independent (no causal mask): a long
	// decode step of few sequences is cut into parts so that every thread
	// has work; the kernel gives each query the same bits however cut.
	parts := max(1, kernels.Threads()/folded)
	ws.attn = ws.attn[:0]
	r := 0
	for _, s := range seqs {
		n := len(s.Tokens)
		if st := s.Cross; st != nil && st.Folded() {
			nq := n * heads
			per := (nq + parts - 1) / parts
			for q0 := 0; q0 < nq; q0 += per {
				q1 := min(nq, q0+per)
				ws.attn = append(ws.attn, kernels.AttentionSeq{Q: ws.fq[(r*heads+q0)*e:], QLen: q1 - q0, LDQ: e,
					Keys: st.states, V: st.enc, LDV: e, KLen: st.n, KeyBias: st.bias, Out: ws.fctx[(r*heads+q0)*e:], LDO: e})
			}
		} else {
			clear(ws.fctx[r*heads*e : (r+n)*heads*e])
		}
		r += n
	}
	kernels.AttentionBatch(m.foldedParams(), ws.attn)
	for j, v := range f.Value {
		v.ForwardLD(ws.ctx[j*hd:], h, ws.fctx[j*e:], heads*e, rows, kernels.ActNone)
	}
}

func anyCross(seqs []Seq) bool {
	for _, s := range seqs {
		if s.Cross != nil {
			return true
		}
	}
	return false
}

func allCross(seqs []Seq) bool {
	for _, s := range seqs {
		if s.Cross == nil {
			return false
		}
	}
	return true
}

// Logits applies the LM head to rows rows of hidden states (H wide) and
// returns rows×vocab logits, valid until the next call with ws.
func (m *Model) Logits(ws *Workspace, hidden []float32, rows int) ([]float32, error) {
	if m.head == nil {
		return nil, fmt.Errorf("bert: this text model has no LM head (cls.predictions)")
	}
	h, v := m.cfg.HiddenSize, m.cfg.VocabSize
	if len(hidden) < rows*h {
		return nil, fmt.Errorf("bert: %d hidden values for %d rows of %d", len(hidden), rows, h)
	}
	ws.headX = grow(ws.headX, rows*h)
	ws.logits = grow(ws.logits, rows*v)
	m.head.Transform.Forward(ws.headX, hidden, rows, m.cfg.Act)
	if ws.Tape != nil {
		ws.Tape.headIn, ws.Tape.headAct = clone(hidden[:rows*h]), clone(ws.headX)
	}
	m.head.Norm.Forward(ws.headX, ws.headX, rows)
	if ws.Tape != nil {
		ws.Tape.headN = clone(ws.headX)
	}
	m.head.Decoder.Forward(ws.logits, ws.headX, rows, kernels.ActNone)
	return ws.logits, nil
}
