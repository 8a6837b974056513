package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/glimpse-vlm/glimpse/demo"
	"github.com/glimpse-vlm/glimpse/eval"
	"github.com/glimpse-vlm/glimpse/train"
)

// Commands whose implementation lives in their own packages; each returns
// its own exit code (0, 1 or 2 as everywhere else).

// exitCode carries a sub-command's exit code through run.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

func init() {
	register(&verb{name: "eval", summary: "run a YAML suite of image + prompt cases and check the answers", usage: eval.Usage,
		run: func(e *env, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return code(eval.Main(ctx, args, e.stdout, e.stderr))
		}})
	register(&verb{name: "demo", summary: "demo scenes and the demo models' evaluation", usage: `Usage: glimpse demo scene --seed S --out FILE.png
       glimpse demo eval [--models DIR] [--scenes N] [--json]
       glimpse demo examples --out DIR [--models DIR] [--n N]

scene draws one synthetic scene (and prints its caption and QAs); eval scores
the demo models on held-out scenes; examples writes the first held-out scenes'
pictures and prints the models' outputs on them as Markdown (demo/README.md's
examples). "glimpse demo <cmd> -h" lists the flags.
`, run: func(e *env, args []string) error {
		if len(args) == 0 {
			return usagef("want scene, eval or examples")
		}
		switch args[0] {
		case "scene":
			return code(demo.RunScene(args[1:], e.stdout, e.stderr))
		case "eval":
			return code(demo.RunEval(args[1:], e.stdout, e.stderr))
		case "examples":
			return code(demo.RunExamples(args[1:], e.stdout, e.stderr))
		case "-h", "-help", "--help":
			return errHelp()
		}
		return usagef("unknown demo command %q: want scene, eval or examples", args[0])
	}})
	register(&verb{name: "train", summary: "train the demo models", usage: `Usage: glimpse train demo --out DIR [flags]

Trains the small demo models from synthetic scenes. Without flags it runs the
recipe that made the shipped models (demo/README.md). "glimpse train demo -h"
lists the flags.
`, run: func(e *env, args []string) error {
		if len(args) == 0 {
			return usagef("want demo")
		}
		switch args[0] {
		case "demo":
			return code(train.RunTrainDemo(args[1:], e.stdout, e.stderr))
		case "-h", "-help", "--help":
			return errHelp()
		}
		return usagef("unknown train command %q: want demo", args[0])
	}})
	register(&verb{name: "finetune", summary: "fine-tune a BLIP checkpoint on a JSONL file of image + caption or question/answer records", usage: `Usage: glimpse finetune --base DIR --data FILE.jsonl --out DIR [--steps N] [--batch N] [--lr X] [--freeze-vision] [--f16] [--max-memory SIZE]

Fine-tunes a BLIP checkpoint folder (captioning, VQA or retrieval; the demo
models or a real one, memory permitting: about 24 bytes per parameter plus
activations, e.g. 5.4 GiB for BLIP-base's captioner; the run prints its
estimate and --max-memory refuses to start above a budget) on JSONL records,
one a line, image paths relative to the JSONL file:
  {"image": "a.png", "caption": "a small red circle"}
  {"image": "b.png", "question": "what color is the circle?", "answer": "red"}
and writes a new Hugging Face checkpoint folder. "glimpse finetune -h" lists
the flags.

Example:
  glimpse finetune --base ~/.cache/glimpse/demo/*/caption --data mine.jsonl --out my-captioner
`, run: func(e *env, args []string) error {
		if len(args) == 1 && (args[0] == "--help" || args[0] == "-help") {
			return errHelp()
		}
		return code(train.RunFinetune(args, e.stdout, e.stderr))
	}})
}

// code turns a sub-command's exit code into run's error convention (the
// sub-command has already printed its messages).
func code(c int) error {
	if c == exitOK {
		return nil
	}
	return exitCode(c)
}
