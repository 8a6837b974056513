package demo

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/glimpse-vlm/glimpse/fusion"
	_ "github.com/glimpse-vlm/glimpse/fusion/blip" // registers the BLIP architectures
	"github.com/glimpse-vlm/glimpse/models"
)

// DefaultModelsDir returns the folder of the shipped demo models (with
// caption/, vqa/ and retrieval/), used by RunEval without --models: by
// default package models' embedded files, extracted to the user cache.
var DefaultModelsDir = func() (string, error) { return models.ExtractDemo("") }

// RunScene is the `glimpse demo scene` command: --seed S --out FILE.png
// writes one scene and prints its caption and question–answer pairs.
// It returns the exit code (0 ok, 2 usage, 1 failure).
func RunScene(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo scene", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", 0, fmt.Sprintf("scene seed (held-out scenes start at %d)", HeldOutStart))
	out := fs.String("out", "", "PNG file to write")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: glimpse demo scene --seed S --out FILE.png")
		return 2
	}
	if err := WritePNG(*seed, *out); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	s := NewScene(*seed)
	fmt.Fprintf(stdout, "%s: %s\n", *out, s.Caption())
	for _, qa := range s.QAs() {
		fmt.Fprintf(stdout, "  Q: %s  A: %s\n", qa.Question, qa.Answer)
	}
	return 0
}

// LoadModels loads dir/caption, dir/vqa and dir/retrieval (a missing
// folder is skipped: its model is nil) and returns them with a function
// that closes them. It fails if none is there.
func LoadModels(dir string) (Models, func(), error) {
	var ms Models
	var loaded []fusion.Model
	closeAll := func() {
		for _, m := range loaded {
			m.Close()
		}
	}
	for _, x := range []struct {
		dst  *fusion.Model
		name string
	}{{&ms.Caption, "caption"}, {&ms.VQA, "vqa"}, {&ms.Retrieval, "retrieval"}} {
		sub := filepath.Join(dir, x.name)
		if _, err := os.Stat(sub); err != nil {
			continue // a missing model is skipped
		}
		m, err := fusion.Load(sub)
		if err != nil {
			closeAll()
			return Models{}, nil, err
		}
		loaded = append(loaded, m)
		*x.dst = m
	}
	if len(loaded) == 0 {
		return Models{}, nil, fmt.Errorf("%s has none of caption/, vqa/, retrieval/ (make them with `glimpse train demo --out %s`)", dir, dir)
	}
	return ms, closeAll, nil
}

// loadForCommand loads the demo models of command cmd from dir (empty:
// the shipped ones) and returns them with their closer; on failure it
// reports to stderr and returns a nil closer and the exit code (2: no
// shipped models in this build, 1: they could not be loaded).
func loadForCommand(cmd, dir string, stderr io.Writer) (Models, func(), int) {
	if dir == "" {
		if DefaultModelsDir == nil {
			fmt.Fprintf(stderr, "%s: no shipped demo models in this build; pass --models DIR (from `glimpse train demo --out DIR`)\n", cmd)
			return Models{}, nil, 2
		}
		d, err := DefaultModelsDir()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return Models{}, nil, 1
		}
		dir = d
	}
	ms, closeAll, err := LoadModels(dir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return Models{}, nil, 1
	}
	return ms, closeAll, 0
}

// RunEval is the `glimpse demo eval` command: it evaluates the demo models
// (--models DIR with caption/, vqa/, retrieval/; default the shipped ones)
// on --scenes N held-out scenes (default 500; a missing model folder is
// skipped and reported as −1) and prints the figures, as
// JSON with --json. It returns the exit code.
func RunEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("models", "", "folder with caption/, vqa/ and retrieval/ model folders (default: the shipped demo models)")
	n := fs.Int("scenes", 500, "held-out scenes to evaluate")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	verbose := fs.Bool("v", false, "also print some failures")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *n <= 0 {
		fmt.Fprintln(stderr, "usage: glimpse demo eval [--models DIR] [--scenes N] [--json]")
		return 2
	}
	ms, closeAll, code := loadForCommand("demo eval", *dir, stderr)
	if closeAll == nil {
		return code
	}
	defer closeAll()
	rep, err := Eval(context.Background(), ms, *n)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if !*verbose {
		rep.Failures = nil
	}
	if *asJSON {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	fmt.Fprintf(stdout, "held-out scenes:                 %d\n", rep.Scenes)
	fmt.Fprintf(stdout, "caption, all attributes right:   %.1f %%\n", 100*rep.CaptionAllCorrect)
	fmt.Fprintf(stdout, "VQA exact (%d questions):       %.1f %%\n", rep.Questions, 100*rep.VQAExact)
	fmt.Fprintf(stdout, "match top-1 of 10:               %.1f %%\n", 100*rep.MatchTop1)
	for _, f := range rep.Failures {
		fmt.Fprintln(stdout, "  ", f)
	}
	return 0
}
