// Package kbench measures Glimpse's float32 kernels on this machine and
// prints one table (or JSON): GEMM GFLOP/s on the ViT and batch shapes,
// as a fraction of the machine's FMA peak and as a ratio to gonum's
// pure-Go Sgemm, and decode GEMV GB/s as a fraction of the machine's
// memory read bandwidth, all measured in the same run. It backs
// `glimpse bench kernels`.
package kbench

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/glimpse-vlm/glimpse/kernels"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Options selects what Run measures.
type Options struct {
	// Threads is the number of threads for the kernels (kernels.SetThreads)
	// and for gonum (GOMAXPROCS while it runs). 0 measures at 1 thread and,
	// if the machine has more, at runtime.GOMAXPROCS(0) threads.
	Threads int
	// JSON prints a JSON array of Result instead of a table.
	JSON bool
	// Quick takes fewer and shorter repetitions, smaller probe buffers and
	// skips gonum on shapes above 10 GFLOP (for CI smoke runs).
	Quick bool
	// Shapes, if non-empty, keeps only the shapes whose name ("197x768x2304"
	// for M×K×N, "1x768x30524" for a decode GEMV) contains one of these
	// substrings.
	Shapes []string
	// Custom, if non-empty, replaces the default shape list (M, K, N;
	// M = 1 is measured as a GEMV). Meant for tests.
	Custom [][3]int
}

// Result is one measurement (one JSON object of the --json output).
type Result struct {
	Op         string  `json:"op"` // "gemm" or "gemv"
	M          int     `json:"m"`
	K          int     `json:"k"`
	N          int     `json:"n"`
	Threads    int     `json:"threads"`
	GFLOPS     float64 `json:"gflops"`      // GemmPacked (weights pre-packed)
	GBPS       float64 `json:"gbps"`        // packed weight bytes read per second (gemv, weights not in cache)
	PeakGFLOPS float64 `json:"peak_gflops"` // FMA peak at this thread count
	// Extra context, also measured in this run.
	GemmGFLOPS  float64 `json:"gemm_unpacked_gflops,omitempty"` // Gemm packing B per call
	GonumGFLOPS float64 `json:"gonum_gflops,omitempty"`         // gonum Sgemm, same threads
	ReadGBPS    float64 `json:"read_gbps,omitempty"`            // streaming read bandwidth (gemv)
	// Median over repetitions of the kernel's rate divided by the probe's
	// rate, probe and kernel timed alternately (robust to a changing load).
	PeakFraction float64 `json:"peak_fraction"`           // GFLOPS / peak
	ReadFraction float64 `json:"read_fraction,omitempty"` // GBPS / read bandwidth (gemv)
}

// DefaultShapes are the benchmark shapes (M, K, N): ViT-B/16 at 224 px
// (M = 197), 384 px (M = 577), a batch of 8 (M = 1576), 1024³, and the
// decode GEMVs (M = 1).
var DefaultShapes = func() [][3]int {
	var s [][3]int
	for _, m := range []int{197, 577, 1576} {
		for _, kn := range [][2]int{{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}} {
			s = append(s, [3]int{m, kn[0], kn[1]})
		}
	}
	return append(s, [3]int{1024, 1024, 1024}, [3]int{1, 768, 768}, [3]int{1, 768, 3072}, [3]int{1, 768, 30524})
}()

// Run measures and prints to w.
func Run(w io.Writer, opts Options) error {
	if opts.Threads < 0 {
		return fmt.Errorf("kbench: threads = %d; pass 0 (1 and all) or a positive count", opts.Threads)
	}
	shapes := opts.Custom
	if len(shapes) == 0 {
		shapes = DefaultShapes
	}
	var sel [][3]int
	for _, s := range shapes {
		if s[0] <= 0 || s[1] <= 0 || s[2] <= 0 {
			return fmt.Errorf("kbench: shape %v has a non-positive dimension", s)
		}
		if keep(name(s), opts.Shapes) {
			sel = append(sel, s)
		}
	}
	if len(sel) == 0 {
		return fmt.Errorf("kbench: no shape matches %q; shapes are named like %s", opts.Shapes, name(shapes[0]))
	}
	threads := []int{opts.Threads}
	if opts.Threads == 0 {
		threads = []int{1}
		if g := runtime.GOMAXPROCS(0); g > 1 {
			threads = append(threads, g)
		}
	}
	prev := kernels.SetThreads(threads[0])
	defer kernels.SetThreads(prev)

	var results []Result
	for _, th := range threads {
		kernels.SetThreads(th)
		var readBuf []float32 // allocated at the first GEMV
		for _, s := range sel {
			r, err := measure(s, th, opts.Quick, &readBuf)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	return printTable(w, results)
}

func name(s [3]int) string { return fmt.Sprintf("%dx%dx%d", s[0], s[1], s[2]) }

func keep(n string, filters []string) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		if strings.Contains(n, f) {
			return true
		}
	}
	return false
}

// timeIt returns the median over reps of the seconds per call of f, each
// rep repeating f for at least minDur.
func timeIt(f func(), reps int, minDur time.Duration) float64 {
	f() // warm up
	var per []float64
	for r := 0; r < reps; r++ {
		n := 0
		start := time.Now()
		for {
			f()
			n++
			if d := time.Since(start); d >= minDur {
				per = append(per, d.Seconds()/float64(n))
				break
			}
		}
	}
	return median(per)
}

func reps(quick bool) (int, time.Duration) {
	if quick {
		return 1, 5 * time.Millisecond
	}
	return 5, 150 * time.Millisecond
}

// onThreads runs f(i) on th goroutines at once and waits.
func onThreads(th int, f func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < th; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); f(i) }(i)
	}
	wg.Wait()
}

// peakProbe returns a function running kernels.PeakFMALoop on th threads
// at once, and the flops it performs.
func peakProbe(th int, quick bool) (func(), float64) {
	iters := 1 << 18
	if quick {
		iters = 1 << 12
	}
	return func() { onThreads(th, func(int) { kernels.PeakFMALoop(iters) }) },
		float64(th) * float64(iters) * kernels.FlopsPerPeakIter
}

// readProbe returns a function in which th threads stream disjoint parts
// of buf (far larger than the caches), and the bytes it reads.
func readProbe(th int, buf []float32) (func(), float64) {
	part := len(buf) / th
	return func() {
		onThreads(th, func(i int) { kernels.ReadBandwidthLoop(buf[i*part : (i+1)*part]) })
	}, float64(part * th * 4)
}

// timePair times the probe f and the kernel g alternately, rep by rep,
// so that both see the same machine load (the machine is shared), and
// returns the median seconds per call of each and the median over reps of
// (g's rate)/(f's rate) = (gWork/tg)/(fWork/tf).
func timePair(f func(), fWork float64, g func(), gWork float64, reps int, minDur time.Duration) (tf, tg, frac float64) {
	var fs, gs, rs []float64
	for r := 0; r < reps; r++ {
		a := timeIt(f, 1, minDur/3)
		b := timeIt(g, 1, minDur)
		fs, gs = append(fs, a), append(gs, b)
		rs = append(rs, (gWork/b)/(fWork/a))
	}
	return median(fs), median(gs), median(rs)
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// coldBytes is the amount of distinct data a cold-cache measurement cycles
// through (the L3 is 32 MiB on the reference machine).
func coldBytes(quick bool) int {
	if quick {
		return 1 << 20
	}
	return 256 << 20
}

func randVec(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	return x
}

func measure(s [3]int, th int, quick bool, readBuf *[]float32) (Result, error) {
	m, k, n := s[0], s[1], s[2]
	rng := rand.New(rand.NewSource(1))
	a, wt := randVec(rng, m*k), randVec(rng, n*k) // wt: [N, K] (nn.Linear)
	c := make([]float32, m*n)
	pb := kernels.PackB(true, k, n, wt, k)
	flops := 2 * float64(m) * float64(n) * float64(k)
	reps, minDur := reps(quick)
	res := Result{Op: "gemm", M: m, K: k, N: n, Threads: th}
	peakF, peakWork := peakProbe(th, quick)
	if m == 1 {
		// A decode step reads many different weights, so measure GEMV on
		// weights that are not in cache: cycle through enough packed
		// copies to exceed the caches several times over.
		copies := []*kernels.PackedB{pb}
		for total := pb.Bytes(); total < coldBytes(quick); total += pb.Bytes() {
			copies = append(copies, kernels.PackB(true, k, n, wt, k))
		}
		next := 0
		gemv := func() {
			kernels.GemmPacked(1, 1, a, k, copies[next], 0, c, n)
			next = (next + 1) % len(copies)
		}
		if *readBuf == nil {
			*readBuf = make([]float32, max(coldBytes(quick)/4, 64*th))
			for i := range *readBuf {
				(*readBuf)[i] = 1
			}
		}
		readF, readWork := readProbe(th, *readBuf)
		tr, tg, frac := timePair(readF, readWork, gemv, float64(pb.Bytes()), reps, minDur)
		res.Op = "gemv"
		res.GFLOPS = flops / tg / 1e9
		res.GBPS = float64(pb.Bytes()) / tg / 1e9
		res.ReadGBPS = readWork / tr / 1e9
		res.ReadFraction = frac
		tp := timeIt(peakF, reps, minDur/3)
		res.PeakGFLOPS = peakWork / tp / 1e9
		res.PeakFraction = res.GFLOPS / res.PeakGFLOPS
		return res, nil
	}
	tp, tg, frac := timePair(peakF, peakWork, func() { kernels.GemmPacked(m, 1, a, k, pb, 0, c, n) }, flops, reps, minDur)
	res.GFLOPS = flops / tg / 1e9
	res.PeakGFLOPS = peakWork / tp / 1e9
	res.PeakFraction = frac
	sec := timeIt(func() { kernels.Gemm(false, true, m, n, k, 1, a, k, wt, k, 0, c, n) }, reps, minDur)
	res.GemmGFLOPS = flops / sec / 1e9
	if !quick || flops <= 1e10 {
		old := runtime.GOMAXPROCS(th)
		impl := gonum.Implementation{}
		sec = timeIt(func() {
			impl.Sgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, wt, k, 0, c, n)
		}, 1, 0)
		runtime.GOMAXPROCS(old)
		res.GonumGFLOPS = flops / sec / 1e9
	}
	return res, nil
}

func printTable(w io.Writer, rs []Result) error {
	fmt.Fprintf(w, "kernel: %s\n", kernels.KernelName())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tM×K×N\tthreads\tGFLOP/s\t% peak\tpeak GFLOP/s\tGemm (pack/call)\tgonum\t× gonum\tGB/s\t% read BW\tread GB/s\t")
	for _, r := range rs {
		gon, ratio, gemm := "-", "-", "-"
		if r.GonumGFLOPS > 0 {
			gon = fmt.Sprintf("%.2f", r.GonumGFLOPS)
			ratio = fmt.Sprintf("%.1f", r.GFLOPS/r.GonumGFLOPS)
		}
		if r.GemmGFLOPS > 0 {
			gemm = fmt.Sprintf("%.1f", r.GemmGFLOPS)
		}
		gbps, frac, rbw := "-", "-", "-"
		if r.Op == "gemv" {
			gbps = fmt.Sprintf("%.1f", r.GBPS)
			frac = fmt.Sprintf("%.0f%%", 100*r.ReadFraction)
			rbw = fmt.Sprintf("%.1f", r.ReadGBPS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.0f%%\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Op, name([3]int{r.M, r.K, r.N}), r.Threads, r.GFLOPS, 100*r.PeakFraction, r.PeakGFLOPS,
			gemm, gon, ratio, gbps, frac, rbw)
	}
	return tw.Flush()
}
