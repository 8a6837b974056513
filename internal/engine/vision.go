package engine

import (
	"context"
	"image"
	"sync"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// visionBatcher gathers images arriving within a window (at most max) and
// encodes them with one EncodeImages call. The first image of a batch
// makes its goroutine the batch's leader: it waits for the window (or a
// full batch), then encodes everyone's images and hands out the states.
type visionBatcher struct {
	m      fusion.Model
	max    int
	window time.Duration

	mu       sync.Mutex
	pending  []*visionJob
	full     chan struct{} // signalled when pending reaches max
	inflight map[string]*visionJob

	batches, images, shared int64
}

type visionJob struct {
	ctx   context.Context
	key   string
	img   image.Image
	state *fusion.ImageState
	err   error
	done  chan struct{}
}

func newVisionBatcher(m fusion.Model, max int, window time.Duration) *visionBatcher {
	return &visionBatcher{m: m, max: max, window: window, full: make(chan struct{}, 1), inflight: map[string]*visionJob{}}
}

func (v *visionBatcher) stats() (batches, images, shared int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.batches, v.images, v.shared
}

func (v *visionBatcher) encode(ctx context.Context, key string, img image.Image) (*fusion.ImageState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v.mu.Lock()
	if key != "" {
		if j, ok := v.inflight[key]; ok { // the same image is being encoded
			v.shared++
			v.mu.Unlock()
			return v.wait(ctx, j)
		}
	}
	j := &visionJob{ctx: ctx, key: key, img: img, done: make(chan struct{})}
	if key != "" {
		v.inflight[key] = j
	}
	if v.window < 0 {
		v.mu.Unlock()
		v.run([]*visionJob{j})
		return v.wait(ctx, j)
	}
	v.pending = append(v.pending, j)
	leader := len(v.pending) == 1
	if len(v.pending) >= v.max {
		select {
		case v.full <- struct{}{}:
		default:
		}
	}
	v.mu.Unlock()
	if leader {
		t := time.NewTimer(v.window)
		select {
		case <-t.C:
		case <-v.full:
			t.Stop()
		}
		v.mu.Lock()
		n := min(len(v.pending), v.max)
		batch := append([]*visionJob(nil), v.pending[:n]...)
		v.pending = append(v.pending[:0], v.pending[n:]...)
		// Drain a stale "full" signal; if images remain, the first of
		// them leads the next batch.
		select {
		case <-v.full:
		default:
		}
		var next *visionJob
		if len(v.pending) > 0 {
			next = v.pending[0]
		}
		v.mu.Unlock()
		if next != nil {
			go v.lead()
		}
		v.run(batch)
	}
	return v.wait(ctx, j)
}

// lead runs a batch for images left over by a full batch.
func (v *visionBatcher) lead() {
	t := time.NewTimer(v.window)
	<-t.C
	v.mu.Lock()
	n := min(len(v.pending), v.max)
	batch := append([]*visionJob(nil), v.pending[:n]...)
	v.pending = append(v.pending[:0], v.pending[n:]...)
	more := len(v.pending) > 0
	v.mu.Unlock()
	if more {
		go v.lead()
	}
	if len(batch) > 0 {
		v.run(batch)
	}
}

func (v *visionBatcher) wait(ctx context.Context, j *visionJob) (*fusion.ImageState, error) {
	select {
	case <-j.done:
		return j.state, j.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run encodes the jobs whose requests are still waiting as one batch; if
// the batch fails, each image alone (one bad image fails only its
// request).
func (v *visionBatcher) run(batch []*visionJob) {
	live := batch[:0:0]
	for _, j := range batch {
		if j.ctx.Err() != nil && j.key == "" {
			j.err = j.ctx.Err()
			v.finish(j)
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	imgs := make([]image.Image, len(live))
	for i, j := range live {
		imgs[i] = j.img
	}
	states, err := v.m.EncodeImages(context.Background(), imgs)
	v.mu.Lock()
	v.batches++
	v.images += int64(len(live))
	v.mu.Unlock()
	if err == nil && len(states) == len(live) {
		for i, j := range live {
			j.state = states[i]
			v.finish(j)
		}
		return
	}
	for _, j := range live {
		if len(live) == 1 {
			j.err = err
		} else {
			j.state, j.err = v.m.EncodeImage(context.Background(), j.img)
		}
		v.finish(j)
	}
}

func (v *visionBatcher) finish(j *visionJob) {
	if j.key != "" {
		v.mu.Lock()
		if v.inflight[j.key] == j {
			delete(v.inflight, j.key)
		}
		v.mu.Unlock()
	}
	close(j.done)
}
