package generate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/glimpse-vlm/glimpse/kernels"
)

// Sampling holds the decoding controls beyond greedy and beam search, with
// HF generate() meanings. Its zero value turns everything off.
type Sampling struct {
	// RepetitionPenalty (HF repetition_penalty; 0 or 1 = off) divides the
	// positive and multiplies the negative scores of every id already in
	// the sequence (prompt included).
	RepetitionPenalty float64
	// NoRepeatNgramSize (HF no_repeat_ngram_size; 0 = off) bans any token
	// that would repeat an n-gram of the sequence (prompt included).
	NoRepeatNgramSize int
	// Sample draws the next token from the processed distribution
	// (do_sample) instead of taking the arg-max.
	Sample bool
	// Temperature divides the scores before sampling (0 or 1 = off).
	Temperature float64
	// TopK keeps only the k best scores (ties at the k-th kept) when
	// sampling (0 = off). HF's default is 50: callers resolve it.
	TopK int
	// TopP keeps the smallest set of best tokens whose probability reaches
	// TopP when sampling (0 or 1 = off).
	TopP float64
	// Seed seeds the request's own random stream (a PCG), so the same seed
	// and settings give the same tokens whatever else runs.
	Seed uint64
}

func (s *Sampling) validate() error {
	switch {
	case s.RepetitionPenalty < 0 || math.IsNaN(s.RepetitionPenalty) || math.IsInf(s.RepetitionPenalty, 0):
		return fmt.Errorf("generate: repetition_penalty %g must be a positive number", s.RepetitionPenalty)
	case s.NoRepeatNgramSize < 0:
		return fmt.Errorf("generate: no_repeat_ngram_size %d must not be negative", s.NoRepeatNgramSize)
	case s.Temperature < 0 || math.IsNaN(s.Temperature) || math.IsInf(s.Temperature, 0):
		return fmt.Errorf("generate: temperature %g must be a positive number", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("generate: top_k %d must not be negative", s.TopK)
	case s.TopP < 0 || s.TopP > 1 || math.IsNaN(s.TopP):
		return fmt.Errorf("generate: top_p %g must be in (0, 1]", s.TopP)
	}
	return nil
}

// processor applies HF's logits processors (not the sampling warpers) in
// generate()'s order: repetition_penalty, no_repeat_ngram_size,
// min_new_tokens.
type processor struct {
	cfg    *Config
	seen   []bool // scratch: ids already penalised this step
	banned []int
}

// apply processes one row's scores in place. seq is the row's whole
// sequence so far (prompt + generated), gen the number generated.
func (p *processor) apply(row []float32, seq []int, gen int) {
	c := p.cfg
	if rp := float32(c.RepetitionPenalty); c.RepetitionPenalty != 0 && c.RepetitionPenalty != 1 {
		if len(p.seen) < len(row) {
			p.seen = make([]bool, len(row))
		}
		for _, id := range seq {
			if id < 0 || id >= len(row) || p.seen[id] {
				continue
			}
			p.seen[id] = true
			if s := row[id]; s < 0 {
				row[id] = s * rp
			} else {
				row[id] = s / rp
			}
		}
		for _, id := range seq {
			if id >= 0 && id < len(row) {
				p.seen[id] = false
			}
		}
	}
	if n := c.NoRepeatNgramSize; n > 0 {
		p.banned = bannedNgramTokens(p.banned[:0], seq, n)
		suppress(row, p.banned)
	}
	if gen < c.MinNewTokens {
		suppress(row, c.EOS)
	}
}

// bannedNgramTokens appends to dst the tokens that would complete an
// n-gram already present in seq (HF _calc_banned_ngram_tokens).
func bannedNgramTokens(dst, seq []int, n int) []int {
	cur := len(seq)
	if cur+1 < n {
		return dst
	}
	prefix := seq[cur+1-n:]
	for i := 0; i+n <= cur; i++ {
		match := true
		for j := 0; j < n-1; j++ {
			if seq[i+j] != prefix[j] {
				match = false
				break
			}
		}
		if match {
			dst = append(dst, seq[i+n-1])
		}
	}
	return dst
}

// sampler applies HF's sampling warpers (temperature, top_k, top_p, in that
// order) and draws a token from the resulting distribution with the
// request's own random stream.
type sampler struct {
	cfg  *Config
	rng  *rand.Rand
	idx  []int
	prob []float64
	heap []float32
}

func newSampler(cfg *Config) *sampler {
	return &sampler{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
}

// warp applies temperature, top_k (min_tokens_to_keep 1) and top_p to the
// processed scores in place, as HF's warpers do.
func (s *sampler) warp(row []float32) {
	c := s.cfg
	ninf := float32(math.Inf(-1))
	if t := c.Temperature; t != 0 && t != 1 {
		ft := float32(t)
		for i := range row {
			row[i] /= ft
		}
	}
	if c.TopK > 0 && c.TopK < len(row) {
		kth := kthLargest(row, c.TopK, &s.heap)
		for i, v := range row {
			if v < kth {
				row[i] = ninf
			}
		}
	}
	if p := c.TopP; p > 0 && p < 1 {
		s.sortIdx(row) // best first
		// HF sorts ascending and removes tokens whose cumulative
		// probability (from the worst) is ≤ 1 − top_p, keeping the best.
		probs := s.softmax(row)
		n := len(s.idx)
		cum := 0.0
		limit := 1 - p
		for j := n - 1; j >= 1; j-- { // j = 0 (the best) is always kept
			i := s.idx[j]
			cum += probs[i]
			if cum <= limit {
				row[i] = ninf
			} else {
				break
			}
		}
	}
}

// sortIdx sets s.idx to the ids of the scores above −inf, by descending
// score, ties by lower id (masked ids never matter to top_p).
func (s *sampler) sortIdx(row []float32) {
	s.idx = s.idx[:0]
	ninf := float32(math.Inf(-1))
	for i, v := range row {
		if v != ninf {
			s.idx = append(s.idx, i)
		}
	}
	sort.SliceStable(s.idx, func(a, b int) bool { return row[s.idx[a]] > row[s.idx[b]] })
}

// kthLargest returns the k-th largest value of row (1 ≤ k ≤ len(row)),
// with a size-k min-heap in *h.
func kthLargest(row []float32, k int, h *[]float32) float32 {
	heap := (*h)[:0]
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(heap) {
				return
			}
			m := l
			if r := l + 1; r < len(heap) && heap[r] < heap[l] {
				m = r
			}
			if heap[i] <= heap[m] {
				return
			}
			heap[i], heap[m] = heap[m], heap[i]
			i = m
		}
	}
	for _, v := range row {
		if len(heap) < k {
			heap = append(heap, v)
			for i := len(heap) - 1; i > 0; { // sift up
				p := (i - 1) / 2
				if heap[p] <= heap[i] {
					break
				}
				heap[p], heap[i] = heap[i], heap[p]
				i = p
			}
		} else if v > heap[0] {
			heap[0] = v
			down(0)
		}
	}
	*h = heap
	return heap[0]
}

// softmax returns the float64 probabilities of row (scratch owned by s).
func (s *sampler) softmax(row []float32) []float64 {
	if cap(s.prob) < len(row) {
		s.prob = make([]float64, len(row))
	}
	p := s.prob[:len(row)]
	mx := math.Inf(-1)
	for _, v := range row {
		if float64(v) > mx {
			mx = float64(v)
		}
	}
	sum := 0.0
	for i, v := range row {
		e := 0.0
		if !math.IsInf(float64(v), -1) {
			e = math.Exp(float64(v) - mx)
		}
		p[i] = e
		sum += e
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// errNoToken is returned when every token has been banned.
var errNoToken = errors.New("generate: every token is banned by the decoding settings (no_repeat_ngram_size, min_new_tokens, top_k/top_p); relax them")

// draw samples an id from the warped scores (multinomial by inverse CDF
// over ids in order, with one uniform number from the request's stream).
func (s *sampler) draw(row []float32) (int, error) {
	p := s.softmax(row)
	u := s.rng.Float64()
	cum := 0.0
	last := -1
	for i, v := range p {
		if v <= 0 || math.IsNaN(v) {
			continue
		}
		last = i
		cum += v
		if u < cum {
			return i, nil
		}
	}
	if last < 0 {
		return 0, errNoToken
	}
	return last, nil // rounding: the total fell just short of u
}

// logSoftmaxAt returns log_softmax(row)[id] and leaves row log-softmaxed.
func logSoftmaxAt(row []float32, id int) float32 {
	kernels.LogSoftmax(row)
	return row[id]
}
