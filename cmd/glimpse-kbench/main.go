// Command glimpse-kbench prints the kernel benchmark table (see package
// internal/kbench) until `glimpse bench kernels` is wired to it.
//
//	glimpse-kbench [--threads N] [--json] [--quick] [--shapes 197x768,1x768]
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/glimpse-vlm/glimpse/internal/kbench"
)

func main() {
	var opts kbench.Options
	var shapes string
	flag.IntVar(&opts.Threads, "threads", 0, "threads for the kernels (0: measure at 1 and at GOMAXPROCS)")
	flag.BoolVar(&opts.JSON, "json", false, "print a JSON array, one object per measurement")
	flag.BoolVar(&opts.Quick, "quick", false, "fewer, shorter repetitions (smoke test)")
	flag.StringVar(&shapes, "shapes", "", "comma-separated substrings of shape names (M×K×N, e.g. 197x768x2304) to keep")
	flag.Parse()
	if shapes != "" {
		opts.Shapes = strings.Split(shapes, ",")
	}
	if err := kbench.Run(os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "glimpse-kbench:", err)
		os.Exit(1)
	}
}
