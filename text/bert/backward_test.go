package bert

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/internal/weights"
)

// Backward and LogitsBackward agree with finite differences of a random
// linear function of the recorded outputs, for the bidirectional
// text_encoder (hidden states) and the causal text_decoder (logits), on a
// batch of two sequences, one padded (attention mask), cross-attending to
// shared encoder states with an encoder mask: every tensor's gradient on
// sampled entries, and the gradient with respect to the encoder states.
// The recorded forward returns exactly the unrecorded one's values.
func TestBackwardFiniteDifferences(t *testing.T) {
	src, cfg, _ := openGolden(t, "blip-vqa")
	defer src.Close()
	for _, tc := range []struct {
		prefix string
		head   bool
		folded bool // cross-attend through CrossFolded (same function, other sums)
	}{{"text_encoder.", false, false}, {"text_decoder.", true, false}, {"text_decoder.", true, true}} {
		p, err := weights.CopyParams(src, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(5, 6))
		const encLen = 6
		enc := make([]float32, encLen*cfg.EncoderHiddenSize)
		for i := range enc {
			enc[i] = float32(r.NormFloat64())
		}
		encMask := []int{1, 1, 1, 1, 1, 0}
		seqs := func(x *CrossKV) []Seq {
			return []Seq{
				{Tokens: []int{cfg.BOS, 7, 11, 3, 0}, Cache: &Cache{}, Cross: x, Mask: []int{1, 1, 1, 1, 0}},
				{Tokens: []int{cfg.BOS, 20, 9}, Cache: &Cache{}, Cross: x},
			}
		}
		const rows = 8
		width := cfg.HiddenSize
		if tc.head {
			width = cfg.VocabSize
		}
		c := make([]float32, rows*width)
		for i := range c {
			c[i] = float32(r.NormFloat64())
		}
		run := func(m *Model, ws *Workspace) []float32 {
			cross := m.CrossKV
			if tc.folded {
				cross = m.CrossFolded
			}
			x, err := cross(enc, encLen, encMask)
			if err != nil {
				t.Fatal(err)
			}
			h, err := m.Forward(ws, seqs(x), tc.head)
			if err != nil {
				t.Fatal(err)
			}
			if tc.head {
				if h, err = m.Logits(ws, h, rows); err != nil {
					t.Fatal(err)
				}
			}
			return append([]float32(nil), h...)
		}
		load := func() *Model {
			m, err := Load(p.Checkpoint(), tc.prefix, cfg, tc.head)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		loss := func() float64 {
			out := run(load(), &Workspace{})
			var s float64
			for i, v := range out {
				s += float64(c[i]) * float64(v)
			}
			return s
		}
		m := load()
		ws := &Workspace{Tape: &Tape{}}
		out := run(m, ws)
		plain := run(m, &Workspace{})
		for i := range out {
			if math.Float32bits(out[i]) != math.Float32bits(plain[i]) {
				t.Fatalf("%s: the recorded forward differs from Forward at %d", tc.prefix, i)
			}
		}
		dh := c
		if tc.head {
			if dh, err = m.LogitsBackward(ws.Tape, c, p); err != nil {
				t.Fatal(err)
			}
		}
		dEnc, err := m.Backward(ws.Tape, dh, p, true)
		if err != nil {
			t.Fatal(err)
		}
		const h = 3e-3
		near := func(num, got float64) bool {
			return math.Abs(num-got) <= 0.03*math.Max(math.Abs(num), math.Abs(got))+0.03
		}
		names := make([]string, 0, len(p.W))
		for n := range p.W {
			names = append(names, n)
		}
		sort.Strings(names)
		bad := 0
		for _, n := range names {
			w := p.W[n]
			for k := 0; k < 2; k++ {
				i := r.IntN(len(w))
				if strings.HasSuffix(n, "word_embeddings.weight") && k == 0 {
					i = 20*cfg.HiddenSize + r.IntN(cfg.HiddenSize) // a token in use
				}
				old := w[i]
				w[i] = old + h
				fp := loss()
				w[i] = old - h
				fm := loss()
				w[i] = old
				if num, got := (fp-fm)/(2*h), float64(p.G[n][i]); !near(num, got) {
					if bad++; bad < 8 {
						t.Errorf("%s: d/d %s[%d] = %g, finite differences %g", tc.prefix, n, i, got, num)
					}
				}
			}
		}
		for k := 0; k < 6; k++ {
			i := r.IntN(len(enc))
			old := enc[i]
			enc[i] = old + h
			fp := loss()
			enc[i] = old - h
			fm := loss()
			enc[i] = old
			if num, got := (fp-fm)/(2*h), float64(dEnc[i]); !near(num, got) {
				t.Errorf("%s: d/d enc[%d] = %g, finite differences %g", tc.prefix, i, got, num)
			}
		}
		if _, err := m.Backward(&Tape{}, dh, p, false); err == nil {
			t.Errorf("%s: Backward accepted an empty tape", tc.prefix)
		}
	}
	// A recorded forward runs whole sequences that share one encoder.
	m, err := Load(src, "text_encoder.", cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	ws := &Workspace{Tape: &Tape{}}
	c := &Cache{}
	if _, err := m.Forward(&Workspace{}, []Seq{{Tokens: []int{1, 2}, Cache: c}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward(ws, []Seq{{Tokens: []int{3}, Cache: c}}, false); err == nil || !strings.Contains(err.Error(), "whole sequences") {
		t.Errorf("recorded forward after a cache: %v", err)
	}
}
