package gpt2

import (
	"context"
	"fmt"
	"time"

	"github.com/glimpse-vlm/glimpse/text/generate"
)

// RowStep is one row's part of a batched decoding step: the row (of any
// session, with its own cache and image state) and the tokens to append.
type RowStep struct {
	Row    *Row
	Tokens []int
}

// StepRows runs one decoding pass over rows of any number of sessions and
// returns each row's last-position logits (vocab_size values each). It is
// not cancellable midway: the rows' caches are written in every layer.
func (m *Model) StepRows(steps []RowStep) ([][]float32, error) {
	p := pass{rows: make([]*Row, len(steps)), tokens: make([][]int, len(steps))}
	for i, s := range steps {
		if s.Row == nil {
			return nil, fmt.Errorf("gpt2: batched step %d has no row", i)
		}
		p.rows[i], p.tokens[i] = s.Row, s.Tokens
	}
	logits, err := m.forward(context.Background(), p)
	if err != nil {
		return nil, err
	}
	v := m.cfg.VocabSize
	out := make([][]float32, len(steps))
	for r := range out {
		out[r] = logits[r*v : (r+1)*v : (r+1)*v]
	}
	return out, nil
}

// NewBatcher returns the model's iteration-level scheduler: concurrent
// sessions' steps run as one pass (at most 256 rows).
func (m *Model) NewBatcher() *generate.Batcher[RowStep] {
	return generate.NewBatcher(m.StepRows, 5*time.Millisecond, 256)
}

// batchedSession is a Session whose steps go through a Batcher.
type batchedSession struct {
	*Session
	member *generate.Member[RowStep]
	steps  []RowStep
}

// Batched returns a Stepper for the session that runs its steps through
// member (batched with the other sessions of the member's Batcher).
func (s *Session) Batched(member *generate.Member[RowStep]) generate.Stepper {
	return &batchedSession{Session: s, member: member}
}

// Step implements generate.Stepper.
func (b *batchedSession) Step(ctx context.Context, tokens [][]int) ([][]float32, error) {
	if len(tokens) != len(b.rows) {
		return nil, fmt.Errorf("gpt2: Step got tokens for %d rows, the session has %d", len(tokens), len(b.rows))
	}
	b.steps = b.steps[:0]
	for r, t := range tokens {
		b.steps = append(b.steps, RowStep{Row: b.rows[r], Tokens: t})
	}
	return b.member.Step(ctx, b.steps)
}
