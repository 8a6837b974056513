//go:build !unix

package vitgpt2

import "time"

// cpuTime is unavailable here; CPU metrics report 0.
func cpuTime() time.Duration { return 0 }
