package generate

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
)

// SamplingDefaults are a checkpoint's generation defaults for the controls
// in Sampling (HF 4.40 GenerationConfig defaults when a key is absent:
// do_sample false, temperature 1, top_k 50, top_p 1, repetition_penalty 1,
// no_repeat_ngram_size 0).
type SamplingDefaults struct {
	DoSample          bool
	Temperature       float64
	TopK              int
	TopP              float64
	RepetitionPenalty float64
	NoRepeatNgramSize int
}

// HFSamplingDefaults returns HF's GenerationConfig defaults.
func HFSamplingDefaults() SamplingDefaults {
	return SamplingDefaults{Temperature: 1, TopK: 50, TopP: 1, RepetitionPenalty: 1}
}

// ResolveSampling merges a request's controls (req; a zero field means
// "the checkpoint's default", req.Sample turns sampling on) over the
// checkpoint's defaults the way generate() does: repetition_penalty and
// no_repeat_ngram_size apply to every strategy; temperature, top_k and
// top_p only when sampling (do_sample from the request or the
// checkpoint). A request that sets temperature, top_k or top_p without
// sampling is refused (HF would silently ignore them). Seed 0 draws a
// random seed. Values that are off (penalty 1, top_p 1, temperature 1)
// are returned as zero.
func ResolveSampling(def SamplingDefaults, req Sampling) (Sampling, error) {
	var s Sampling
	rp := def.RepetitionPenalty
	if req.RepetitionPenalty != 0 {
		rp = req.RepetitionPenalty
	}
	if rp <= 0 && rp != 0 || rp != rp {
		return s, fmt.Errorf("repetition_penalty %g must be a positive number (1 = off)", rp)
	}
	if rp != 1 {
		s.RepetitionPenalty = rp
	}
	s.NoRepeatNgramSize = def.NoRepeatNgramSize
	if req.NoRepeatNgramSize != 0 {
		s.NoRepeatNgramSize = req.NoRepeatNgramSize
	}
	if s.NoRepeatNgramSize < 0 {
		return s, fmt.Errorf("no_repeat_ngram_size %d must not be negative (0 = off)", s.NoRepeatNgramSize)
	}
	if !(req.Sample || def.DoSample) {
		if req.Temperature != 0 || req.TopK != 0 || req.TopP != 0 {
			return s, fmt.Errorf("temperature, top_k and top_p apply only when sampling: turn sampling on (do_sample) or leave them unset")
		}
		return s, nil
	}
	s.Sample = true
	s.Temperature, s.TopK, s.TopP = def.Temperature, def.TopK, def.TopP
	if s.Temperature == 0 { // unset in a hand-built default: HF's 1.0
		s.Temperature = 1
	}
	if s.TopP == 0 {
		s.TopP = 1
	}
	if req.Temperature != 0 {
		s.Temperature = req.Temperature
	}
	if req.TopK != 0 {
		s.TopK = req.TopK
	}
	if req.TopP != 0 {
		s.TopP = req.TopP
	}
	switch {
	case !(s.Temperature > 0) || s.Temperature > 1e6:
		return s, fmt.Errorf("temperature %g must be a positive number", s.Temperature)
	case s.TopK < 0:
		return s, fmt.Errorf("top_k %d must not be negative (0 = off)", s.TopK)
	case !(s.TopP > 0 && s.TopP <= 1):
		return s, fmt.Errorf("top_p %g must be in (0, 1]", s.TopP)
	}
	if s.Temperature == 1 {
		s.Temperature = 0
	}
	if s.TopP == 1 {
		s.TopP = 0
	}
	s.Seed = req.Seed
	if s.Seed == 0 {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			return s, fmt.Errorf("drawing a random seed: %w", err)
		}
		s.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	return s, nil
}
