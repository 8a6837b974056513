package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// fake answers every request the same way.
type fake struct {
	caption, answer string
	preferLast      bool
}

func (f *fake) Info() fusion.Info { return fusion.Info{} }
func (f *fake) EncodeImage(context.Context, image.Image) (*fusion.ImageState, error) {
	return &fusion.ImageState{}, nil
}
func (f *fake) EncodeImages(context.Context, []image.Image) ([]*fusion.ImageState, error) {
	return nil, nil
}
func (f *fake) Tokenize(string) ([]int, error) { return nil, nil }
func (f *fake) Close() error                   { return nil }
func (f *fake) Caption(context.Context, *fusion.ImageState, string, fusion.GenerateOptions, fusion.OnToken) (*fusion.Generation, error) {
	return &fusion.Generation{Text: f.caption}, nil
}
func (f *fake) Answer(context.Context, *fusion.ImageState, string, fusion.GenerateOptions, fusion.OnToken) (*fusion.Generation, error) {
	return &fusion.Generation{Text: f.answer}, nil
}
func (f *fake) Match(_ context.Context, _ *fusion.ImageState, texts []string) ([]fusion.MatchScore, error) {
	out := make([]fusion.MatchScore, len(texts))
	for i := range out {
		p := float32(len(texts) - i)
		if f.preferLast {
			p = float32(i)
		}
		out[i].ITMProbability = &p
	}
	return out, nil
}

func TestEvalFigures(t *testing.T) {
	const n = 60
	var wantCap, yes, questions int
	for i := 0; i < n; i++ {
		s := HeldOut(i)
		if s.Caption() == "a small red circle" {
			wantCap++
		}
		for _, qa := range s.QAs() {
			questions++
			if qa.Answer == "yes" {
				yes++
			}
		}
	}
	for _, tc := range []struct {
		preferLast bool
		match      float64
	}{{false, 1}, {true, 0}} {
		f := &fake{caption: "A small red circle.", answer: " Yes", preferLast: tc.preferLast}
		rep, err := Eval(context.Background(), Models{Caption: f, VQA: f, Retrieval: f}, n)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Scenes != n || rep.Questions != questions {
			t.Fatalf("scenes %d questions %d, want %d and %d", rep.Scenes, rep.Questions, n, questions)
		}
		if rep.CaptionAllCorrect != float64(wantCap)/n || rep.VQAExact != float64(yes)/float64(questions) || rep.MatchTop1 != tc.match {
			t.Fatalf("report %+v, want caption %g vqa %g match %g", rep, float64(wantCap)/n, float64(yes)/float64(questions), tc.match)
		}
	}
	rep, err := Eval(context.Background(), Models{}, 3)
	if err != nil || rep.CaptionAllCorrect != -1 || rep.VQAExact != -1 || rep.MatchTop1 != -1 {
		t.Fatalf("no models: %+v, %v", rep, err)
	}
	if _, err := Eval(context.Background(), Models{}, 0); err == nil {
		t.Fatal("0 scenes accepted")
	}
}

func TestNegatives(t *testing.T) {
	for seed := uint64(0); seed < 100; seed++ {
		s := NewScene(seed)
		negs := s.Negatives(9, 1)
		if len(negs) != 9 {
			t.Fatalf("seed %d: %d negatives for %q", seed, len(negs), s.Caption())
		}
		for _, c := range negs {
			d, err := ParseCaption(c)
			if err != nil {
				t.Fatal(err)
			}
			if d.Equal(s.Describe()) {
				t.Fatalf("seed %d: negative %q states the scene", seed, c)
			}
		}
	}
}

func TestRunSceneAndEvalUsage(t *testing.T) {
	var out, errb bytes.Buffer
	p := filepath.Join(t.TempDir(), "s.png")
	if code := RunScene([]string{"--seed", "4", "--out", p}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), NewScene(4).Caption()) {
		t.Fatalf("output %q lacks the caption", out.String())
	}
	if code := RunScene(nil, &out, &errb); code != 2 {
		t.Fatalf("no --out: exit %d, want 2", code)
	}
	errb.Reset()
	if code := RunEval([]string{"--models", t.TempDir()}, &out, &errb); code != 1 || errb.Len() == 0 {
		t.Fatalf("empty models folder: exit %d, stderr %q", code, errb.String())
	}
	if code := RunEval([]string{"--scenes", "0", "--models", "x"}, &out, &errb); code != 2 {
		t.Fatalf("0 scenes: exit %d, want 2", code)
	}
	b, _ := json.Marshal(Report{Scenes: 1})
	var keys map[string]any
	json.Unmarshal(b, &keys)
	if len(keys) != 4 {
		t.Fatalf("JSON report keys %v, want scenes, caption_all_attributes_correct, vqa_exact, match_top1", keys)
	}
}

// Examples writes the scenes' pictures and the README section with every
// model's outputs.
func TestExamples(t *testing.T) {
	dir := t.TempDir()
	f := &fake{caption: "a small red circle", answer: "yes"}
	md, err := Examples(context.Background(), Models{Caption: f, VQA: f, Retrieval: f}, 2, dir, "examples")
	if err != nil {
		t.Fatal(err)
	}
	s := HeldOut(1)
	for _, want := range []string{
		"#### ![](examples/heldout-0.png) held-out scene 0 (seed 1099511627776)",
		"#### ![](examples/heldout-1.png) held-out scene 1 (seed 1099511627777)",
		"- truth: \"" + s.Caption() + "\"",
		"- caption: \"a small red circle\"",
		"- Q: " + s.QAs()[0].Question + " → \"yes\" (truth \"" + s.QAs()[0].Answer + "\")",
		"- match \"" + s.Caption() + "\": ITM 3.000",
		"- match \"" + s.Negatives(9, 12345)[1] + "\": ITM 1.000",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("examples lack %q:\n%s", want, md)
		}
	}
	for _, n := range []string{"heldout-0.png", "heldout-1.png"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Error(err)
		}
	}
	var out, errb bytes.Buffer
	if code := RunExamples(nil, &out, &errb); code != 2 {
		t.Errorf("no --out: exit %d", code)
	}
	if code := RunExamples([]string{"--out", dir, "--models", t.TempDir()}, &out, &errb); code != 1 {
		t.Errorf("empty models folder: exit %d", code)
	}
}
