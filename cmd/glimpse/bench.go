package main

import (
	"github.com/glimpse-vlm/glimpse/internal/kbench"
)

func init() {
	register(&verb{name: "bench", summary: "benchmarks (kernels; serve comes with the batching engine)", run: runBench, usage: `Usage: glimpse bench kernels [--threads N] [--json] [--quick]
       glimpse bench serve   (not available yet)

bench kernels measures the GEMM, GEMV and transformer-op kernels on this
machine's CPU against its FMA peak and memory bandwidth, with gonum for
comparison, and prints one table (or JSON with --json).

Examples:
  glimpse bench kernels
  glimpse bench kernels --threads 1 --json
`})
}

func runBench(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a benchmark: kernels or serve")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return errHelp()
	case "kernels":
		fs := newFlags("bench kernels")
		threads := fs.Int("threads", 0, "threads (0: 1 and all cores)")
		asJSON := fs.Bool("json", false, "JSON instead of a table")
		quick := fs.Bool("quick", false, "fewer, shorter repetitions")
		pos, err := parse(fs, args[1:], "")
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return usagef("unexpected arguments %q", pos)
		}
		if *threads < 0 {
			return usagef("--threads must be >= 0")
		}
		return kbench.Run(e.stdout, kbench.Options{Threads: *threads, JSON: *asJSON, Quick: *quick})
	case "serve":
		return usagef("bench serve is not available yet: it arrives with the batching generation engine (issue 6); use `glimpse bench kernels` or `go test -bench . ./fusion/blip/`")
	}
	return usagef("unknown benchmark %q: want kernels or serve", args[0])
}
