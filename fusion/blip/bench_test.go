package blip

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/text/bert"
)

var (
	benchOnce  sync.Once
	benchModel *CaptionModel
	benchErr   error
)

func blipBase(b *testing.B) *CaptionModel {
	benchOnce.Do(func() {
		benchModel, benchErr = NewRandomCaption([]byte(BaseCaptionConfig), 1)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchModel
}

func benchPixels(m *CaptionModel) []float32 {
	s := m.cfg.Vision.ImageSize
	px := make([]float32, 3*s*s)
	rng := rand.New(rand.NewSource(2))
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	return px
}

// BenchmarkVisionEncoder is the BLIP-base vision tower on 384×384 images,
// one at a time and eight as one batch. Besides wall time per image it
// reports the process CPU time per image (both cores summed), which is
// less sensitive to other load on a shared machine.
func BenchmarkVisionEncoder(b *testing.B) {
	m := blipBase(b)
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			one := benchPixels(m)
			px := make([]float32, 0, batch*len(one))
			for range batch {
				px = append(px, one...)
			}
			ctx := context.Background()
			b.ResetTimer()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := m.EncodePixels(ctx, px, batch); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N * batch)
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/n, "vision-ms")
			b.ReportMetric(float64((cpuTime()-c0).Milliseconds())/n, "vision-cpu-ms")
		})
	}
}

// BenchmarkCaption20 is a 20-token greedy caption at batch 1, image
// included (min_new_tokens = max_new_tokens = 20), with each form of the
// decoder's cross-attention state: folded (what CaptionIDs uses) and
// projected. It reports the vision encoder, the one-off cross-attention
// state over the image states (computed once per request), the decoding
// time per generated token (wall and process CPU), and the total.
func BenchmarkCaption20(b *testing.B) {
	m := blipBase(b)
	for _, form := range []struct {
		name string
		make func(enc []float32, encLen int, mask []int) (*bert.CrossKV, error)
	}{{"folded", m.dec.CrossFolded}, {"projected", m.dec.CrossKV}} {
		b.Run(form.name, func(b *testing.B) { benchCaption20(b, m, form.make) })
	}
}

func benchCaption20(b *testing.B, m *CaptionModel, makeCross func(enc []float32, encLen int, mask []int) (*bert.CrossKV, error)) {
	px := benchPixels(m)
	ctx := context.Background()
	prompt := m.CaptionPrompt(nil)
	cfg, err := m.DecodeConfig(fusion.GenerateOptions{MaxNewTokens: 20, MinNewTokens: 20}, len(prompt))
	if err != nil {
		b.Fatal(err)
	}
	var vision, cross, decode, decodeCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		st, err := m.EncodePixels(ctx, px, 1)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		kv, err := makeCross(st[0].Hidden, st[0].Tokens, nil)
		if err != nil {
			b.Fatal(err)
		}
		t2, c2 := time.Now(), cpuTime()
		res, err := decodeIDs(ctx, m.dec, kv, prompt, cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Tokens) != 20 {
			b.Fatalf("%d tokens, want 20", len(res.Tokens))
		}
		vision += t1.Sub(t0)
		cross += t2.Sub(t1)
		decode += time.Since(t2)
		decodeCPU += cpuTime() - c2
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(vision), "vision-ms")
	b.ReportMetric(ms(cross), "cross-ms")
	b.ReportMetric(ms(decode)/20, "ms/token")
	b.ReportMetric(ms(decodeCPU)/20, "cpu-ms/token")
	b.ReportMetric(ms(vision+cross+decode), "caption20-ms")
}

// BenchmarkDecodeStep is one batched decoding step of the BLIP-base
// caption decoder (the LM head included) for 1, 8 and 16 sequences, each
// cross-attending to its own image (random states), with a self-attention
// cache of 10 positions, in each form of the cross-attention state. It
// reports the time per step and per sequence.
func BenchmarkDecodeStep(b *testing.B) {
	m := blipBase(b)
	t := m.cfg.Text
	n, e := m.vision.Tokens(), t.EncoderHiddenSize
	rng := rand.New(rand.NewSource(3))
	for _, form := range []string{"folded", "projected"} {
		for _, rows := range []int{1, 8, 16} {
			b.Run(fmt.Sprintf("%s/seqs=%d", form, rows), func(b *testing.B) {
				seqs := make([]bert.Seq, rows)
				for i := range seqs {
					st := make([]float32, n*e)
					for j := range st {
						st[j] = float32(rng.NormFloat64())
					}
					mk := m.dec.CrossFolded
					if form == "projected" {
						mk = m.dec.CrossKV
					}
					x, err := mk(st, n, nil)
					if err != nil {
						b.Fatal(err)
					}
					seqs[i] = bert.Seq{Tokens: []int{t.BOS}, Cache: &bert.Cache{}, Cross: x}
				}
				var ws bert.Workspace
				var last []float32
				var out [][]float32
				step := func() {
					var err error
					if out, err = runDecoder(m.dec, &ws, &last, out, seqs); err != nil {
						b.Fatal(err)
					}
				}
				for range 10 {
					step()
				}
				caches := make([]*bert.Cache, rows)
				for i, s := range seqs {
					caches[i] = s.Cache.Clone()
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if i%10 == 0 { // keep the caches at 10–19 positions
						b.StopTimer()
						for r := range seqs {
							seqs[r].Cache.CopyFrom(caches[r])
						}
						b.StartTimer()
					}
					step()
				}
				ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
				b.ReportMetric(ms, "ms/step")
				b.ReportMetric(ms/float64(rows), "ms/seq")
			})
		}
	}
}
