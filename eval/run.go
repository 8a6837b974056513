package eval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/glimpse-vlm/glimpse/client"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// Runner runs a suite's runs through a client.
type Runner struct {
	// Client talks to the server (in-process or remote).
	Client *client.Client
	// Parallel is how many runs go at once (default 1).
	Parallel int
	// MatchModel is the model match-score assertions use when neither the
	// assertion nor the case names one.
	MatchModel string
	// Progress, if set, is called as each run finishes (serialised), with
	// the number finished so far and the total.
	Progress func(done, total int, r *Result)

	imgMu  sync.Mutex
	images map[string]imageEntry
}

// clientImage is an image as the SDK sends it.
type clientImage = client.Image

type imageEntry struct {
	img client.Image
	err error
}

// Run executes runs and returns their results in the same order, with
// the repeat assertions (consistent, varies) evaluated over each group.
// A cancelled ctx makes the remaining runs errors.
func (rn *Runner) Run(ctx context.Context, runs []*Run) []*Result {
	par := rn.Parallel
	if par < 1 {
		par = 1
	}
	results := make([]*Result, len(runs))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i, r := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res := rn.runOne(ctx, r)
			mu.Lock()
			results[i] = res
			done++
			if rn.Progress != nil {
				rn.Progress(done, len(runs), res)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	groupChecks(runs, results)
	for _, res := range results {
		res.setVerdict()
	}
	return results
}

// image reads an image file once per runner.
func (rn *Runner) image(path string) (client.Image, error) {
	rn.imgMu.Lock()
	defer rn.imgMu.Unlock()
	if rn.images == nil {
		rn.images = map[string]imageEntry{}
	}
	if e, ok := rn.images[path]; ok {
		return e.img, e.err
	}
	var e imageEntry
	data, err := os.ReadFile(path)
	if err != nil {
		e.err = fmt.Errorf("reading image: %w", err)
	} else {
		e.img = client.ImageBytes(data)
	}
	rn.images[path] = e
	return e.img, e.err
}

// runOne executes one run and its per-run assertions.
func (rn *Runner) runOne(ctx context.Context, r *Run) *Result {
	res := &Result{
		ID: r.ID, Case: r.Case.ID, Tags: r.Case.Tags, Task: r.Task, Model: r.Model, Images: r.Images,
		Prompt: r.Prompt, Texts: r.Texts, Seed: r.Seed, Repeat: r.Repeat, group: r.Group,
	}
	if err := ctx.Err(); err != nil {
		res.Error = "not run: " + err.Error()
		return res
	}
	if rn.Client == nil {
		res.Error = "not run: the runner has no client"
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	var imgs []client.Image
	for _, f := range r.Files {
		im, err := rn.image(f)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		imgs = append(imgs, im)
	}
	c := rn.Client.Model(r.Model)
	start := time.Now()
	err := rn.call(ctx, c, r, imgs, res)
	res.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		res.Error = describeError(err)
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			res.Error += fmt.Sprintf(" (the case's timeout is %v)", r.Timeout)
		}
		return res
	}
	for _, a := range r.Assert {
		res.Checks = append(res.Checks, rn.check(ctx, a, r, imgs, res)...)
	}
	return res
}

// call sends the run's request and fills the result's output.
func (rn *Runner) call(ctx context.Context, c *client.Client, r *Run, imgs []client.Image, res *Result) error {
	switch r.Task {
	case TaskCaption:
		resp, err := c.Caption(ctx, imgs[0], r.Prompt, r.protoOptions())
		if err != nil {
			return err
		}
		res.setGen(resp.GetText(), resp.GetTokenIds(), resp.GetFinishReason())
	case TaskAsk:
		resp, err := c.Answer(ctx, imgs[0], r.Prompt, r.protoOptions())
		if err != nil {
			return err
		}
		res.setGen(resp.GetText(), resp.GetTokenIds(), resp.GetFinishReason())
	case TaskGenerate:
		parts := make([]client.Part, 0, len(imgs)+1)
		for _, im := range imgs {
			parts = append(parts, client.ImagePart(im))
		}
		if r.Prompt != "" {
			parts = append(parts, client.Text(r.Prompt))
		}
		st, err := c.Generate(ctx, parts, r.protoOptions(), pb.Task_TASK_UNSPECIFIED)
		if err != nil {
			return err
		}
		for _, err := range st.All() {
			if err != nil {
				return err
			}
		}
		f := st.Final()
		if f == nil {
			return errors.New("the stream ended without a final message")
		}
		res.setGen(f.GetText(), f.GetTokenIds(), f.GetFinishReason())
	case TaskMatch:
		resp, err := c.Match(ctx, imgs[0], r.Texts...)
		if err != nil {
			return err
		}
		res.Scores = scoresOf(resp, r.Labels)
		best := bestScore(res.Scores)
		if best >= 0 {
			res.Output = res.Scores[best].Text
			res.Label = res.Scores[best].Label
		}
	case TaskEmbed:
		resp, err := c.Embed(ctx, imgs, r.Texts)
		if err != nil {
			return err
		}
		var vecs [][]float32
		for _, e := range resp.GetImages() {
			vecs = append(vecs, e.GetValues())
		}
		for _, e := range resp.GetTexts() {
			vecs = append(vecs, e.GetValues())
		}
		if len(vecs) > 0 {
			res.Dims = len(vecs[0])
		}
		res.Embeddings = vecs
		res.Output = fmt.Sprintf("%d image(s), %d text(s), %d dims", len(resp.GetImages()), len(resp.GetTexts()), res.Dims)
	default:
		return fmt.Errorf("unknown task %q", r.Task)
	}
	return nil
}

func (res *Result) setGen(text string, ids []int32, f pb.FinishReason) {
	res.Output = text
	res.TokenIDs = ids
	if res.TokenIDs == nil {
		res.TokenIDs = []int32{}
	}
	res.FinishReason = strings.ToLower(strings.TrimPrefix(f.String(), "FINISH_REASON_"))
}

// protoOptions is the run's decoding options for the request (the seed of
// a seeds: list wins over the options' seed).
func (r *Run) protoOptions() *pb.GenerationOptions {
	o := r.Options
	if o == nil {
		o = &Options{}
	}
	p := &pb.GenerationOptions{
		Temperature: o.Temperature, TopP: o.TopP, RepetitionPenalty: o.RepetitionPenalty,
		LengthPenalty: o.LengthPenalty, EarlyStopping: o.EarlyStopping, Seed: o.Seed, Stop: o.Stop,
	}
	i32 := func(v *int) int32 {
		if v == nil {
			return 0
		}
		return int32(*v)
	}
	p.MaxNewTokens, p.MinNewTokens, p.NumBeams = i32(o.MaxNewTokens), i32(o.MinNewTokens), i32(o.NumBeams)
	p.TopK, p.NoRepeatNgramSize = i32(o.TopK), i32(o.NoRepeatNgramSize)
	if o.DoSample != nil {
		p.DoSample = *o.DoSample
	}
	if r.Seed != nil {
		s := *r.Seed
		p.Seed = &s
	}
	return p
}

func scoresOf(resp *pb.MatchResponse, labels []string) []Score {
	out := make([]Score, len(resp.GetScores()))
	for i, s := range resp.GetScores() {
		out[i] = Score{Text: s.GetText(), ITMProbability: s.ItmProbability, Cosine: s.Cosine, Logit: s.Logit}
		if i < len(labels) {
			out[i].Label = labels[i]
		}
	}
	return out
}

// bestScore is the index of the highest score by the default metric (-1
// if none).
func bestScore(ss []Score) int {
	best := -1
	var bv float64
	for i, s := range ss {
		v, ok := s.metric("")
		if !ok {
			continue
		}
		if best < 0 || v > bv {
			best, bv = i, v
		}
	}
	return best
}

// describeError renders an RPC error with the server's message and code.
func describeError(err error) string {
	if st, ok := status.FromError(err); ok {
		return fmt.Sprintf("%s (%s)", st.Message(), st.Code())
	}
	return err.Error()
}
