//go:build ignore

// Side-by-side comparison of Glimpse's GEMM/GEMV with OpenBLAS on the same
// data, alternating the two rep by rep so that both see the same machine
// load. Not part of the build (cgo, needs libopenblas-dev); run it with
//
//	apt-get install libopenblas-dev
//	CGO_ENABLED=1 OPENBLAS_CORETYPE=Zen go run ./cmd/glimpse-kbench/openblas/compare.go -threads 1
//
// OPENBLAS_CORETYPE matters: Debian's OpenBLAS 0.3.21 detects this VM's
// CPU as "Prescott" and then runs sgemm at 6–8 GFLOP/s.
package main

/*
#cgo CFLAGS: -I/usr/include/x86_64-linux-gnu/openblas-pthread
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
void openblas_set_num_threads(int);
static void sg(int m, int n, int k, float *a, float *w, float *c) {
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, w, k, 0.0f, c, n);
}
static void sv(int n, int k, float *w, float *x, float *y) {
	cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w, k, x, 1, 0.0f, y, 1);
}
*/
import "C"

import (
	"flag"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"time"

	"github.com/glimpse-vlm/glimpse/kernels"
)

func tm(f func(), min time.Duration) float64 {
	f()
	n := 0
	t := time.Now()
	for {
		f()
		n++
		if d := time.Since(t); d >= min {
			return d.Seconds() / float64(n)
		}
	}
}

func med(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }

func main() {
	reps := flag.Int("reps", 5, "alternating repetitions per shape (medians are printed)")
	th := flag.Int("threads", 1, "threads for both libraries")
	only := flag.String("shapes", "", "keep shapes whose \"[M K N]\" contains this substring")
	dur := flag.Duration("dur", 60*time.Millisecond, "minimum time per timed repetition")
	flag.Parse()
	C.openblas_set_num_threads(C.int(*th))
	kernels.SetThreads(*th)
	shapes := [][3]int{}
	for _, m := range []int{197, 577, 1576} {
		for _, kn := range [][2]int{{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}} {
			shapes = append(shapes, [3]int{m, kn[0], kn[1]})
		}
	}
	shapes = append(shapes, [3]int{1024, 1024, 1024})
	rng := rand.New(rand.NewSource(1))
	for _, s := range shapes {
		m, k, n := s[0], s[1], s[2]
		if *only != "" && !strings.Contains(fmt.Sprint(s), *only) {
			continue
		}
		a := make([]float32, m*k)
		w := make([]float32, n*k)
		c := make([]float32, m*n)
		for i := range a {
			a[i] = rng.Float32() - 0.5
		}
		for i := range w {
			w[i] = rng.Float32() - 0.5
		}
		pb := kernels.PackB(true, k, n, w, k)
		fl := 2 * float64(m*n*k) / 1e9
		var ob, gp, gg, r1, r2 []float64
		for r := 0; r < *reps; r++ {
			t0 := tm(func() { C.sg(C.int(m), C.int(n), C.int(k), (*C.float)(&a[0]), (*C.float)(&w[0]), (*C.float)(&c[0])) }, *dur)
			t1 := tm(func() { kernels.GemmPacked(m, 1, a, k, pb, 0, c, n) }, *dur)
			t2 := tm(func() { kernels.Gemm(false, true, m, n, k, 1, a, k, w, k, 0, c, n) }, *dur)
			ob, gp, gg = append(ob, fl/t0), append(gp, fl/t1), append(gg, fl/t2)
			r1, r2 = append(r1, t0/t1), append(r2, t0/t2)
		}
		fmt.Printf("%4dx%4dx%4d t%d  median: openblas %6.1f  packed %6.1f (%.2fx)  gemm %6.1f (%.2fx) | best: openblas %6.1f packed %6.1f (%.2fx) gemm %6.1f (%.2fx)\n", m, k, n, *th, med(ob), med(gp), med(r1), med(gg), med(r2),
			slices.Max(ob), slices.Max(gp), slices.Max(gp)/slices.Max(ob), slices.Max(gg), slices.Max(gg)/slices.Max(ob))
	}
	// GEMV 768x30524, cold (cycle copies)
	k, n := 768, 30524
	w := make([]float32, n*k)
	for i := range w {
		w[i] = rng.Float32() - 0.5
	}
	var ws [][]float32
	var pbs []*kernels.PackedB
	for i := 0; i < 3; i++ {
		ws = append(ws, slices.Clone(w))
		pbs = append(pbs, kernels.PackB(true, k, n, w, k))
	}
	x := make([]float32, k)
	y := make([]float32, n)
	var ob, gv, rr []float64
	for r := 0; r < *reps; r++ {
		i, j := 0, 0
		t0 := tm(func() {
			C.sv(C.int(n), C.int(k), (*C.float)(&ws[i][0]), (*C.float)(&x[0]), (*C.float)(&y[0]))
			i = (i + 1) % 3
		}, *dur)
		t1 := tm(func() { kernels.GemmPacked(1, 1, x, k, pbs[j], 0, y, n); j = (j + 1) % 3 }, *dur)
		ob, gv, rr = append(ob, float64(n*k*4)/t0/1e9), append(gv, float64(pbs[0].Bytes())/t1/1e9), append(rr, t0/t1)
	}
	fmt.Printf("gemv 768x30524 t%d  median: openblas sgemv %.1f GB/s  ours %.1f GB/s (%.2fx) | best: openblas %.1f ours %.1f\n", *th, med(ob), med(gv), med(rr), slices.Max(ob), slices.Max(gv))
}
