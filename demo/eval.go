package demo

import (
	"context"
	"fmt"
	"strings"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// Report is the result of Eval on held-out scenes.
type Report struct {
	Scenes int `json:"scenes"`
	// CaptionAllCorrect is the fraction of scenes whose generated caption
	// states every object's size, colour and shape and the layout right
	// (ParseCaption of the output equals the scene's description).
	CaptionAllCorrect float64 `json:"caption_all_attributes_correct"`
	// VQAExact is the fraction of the scenes' questions answered exactly.
	VQAExact float64 `json:"vqa_exact"`
	// MatchTop1 is the fraction of scenes whose true caption gets the
	// highest ITM probability among 10 candidates (the 9 others differ in
	// one attribute).
	MatchTop1 float64 `json:"match_top1"`
	// Questions is the number of questions asked.
	Questions int `json:"-"`
	// Failures holds a few examples of wrong outputs.
	Failures []string `json:"-"`
}

// Models are the loaded models to evaluate; nil ones are skipped (their
// figure is reported as −1).
type Models struct {
	Caption, VQA, Retrieval fusion.Model
}

// Eval measures models on held-out scenes 0…n−1 (seeds HeldOutStart+i).
func Eval(ctx context.Context, m Models, n int) (*Report, error) {
	if n <= 0 {
		return nil, fmt.Errorf("demo: eval needs at least one scene, got %d", n)
	}
	rep := &Report{Scenes: n, CaptionAllCorrect: -1, VQAExact: -1, MatchTop1: -1}
	var capOK, qaOK, matchOK int
	fail := func(format string, a ...any) {
		if len(rep.Failures) < 20 {
			rep.Failures = append(rep.Failures, fmt.Sprintf(format, a...))
		}
	}
	for i := 0; i < n; i++ {
		s := HeldOut(i)
		img := s.Render()
		if m.Caption != nil {
			st, err := m.Caption.EncodeImage(ctx, img)
			if err != nil {
				return nil, err
			}
			c, ok := m.Caption.(fusion.Captioner)
			if !ok {
				return nil, fmt.Errorf("demo: the caption model cannot caption")
			}
			g, err := c.Caption(ctx, st, "", fusion.GenerateOptions{}, nil)
			if err != nil {
				return nil, err
			}
			if d, err := ParseCaption(g.Text); err == nil && d.Equal(s.Describe()) {
				capOK++
			} else {
				fail("scene %d caption %q, truth %q", s.Seed, g.Text, s.Caption())
			}
		}
		if m.VQA != nil {
			st, err := m.VQA.EncodeImage(ctx, img)
			if err != nil {
				return nil, err
			}
			a, ok := m.VQA.(fusion.Answerer)
			if !ok {
				return nil, fmt.Errorf("demo: the VQA model cannot answer")
			}
			for _, qa := range s.QAs() {
				g, err := a.Answer(ctx, st, qa.Question, fusion.GenerateOptions{}, nil)
				if err != nil {
					return nil, err
				}
				rep.Questions++
				if strings.TrimSpace(strings.ToLower(g.Text)) == qa.Answer {
					qaOK++
				} else {
					fail("scene %d %q -> %q, truth %q", s.Seed, qa.Question, g.Text, qa.Answer)
				}
			}
		}
		if m.Retrieval != nil {
			st, err := m.Retrieval.EncodeImage(ctx, img)
			if err != nil {
				return nil, err
			}
			mt, ok := m.Retrieval.(fusion.Matcher)
			if !ok {
				return nil, fmt.Errorf("demo: the retrieval model cannot match")
			}
			cands := append([]string{s.Caption()}, s.Negatives(9, 12345)...)
			scores, err := mt.Match(ctx, st, cands)
			if err != nil {
				return nil, err
			}
			best := 0
			for j, sc := range scores {
				if sc.ITMProbability == nil {
					return nil, fmt.Errorf("demo: the retrieval model gives no ITM probability")
				}
				if *sc.ITMProbability > *scores[best].ITMProbability {
					best = j
				}
			}
			if best == 0 {
				matchOK++
			} else {
				fail("scene %d match picked %q over %q", s.Seed, cands[best], cands[0])
			}
		}
	}
	if m.Caption != nil {
		rep.CaptionAllCorrect = float64(capOK) / float64(n)
	}
	if m.VQA != nil && rep.Questions > 0 {
		rep.VQAExact = float64(qaOK) / float64(rep.Questions)
	}
	if m.Retrieval != nil {
		rep.MatchTop1 = float64(matchOK) / float64(n)
	}
	return rep, nil
}
