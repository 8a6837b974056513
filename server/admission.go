package server

import (
	"context"
	"sync"
	"time"
)

// admission limits how many requests run at once and how many may wait.
// A request that finds every slot taken and the queue full is refused at
// once (RESOURCE_EXHAUSTED with RetryInfo) rather than piling up.
type admission struct {
	slots      chan struct{}
	retryAfter time.Duration

	mu       sync.Mutex
	waiting  int
	maxQueue int
}

func newAdmission(concurrent, queue int, retryAfter time.Duration) *admission {
	return &admission{slots: make(chan struct{}, concurrent), maxQueue: queue, retryAfter: retryAfter}
}

// acquire takes a slot, waiting in the queue if needed. It returns the
// release function and how long the request waited.
func (a *admission) acquire(ctx context.Context) (release func(), waited time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, toStatus(ctx, err)
	}
	select {
	case a.slots <- struct{}{}:
		return a.release, 0, nil
	default:
	}
	a.mu.Lock()
	if a.waiting >= a.maxQueue {
		a.mu.Unlock()
		return nil, 0, resourceExhausted(a.retryAfter,
			"server is full: %d requests running and %d waiting; retry after %v", cap(a.slots), a.maxQueue, a.retryAfter)
	}
	a.waiting++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.waiting--
		a.mu.Unlock()
	}()
	start := time.Now()
	select {
	case a.slots <- struct{}{}:
		return a.release, time.Since(start), nil
	case <-ctx.Done():
		return nil, time.Since(start), toStatus(ctx, ctx.Err())
	}
}

func (a *admission) release() { <-a.slots }

// depth returns the requests running and waiting.
func (a *admission) depth() (running, waiting int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.slots), a.waiting
}
