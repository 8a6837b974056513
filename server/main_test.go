package server

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (a
// request's work or a stream that did not stop).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
