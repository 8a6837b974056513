//go:build linux

package kernels

import "golang.org/x/sys/unix"

// opsThreadCPU returns the CPU time consumed by the calling OS thread, so
// that single-thread benchmarks can report a rate that a shared, busy
// machine does not distort (wall time counts time spent descheduled).
func opsThreadCPU() (int64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return ts.Nano(), true
}
