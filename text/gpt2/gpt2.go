// Package gpt2 is GPT-2 (HF GPT2LMHeadModel) with optional cross-attention
// to encoder states, as used by the decoder of VisionEncoderDecoder
// checkpoints such as nlpconnect/vit-gpt2-image-captioning.
//
// Token and position embeddings are summed and go through NLayer pre-norm
// blocks, then a final LayerNorm and the LM head (tied to the token
// embeddings):
//
//	x = wte[ids] + wpe[pos]
//	x = x + SelfAttn(ln_1(x))            causal, with a KV cache
//	x = x + CrossAttn(ln_cross_attn(x))  keys/values from the encoder states
//	x = x + MLP(ln_2(x))
//	logits = ln_f(x) · wteᵀ
//
// The cross-attention keys and values depend only on the encoder states,
// so they are computed once per request (NewCross) and reused at every
// decoding step. A Session holds a request's rows (one for greedy search,
// num_beams for beam search), each with its own self-attention KV cache; it
// implements generate.Stepper.
package gpt2

import (
	"context"
	"fmt"
	"math"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// maskValue is torch.finfo(float32).min, what HF adds to masked scores.
const maskValue = -math.MaxFloat32

// Model is a loaded GPT-2 LM. It is immutable after Load and safe for
// concurrent use; per-request state lives in Cross and Session.
type Model struct {
	cfg    Config
	wte    []float32 // (V, D) token embeddings
	wpe    []float32 // (P, D) position embeddings
	blocks []*block
	lnF    layerNorm       // (D)
	lmHead *kernels.Linear // (V, D): logits = x·Wᵀ, tied to wte unless tie_word_embeddings is false
}

// block is one pre-norm GPT-2 block.
type block struct {
	ln1       layerNorm       // (D)
	attn      *kernels.Linear // c_attn Conv1D (D, 3D): q | k | v
	attnProj  *kernels.Linear // c_proj Conv1D (D, D)
	lnCross   layerNorm       // (D); only with add_cross_attention
	crossQ    *kernels.Linear // q_attn Conv1D (D, D) on decoder states
	crossKV   *kernels.Linear // c_attn Conv1D (D, 2D) on encoder states: k | v
	crossProj *kernels.Linear // c_proj Conv1D (D, D)
	ln2       layerNorm       // (D)
	fc        *kernels.Linear // mlp.c_fc Conv1D (D, I), followed by the activation
	fcProj    *kernels.Linear // mlp.c_proj Conv1D (I, D)
	scale     float32         // score scale: 1/√head_dim (if scale_attn_weights) / (i+1) (if by inverse layer idx)
}

type layerNorm struct {
	gamma, beta []float32 // (D)
	eps         float32
}

func (n *layerNorm) forward(out, x []float32, rows int) {
	d := len(n.gamma)
	kernels.LayerNorm(out, x, rows, d, d, n.gamma, n.beta, n.eps)
}

func attnScale(c Config, layer int) float32 {
	s := 1.0
	if c.ScaleAttnWeights {
		s /= math.Sqrt(float64(c.HeadDim()))
	}
	if c.ScaleAttnByInverseLayerIdx {
		s /= float64(layer + 1)
	}
	return float32(s)
}

// Config returns the configuration the model was loaded with.
func (m *Model) Config() Config { return m.cfg }

// Cross is one request's cross-attention keys and values over its encoder
// states (Len rows), per block. It is immutable and may be shared by every
// row (beam) of the request.
type Cross struct {
	Len int
	kv  [][]float32 // per block (Len, 2D): keys | values
}

// NewCross computes the cross-attention keys and values of every block
// over encoder states enc (encLen rows of n_embd values; apply the
// VisionEncoderDecoder enc_to_dec_proj first when the encoder width
// differs).
func (m *Model) NewCross(enc []float32, encLen int) (*Cross, error) {
	d := m.cfg.NEmbd
	if !m.cfg.AddCrossAttention {
		return nil, fmt.Errorf("gpt2: the model has no cross-attention (add_cross_attention is false), so it cannot attend to encoder states")
	}
	if encLen <= 0 || len(enc) != encLen*d {
		return nil, fmt.Errorf("gpt2: encoder states have %d values, expected %d rows × n_embd %d", len(enc), encLen, d)
	}
	c := &Cross{Len: encLen, kv: make([][]float32, len(m.blocks))}
	for i, b := range m.blocks {
		c.kv[i] = make([]float32, encLen*2*d)
		b.crossKV.Forward(c.kv[i], enc, encLen, kernels.ActNone)
	}
	return c, nil
}

// Row is one sequence's state: its self-attention KV cache and the
// cross-attention it attends to (nil: no cross-attention, as HF when no
// encoder states are given).
type Row struct {
	cross *Cross
	n     int         // tokens processed so far (the next position id)
	kv    [][]float32 // per block (n, 2D): keys | values
}

// NewRow starts an empty sequence attending to cross (may be nil).
func (m *Model) NewRow(cross *Cross) *Row {
	return &Row{cross: cross, kv: make([][]float32, len(m.blocks))}
}

// Len is the number of tokens the row holds.
func (r *Row) Len() int { return r.n }

// clone deep-copies the row's cache (the Cross is shared).
func (r *Row) clone() *Row {
	c := &Row{cross: r.cross, n: r.n, kv: make([][]float32, len(r.kv))}
	for i, kv := range r.kv {
		c.kv[i] = append(make([]float32, 0, cap(kv)), kv...)
	}
	return c
}

// pass describes one forward pass over several rows.
type pass struct {
	rows    []*Row
	tokens  [][]int
	keyBias [][]float32 // per row, over all its keys after the pass; nil = no padding mask
	all     bool        // logits for every new position, not only the last of each row
	record  func(h []float32)
}

// forward runs the pass, appending to each row's cache, and returns the
// logits: (rows, V) or, with p.all, (Σ tokens, V).
func (m *Model) forward(ctx context.Context, p pass) ([]float32, error) {
	c := m.cfg
	d, v := c.NEmbd, c.VocabSize
	if len(p.tokens) != len(p.rows) {
		return nil, fmt.Errorf("gpt2: %d token lists for %d rows", len(p.tokens), len(p.rows))
	}
	// Validate everything before touching a cache.
	total := 0
	start := make([]int, len(p.rows)+1) // row r's new tokens are h rows start[r]..start[r+1]
	for r, toks := range p.tokens {
		if len(toks) == 0 {
			return nil, fmt.Errorf("gpt2: row %d: no tokens to append", r)
		}
		row := p.rows[r]
		if row.n+len(toks) > c.NPositions {
			return nil, fmt.Errorf("gpt2: row %d: %d tokens exceed the model's n_positions %d", r, row.n+len(toks), c.NPositions)
		}
		for _, id := range toks {
			if id < 0 || id >= v {
				return nil, fmt.Errorf("gpt2: row %d: token id %d outside the vocabulary [0, %d)", r, id, v)
			}
		}
		if row.cross != nil && !c.AddCrossAttention {
			return nil, fmt.Errorf("gpt2: row %d has encoder states but the model has no cross-attention (add_cross_attention is false)", r)
		}
		if p.keyBias != nil && len(p.keyBias[r]) != row.n+len(toks) {
			return nil, fmt.Errorf("gpt2: row %d: attention mask has %d entries, expected %d", r, len(p.keyBias[r]), row.n+len(toks))
		}
		total += len(toks)
		start[r+1] = total
	}

	// x = wte[ids] + wpe[positions]
	h := make([]float32, total*d)
	for r, toks := range p.tokens {
		x := h[start[r]*d : start[r+1]*d]
		kernels.Gather(x, m.wte, d, toks)
		n := p.rows[r].n
		kernels.Add(x, x, m.wpe[n*d:(n+len(toks))*d])
	}
	if p.record != nil {
		p.record(h)
	}

	ws := struct {
		x, qkv, ctx, tmp, mid []float32
	}{
		x: make([]float32, total*d), qkv: make([]float32, total*3*d), ctx: make([]float32, total*d),
		tmp: make([]float32, total*d), mid: make([]float32, total*c.NInner),
	}
	hd := c.HeadDim()
	for li, b := range m.blocks {
		if err := ctx.Err(); err != nil {
			// Undo this pass's cache appends so the rows stay consistent.
			for _, row := range p.rows {
				for l := 0; l < li; l++ {
					row.kv[l] = row.kv[l][:row.n*2*d]
				}
			}
			return nil, err
		}
		// x = x + c_proj(SelfAttn(c_attn(ln_1(x))))
		b.ln1.forward(ws.x, h, total)
		b.attn.Forward(ws.qkv, ws.x, total, kernels.ActNone)
		ap := kernels.AttentionParams{Heads: c.NHead, HeadDim: hd, Scale: b.scale, Causal: true}
		for r, row := range p.rows {
			nt := start[r+1] - start[r]
			kv := row.kv[li]
			for t := start[r]; t < start[r+1]; t++ { // append this token's k | v
				kv = append(kv, ws.qkv[t*3*d+d:(t+1)*3*d]...)
			}
			row.kv[li] = kv
			kLen := row.n + nt
			ap.KeyBias = nil
			if p.keyBias != nil {
				ap.KeyBias = p.keyBias[r]
			}
			kernels.Attention(ap, ws.qkv[start[r]*3*d:], nt, 3*d, kv, 2*d, kv[d:], 2*d, kLen, ws.ctx[start[r]*d:], d)
		}
		b.attnProj.Forward(ws.tmp, ws.ctx, total, kernels.ActNone)
		kernels.Add(h, h, ws.tmp)

		// x = x + c_proj(CrossAttn(q_attn(ln_cross_attn(x)), encoder k, v))
		if c.AddCrossAttention && anyCross(p.rows) {
			b.lnCross.forward(ws.x, h, total)
			b.crossQ.Forward(ws.tmp, ws.x, total, kernels.ActNone)
			cp := kernels.AttentionParams{Heads: c.NHead, HeadDim: hd, Scale: b.scale}
			for r, row := range p.rows {
				if row.cross == nil {
					continue
				}
				nt := start[r+1] - start[r]
				kv := row.cross.kv[li]
				kernels.Attention(cp, ws.tmp[start[r]*d:], nt, d, kv, 2*d, kv[d:], 2*d, row.cross.Len, ws.ctx[start[r]*d:], d)
			}
			b.crossProj.Forward(ws.tmp, ws.ctx, total, kernels.ActNone)
			// Rows without encoder states skip the sublayer.
			for r, row := range p.rows {
				if row.cross != nil {
					x := h[start[r]*d : start[r+1]*d]
					kernels.Add(x, x, ws.tmp[start[r]*d:start[r+1]*d])
				}
			}
		}

		// x = x + c_proj(act(c_fc(ln_2(x))))
		b.ln2.forward(ws.x, h, total)
		b.fc.Forward(ws.mid, ws.x, total, c.Act)
		b.fcProj.Forward(ws.tmp, ws.mid, total, kernels.ActNone)
		kernels.Add(h, h, ws.tmp)
		if p.record != nil && li < len(m.blocks)-1 {
			p.record(h)
		}
	}
	for r, row := range p.rows {
		row.n += start[r+1] - start[r]
	}

	// logits = ln_f(x) · lm_headᵀ, for the positions asked for.
	var sel []float32
	n := total
	if p.all {
		sel = h
	} else {
		n = len(p.rows)
		sel = make([]float32, n*d)
		for r := range p.rows {
			copy(sel[r*d:(r+1)*d], h[(start[r+1]-1)*d:start[r+1]*d])
		}
	}
	m.lnF.forward(sel, sel, n)
	if p.record != nil && p.all {
		p.record(sel) // HF's last hidden state has ln_f applied
	}
	logits := make([]float32, n*v)
	m.lmHead.Forward(logits, sel, n, kernels.ActNone)
	return logits, nil
}

func anyCross(rows []*Row) bool {
	for _, r := range rows {
		if r.cross != nil {
			return true
		}
	}
	return false
}

// Output is a teacher-forced forward pass over one sequence.
type Output struct {
	// Logits are (L, V), one row per input position.
	Logits []float32
	// Hidden are HF's decoder hidden_states: NLayer+1 arrays of (L, D),
	// index 0 the embeddings, index i the output of block i, the last one
	// with ln_f applied.
	Hidden [][]float32
}

// Forward runs ids (one sequence, positions 0..L-1 as HF uses when no
// position_ids are given) attending to cross (may be nil), with an
// optional attention mask (1 = real token, 0 = padding; nil = all ones),
// and returns the logits of every position and the hidden states.
func (m *Model) Forward(ctx context.Context, ids []int, mask []int, cross *Cross) (*Output, error) {
	row := m.NewRow(cross)
	var bias [][]float32
	if mask != nil {
		if len(mask) != len(ids) {
			return nil, fmt.Errorf("gpt2: attention mask has %d entries for %d tokens", len(mask), len(ids))
		}
		kb := make([]float32, len(mask))
		for i, v := range mask {
			if v == 0 {
				kb[i] = maskValue
			}
		}
		bias = [][]float32{kb}
	}
	out := &Output{}
	logits, err := m.forward(ctx, pass{
		rows: []*Row{row}, tokens: [][]int{ids}, keyBias: bias, all: true,
		record: func(h []float32) { out.Hidden = append(out.Hidden, append([]float32(nil), h...)) },
	})
	if err != nil {
		return nil, err
	}
	out.Logits = logits
	return out, nil
}

// Session is one request's decoding state: its rows (sequences), each with
// a KV cache, sharing the request's cross-attention. It implements
// generate.Stepper. A Session is not safe for concurrent use.
type Session struct {
	m    *Model
	rows []*Row
}

// NewSession starts a request with one empty row attending to cross (nil
// for a decoder without encoder states).
func (m *Model) NewSession(cross *Cross) *Session {
	return &Session{m: m, rows: []*Row{m.NewRow(cross)}}
}

// Rows is the current number of rows.
func (s *Session) Rows() int { return len(s.rows) }

// Step appends tokens[r] to row r for every row and returns each row's
// last-position logits (vocab_size values). The rows are processed as one
// batch: every projection is one matrix product over all new tokens.
func (s *Session) Step(ctx context.Context, tokens [][]int) ([][]float32, error) {
	if len(tokens) != len(s.rows) {
		return nil, fmt.Errorf("gpt2: Step got tokens for %d rows, the session has %d", len(tokens), len(s.rows))
	}
	logits, err := s.m.forward(ctx, pass{rows: s.rows, tokens: tokens})
	if err != nil {
		return nil, err
	}
	v := s.m.cfg.VocabSize
	out := make([][]float32, len(s.rows))
	for r := range out {
		out[r] = logits[r*v : (r+1)*v : (r+1)*v]
	}
	return out, nil
}

// Reorder makes new row r a copy of old row idx[r]. A row used once is
// moved without copying; repeated rows get their own copy of the cache.
// Indices out of range are ignored (the row count then shrinks).
func (s *Session) Reorder(idx []int) {
	used := make([]bool, len(s.rows))
	next := make([]*Row, 0, len(idx))
	for _, i := range idx {
		if i < 0 || i >= len(s.rows) {
			continue
		}
		if used[i] {
			next = append(next, s.rows[i].clone())
		} else {
			used[i] = true
			next = append(next, s.rows[i])
		}
	}
	// A moved row may be shared by a later clone: clones were taken before
	// any mutation, and moved rows are distinct pointers, so no aliasing.
	s.rows = next
}
