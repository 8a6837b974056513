package vitgpt2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/text/generate"
	"github.com/glimpse-vlm/glimpse/text/gpt2"
)

// decodeConfig resolves the decoding settings of one request: opts first
// (zero = unset), then the checkpoint's Generation, then HF's defaults.
// promptLen counts the decoder prompt (start token + prefix).
func (m *Model) decodeConfig(opts fusion.GenerateOptions, promptLen int) (generate.Config, error) {
	g := m.gen
	if len(g.Unsupported) > 0 {
		return generate.Config{}, fmt.Errorf("vitgpt2: the checkpoint's generation settings %s are not implemented by Glimpse's decoder (it would not produce HF's output); remove them from generation_config.json",
			strings.Join(g.Unsupported, ", "))
	}
	switch {
	case opts.MaxNewTokens < 0 || opts.MinNewTokens < 0 || opts.NumBeams < 0:
		return generate.Config{}, fmt.Errorf("vitgpt2: negative option (max_new_tokens %d, min_new_tokens %d, num_beams %d)", opts.MaxNewTokens, opts.MinNewTokens, opts.NumBeams)
	}
	c := generate.Config{EOS: g.EOSTokenIDs, PAD: g.PadTokenID, NumBeams: g.NumBeams, LengthPenalty: g.LengthPenalty}
	switch {
	case opts.MaxNewTokens > 0:
		c.MaxNewTokens = opts.MaxNewTokens
	case g.MaxNewTokens > 0:
		c.MaxNewTokens = g.MaxNewTokens
	default:
		// max_length counts the decoder prompt; HF still makes one step
		// when the prompt already reaches it.
		c.MaxNewTokens = max(g.MaxLength-promptLen, 1)
	}
	// min_new_tokens (the request's, else the checkpoint's) and min_length
	// (counting the decoder prompt) are separate HF logits processors: the
	// stricter one wins.
	c.MinNewTokens = g.MinNewTokens
	if opts.MinNewTokens > 0 {
		c.MinNewTokens = opts.MinNewTokens
	}
	c.MinNewTokens = max(c.MinNewTokens, g.MinLength-promptLen, 0)
	if opts.NumBeams > 0 {
		c.NumBeams = opts.NumBeams
	}
	if opts.LengthPenalty != nil {
		c.LengthPenalty = *opts.LengthPenalty
	}
	switch g.EarlyStopping {
	case checkpoint.EarlyStoppingTrue:
		c.EarlyStopping = generate.EarlyStopTrue
	case checkpoint.EarlyStoppingNever:
		c.EarlyStopping = generate.EarlyStopNever
	}
	if opts.EarlyStopping != nil {
		c.EarlyStopping = generate.EarlyStopHeuristic
		if *opts.EarlyStopping {
			c.EarlyStopping = generate.EarlyStopTrue
		}
	}
	smp, err := generate.ResolveSampling(generate.SamplingDefaults{
		DoSample: g.DoSample, Temperature: g.Temperature, TopK: g.TopK, TopP: g.TopP,
		RepetitionPenalty: g.RepetitionPenalty, NoRepeatNgramSize: g.NoRepeatNgramSize,
	}, generate.Sampling{
		Sample: opts.Sample, Temperature: opts.Temperature, TopK: opts.TopK, TopP: opts.TopP,
		RepetitionPenalty: opts.RepetitionPenalty, NoRepeatNgramSize: opts.NoRepeatNgramSize, Seed: opts.Seed,
	})
	if err != nil {
		return c, fmt.Errorf("vitgpt2: %w", err)
	}
	if smp.Sample && c.NumBeams > 1 {
		return c, fmt.Errorf("vitgpt2: sampling with num_beams %d (beam sampling) is not supported: set num_beams 1 to sample", c.NumBeams)
	}
	c.Sampling = smp
	if n := promptLen + c.MaxNewTokens; n > m.cfg.Decoder.NPositions {
		return c, fmt.Errorf("vitgpt2: prompt (%d tokens) + max_new_tokens (%d) exceed the decoder's n_positions %d", promptLen, c.MaxNewTokens, m.cfg.Decoder.NPositions)
	}
	return c, nil
}

// Generate runs HF generate() for one image: the decoder prompt is
// decoder_start_token_id followed by prefix (token ids, no special
// tokens; as HF, the start token is not added again when prefix already
// begins with it), then greedy or beam search per opts and the checkpoint's
// defaults (greedy, sampled or beam search, with repetition_penalty and
// no_repeat_ngram_size). It returns what generate() returns for the row
// (prompt + generated ids, a final eos included) and the decoding result.
// onToken (greedy and sampling only; may be nil) sees each token as it is
// chosen. Concurrent calls share batched decoding steps.
func (m *Model) Generate(ctx context.Context, img *fusion.ImageState, prefix []int, opts fusion.GenerateOptions,
	onToken func(id int, logprob float32) error) ([]int, *generate.Result, error) {
	// HF prepends decoder_start_token_id unless the given decoder ids
	// already start with it.
	prompt := append([]int{m.gen.DecoderStartTokenID}, prefix...)
	if len(prefix) > 0 && prefix[0] == m.gen.DecoderStartTokenID {
		prompt = append([]int(nil), prefix...)
	}
	for _, id := range prefix {
		if id < 0 || id >= m.cfg.Decoder.VocabSize {
			return nil, nil, fmt.Errorf("vitgpt2: prompt token id %d outside the decoder vocabulary [0, %d)", id, m.cfg.Decoder.VocabSize)
		}
	}
	cfg, err := m.decodeConfig(opts, len(prompt))
	if err != nil {
		return nil, nil, err
	}
	cross, err := m.cross(img)
	if err != nil {
		return nil, nil, err
	}
	var s generate.Stepper = m.dec.NewSession(cross)
	if m.batch != nil {
		member := m.batch.Join()
		defer member.Leave()
		s = s.(*gpt2.Session).Batched(member)
	}
	var res *generate.Result
	if cfg.NumBeams > 1 {
		res, err = generate.Beam(ctx, s, prompt, cfg)
	} else {
		res, err = generate.Greedy(ctx, s, prompt, cfg, onToken)
	}
	if res == nil {
		return nil, nil, err
	}
	return append(prompt, res.Tokens...), res, err
}

// errStop ends decoding when a stop string appears.
var errStop = errors.New("stop string reached")

// Caption writes a caption for img, continuing prompt when it is not
// empty (the prefix is tokenized without special tokens and follows the
// decoder start token, as HF generate(decoder_input_ids=...) continues
// it). Generation.Text is GPT2Tokenizer.decode(full ids,
// skip_special_tokens=True) (prefix included, spaces cleaned up, not
// stripped); TokenIDs are the generated ids without a final eos. Tokens are
// streamed to on as they are chosen (greedy) or once the best beam is known.
func (m *Model) Caption(ctx context.Context, img *fusion.ImageState, prompt string, opts fusion.GenerateOptions, on fusion.OnToken) (*fusion.Generation, error) {
	if m.text == nil {
		return nil, errors.New("vitgpt2: no tokenizer (the model was built with New, not Load)")
	}
	var prefix []int
	if prompt != "" {
		var err error
		if prefix, err = m.text.encode(prompt); err != nil {
			return nil, fmt.Errorf("vitgpt2: tokenizing the prompt: %w", err)
		}
	}
	isEOS := func(id int) bool {
		for _, e := range m.gen.EOSTokenIDs {
			if e == id {
				return true
			}
		}
		return false
	}
	// Streaming: text pieces from the incremental detokenizer. Each token
	// is sent when the next one is known, carrying the text that became
	// final, so the detokenizer's held-back tail joins the last token and
	// the pieces add up to the generated text. With stop strings, the last
	// len(stop)-1 bytes are held back too, so nothing past a stop string is
	// ever streamed; a stop string ends greedy decoding.
	st := m.text.stream()
	hold := 0
	for _, s := range opts.Stop {
		hold = max(hold, len(s)-1)
	}
	var generated strings.Builder
	var pending *fusion.Token
	stopped, sent := false, 0 // sent: bytes of the generated text given out
	// release returns the generated text that is safe to stream now, up to
	// end (or len−hold, backed off to a character start).
	release := func(end int) string {
		g := generated.String()
		if end < 0 {
			end = len(g) - hold
			for end > sent && end < len(g) && !utf8.RuneStart(g[end]) {
				end--
			}
		}
		if end <= sent {
			return ""
		}
		piece := g[sent:end]
		sent = end
		return piece
	}
	send := func() error {
		if pending == nil || on == nil {
			pending = nil
			return nil
		}
		t := *pending
		pending = nil
		return on(t)
	}
	emit := func(id int, lp float32) error {
		if isEOS(id) {
			return nil
		}
		if pending != nil {
			pending.Text = release(-1)
			if err := send(); err != nil {
				return err
			}
		}
		generated.WriteString(st.add(id))
		pending = &fusion.Token{ID: id, Logprob: lp}
		if i := stopIndex(generated.String(), opts.Stop); i >= 0 {
			stopped = true
			pending.Text = release(i)
			return errStop
		}
		return nil
	}
	beam := opts.NumBeams > 1 || (opts.NumBeams == 0 && m.gen.NumBeams > 1)
	var cb func(int, float32) error
	if !beam {
		cb = emit
	}
	full, res, err := m.Generate(ctx, img, prefix, opts, cb)
	if err != nil && !(stopped && errors.Is(err, errStop)) {
		return nil, err
	}
	if beam {
		for _, id := range res.Tokens {
			if err := emit(id, 0); err != nil {
				if errors.Is(err, errStop) {
					break
				}
				return nil, err
			}
		}
	}
	if pending != nil {
		if !stopped {
			generated.WriteString(st.flush())
			pending.Text = release(generated.Len())
		}
		if err := send(); err != nil {
			return nil, err
		}
	}
	gen := &fusion.Generation{PromptTokens: len(full) - len(res.Tokens), Finish: fusion.FinishLength}
	ids := res.Tokens
	if res.Finish == generate.FinishEOS && len(ids) > 0 && isEOS(ids[len(ids)-1]) {
		ids = ids[:len(ids)-1]
		gen.Finish = fusion.FinishEOS
	}
	gen.TokenIDs = append([]int{}, ids...)
	if opts.Logprobs && !beam {
		gen.Logprobs = append([]float32(nil), res.Logprobs[:len(ids)]...)
	}
	gen.Text = m.text.decode(full)
	if stopped {
		gen.Finish = fusion.FinishStop
		promptText := m.text.decode(full[:gen.PromptTokens])
		if strings.HasPrefix(gen.Text, promptText) {
			rest := gen.Text[len(promptText):]
			if i := stopIndex(rest, opts.Stop); i >= 0 {
				rest = rest[:i]
			}
			gen.Text = promptText + rest
		}
	}
	return gen, nil
}

// Tokenize returns the ids GPT2Tokenizer(text) makes (GPT-2 adds no
// special tokens by default).
func (m *Model) Tokenize(text string) ([]int, error) {
	if m.text == nil {
		return nil, errors.New("vitgpt2: no tokenizer (the model was built with New, not Load)")
	}
	return m.text.encodeSpecial(text)
}

// stopIndex is the position of the earliest stop string in text, or -1.
func stopIndex(text string, stop []string) int {
	best := -1
	for _, s := range stop {
		if i := strings.Index(text, s); s != "" && i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}
