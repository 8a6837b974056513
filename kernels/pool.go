package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The process-wide worker pool.
//
// A pool of Threads() threads has Threads()-1 worker goroutines; the
// goroutine that calls parallelFor is the remaining thread: it always works
// on its own job too, so a job completes even when every worker is busy
// elsewhere (or the job was submitted from inside a worker). A job is split
// into chunks claimed one at a time from an atomic counter; the caller
// offers at most Threads()-1 "tickets" for it on the shared queue, and a
// worker holding a ticket claims chunks until none are left. Workers are
// the only extra threads that ever run chunks, so concurrent callers share
// them instead of each starting GOMAXPROCS goroutines: with c concurrent
// callers at most Threads()-1+c goroutines are busy, not c·Threads().

type pool struct {
	threads int
	queue   chan *job
}

type job struct {
	fn      func(lo, hi int)
	n       int
	chunk   int
	nChunks int64
	next    atomic.Int64
	done    atomic.Int64
	fin     chan struct{}
}

var (
	poolMu  sync.Mutex
	curPool atomic.Pointer[pool]
)

func getPool() *pool {
	if p := curPool.Load(); p != nil {
		return p
	}
	poolMu.Lock()
	defer poolMu.Unlock()
	if p := curPool.Load(); p != nil {
		return p
	}
	p := newPool(runtime.GOMAXPROCS(0))
	curPool.Store(p)
	return p
}

func newPool(threads int) *pool {
	p := &pool{threads: threads, queue: make(chan *job, 64*threads)}
	for i := 0; i < threads-1; i++ {
		go worker(p.queue)
	}
	return p
}

func worker(q chan *job) {
	for j := range q {
		if j == nil { // retirement notice from SetThreads
			return
		}
		j.work()
	}
}

// SetThreads sets the number of threads the kernels use (the caller's
// goroutine plus n-1 pool workers) and returns the previous setting. n ≤ 0
// selects runtime.GOMAXPROCS(0). Products already running finish with the
// old workers. Meant for start-up (a --threads flag) and benchmarks.
func SetThreads(n int) int {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	poolMu.Lock()
	defer poolMu.Unlock()
	old := curPool.Load()
	prev := runtime.GOMAXPROCS(0)
	if old != nil {
		prev = old.threads
		if old.threads == n {
			return prev
		}
	}
	curPool.Store(newPool(n))
	if old != nil {
		// Retire the old workers after they drain what is queued; a
		// caller still holding the old pool runs its chunks itself.
		go func() {
			for i := 0; i < old.threads-1; i++ {
				old.queue <- nil
			}
		}()
	}
	return prev
}

// Threads returns the number of threads the kernels use (see SetThreads);
// by default runtime.GOMAXPROCS(0) as read at first use.
func Threads() int { return getPool().threads }

// work claims and runs chunks of j until none are left.
func (j *job) work() {
	for {
		c := j.next.Add(1) - 1
		if c >= j.nChunks {
			return
		}
		lo := int(c) * j.chunk
		hi := min(lo+j.chunk, j.n)
		j.fn(lo, hi)
		if j.done.Add(1) == j.nChunks {
			close(j.fin)
		}
	}
}

// parallelFor calls fn over [0, n) split into chunks of at least grain
// items, on the process-wide worker pool, and returns when every chunk is
// done. The calling goroutine runs chunks too. Small n (≤ grain) or a
// one-thread pool runs fn(0, n) on the calling goroutine with no hand-off.
// fn must be safe to call concurrently on disjoint ranges.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	p := getPool()
	if p.threads <= 1 || n <= grain {
		fn(0, n)
		return
	}
	// About four chunks per thread for load balance on a noisy machine.
	runChunks(p, n, max(grain, (n+4*p.threads-1)/(4*p.threads)), fn)
}

// parallelTiles is parallelFor with one item per chunk, for a few dozen
// coarse items (GEMM tiles of a millisecond or so): claiming them one at a
// time keeps the threads finishing together.
func parallelTiles(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	p := getPool()
	if p.threads <= 1 || n == 1 {
		fn(0, n)
		return
	}
	runChunks(p, n, 1, fn)
}

// runChunks runs fn over [0, n) in chunks of chunk items on pool p, the
// caller included.
func runChunks(p *pool, n, chunk int, fn func(lo, hi int)) {
	nChunks := (n + chunk - 1) / chunk
	if nChunks <= 1 {
		fn(0, n)
		return
	}
	j := &job{fn: fn, n: n, chunk: chunk, nChunks: int64(nChunks), fin: make(chan struct{})}
	for t := min(nChunks-1, p.threads-1); t > 0; t-- {
		select {
		case p.queue <- j:
		default: // queue full: the caller and whoever is free will do it
			t = 0
		}
	}
	j.work()
	<-j.fin
}
