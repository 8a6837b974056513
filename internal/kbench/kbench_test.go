package kbench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestRunQuickJSON(t *testing.T) {
	var buf bytes.Buffer
	opts := Options{Threads: 1, JSON: true, Quick: true, Custom: [][3]int{{7, 33, 40}, {1, 64, 100}}}
	if err := Run(&buf, opts); err != nil {
		t.Fatal(err)
	}
	var rs []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rs); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, buf.String())
	}
	if len(rs) != 2 {
		t.Fatalf("got %d results, want 2", len(rs))
	}
	for i, want := range []struct {
		op      string
		m, k, n float64
	}{{"gemm", 7, 33, 40}, {"gemv", 1, 64, 100}} {
		r := rs[i]
		for _, f := range []string{"op", "m", "k", "n", "threads", "gflops", "gbps", "peak_gflops", "peak_fraction"} {
			if _, ok := r[f]; !ok {
				t.Fatalf("result %d lacks %q: %v", i, f, r)
			}
		}
		if r["op"] != want.op || r["m"] != want.m || r["k"] != want.k || r["n"] != want.n || r["threads"] != 1.0 {
			t.Fatalf("result %d = %v, want op %s %vx%vx%v threads 1", i, r, want.op, want.m, want.k, want.n)
		}
		if g := r["gflops"].(float64); !(g > 0) {
			t.Fatalf("result %d: gflops = %v", i, g)
		}
		if p := r["peak_gflops"].(float64); !(p > 0) {
			t.Fatalf("result %d: peak_gflops = %v", i, p)
		}
		gb := r["gbps"].(float64)
		if (want.op == "gemv") != (gb > 0) {
			t.Fatalf("result %d (%s): gbps = %v", i, want.op, gb)
		}
	}
	if _, ok := rs[0]["gonum_gflops"]; !ok {
		t.Fatalf("gemm result lacks the gonum measurement: %v", rs[0])
	}
}

func TestRunTableAndErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := Run(&buf, Options{Threads: 1, Quick: true, Custom: [][3]int{{3, 5, 7}}}); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "3x5x7") || !strings.Contains(out, "GFLOP/s") {
		t.Fatalf("table lacks the shape or header:\n%s", out)
	}
	if err := Run(&buf, Options{Threads: -1}); err == nil {
		t.Fatal("Threads = -1 accepted")
	}
	if err := Run(&buf, Options{Quick: true, Shapes: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "no shape") {
		t.Fatalf("unmatched filter: err = %v", err)
	}
}
