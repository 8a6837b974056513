//go:build !linux || purego

package kernels

// weightsOffHeap is false here: weights stay on the Go heap.
const weightsOffHeap = false

// mapFloats is not available on this platform (or under the purego tag):
// weights stay on the Go heap.
func mapFloats(n int) ([]float32, func()) { return nil, nil }

// isMapped is always false here.
func isMapped([]float32) bool { return false }
