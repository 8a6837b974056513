package blip

import (
	"context"
	"fmt"
	"time"

	"github.com/glimpse-vlm/glimpse/text/bert"
	"github.com/glimpse-vlm/glimpse/text/generate"
)

// decoderStepper is one request's decoding state in a BLIP text decoder:
// rows (sequences) each with its own self-attention KV cache, all sharing
// the request's cross-attention state (bert.CrossKV). It implements
// generate.Stepper; all rows of a step run through the decoder as one
// batch (one GEMM per weight).
type decoderStepper struct {
	dec   *bert.Model
	cross *bert.CrossKV
	rows  []*bert.Cache
	free  []*bert.Cache // caches of dropped rows, reused by Reorder
	ws    bert.Workspace
	seqs  []bert.Seq
	last  []float32   // (rows, H) hidden state of each row's last position
	out   [][]float32 // per-row logits views
	// member, if set, runs the steps through the model's Batcher, batched
	// with the other live requests.
	member *generate.Member[bert.Seq]
}

func newDecoderStepper(dec *bert.Model, cross *bert.CrossKV) *decoderStepper {
	return &decoderStepper{dec: dec, cross: cross, rows: []*bert.Cache{{}}}
}

// Step implements generate.Stepper.
func (s *decoderStepper) Step(ctx context.Context, tokens [][]int) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(tokens) != len(s.rows) {
		return nil, fmt.Errorf("blip: decoder step with %d token rows for %d sequences", len(tokens), len(s.rows))
	}
	s.seqs = s.seqs[:0]
	for r, t := range tokens {
		s.seqs = append(s.seqs, bert.Seq{Tokens: t, Cache: s.rows[r], Cross: s.cross})
	}
	if s.member != nil {
		return s.member.Step(ctx, s.seqs)
	}
	var err error
	s.out, err = runDecoder(s.dec, &s.ws, &s.last, s.out, s.seqs)
	return s.out, err
}

// runDecoder runs one causal decoder step over seqs (of one or many
// requests) and returns each sequence's last-position logits (views into
// ws, reusing out's backing array).
func runDecoder(dec *bert.Model, ws *bert.Workspace, last *[]float32, out [][]float32, seqs []bert.Seq) ([][]float32, error) {
	hidden, err := dec.Forward(ws, seqs, true)
	if err != nil {
		return nil, err
	}
	h := dec.Config().HiddenSize
	n := len(seqs)
	if cap(*last) < n*h {
		*last = make([]float32, n*h)
	}
	l := (*last)[:n*h]
	at := 0
	for r, s := range seqs {
		at += len(s.Tokens)
		copy(l[r*h:(r+1)*h], hidden[(at-1)*h:at*h])
	}
	logits, err := dec.Logits(ws, l, n)
	if err != nil {
		return nil, err
	}
	v := dec.Config().VocabSize
	out = out[:0]
	for r := 0; r < n; r++ {
		out = append(out, logits[r*v:(r+1)*v:(r+1)*v])
	}
	return out, nil
}

// newDecoderBatcher returns the iteration-level scheduler of a decoder:
// concurrent requests' steps run as one batch (at most 256 sequences).
func newDecoderBatcher(dec *bert.Model) *generate.Batcher[bert.Seq] {
	var ws bert.Workspace
	var last []float32
	var out [][]float32
	return generate.NewBatcher(func(seqs []bert.Seq) ([][]float32, error) {
		var err error
		out, err = runDecoder(dec, &ws, &last, out, seqs)
		return out, err
	}, 5*time.Millisecond, 256)
}

// Reorder implements generate.Stepper: new row r copies old row idx[r].
func (s *decoderStepper) Reorder(idx []int) {
	old := s.rows
	taken := make([]bool, len(old))
	next := make([]*bert.Cache, len(idx))
	// A row kept once moves without a copy; later uses copy it.
	for r, j := range idx {
		if !taken[j] {
			taken[j] = true
			next[r] = old[j]
		}
	}
	for j, t := range taken {
		if !t {
			s.free = append(s.free, old[j])
		}
	}
	for r, j := range idx {
		if next[r] != nil && next[r] == old[j] {
			continue
		}
		var c *bert.Cache
		if k := len(s.free); k > 0 {
			c, s.free = s.free[k-1], s.free[:k-1]
		} else {
			c = &bert.Cache{}
		}
		c.CopyFrom(old[j])
		next[r] = c
	}
	s.rows = next
}
