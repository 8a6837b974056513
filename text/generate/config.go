package generate

import (
	"errors"
	"fmt"
)

// EarlyStopping is Hugging Face's early_stopping setting for beam search.
// The zero value is HF's default (false: the heuristic stop).
type EarlyStopping int

const (
	// EarlyStopHeuristic is early_stopping=False: stop when no running beam
	// can still beat the worst kept hypothesis, estimating the best
	// attainable score with the current length.
	EarlyStopHeuristic EarlyStopping = iota
	// EarlyStopTrue is early_stopping=True: stop as soon as num_beams
	// hypotheses are finished.
	EarlyStopTrue
	// EarlyStopNever is early_stopping="never": stop only when no running
	// beam can beat the worst kept hypothesis (exact bound).
	EarlyStopNever
)

// String returns the HF spelling of the setting.
func (e EarlyStopping) String() string {
	switch e {
	case EarlyStopHeuristic:
		return "false"
	case EarlyStopTrue:
		return "true"
	case EarlyStopNever:
		return "never"
	}
	return fmt.Sprintf("EarlyStopping(%d)", int(e))
}

// Config holds the decoding settings, with HF generate() meanings.
type Config struct {
	// MaxNewTokens is the most tokens generated after the prompt (≥ 1).
	// Callers holding only HF's max_length (total length, prompt
	// included) pass max_length − len(prompt).
	MaxNewTokens int
	// MinNewTokens suppresses every EOS id (logit −inf) until this many
	// tokens have been generated (HF min_new_tokens; min_length −
	// len(prompt) for a total min_length).
	MinNewTokens int
	// NumBeams is the beam width for Beam (1 or more); Greedy ignores it.
	NumBeams int
	// LengthPenalty is the exponent of the generated length dividing a
	// finished hypothesis' summed log-probability (HF default 1.0; the
	// zero value here means 0, i.e. no normalisation, so callers set it).
	LengthPenalty float64
	// EarlyStopping selects Beam's stopping rule.
	EarlyStopping EarlyStopping
	// EOS lists the ids that end a sequence (may be empty: then only the
	// length limit stops decoding).
	EOS []int
	// PAD is the padding id (HF pad_token_id); batch-1 decoding never
	// emits it, batched decoding fills finished rows with it.
	PAD int
	// Sampling holds repetition_penalty, no_repeat_ngram_size and the
	// sampling controls (all off in the zero value).
	Sampling
}

// DefaultConfig returns HF's GenerationConfig defaults with the given
// limit: greedy (one beam), length_penalty 1.0, early_stopping false.
func DefaultConfig(maxNewTokens int) Config {
	return Config{MaxNewTokens: maxNewTokens, NumBeams: 1, LengthPenalty: 1.0}
}

func (c *Config) validate(prompt []int, beam bool) error {
	if len(prompt) == 0 {
		return errors.New("generate: empty prompt (a decoder needs at least its start token)")
	}
	if c.MaxNewTokens < 1 {
		return fmt.Errorf("generate: max_new_tokens = %d, must be at least 1", c.MaxNewTokens)
	}
	if c.MinNewTokens < 0 {
		return fmt.Errorf("generate: min_new_tokens = %d, must not be negative", c.MinNewTokens)
	}
	if beam && c.NumBeams < 1 {
		return fmt.Errorf("generate: num_beams = %d, must be at least 1", c.NumBeams)
	}
	if err := c.Sampling.validate(); err != nil {
		return err
	}
	if beam && c.NumBeams > 1 && c.Sample {
		return fmt.Errorf("generate: sampling with num_beams = %d (beam sampling) is not supported; use num_beams 1 to sample or turn sampling off", c.NumBeams)
	}
	if c.EarlyStopping < EarlyStopHeuristic || c.EarlyStopping > EarlyStopNever {
		return fmt.Errorf("generate: unknown early_stopping setting %d", int(c.EarlyStopping))
	}
	return nil
}

func (c *Config) isEOS(id int) bool {
	for _, e := range c.EOS {
		if e == id {
			return true
		}
	}
	return false
}

// Finish says why decoding stopped.
type Finish string

// Finish reasons.
const (
	FinishEOS       Finish = "eos"
	FinishLength    Finish = "length"
	FinishCancelled Finish = "cancelled"
)

// Result is a decoded sequence.
type Result struct {
	// Tokens are the generated ids after the prompt, including the final
	// EOS id when one was produced.
	Tokens []int
	// Logprobs (Greedy only) are the log-softmax values of Tokens under
	// the processed logits (HF compute_transition_scores).
	Logprobs []float32
	// Finish is why decoding stopped.
	Finish Finish
	// Score is, for Beam, HF's sequences_scores of the returned hypothesis
	// (summed log-probabilities / generated_len^length_penalty); for
	// Greedy, the sum of Logprobs.
	Score float64
}
