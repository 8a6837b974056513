//go:build !linux || purego

package kernels

// mapFloats is not available on this platform (or under the purego tag):
// weights stay on the Go heap.
func mapFloats(n int) ([]float32, func()) { return nil, nil }

// isMapped is always false here.
func isMapped([]float32) bool { return false }
