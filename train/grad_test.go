package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glimpse-vlm/glimpse/demo"
)

// The whole-model gradients (every architecture's loss through the
// composed backward passes) agree with finite differences of the loss on
// sampled tensor entries of every parameter.
func TestModelGradients(t *testing.T) {
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	s := demo.NewScene(11)
	for _, arch := range []string{ArchCaption, ArchVQA, ArchRetrieval} {
		cfg := tinyConfig(VocabSize(files))
		m, err := NewModel(arch, cfg, files, 5)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		for _, p := range m.Params.List() { // move off the symmetric initial point
			for i := range p.W {
				p.W[i] += float32(0.1 * r.NormFloat64())
			}
		}
		px := m.Pixels(s.Render())
		negs := s.Negatives(2, 3)
		shape, size := s.PatchLabels(cfg.Vision.PatchSize)
		aux := &Aux{Shape: shape, Size: size, Layout: int(s.Layout), Weight: 0.5} // auxiliary heads included
		loss := func() float64 {
			m.Params.Touch() // W changed in place: rebuild the serving modules
			var l float64
			var err error
			switch arch {
			case ArchCaption:
				l, err = m.CaptionLossAux(px, s.Caption(), aux, 1)
			case ArchVQA:
				l, err = m.VQALossAux(px, "what color is the "+s.Objects[0].Shape+"?", s.Objects[0].Color, aux, 1)
			default:
				l, err = m.RetrievalLossAux(px, s.Caption(), negs, aux, 1, 0.5)
			}
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		m.Params.ZeroGrad()
		loss()
		grads := map[*Param][]float32{}
		for _, p := range m.Params.List() {
			grads[p] = append([]float32(nil), p.G...)
		}
		bad := 0
		for _, p := range m.Params.List() {
			for k := 0; k < 2; k++ {
				i := r.IntN(len(p.W))
				if arch == ArchCaption && p.Name == "text_decoder.bert.embeddings.position_embeddings.weight" {
					i = r.IntN(8 * cfg.Text.Hidden) // positions in use
				}
				old := p.W[i]
				const h = 1e-2
				p.W[i] = old + h
				fp := loss()
				p.W[i] = old - h
				fm := loss()
				p.W[i] = old
				num := (fp - fm) / (2 * h)
				got := float64(grads[p][i])
				if math.Abs(num-got) > 0.05*math.Max(math.Abs(num), math.Abs(got))+2e-3 {
					bad++
					if bad < 10 {
						t.Errorf("%s: d/d %s[%d] = %g, finite differences %g", arch, p.Name, i, got, num)
					}
				}
			}
		}
	}
}
