//go:build !linux

package kernels

// opsThreadCPU is unavailable here; benchmarks then report wall time only.
func opsThreadCPU() (int64, bool) { return 0, false }
