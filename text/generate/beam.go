package generate

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Beam runs beam search for one prompt exactly as HF 4.40's _beam_search
// with BeamSearchScorer (num_return_sequences = 1):
//
//   - the prompt is fed once on one row; the num_beams initial beams are
//     copies of it with running scores (0, −1e9, −1e9, …), in float32;
//   - each step takes log_softmax of every row's logits, applies the
//     min_new_tokens EOS suppression, adds the running score and keeps the
//     top max(2, 1+len(EOS))·num_beams candidates over beams×vocabulary
//     (ties by lower beam, then lower id);
//   - walking the candidates best first, an EOS candidate ranked below the
//     first num_beams is dropped, otherwise it becomes a finished
//     hypothesis scored sum_logprobs / generated_len^length_penalty with
//     generated_len counting the generated tokens including the EOS;
//     other candidates fill the next num_beams beams;
//   - the search is done once num_beams hypotheses exist and (per
//     EarlyStopping) the worst of them is at least the best candidate's
//     attainable score; at max_new_tokens the running beams are added as
//     hypotheses (generated_len without EOS) unless done.
//
// The best hypothesis is returned (Tokens end with its EOS id if it
// finished with one; Score is HF's sequences_scores). s must hold one row
// with an empty self-attention cache; Beam calls Reorder to expand and
// reorder beams. ctx is checked before every step.
func Beam(ctx context.Context, s Stepper, prompt []int, cfg Config) (*Result, error) {
	if err := cfg.validate(prompt, true); err != nil {
		return nil, err
	}
	n := cfg.NumBeams
	nEOS := len(cfg.EOS)
	k := 2
	if 1+nEOS > k {
		k = 1 + nEOS
	}
	k *= n

	b := &beamState{cfg: &cfg, n: n}
	scores := make([]float32, n) // running sums of log-probs, float32 as in HF
	for i := 1; i < n; i++ {
		scores[i] = -1e9
	}
	seqs := make([][]int, n) // generated tokens per beam
	rowOf := make([]int, n)  // beam → Stepper row holding its state
	newScores := make([]float32, n)
	newSeqs := make([][]int, n)
	newRows := make([]int, n)
	newTok := make([]int, n)
	cands := make([]candidate, 0, k+1)
	next := [][]int{prompt}
	stepToks := make([][]int, n)
	tokBuf := make([]int, n)

	gen := 0
	done := false
	proc := &processor{cfg: &cfg}
	track := cfg.RepetitionPenalty != 0 && cfg.RepetitionPenalty != 1 || cfg.NoRepeatNgramSize > 0
	var full []int
	for {
		if err := ctx.Err(); err != nil {
			return &Result{Finish: FinishCancelled}, fmt.Errorf("generate: beam search stopped after %d tokens: %w", gen, err)
		}
		logits, err := s.Step(ctx, next)
		if err != nil {
			return &Result{Finish: FinishCancelled}, fmt.Errorf("generate: beam step %d: %w", gen, err)
		}
		rows := 1
		if gen > 0 {
			rows = n
		}
		if len(logits) != rows {
			return nil, fmt.Errorf("generate: beam step %d: stepper returned %d rows, want %d", gen, len(logits), rows)
		}
		for _, row := range logits {
			if len(row) == 0 || len(row) != len(logits[0]) {
				return nil, fmt.Errorf("generate: beam step %d: stepper returned rows of unequal or zero width", gen)
			}
		}
		// HF's beam search applies the logits processors to log-softmaxed
		// scores, per beam with the beam's whole sequence.
		for beam := 0; beam < rows; beam++ {
			row := logits[rowOf[beam]]
			kernels.LogSoftmax(row)
			if track {
				full = append(append(full[:0], prompt...), seqs[beam]...)
			}
			proc.apply(row, full, gen)
		}

		// Top-k candidates over beams × vocabulary.
		cands = cands[:0]
		for beam := 0; beam < n; beam++ {
			row := logits[rowOf[beam]]
			for v, lp := range row {
				sc := lp + scores[beam]
				if len(cands) == k && !better(sc, beam, v, cands[k-1]) {
					continue
				}
				cands = insertCandidate(cands, k, candidate{score: sc, beam: beam, tok: v})
			}
		}

		genLen := gen + 1 // cur_len − prompt_len, counting this step's token
		filled := 0
		for rank, c := range cands {
			if cfg.isEOS(c.tok) {
				if rank >= n {
					continue
				}
				hyp := append(append(make([]int, 0, len(seqs[c.beam])+1), seqs[c.beam]...), c.tok)
				b.add(hyp, float64(c.score), genLen, true)
			} else {
				newScores[filled] = c.score
				newTok[filled] = c.tok
				newRows[filled] = rowOf[c.beam]
				newSeqs[filled] = append(append(make([]int, 0, len(seqs[c.beam])+1), seqs[c.beam]...), c.tok)
				filled++
			}
			if filled == n {
				break
			}
		}
		if filled < n {
			return nil, fmt.Errorf("generate: beam step %d: only %d of %d beams could continue (too many EOS candidates)", gen, filled, n)
		}
		done = done || b.isDone(float64(cands[0].score), genLen)
		copy(scores, newScores)
		seqs, newSeqs = newSeqs, seqs
		gen++
		if done || gen >= cfg.MaxNewTokens {
			break
		}
		s.Reorder(newRows)
		for i := range rowOf {
			rowOf[i] = i
			tokBuf[i] = newTok[i]
			stepToks[i] = tokBuf[i : i+1]
		}
		next = stepToks
	}
	if !done {
		for beam := 0; beam < n; beam++ {
			b.add(seqs[beam], float64(scores[beam]), gen, false)
		}
	}
	best := b.best()
	res := &Result{Tokens: best.tokens, Score: float64(float32(best.score)), Finish: FinishLength}
	if best.eos {
		res.Finish = FinishEOS
	}
	return res, nil
}

type candidate struct {
	score float32
	beam  int
	tok   int
}

// better reports whether (score, beam, tok) ranks before c: higher score,
// then lower flattened index.
func better(score float32, beam, tok int, c candidate) bool {
	if score != c.score {
		return score > c.score
	}
	if beam != c.beam {
		return beam < c.beam
	}
	return tok < c.tok
}

// insertCandidate inserts c into the sorted list, keeping at most k.
func insertCandidate(list []candidate, k int, c candidate) []candidate {
	i := len(list)
	for i > 0 && better(c.score, c.beam, c.tok, list[i-1]) {
		i--
	}
	if len(list) < k {
		list = append(list, candidate{})
	}
	copy(list[i+1:], list[i:len(list)-1])
	list[i] = c
	return list
}

type hypothesis struct {
	score  float64
	tokens []int
	eos    bool
	order  int
}

// beamState is HF's BeamHypotheses for one prompt.
type beamState struct {
	cfg   *Config
	n     int
	hyps  []hypothesis
	worst float64
	added int
}

func (b *beamState) add(tokens []int, sumLogprobs float64, genLen int, eos bool) {
	if len(b.hyps) == 0 {
		b.worst = 1e9
	}
	score := sumLogprobs / math.Pow(float64(genLen), b.cfg.LengthPenalty)
	if len(b.hyps) < b.n || score > b.worst {
		b.hyps = append(b.hyps, hypothesis{score: score, tokens: tokens, eos: eos, order: b.added})
		b.added++
		if len(b.hyps) > b.n {
			// Drop the worst (the first among equals, as Python's sort of
			// (score, index) pairs does) and take the next worst.
			idx := make([]int, len(b.hyps))
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(x, y int) bool { return b.hyps[idx[x]].score < b.hyps[idx[y]].score })
			b.worst = b.hyps[idx[1]].score
			drop := idx[0]
			b.hyps = append(b.hyps[:drop], b.hyps[drop+1:]...)
		} else {
			b.worst = math.Min(score, b.worst)
		}
	}
}

func (b *beamState) isDone(bestSum float64, genLen int) bool {
	if len(b.hyps) < b.n {
		return false
	}
	switch b.cfg.EarlyStopping {
	case EarlyStopTrue:
		return true
	case EarlyStopNever:
		denom := genLen
		if b.cfg.LengthPenalty > 0 {
			denom = b.cfg.MaxNewTokens
		}
		return b.worst >= bestSum/math.Pow(float64(denom), b.cfg.LengthPenalty)
	}
	return b.worst >= bestSum/math.Pow(float64(genLen), b.cfg.LengthPenalty)
}

// best returns the highest-scoring hypothesis; among equal scores the one
// added last (Python's stable sort followed by pop()).
func (b *beamState) best() hypothesis {
	best := b.hyps[0]
	for _, h := range b.hyps[1:] {
		if h.score > best.score || (h.score == best.score && h.order > best.order) {
			best = h
		}
	}
	return best
}
