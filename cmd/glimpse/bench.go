package main

import (
	"github.com/glimpse-vlm/glimpse/internal/kbench"
)

func init() {
	register(&verb{name: "bench", summary: "benchmarks: kernels, serving", run: runBench, usage: `Usage: glimpse bench kernels [--threads N] [--json] [--quick]
       glimpse bench serve [--model DIR|builtin] [--clients 1,4,16,64] [--requests N] [--cached-requests 3]
                           [--max-new-tokens 20] [--image-size 384] [--kv-cache-bytes N] [--json]

bench kernels measures the GEMM, GEMV and transformer-op kernels on this
machine's CPU against its FMA peak and memory bandwidth, with gonum for
comparison, and prints one table (or JSON with --json).

bench serve starts a server on loopback with a captioning model (default: a
BLIP-base-sized captioner built in memory from the real config with random
weights, no download; --model builtin: the tiny built-in blip-caption;
--model DIR: a checkpoint folder) and measures over real gRPC: vision encode
at batch 1 (and batch 8, in process), time to first token and per-token time
at batch 1, the latency of a fixed-length caption, the time until the last
of 8 captions started at once ends, and for each number of concurrent
clients requests/s, tokens/s, p50 and p99 latency, in two regimes:
  new     every request brings an image never sent before (so every request
          runs the vision encoder; the clients' decoding steps are batched);
  cached  each client (levels up to 16) asks --cached-requests times about
          its own image, which after its first, untimed request comes from
          the server's image cache: this measures the decoding engine.
Then the mean decoding batch, the peak RSS (VmHWM of the whole process,
client included), the packed weights held off the Go heap, the live-request
budget and the Go memory limit. --json prints the same as one object.

Examples:
  glimpse bench kernels
  glimpse bench kernels --threads 1 --json
  glimpse bench serve --model ./blip-image-captioning-base --clients 1,4,16,64
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
		return benchServe(e, args[1:])
	}
	return usagef("unknown benchmark %q: want kernels or serve", args[0])
}
