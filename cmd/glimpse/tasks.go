package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/glimpse-vlm/glimpse/client"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
	"github.com/glimpse-vlm/glimpse/server"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// genFlags are the decoding options.
type genFlags struct {
	maxNew, minNew, beams, topK, noRepeat int
	sample, logprobs                      bool
	temperature, topP, repPen, lenPen     float64
	seed                                  uint64
	stop                                  stringList
	fs                                    *flag.FlagSet
}

func (g *genFlags) bind(fs *flag.FlagSet) {
	g.fs = fs
	fs.IntVar(&g.maxNew, "max-new-tokens", 0, "most tokens to generate (default: the checkpoint's)")
	fs.IntVar(&g.minNew, "min-new-tokens", 0, "fewest tokens before end-of-sequence")
	fs.IntVar(&g.beams, "num-beams", 0, "beam search width (default: the checkpoint's, usually 1 = greedy)")
	fs.BoolVar(&g.sample, "do-sample", false, "sample instead of greedy/beam decoding")
	fs.BoolVar(&g.sample, "sample", false, "same as --do-sample")
	fs.Float64Var(&g.temperature, "temperature", 1, "sampling temperature (> 0)")
	fs.IntVar(&g.topK, "top-k", 0, "sample among the k most likely tokens (0 = the checkpoint's default; HF's is 50)")
	fs.Float64Var(&g.topP, "top-p", 1, "nucleus sampling threshold in (0, 1]")
	fs.Float64Var(&g.repPen, "repetition-penalty", 1, "penalty on repeated tokens (> 0; 1 = off)")
	fs.Float64Var(&g.lenPen, "length-penalty", 1, "beam search length penalty")
	fs.IntVar(&g.noRepeat, "no-repeat-ngram-size", 0, "never repeat an n-gram of this size (0 = off)")
	fs.Uint64Var(&g.seed, "seed", 0, "random seed for sampling: the same seed and options give the same output (unset: a random seed)")
	fs.Var(&g.stop, "stop", "stop at this string (repeatable)")
	fs.BoolVar(&g.logprobs, "logprobs", false, "report each token's log-probability")
}

// options is the request's GenerationOptions; flags not given stay unset.
func (g *genFlags) options() *pb.GenerationOptions {
	o := &pb.GenerationOptions{
		MaxNewTokens: int32(g.maxNew), MinNewTokens: int32(g.minNew), NumBeams: int32(g.beams),
		DoSample: g.sample, TopK: int32(g.topK), NoRepeatNgramSize: int32(g.noRepeat),
		Stop: g.stop, Logprobs: g.logprobs,
	}
	g.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "temperature":
			o.Temperature = &g.temperature
		case "top-p":
			o.TopP = &g.topP
		case "repetition-penalty":
			o.RepetitionPenalty = &g.repPen
		case "length-penalty":
			o.LengthPenalty = &g.lenPen
		case "seed":
			o.Seed = &g.seed
		}
	})
	return o
}

// genOutput is the --json output of caption, ask and generate.
type genOutput struct {
	Text         string    `json:"text"`
	TokenIDs     []int32   `json:"token_ids"`
	FinishReason string    `json:"finish_reason"`
	Logprobs     []float32 `json:"logprobs,omitempty"`
}

func newGenOutput(text string, ids []int32, f pb.FinishReason, lp []float32) genOutput {
	if ids == nil {
		ids = []int32{}
	}
	return genOutput{Text: text, TokenIDs: ids, FinishReason: finishName(f), Logprobs: lp}
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func withTimeout(t *target) (context.Context, context.CancelFunc) {
	if t.timeout > 0 {
		return context.WithTimeout(context.Background(), t.timeout)
	}
	return context.WithCancel(context.Background())
}

const targetHelp = `
Where the request runs:
  --addr HOST:PORT   a Glimpse server (default 127.0.0.1:50051 or $GLIMPSE_ADDR);
                     several comma-separated addresses are balanced round-robin;
                     --model NAME then picks a served model
  --model DIR        a checkpoint folder run in-process, without a server
                     (a --model NAME that is not a folder picks a model of the
                     default server)
`

func init() {
	register(&verb{name: "caption", summary: "caption an image", run: runCaption, usage: `Usage: glimpse caption [--model DIR | --addr HOST:PORT] [--prompt TEXT] [options] [--json] IMAGE

Writes a caption for IMAGE. With --prompt (BLIP, ViT-GPT2) the caption
continues that text. --json prints {"text": ..., "token_ids": [...], "finish_reason": ...}.
` + targetHelp + genHelp + `
Examples:
  glimpse caption cat.jpg
  glimpse caption --model ./blip-image-captioning-base --prompt "a picture of" cat.jpg
  glimpse caption cat.jpg --num-beams 3 --max-new-tokens 20 --json
`})
	register(&verb{name: "ask", summary: "answer a question about an image", run: runAsk, usage: `Usage: glimpse ask [--model DIR | --addr HOST:PORT] [options] [--json] IMAGE QUESTION

Answers QUESTION about IMAGE (a BLIP VQA model). Words after IMAGE are
joined into the question. --json prints {"text": ..., "token_ids": [...], "finish_reason": ...}.
` + targetHelp + genHelp + `
Examples:
  glimpse ask --addr localhost:50051 --model blip-vqa cat.jpg "what animal is this?"
  glimpse ask --model ./blip-vqa-base --json cat.jpg how many cats are there
`})
	register(&verb{name: "match", summary: "score texts against an image", run: runMatch, usage: `Usage: glimpse match [--model DIR | --addr HOST:PORT] [--json] IMAGE TEXT...

Scores each TEXT against IMAGE: BLIP retrieval models give the ITM
probability of a match and the ITC cosine; CLIP gives the cosine and the
logit (exp(logit_scale)·cosine). --json prints
{"scores": [{"text": ..., "itm_probability": p, "cosine": c, "logit": l}, ...]}
with the fields the model provides.
` + targetHelp + `
Examples:
  glimpse match --model ./clip-vit-base-patch32 cat.jpg "a photo of a cat" "a photo of a dog"
  glimpse match --addr localhost:50051 --model blip-itm --json cat.jpg "a cat on a sofa"
`})
	register(&verb{name: "embed", summary: "embed images and texts", run: runEmbed, usage: `Usage: glimpse embed [--model DIR | --addr HOST:PORT] [--json] [--image IMAGE]... [--text TEXT]... [TEXT...]

Prints L2-normalised embeddings (CLIP, BLIP retrieval models). Positional
arguments are more texts. --json prints {"images": [[...]], "texts": [[...]]}.
` + targetHelp + `
Examples:
  glimpse embed --model ./clip-vit-base-patch32 --json --image cat.jpg --text "a cat" --text "a dog"
  glimpse embed --addr localhost:50051 --model clip --text "a rocket"
`})
	register(&verb{name: "generate", summary: "stream text for an image and a prompt", run: runGenerate, usage: `Usage: glimpse generate [--model DIR | --addr HOST:PORT] [--task caption|answer] [options] [--json] IMAGE [TEXT...]

Streams the model's output to stdout as it is decoded. The prompt is IMAGE
followed by TEXT (joined with spaces): a caption prefix for captioning
models, the question for VQA models. --json prints the final result as
{"text", "token_ids", "finish_reason", "usage"} instead of streaming.
` + targetHelp + genHelp + `
Examples:
  glimpse generate cat.jpg "a picture of"
  glimpse generate --addr localhost:50051 --model blip-vqa cat.jpg "what is on the sofa?"
`})
	register(&verb{name: "models", summary: "list the models a server (or folders) serve", run: runModels, usage: `Usage: glimpse models [--addr HOST:PORT | --model DIR...] [--json]

Lists the models with their family, tasks and state, and the server's
limits. With --model DIR (repeatable) the folders are loaded in-process.

Examples:
  glimpse models
  glimpse models --model ./blip-base --model ./clip --json
`})
}

const genHelp = `
Decoding options (default: the checkpoint's generation_config.json):
  --max-new-tokens N  --min-new-tokens N  --num-beams N  --length-penalty X
  --do-sample (--sample)  --temperature X  --top-k N  --top-p X  --seed N
  --repetition-penalty X  --no-repeat-ngram-size N  --stop TEXT (repeatable)  --logprobs
  --timeout D
`

type taskCmd struct {
	t    target
	g    genFlags
	json bool
	fs   *flag.FlagSet
}

func newTaskCmd(e *env, name string, gen bool) *taskCmd {
	c := &taskCmd{fs: newFlags(name)}
	c.t.bind(c.fs, e)
	if gen {
		c.g.bind(c.fs)
	}
	c.fs.BoolVar(&c.json, "json", false, "machine-readable JSON output")
	return c
}

// call runs f with a client for the command's target (a server, or the
// model folder in-process) under the command's --timeout.
func (c *taskCmd) call(e *env, f func(context.Context, *client.Client) error) error {
	ctx, cancel := withTimeout(&c.t)
	defer cancel()
	cl, done, err := c.t.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	return f(ctx, cl)
}

// generated is what Caption and Answer results have in common.
type generated interface {
	GetText() string
	GetTokenIds() []int32
	GetFinishReason() pb.FinishReason
	GetLogprobs() []float32
}

// printGen prints a caption or an answer: its text, or with --json the
// text, token ids, finish reason and logprobs.
func (c *taskCmd) printGen(e *env, r generated) error {
	if c.json {
		return writeJSON(e.stdout, newGenOutput(r.GetText(), r.GetTokenIds(), r.GetFinishReason(), r.GetLogprobs()))
	}
	_, err := fmt.Fprintln(e.stdout, r.GetText())
	return err
}

func runCaption(e *env, args []string) error {
	c := newTaskCmd(e, "caption", true)
	prompt := c.fs.String("prompt", "", "text the caption continues")
	pos, err := parse(c.fs, args, "")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one IMAGE, got %d arguments %q", len(pos), pos)
	}
	return c.call(e, func(ctx context.Context, cl *client.Client) error {
		r, err := cl.Caption(ctx, client.ImageFile(pos[0]), *prompt, c.g.options())
		if err != nil {
			return err
		}
		return c.printGen(e, r)
	})
}

func runAsk(e *env, args []string) error {
	c := newTaskCmd(e, "ask", true)
	pos, err := parse(c.fs, args, "")
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("want IMAGE QUESTION, got %d arguments", len(pos))
	}
	return c.call(e, func(ctx context.Context, cl *client.Client) error {
		r, err := cl.Answer(ctx, client.ImageFile(pos[0]), strings.Join(pos[1:], " "), c.g.options())
		if err != nil {
			return err
		}
		return c.printGen(e, r)
	})
}

// scoreJSON is one entry of match --json.
type scoreJSON struct {
	Text           string   `json:"text"`
	ITMProbability *float32 `json:"itm_probability,omitempty"`
	Cosine         *float32 `json:"cosine,omitempty"`
	Logit          *float32 `json:"logit,omitempty"`
}

func runMatch(e *env, args []string) error {
	c := newTaskCmd(e, "match", false)
	pos, err := parse(c.fs, args, "")
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("want IMAGE TEXT..., got %d arguments", len(pos))
	}
	var r *pb.MatchResponse
	err = c.call(e, func(ctx context.Context, cl *client.Client) (err error) {
		r, err = cl.Match(ctx, client.ImageFile(pos[0]), pos[1:]...)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Scores []scoreJSON `json:"scores"`
	}{Scores: []scoreJSON{}}
	for _, s := range r.GetScores() {
		out.Scores = append(out.Scores, scoreJSON{Text: s.GetText(), ITMProbability: s.ItmProbability, Cosine: s.Cosine, Logit: s.Logit})
	}
	if c.json {
		return writeJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ITM\tCOSINE\tLOGIT\tTEXT")
	opt := func(p *float32) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatFloat(float64(*p), 'f', 4, 32)
	}
	for _, s := range out.Scores {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", opt(s.ITMProbability), opt(s.Cosine), opt(s.Logit), s.Text)
	}
	return tw.Flush()
}

func runEmbed(e *env, args []string) error {
	c := newTaskCmd(e, "embed", false)
	var images, texts stringList
	c.fs.Var(&images, "image", "an image to embed (repeatable)")
	c.fs.Var(&texts, "text", "a text to embed (repeatable)")
	if _, err := parse(c.fs, args, "text"); err != nil {
		return err
	}
	if len(images)+len(texts) == 0 {
		return usagef("nothing to embed: give --image IMAGE and/or --text TEXT")
	}
	var imgs []client.Image
	for _, p := range images {
		imgs = append(imgs, client.ImageFile(p))
	}
	var r *pb.EmbedResponse
	err := c.call(e, func(ctx context.Context, cl *client.Client) (err error) {
		r, err = cl.Embed(ctx, imgs, texts)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Images [][]float32 `json:"images"`
		Texts  [][]float32 `json:"texts"`
	}{Images: [][]float32{}, Texts: [][]float32{}}
	for _, v := range r.GetImages() {
		out.Images = append(out.Images, v.GetValues())
	}
	for _, v := range r.GetTexts() {
		out.Texts = append(out.Texts, v.GetValues())
	}
	if c.json {
		return writeJSON(e.stdout, out)
	}
	line := func(label string, v []float32) {
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		fmt.Fprintf(e.stdout, "%s\t%s\n", label, strings.Join(parts, " "))
	}
	for i, v := range out.Images {
		line("image "+images[i], v)
	}
	for i, v := range out.Texts {
		line("text "+strconv.Quote(texts[i]), v)
	}
	return nil
}

func runGenerate(e *env, args []string) error {
	c := newTaskCmd(e, "generate", true)
	task := c.fs.String("task", "", "caption or answer (default: what the model does)")
	pos, err := parse(c.fs, args, "")
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usagef("want IMAGE [TEXT...]")
	}
	var tk pb.Task
	switch *task {
	case "":
	case "caption":
		tk = pb.Task_TASK_CAPTION
	case "answer", "ask":
		tk = pb.Task_TASK_ANSWER
	default:
		return usagef("--task %q: want caption or answer", *task)
	}
	return c.call(e, func(ctx context.Context, cl *client.Client) error {
		parts := []client.Part{client.ImagePart(client.ImageFile(pos[0]))}
		if len(pos) > 1 {
			parts = append(parts, client.Text(strings.Join(pos[1:], " ")))
		}
		st, err := cl.Generate(ctx, parts, c.g.options(), tk)
		if err != nil {
			return err
		}
		defer st.Close()
		for p, err := range st.All() {
			if err != nil {
				if !c.json {
					fmt.Fprintln(e.stdout)
				}
				return err
			}
			if !c.json {
				if _, err := io.WriteString(e.stdout, p.GetText()); err != nil {
					return err
				}
				if f, ok := e.stdout.(interface{ Sync() error }); ok {
					_ = f.Sync()
				}
			}
		}
		f := st.Final()
		if c.json {
			out := struct {
				genOutput
				Usage json.RawMessage `json:"usage"`
			}{genOutput: newGenOutput(f.GetText(), f.GetTokenIds(), f.GetFinishReason(), nil)}
			out.Usage, _ = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(f.GetUsage())
			return writeJSON(e.stdout, out)
		}
		_, err = fmt.Fprintf(e.stdout, "\n")
		return err
	})
}

func runModels(e *env, args []string) error {
	fs := newFlags("models")
	var t target
	t.bind(fs, e)
	var dirs stringList
	fs.Lookup("model").Usage = "a checkpoint folder to load in-process (repeatable)"
	fs.Var(&dirs, "model-dir", "same as --model")
	asJSON := fs.Bool("json", false, "machine-readable JSON output")
	// --model may repeat here: collect every value.
	modelFlag := fs.Lookup("model")
	modelFlag.Value = &dirs
	pos, err := parse(fs, args, "")
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	ctx, cancel := withTimeout(&t)
	defer cancel()
	var cl *client.Client
	var done func()
	if len(dirs) > 0 && t.addr == "" {
		var specs []server.ModelSpec
		for _, d := range dirs {
			s, err := server.ParseModelSpec(d)
			if err != nil {
				return usagef("--model %v", err)
			}
			specs = append(specs, s)
		}
		cl, done, err = inProcess(ctx, specs, false)
	} else {
		t.model = ""
		cl, done, err = t.connect(ctx, e)
	}
	if err != nil {
		return err
	}
	defer done()
	r, err := cl.ListModels(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFAMILY\tARCHITECTURE\tTASKS\tIMAGE\tSTATE")
	for _, m := range r.GetModels() {
		var ts []string
		for _, t := range m.GetTasks() {
			ts = append(ts, strings.ToLower(strings.TrimPrefix(t.String(), "TASK_")))
		}
		name := m.GetName()
		if m.GetDefault() {
			name += " (default)"
		}
		state := strings.ToLower(strings.TrimPrefix(m.GetState().String(), "MODEL_STATE_"))
		if m.GetError() != "" {
			state += ": " + m.GetError()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", name, m.GetFamily(), m.GetArchitecture(), strings.Join(ts, ","), m.GetImageSize(), state)
	}
	return tw.Flush()
}
