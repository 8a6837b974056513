package vit

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/internal/weights"
)

// Backward's gradients of every variant (BLIP, ViT, CLIP) agree with
// finite differences of a random linear function of ForwardTape's output
// (a batch of two images), on sampled entries of every tensor; ForwardTape
// returns exactly Forward's output.
func TestBackwardFiniteDifferences(t *testing.T) {
	for _, gc := range goldenCases[:3] {
		dir := goldenDir + gc.dir
		cfg := readVisionConfig(t, dir, gc.configKey, gc.variant)
		src, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		p, err := weights.CopyParams(src, gc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		src.Close()
		r := rand.New(rand.NewPCG(3, 4))
		const batch = 2
		pixels := make([]float32, batch*cfg.NumChannels*cfg.ImageSize*cfg.ImageSize)
		for i := range pixels {
			pixels[i] = float32(r.NormFloat64())
		}
		enc, err := Load(p.Checkpoint(), gc.prefix, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := make([]float32, batch*enc.Tokens()*enc.Dim())
		for i := range c {
			c[i] = float32(r.NormFloat64())
		}
		loss := func() float64 {
			e, err := Load(p.Checkpoint(), gc.prefix, cfg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.Forward(pixels, batch)
			if err != nil {
				t.Fatal(err)
			}
			var s float64
			for i, v := range out {
				s += float64(c[i]) * float64(v)
			}
			return s
		}
		var tape Tape
		out, err := enc.ForwardTape(pixels, batch, &tape)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := enc.Forward(pixels, batch)
		for i := range out {
			if math.Float32bits(out[i]) != math.Float32bits(plain[i]) {
				t.Fatalf("%s: ForwardTape differs from Forward at %d", gc.dir, i)
			}
		}
		if err := enc.Backward(&tape, c, p); err != nil {
			t.Fatal(err)
		}
		checked, bad := 0, 0
		names := make([]string, 0, len(p.W))
		for n := range p.W {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			w := p.W[n]
			if strings.Contains(n, "pooler") { // not on Forward's path
				continue
			}
			for k := 0; k < 2; k++ {
				i := r.IntN(len(w))
				old := w[i]
				const h = 3e-3
				w[i] = old + h
				fp := loss()
				w[i] = old - h
				fm := loss()
				w[i] = old
				num, got := (fp-fm)/(2*h), float64(p.G[n][i])
				checked++
				if math.Abs(num-got) > 0.03*math.Max(math.Abs(num), math.Abs(got))+0.05 {
					bad++
					if bad < 8 {
						t.Errorf("%s: d/d %s[%d] = %g, finite differences %g", gc.dir, n, i, got, num)
					}
				}
			}
		}
		if checked < 20 {
			t.Errorf("%s: only %d entries checked", gc.dir, checked)
		}
		var tp Tape
		if err := enc.Backward(&tp, c, p); err == nil {
			t.Errorf("%s: Backward accepted an empty tape", gc.dir)
		}
		if err := enc.Backward(&tape, c[:10], p); err == nil {
			t.Errorf("%s: Backward accepted a short gradient", gc.dir)
		}
	}
}
