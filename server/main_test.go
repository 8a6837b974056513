package server

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (a
// request's work or a stream that did not stop). The kernels' worker pool
// lives for the whole process by design.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/glimpse-vlm/glimpse/kernels.worker"))
}
