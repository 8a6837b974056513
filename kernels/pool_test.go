package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParallelForCoverage: every index is visited exactly once, chunks
// respect the grain, for several sizes and thread counts, also nested.
func TestParallelForCoverage(t *testing.T) {
	prev := SetThreads(0)
	defer SetThreads(prev)
	for _, threads := range []int{1, 2, 4} {
		SetThreads(threads)
		for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {5, 10}, {17, 1}, {100, 3}, {1000, 7}} {
			hits := make([]int32, tc.n)
			var bad atomic.Int32
			parallelFor(tc.n, tc.grain, func(lo, hi int) {
				if hi-lo < tc.grain && hi != tc.n {
					bad.Add(1)
				}
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			})
			if bad.Load() != 0 {
				t.Fatalf("threads=%d n=%d grain=%d: %d chunks smaller than the grain", threads, tc.n, tc.grain, bad.Load())
			}
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("threads=%d n=%d grain=%d: index %d visited %d times", threads, tc.n, tc.grain, i, h)
				}
			}
		}
		for _, n := range []int{0, 1, 2, 23} {
			hits := make([]int32, n)
			parallelTiles(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("parallelTiles threads=%d n=%d: index %d visited %d times", threads, n, i, h)
				}
			}
		}
		// Nested calls from inside chunks must complete.
		var total atomic.Int64
		parallelFor(8, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				parallelFor(100, 1, func(lo, hi int) { total.Add(int64(hi - lo)) })
			}
		})
		if total.Load() != 800 {
			t.Fatalf("threads=%d: nested parallelFor covered %d of 800", threads, total.Load())
		}
	}
}

// TestParallelForConcurrentCallers: many callers at once all complete
// with every index covered (run with -race).
func TestParallelForConcurrentCallers(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 20; it++ {
				sum := make([]int, 64)
				parallelFor(len(sum), 1, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						sum[i] = i
					}
				})
				for i, v := range sum {
					if v != i {
						t.Errorf("index %d = %d", i, v)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestSetThreads(t *testing.T) {
	prev := SetThreads(3)
	defer SetThreads(prev)
	if got := Threads(); got != 3 {
		t.Fatalf("Threads() = %d, want 3", got)
	}
	if got := SetThreads(1); got != 3 {
		t.Fatalf("SetThreads returned %d, want previous 3", got)
	}
	if got := Threads(); got != 1 {
		t.Fatalf("Threads() = %d, want 1", got)
	}
}

// TestPoolUsesWorkers: with two threads, two chunks of one job run at the
// same time (a worker joins the caller), which a serial pool cannot do.
func TestPoolUsesWorkers(t *testing.T) {
	prev := SetThreads(2)
	defer SetThreads(prev)
	var started atomic.Int32
	ok := atomic.Bool{}
	parallelTiles(2, func(lo, hi int) {
		started.Add(1)
		deadline := time.Now().Add(5 * time.Second)
		for started.Load() < 2 && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		if started.Load() >= 2 {
			ok.Store(true)
		}
	})
	if !ok.Load() {
		t.Fatal("the second chunk never started while the first was running: no worker joined")
	}
}
