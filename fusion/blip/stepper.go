package blip

import (
	"context"
	"fmt"

	"github.com/glimpse-vlm/glimpse/text/bert"
)

// decoderStepper is one request's decoding state in a BLIP text decoder:
// rows (sequences) each with its own self-attention KV cache, all sharing
// the request's cross-attention keys and values. It implements
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
	hidden, err := s.dec.Forward(&s.ws, s.seqs, true)
	if err != nil {
		return nil, err
	}
	h := s.dec.Config().HiddenSize
	n := len(tokens)
	if cap(s.last) < n*h {
		s.last = make([]float32, n*h)
	}
	s.last = s.last[:n*h]
	at := 0
	for r, t := range tokens {
		at += len(t)
		copy(s.last[r*h:(r+1)*h], hidden[(at-1)*h:at*h])
	}
	logits, err := s.dec.Logits(&s.ws, s.last, n)
	if err != nil {
		return nil, err
	}
	v := s.dec.Config().VocabSize
	s.out = s.out[:0]
	for r := 0; r < n; r++ {
		s.out = append(s.out, logits[r*v:(r+1)*v:(r+1)*v])
	}
	return s.out, nil
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
