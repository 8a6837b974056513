package train

import (
	"flag"
	"fmt"
	"io"
)

// RunTrainDemo is the `glimpse train demo` command: it parses args
// (without the verb), trains the demo models and returns the exit code
// (0 ok, 2 usage error, 1 failure).
func RunTrainDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("train demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := DefaultDemoOptions("")
	out := fs.String("out", "", "output folder (gets caption/, vqa/ and retrieval/)")
	fs.Uint64Var(&d.Seed, "seed", d.Seed, "training seed")
	fs.IntVar(&d.CaptionSteps, "caption-steps", d.CaptionSteps, "captioner optimiser steps (any step or --lr flag: one stage per model instead of the default schedule)")
	fs.IntVar(&d.VQASteps, "vqa-steps", d.VQASteps, "VQA optimiser steps")
	fs.IntVar(&d.RetrievalSteps, "retrieval-steps", d.RetrievalSteps, "retrieval optimiser steps")
	fs.IntVar(&d.Batch, "batch", d.Batch, "scenes per step")
	fs.Float64Var(&d.LR, "lr", d.LR, "peak learning rate of the one-stage schedule (AdamW, linear warm-up, cosine decay)")
	fs.IntVar(&d.LogEvery, "log-every", d.LogEvery, "log the loss every N steps")
	fs.StringVar(&d.CaptionDir, "caption", "", "use this trained captioner folder instead of training one (with --only caption: continue training it)")
	fs.StringVar(&d.VQADir, "vqa", "", "continue training this VQA model folder")
	fs.StringVar(&d.RetrievalDir, "retrieval", "", "continue training this retrieval model folder")
	fs.IntVar(&d.SaveEvery, "save-every", 0, "save the captioner every N steps")
	fs.StringVar(&d.Only, "only", "", "train only this stage: caption, vqa or retrieval")
	fs.IntVar(&d.Workers, "workers", d.Workers, "goroutines per step (results depend on this number)")
	aux := fs.Float64("aux", float64(d.AuxWeight), "weight of the auxiliary per-patch shape/size loss (0: none)")
	f32 := fs.Bool("f32", false, "store F32 weights (default F16)")
	fs.BoolVar(&d.RetrievalTextFromCaption, "retrieval-text-from-caption", d.RetrievalTextFromCaption, "initialise the retrieval text encoder from the captioner's text decoder (part of the default recipe; =false starts it at random)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: glimpse train demo --out DIR [--seed N] [--caption-steps N] [--vqa-steps N] [--retrieval-steps N] [--batch N] [--lr X] [--f32]")
		return 2
	}
	switch d.Only {
	case "", "caption", "vqa", "retrieval":
	default:
		fmt.Fprintf(stderr, "train demo: --only %q: use caption, vqa or retrieval\n", d.Only)
		return 2
	}
	// Any of the step or rate flags replaces the default schedule (the
	// chain of stages that made the shipped models) by one stage per model.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "caption-steps", "vqa-steps", "retrieval-steps", "lr":
			d.Schedule = nil
		}
	})
	d.Out, d.Half, d.Log, d.AuxWeight = *out, !*f32, stdout, float32(*aux)
	res, err := TrainDemo(d)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "trained in %s: %v\n", res.Elapsed.Round(1e9), res.Dirs)
	return 0
}
