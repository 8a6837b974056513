package blip

import (
	"context"
	"fmt"

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

	// Settings this decoder does not implement yet: refuse rather than
	// silently decode differently from HF.
	rp := g.RepetitionPenalty
	if opts.RepetitionPenalty != 0 {
		rp = opts.RepetitionPenalty
	}
	ngram := g.NoRepeatNgramSize
	if opts.NoRepeatNgramSize != 0 {
		ngram = opts.NoRepeatNgramSize
	}
	switch {
	case opts.Sample || g.DoSample || opts.Temperature != 0 || opts.TopK != 0 || opts.TopP != 0:
		return c, fmt.Errorf("blip: sampling is not supported yet; use greedy or beam search")
	case rp != 1:
		return c, fmt.Errorf("blip: repetition_penalty %g is not supported yet (only 1.0)", rp)
	case ngram != 0:
		return c, fmt.Errorf("blip: no_repeat_ngram_size %d is not supported yet (only 0)", ngram)
	case len(opts.Stop) > 0:
		return c, fmt.Errorf("blip: stop strings are not supported yet")
	case len(g.Unsupported) > 0:
		return c, fmt.Errorf("blip: text_config sets generation options this decoder does not implement: %v", g.Unsupported)
	}
	return c, nil
}

// decodeIDs runs greedy or beam search on dec from prompt (starting with
// the decoder start token), cross-attending to cross, streaming greedy
// tokens through onToken.
func decodeIDs(ctx context.Context, dec *bert.Model, cross *bert.CrossKV, prompt []int, cfg generate.Config, onToken func(id int, logprob float32) error) (*generate.Result, error) {
	s := newDecoderStepper(dec, cross)
	if cfg.NumBeams > 1 {
		res, err := generate.Beam(ctx, s, prompt, cfg)
		if err != nil {
			return res, err
		}
		if onToken != nil { // beam search knows its tokens only at the end
			for _, id := range res.Tokens {
				if err := onToken(id, 0); err != nil {
					return res, err
				}
			}
		}
		return res, nil
	}
	return generate.Greedy(ctx, s, prompt, cfg, onToken)
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

// streamer adapts fusion.OnToken to generate's callback. Token texts come
// from the tokenizer's incremental decoder over the full ids (start token,
// prompt, generated), so the pieces of all tokens concatenate to
// Generation.Text: the first token's piece also carries the prompt's text.
// A token is delivered once the next one (or the end) is known, because
// the tokenizer may hold text back until then.
type streamer struct {
	on      fusion.OnToken
	st      *tokenizer.Stream // nil without a tokenizer
	eos     int
	pending *fusion.Token
	carry   string
}

func (b *base) newStreamer(prefix []int, on fusion.OnToken) *streamer {
	s := &streamer{on: on, eos: b.cfg.Text.SEP}
	if on != nil && b.tok != nil {
		s.st = b.tok.NewStream(true)
		for _, id := range prefix {
			s.carry += s.st.Add(id)
		}
	}
	return s
}

// token is generate's per-token callback.
func (s *streamer) token(id int, lp float32) error {
	if s.on == nil || id == s.eos { // the final eos is not part of the output
		return nil
	}
	if err := s.flushPending(""); err != nil {
		return err
	}
	piece := s.carry
	s.carry = ""
	if s.st != nil {
		piece += s.st.Add(id)
	}
	s.pending = &fusion.Token{ID: id, Text: piece, Logprob: lp}
	return nil
}

func (s *streamer) flushPending(extra string) error {
	if s.pending == nil {
		return nil
	}
	t := *s.pending
	t.Text += extra
	s.pending = nil
	return s.on(t)
}

// end delivers the last token with the text the tokenizer held back.
func (s *streamer) end() error {
	if s.on == nil {
		return nil
	}
	rest := ""
	if s.st != nil {
		rest = s.st.Flush()
	}
	return s.flushPending(rest)
}
