// Package batchtest holds the check the model families' tests share: that
// requests run concurrently (so the iteration-level scheduler batches
// their decoding steps) give exactly what they give alone.
package batchtest

import (
	"strings"
	"sync"
	"testing"
)

// SameAsAlone runs run(i) for i < n alone, one after another, then all at
// once, and fails t when a concurrent result differs from the lone one
// (describe(i) names request i in the message) or a lone run returns a
// string starting with "error". stats returns the scheduler's cumulative
// steps and sequences; whether concurrent requests really shared steps
// depends on goroutine timing, so the concurrent round gets up to three
// attempts to show a mean of two or more sequences per step (outputs are
// compared on every attempt). It returns the lone results and the steps
// and sequences of the last attempt.
func SameAsAlone(t *testing.T, n int, run func(i int) string, describe func(i int) string, stats func() (steps, rows int64)) (alone []string, steps, rows int64) {
	t.Helper()
	alone = make([]string, n)
	for i := range alone {
		if alone[i] = run(i); strings.HasPrefix(alone[i], "error") {
			t.Fatalf("request %d: %s", i, alone[i])
		}
	}
	for attempt := 0; attempt < 3; attempt++ {
		s0, r0 := stats()
		together := make([]string, n)
		var wg sync.WaitGroup
		for i := range together {
			wg.Add(1)
			go func() {
				defer wg.Done()
				together[i] = run(i)
			}()
		}
		wg.Wait()
		for i := range alone {
			if alone[i] != together[i] {
				t.Errorf("request %d (%s):\nalone   %s\nbatched %s", i, describe(i), alone[i], together[i])
			}
		}
		s1, r1 := stats()
		steps, rows = s1-s0, r1-r0
		if steps > 0 && rows >= 2*steps {
			break
		}
	}
	if steps == 0 || rows < 2*steps {
		t.Errorf("%d steps carried %d sequences: concurrent requests were not batched", steps, rows)
	}
	return alone, steps, rows
}
