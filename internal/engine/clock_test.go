package engine

import (
	"sync"
	"time"
)

// fakeClock makes batch timers that fire only when the test advances the
// clock, so the batching tests do not depend on the scheduler's timing.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	clock    *fakeClock
	c        chan time.Time
	deadline time.Duration
	active   bool
}

// install makes e's vision batcher use the clock; call it before any image.
func (c *fakeClock) install(e *Engine) { e.vis.newTimer = c.newTimer }

func (c *fakeClock) newTimer(d time.Duration) batchTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, c: make(chan time.Time, 1), deadline: c.now + d, active: true}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Chan() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.deadline, t.active = t.clock.now+d, true
}

func (t *fakeTimer) Stop() {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.active = false
}

// advance moves the clock on by d and fires the timers whose deadline it
// reached; it returns how many fired.
func (c *fakeClock) advance(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d
	fired := 0
	for _, t := range c.timers {
		if t.active && t.deadline <= c.now {
			t.active = false
			fired++
			select {
			case t.c <- time.Time{}:
			default:
			}
		}
	}
	return fired
}

// started reports how many timers were made so far.
func (c *fakeClock) started() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// deadline reports timer i's deadline on the clock's time line and now.
func (c *fakeClock) deadline(i int) (deadline, now time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timers[i].deadline, c.now
}
