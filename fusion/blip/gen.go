package blip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/text/bert"
	"github.com/glimpse-vlm/glimpse/text/generate"
	"github.com/glimpse-vlm/glimpse/text/tokenizer"
)

// decodeConfig turns request options into generate settings the way HF's
// BLIP generate does: eos = text_config.sep_token_id, pad =
// text_config.pad_token_id, and every unset option from the text decoder's
// own generation config, which HF 4.40 builds from text_config (BLIP's
// generate calls text_decoder.generate; the top-level
// generation_config.json does not reach it). Without max_new_tokens, HF's
// max_length (default 20) bounds the total length, prompt included.
func decodeConfig(tc bert.Config, opts fusion.GenerateOptions, promptLen int) (generate.Config, error) {
	g := tc.Gen
	var c generate.Config
	switch {
	case opts.MaxNewTokens < 0:
		return c, fmt.Errorf("blip: max_new_tokens %d must not be negative", opts.MaxNewTokens)
	case opts.MaxNewTokens > 0:
		c.MaxNewTokens = opts.MaxNewTokens
	case g.MaxNewTokens > 0:
		c.MaxNewTokens = g.MaxNewTokens
	default:
		c.MaxNewTokens = g.MaxLength - promptLen
		if c.MaxNewTokens <= 0 {
			return c, fmt.Errorf("blip: the prompt has %d tokens but text_config max_length is %d: set max_new_tokens", promptLen, g.MaxLength)
		}
	}
	if room := tc.MaxPositions - promptLen; c.MaxNewTokens > room {
		if room <= 0 {
			return c, fmt.Errorf("blip: the prompt has %d tokens, the text model has %d positions", promptLen, tc.MaxPositions)
		}
		c.MaxNewTokens = room // HF would fail with an index error past the position table
	}
	switch {
	case opts.MinNewTokens < 0:
		return c, fmt.Errorf("blip: min_new_tokens %d must not be negative", opts.MinNewTokens)
	case opts.MinNewTokens > 0:
		c.MinNewTokens = opts.MinNewTokens
	case g.MinNewTokens > 0:
		c.MinNewTokens = g.MinNewTokens
	case g.MinLength > promptLen:
		c.MinNewTokens = g.MinLength - promptLen
	}
	c.NumBeams = g.NumBeams
	if opts.NumBeams < 0 {
		return c, fmt.Errorf("blip: num_beams %d must not be negative", opts.NumBeams)
	} else if opts.NumBeams > 0 {
		c.NumBeams = opts.NumBeams
	}
	if c.NumBeams < 1 {
		c.NumBeams = 1
	}
	c.LengthPenalty = g.LengthPenalty
	if opts.LengthPenalty != nil {
		c.LengthPenalty = *opts.LengthPenalty
	}
	switch g.EarlyStopping {
	case "true":
		c.EarlyStopping = generate.EarlyStopTrue
	case "never":
		c.EarlyStopping = generate.EarlyStopNever
	}
	if opts.EarlyStopping != nil {
		c.EarlyStopping = generate.EarlyStopHeuristic
		if *opts.EarlyStopping {
			c.EarlyStopping = generate.EarlyStopTrue
		}
	}
	c.EOS = []int{tc.SEP}
	c.PAD = tc.PAD

	if len(g.Unsupported) > 0 {
		return c, fmt.Errorf("blip: text_config sets generation options this decoder does not implement: %v", g.Unsupported)
	}
	smp, err := generate.ResolveSampling(generate.SamplingDefaults{
		DoSample: g.DoSample, Temperature: g.Temperature, TopK: g.TopK, TopP: g.TopP,
		RepetitionPenalty: g.RepetitionPenalty, NoRepeatNgramSize: g.NoRepeatNgramSize,
	}, generate.Sampling{
		Sample: opts.Sample, Temperature: opts.Temperature, TopK: opts.TopK, TopP: opts.TopP,
		RepetitionPenalty: opts.RepetitionPenalty, NoRepeatNgramSize: opts.NoRepeatNgramSize, Seed: opts.Seed,
	})
	if err != nil {
		return c, fmt.Errorf("blip: %w", err)
	}
	if smp.Sample && c.NumBeams > 1 {
		return c, fmt.Errorf("blip: sampling with num_beams %d (beam sampling) is not supported: set num_beams 1 to sample", c.NumBeams)
	}
	c.Sampling = smp
	return c, nil
}

// decodeIDs runs greedy, sampled or beam search decoding on dec from
// prompt (starting with the decoder start token), cross-attending to
// cross, streaming tokens through onToken (beam search: once the best beam
// is known). With a batcher, every step joins the model's other live
// requests in one batched forward pass.
func decodeIDs(ctx context.Context, dec *bert.Model, cross *bert.CrossKV, prompt []int, cfg generate.Config, onToken func(id int, logprob float32) error, batch ...*generate.Batcher[bert.Seq]) (*generate.Result, error) {
	s := newDecoderStepper(dec, cross)
	if len(batch) > 0 && batch[0] != nil {
		s.member = batch[0].Join()
		defer s.member.Leave()
	}
	return generate.Decode(ctx, s, prompt, cfg, onToken)
}

// finish turns a decoding result into a fusion.Generation: Text is the
// tokenizer's decode of the full ids (start token, prompt and generated,
// special tokens skipped); TokenIDs drop a final eos.
func (b *base) finish(full []int, res *generate.Result, promptTokens int) *fusion.Generation {
	g := &fusion.Generation{PromptTokens: promptTokens}
	ids := res.Tokens
	if res.Finish == generate.FinishEOS && len(ids) > 0 {
		ids = ids[:len(ids)-1]
	}
	g.TokenIDs = append([]int{}, ids...)
	g.Logprobs = res.Logprobs
	if len(g.Logprobs) > len(g.TokenIDs) {
		g.Logprobs = g.Logprobs[:len(g.TokenIDs)]
	}
	switch res.Finish {
	case generate.FinishEOS:
		g.Finish = fusion.FinishEOS
	case generate.FinishCancelled:
		g.Finish = fusion.FinishCancelled
	default:
		g.Finish = fusion.FinishLength
	}
	if b.tok != nil {
		g.Text = b.tok.Decode(append(append([]int{}, full...), res.Tokens...), true)
	}
	return g
}

// finishStreamed is finish with the streamer's stop-string outcome: a
// stopped generation ends before the stop string (Finish "stop").
func (b *base) finishStreamed(full []int, res *generate.Result, promptTokens int, st *streamer) *fusion.Generation {
	g := b.finish(full, res, promptTokens)
	if st.stopped {
		g.Finish = fusion.FinishStop
		g.Text = st.prompt + st.gen.String()[:st.stopAt]
	}
	return g
}

// errStop ends decoding when a stop string appears in the text.
var errStop = errors.New("blip: stop string reached")

// streamer adapts fusion.OnToken to generate's callback and matches stop
// strings. Token texts come from the tokenizer's incremental decoder over
// the full ids (start token, prompt, generated), so the pieces of all
// tokens concatenate to Generation.Text: the first token's piece also
// carries the prompt's text. A token is delivered once the next one (or
// the end) is known, because the tokenizer may hold text back until then;
// with stop strings, the last len(stop)−1 bytes of the generated text are
// held back too, so nothing from a stop string on is ever streamed.
type streamer struct {
	on      fusion.OnToken
	st      *tokenizer.Stream // nil without a tokenizer or need
	eos     int
	stop    []string
	hold    int
	pending *fusion.Token
	carry   string          // prompt text not yet given out
	prompt  string          // the prompt's text
	gen     strings.Builder // generated text so far
	sent    int             // bytes of gen given out
	stopped bool
	stopAt  int // where the stop string starts in gen
}

func (b *base) newStreamer(prefix []int, on fusion.OnToken, stop ...string) (*streamer, error) {
	s := &streamer{on: on, eos: b.cfg.Text.SEP}
	for _, x := range stop {
		if x != "" {
			s.stop = append(s.stop, x)
			s.hold = max(s.hold, len(x)-1)
		}
	}
	if len(s.stop) > 0 && b.tok == nil {
		return nil, fmt.Errorf("blip: stop strings need the model's tokenizer, and none is loaded")
	}
	if (on != nil || len(s.stop) > 0) && b.tok != nil {
		s.st = b.tok.NewStream(true)
		for _, id := range prefix {
			s.carry += s.st.Add(id)
		}
		s.prompt = s.carry
	}
	return s, nil
}

// release returns generated text that is safe to give out, up to end
// (end < 0: all but the held-back tail, backed off to a character start).
func (s *streamer) release(end int) string {
	g := s.gen.String()
	if end < 0 {
		end = len(g) - s.hold
		for end > s.sent && end < len(g) && !utf8.RuneStart(g[end]) {
			end--
		}
	}
	if end <= s.sent {
		return ""
	}
	piece := g[s.sent:end]
	s.sent = end
	return piece
}

// token is generate's per-token callback.
func (s *streamer) token(id int, lp float32) error {
	if id == s.eos || s.stopped { // the final eos is not part of the output
		return nil
	}
	if s.pending != nil {
		s.pending.Text += s.release(-1)
		if err := s.send(); err != nil {
			return err
		}
	}
	if s.st != nil {
		s.gen.WriteString(s.st.Add(id))
	}
	s.pending = &fusion.Token{ID: id, Text: s.carry, Logprob: lp}
	s.carry = ""
	if len(s.stop) > 0 {
		if i := stopIndex(s.gen.String(), s.stop); i >= 0 {
			s.stopped, s.stopAt = true, i
			s.pending.Text += s.release(i)
			return errStop
		}
	}
	return nil
}

func (s *streamer) send() error {
	t := s.pending
	s.pending = nil
	if t == nil || s.on == nil {
		return nil
	}
	return s.on(*t)
}

// end delivers the last token with the text the tokenizer held back.
func (s *streamer) end() error {
	if s.pending == nil {
		return nil
	}
	if !s.stopped && s.st != nil {
		s.gen.WriteString(s.st.Flush())
		if i := stopIndex(s.gen.String(), s.stop); i >= 0 {
			s.stopped, s.stopAt = true, i
			s.pending.Text += s.release(i)
			return s.send()
		}
		s.pending.Text += s.release(s.gen.Len())
	}
	return s.send()
}

// stopIndex is the position of the earliest stop string in text, or -1.
func stopIndex(text string, stop []string) int {
	best := -1
	for _, x := range stop {
		if i := strings.Index(text, x); x != "" && i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}
