package kernels

// parallelFor calls fn over [0, n) split into chunks of at least grain
// items, on the process-wide worker pool. It returns when every chunk is
// done. Small n (≤ grain) runs on the calling goroutine.
// (Placeholder: serial until the worker pool lands.)
func parallelFor(n, grain int, fn func(lo, hi int)) {
	if n > 0 {
		fn(0, n)
	}
}
