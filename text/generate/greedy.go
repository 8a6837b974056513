package generate

import (
	"context"
	"fmt"
	"math"
)

// Greedy decodes one sequence the way HF generate() does with num_beams=1
// and do_sample=False: the prompt is fed once (s must hold one row with an
// empty self-attention cache), then at every step the arg-max of the
// last-position logits is appended (the first maximum on ties, like
// torch.argmax). EOS ids get −inf while fewer than cfg.MinNewTokens tokens
// exist. Decoding stops after an EOS id or cfg.MaxNewTokens tokens.
//
// onToken, if not nil, is called with each token and its log-probability
// as soon as it is chosen; an error from it stops decoding and is returned
// with the tokens so far. ctx is checked before every step; on
// cancellation the partial Result (Finish = FinishCancelled) is returned
// with ctx's error. The Stepper's logits rows are modified in place.
//
// The logits processors of cfg.Sampling run first, in HF's order
// (repetition_penalty, no_repeat_ngram_size, min_new_tokens). With
// cfg.Sample set, the token is drawn instead (HF's sample(): temperature,
// top_k, top_p, softmax, multinomial) from the request's own random stream
// seeded by cfg.Seed; Logprobs are then log_softmax of the warped scores.
func Greedy(ctx context.Context, s Stepper, prompt []int, cfg Config, onToken func(id int, logprob float32) error) (*Result, error) {
	if err := cfg.validate(prompt, false); err != nil {
		return nil, err
	}
	res := &Result{Tokens: make([]int, 0, cfg.MaxNewTokens), Logprobs: make([]float32, 0, cfg.MaxNewTokens)}
	next := [][]int{prompt}
	one := []int{0}
	proc := &processor{cfg: &cfg}
	var smp *sampler
	if cfg.Sample {
		smp = newSampler(&cfg)
	}
	var seq []int
	if cfg.RepetitionPenalty != 0 && cfg.RepetitionPenalty != 1 || cfg.NoRepeatNgramSize > 0 {
		seq = append(make([]int, 0, len(prompt)+cfg.MaxNewTokens), prompt...)
	}
	for step := 0; step < cfg.MaxNewTokens; step++ {
		if err := ctx.Err(); err != nil {
			res.Finish = FinishCancelled
			return res, fmt.Errorf("generate: stopped after %d tokens: %w", len(res.Tokens), err)
		}
		logits, err := s.Step(ctx, next)
		if err != nil {
			if ctx.Err() != nil {
				res.Finish = FinishCancelled
			}
			return res, fmt.Errorf("generate: step %d: %w", step, err)
		}
		if len(logits) != 1 || len(logits[0]) == 0 {
			return res, fmt.Errorf("generate: step %d: stepper returned %d rows, want 1 non-empty row", step, len(logits))
		}
		row := logits[0]
		proc.apply(row, seq, step)
		var id int
		if smp != nil {
			smp.warp(row)
			if id, err = smp.draw(row); err != nil {
				return res, err
			}
		} else {
			id = argmax(row)
		}
		lp := logSoftmaxAt(row, id)
		if seq != nil {
			seq = append(seq, id)
		}
		res.Tokens = append(res.Tokens, id)
		res.Logprobs = append(res.Logprobs, lp)
		res.Score += float64(lp)
		if onToken != nil {
			if err := onToken(id, lp); err != nil {
				if ctx.Err() != nil {
					res.Finish = FinishCancelled
				}
				return res, err
			}
		}
		if cfg.isEOS(id) {
			res.Finish = FinishEOS
			return res, nil
		}
		one[0] = id
		next[0] = one
	}
	res.Finish = FinishLength
	return res, nil
}

// suppress sets the listed ids of a logits row to −inf (ids outside the
// row are ignored).
func suppress(row []float32, ids []int) {
	ninf := float32(math.Inf(-1))
	for _, id := range ids {
		if id >= 0 && id < len(row) {
			row[id] = ninf
		}
	}
}

// argmax returns the index of the first maximum of x (NaN counts as the
// maximum, as in torch.argmax).
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v != v {
			return i
		}
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Decode runs the strategy cfg selects: beam search when NumBeams > 1
// (tokens reach onToken once the best beam is known, with log-probability
// 0), otherwise Greedy (which samples when cfg.Sample is set).
func Decode(ctx context.Context, s Stepper, prompt []int, cfg Config, onToken func(id int, logprob float32) error) (*Result, error) {
	if cfg.NumBeams <= 1 {
		return Greedy(ctx, s, prompt, cfg, onToken)
	}
	res, err := Beam(ctx, s, prompt, cfg)
	if err != nil || onToken == nil {
		return res, err
	}
	for _, id := range res.Tokens {
		if err := onToken(id, 0); err != nil {
			return res, err
		}
	}
	return res, nil
}
