// Package batchtest holds the check the model families' tests share: that
// requests run concurrently (so the iteration-level scheduler batches
// their decoding steps) give exactly what they give alone.
package batchtest

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Scheduler is what SameAsAlone needs of a model's iteration-level
// scheduler (a *generate.Batcher).
type Scheduler interface {
	// Stats returns the cumulative steps and the sequences they carried.
	Stats() (steps, rows int64)
	// Hold stops steps from starting until release is called.
	Hold() (release func())
	// Pending is the number of submitted steps waiting for a batch.
	Pending() int
	// MaxMembers is the most requests one step has carried so far.
	MaxMembers() int
}

// SameAsAlone runs run(i) for i < n alone, one after another, then all at
// once, and fails t when a concurrent result differs from the lone one
// (describe(i) names request i in the message) or a lone run returns a
// string starting with "error". Each request must submit exactly one
// step to sched before its first logits (one member per request). The
// concurrent round holds the scheduler until all n requests have
// submitted their first step, so that step carries all of them whatever
// the goroutine timing; later steps batch whoever is ready. It returns the
// lone results and the concurrent round's steps and sequences.
func SameAsAlone(t *testing.T, n int, run func(i int) string, describe func(i int) string, sched Scheduler) (alone []string, steps, rows int64) {
	t.Helper()
	alone = make([]string, n)
	for i := range alone {
		if alone[i] = run(i); strings.HasPrefix(alone[i], "error") {
			t.Fatalf("request %d: %s", i, alone[i])
		}
	}
	s0, r0 := sched.Stats()
	release := sched.Hold()
	defer release()
	together := make([]string, n)
	var wg sync.WaitGroup
	for i := range together {
		wg.Add(1)
		go func() {
			defer wg.Done()
			together[i] = run(i)
		}()
	}
	// Polled, not timed: every request reaches its first step.
	for deadline := time.Now().Add(time.Minute); sched.Pending() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			release()
			wg.Wait()
			t.Fatalf("only %d of %d concurrent requests submitted a step within a minute", sched.Pending(), n)
		}
	}
	release()
	wg.Wait()
	for i := range alone {
		if alone[i] != together[i] {
			t.Errorf("request %d (%s):\nalone   %s\nbatched %s", i, describe(i), alone[i], together[i])
		}
	}
	s1, r1 := sched.Stats()
	steps, rows = s1-s0, r1-r0
	if m := sched.MaxMembers(); m < n {
		t.Errorf("at most %d requests shared a step (%d steps carried %d sequences): the %d requests did not share their first step", m, steps, rows, n)
	}
	return alone, steps, rows
}
