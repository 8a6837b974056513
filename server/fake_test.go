package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// fakeModel is a deterministic stand-in for a real family. Its image state
// is the image's mean colour; captions are words derived from it; a prompt
// "slow" makes each token take 20 ms (honouring ctx); "panic" panics.
type fakeModel struct {
	info     fusion.Info
	encodes  atomic.Int64
	stopped  atomic.Int64 // generations that stopped on ctx
	started  atomic.Int64 // generations started
	maxSteps int
}

var words = []string{"a", "cat", "dog", "on", "the", "red", "blue", "mat"}

func newFake(family string, tasks ...fusion.Task) *fakeModel {
	return &fakeModel{info: fusion.Info{Family: family, Architecture: "Fake" + family, Tasks: tasks,
		ImageSize: 8, ImageTokens: 3, MaxTextLen: 16, VocabSize: len(words)}, maxSteps: 5}
}

func (f *fakeModel) Info() fusion.Info { return f.info }

func (f *fakeModel) EncodeImage(ctx context.Context, img image.Image) (*fusion.ImageState, error) {
	f.encodes.Add(1)
	var r, g, b float32
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			r, g, b = r+float32(cr>>8), g+float32(cg>>8), b+float32(cb>>8)
		}
	}
	n := float32(bd.Dx() * bd.Dy())
	return &fusion.ImageState{Tokens: 3, Dim: 1, Hidden: []float32{r / n, g / n, b / n}}, nil
}

func (f *fakeModel) EncodeImages(ctx context.Context, imgs []image.Image) ([]*fusion.ImageState, error) {
	var out []*fusion.ImageState
	for _, im := range imgs {
		s, err := f.EncodeImage(ctx, im)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeModel) Tokenize(text string) ([]int, error) {
	if strings.Contains(text, "\x00") {
		return nil, errors.New("NUL in text")
	}
	var ids []int
	for range strings.Fields(text) {
		ids = append(ids, 1)
	}
	return ids, nil
}

func (f *fakeModel) Close() error { return nil }

func (f *fakeModel) gen(ctx context.Context, img *fusion.ImageState, prompt string, opts fusion.GenerateOptions, on fusion.OnToken) (*fusion.Generation, error) {
	f.started.Add(1)
	if prompt == "panic" {
		panic("fake model panic")
	}
	n := f.maxSteps
	if prompt == "slow" {
		n = 50 // 1 s
	}
	if opts.MaxNewTokens > 0 && opts.MaxNewTokens < n {
		n = opts.MaxNewTokens
	}
	g := &fusion.Generation{Finish: fusion.FinishEOS, PromptTokens: len(strings.Fields(prompt))}
	if opts.MaxNewTokens > 0 && opts.MaxNewTokens == n {
		g.Finish = fusion.FinishLength
	}
	seed := int(img.Hidden[0]+2*img.Hidden[1]+3*img.Hidden[2]) + len(prompt)
	var texts []string
	if prompt != "" && prompt != "slow" {
		texts = append(texts, prompt)
	}
	for i := 0; i < n; i++ {
		if prompt == "slow" {
			select {
			case <-ctx.Done():
				f.stopped.Add(1)
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		id := (seed + i*7) % len(words)
		g.TokenIDs = append(g.TokenIDs, id)
		if opts.Logprobs {
			g.Logprobs = append(g.Logprobs, -float32(i)/10)
		}
		texts = append(texts, words[id])
		if on != nil {
			txt := words[id]
			if i > 0 {
				txt = " " + txt
			}
			if err := on(fusion.Token{ID: id, Text: txt}); err != nil {
				return nil, err
			}
		}
	}
	g.Text = strings.Join(texts, " ")
	return g, nil
}

// fakeCaptioner can caption.
type fakeCaptioner struct{ *fakeModel }

func (f fakeCaptioner) Caption(ctx context.Context, img *fusion.ImageState, prompt string, opts fusion.GenerateOptions, on fusion.OnToken) (*fusion.Generation, error) {
	return f.gen(ctx, img, prompt, opts, on)
}

// fakeVQA can answer.
type fakeVQA struct{ *fakeModel }

func (f fakeVQA) Answer(ctx context.Context, img *fusion.ImageState, q string, opts fusion.GenerateOptions, on fusion.OnToken) (*fusion.Generation, error) {
	return f.gen(ctx, img, "", opts, on)
}

// fakeRetrieval can match and embed.
type fakeRetrieval struct{ *fakeModel }

func (f fakeRetrieval) Match(ctx context.Context, img *fusion.ImageState, texts []string) ([]fusion.MatchScore, error) {
	var out []fusion.MatchScore
	for _, t := range texts {
		c := float32(len(t)%10)/10 - img.Hidden[0]/1000
		p := float32(len(t)%7) / 7
		out = append(out, fusion.MatchScore{Cosine: &c, ITMProbability: &p})
	}
	return out, nil
}

func (f fakeRetrieval) EmbedImage(ctx context.Context, img *fusion.ImageState) ([]float32, error) {
	return []float32{img.Hidden[0] / 255, img.Hidden[1] / 255, img.Hidden[2] / 255}, nil
}

func (f fakeRetrieval) EmbedTexts(ctx context.Context, texts []string) ([][]float32, error) {
	var out [][]float32
	for _, t := range texts {
		out = append(out, []float32{float32(len(t)), 1, 0})
	}
	return out, nil
}

// pngBytes encodes a w×h image of one colour.
func pngBytes(w, h int, c color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(fmt.Sprint("png: ", err))
	}
	return buf.Bytes()
}
