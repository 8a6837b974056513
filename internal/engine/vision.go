package engine

import (
	"context"
	"image"
	"sync"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// visionBatcher gathers images arriving close together (at most max) and
// encodes them with one EncodeImages call, one batch at a time. The first
// image of a batch makes its goroutine the batch's leader: it waits until
// no image has arrived for a window (or the batch is full, or maxWait has
// passed), then for the previous batch, then encodes everyone's images and
// hands out the states.
type visionBatcher struct {
	m       fusion.Model
	max     int
	window  time.Duration
	maxWait time.Duration
	// newTimer makes the window and maxWait timers (tests substitute a
	// clock they advance by hand).
	newTimer func(time.Duration) batchTimer

	mu       sync.Mutex
	pending  []*visionJob
	leading  bool          // a leader is waiting to take the pending images
	full     chan struct{} // signalled when pending reaches max
	arrived  chan struct{} // signalled when an image joins pending
	sem      chan struct{} // one batch encodes at a time
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

// batchTimer is the part of *time.Timer the batcher uses.
type batchTimer interface {
	Chan() <-chan time.Time
	Reset(time.Duration)
	Stop()
}

type realTimer struct{ t *time.Timer }

func (r realTimer) Chan() <-chan time.Time { return r.t.C }
func (r realTimer) Reset(d time.Duration)  { r.t.Reset(d) }
func (r realTimer) Stop()                  { r.t.Stop() }

func newRealTimer(d time.Duration) batchTimer { return realTimer{time.NewTimer(d)} }

func newVisionBatcher(m fusion.Model, most int, window, maxWait time.Duration) *visionBatcher {
	return &visionBatcher{m: m, max: most, window: window, maxWait: maxWait, newTimer: newRealTimer,
		full: make(chan struct{}, 1), arrived: make(chan struct{}, 1), sem: make(chan struct{}, 1), inflight: map[string]*visionJob{}}
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
	leader := len(v.pending) == 1 && !v.leading
	if leader {
		v.leading = true
	}
	if len(v.pending) >= v.max {
		select {
		case v.full <- struct{}{}:
		default:
		}
	}
	select {
	case v.arrived <- struct{}{}:
	default:
	}
	v.mu.Unlock()
	if leader {
		v.lead()
	}
	return v.wait(ctx, j)
}

// lead waits until no image has arrived for the window, the batch is
// full or maxWait has passed, then for the previous batch to finish (one
// batch encodes at a time: batches run one after the other with all
// cores, and images keep joining while one runs), takes up to max pending
// images and encodes them. If images remain, the next leader starts in a
// new goroutine.
func (v *visionBatcher) lead() {
	quiet, limit := v.newTimer(v.window), v.newTimer(v.maxWait)
	defer quiet.Stop()
	defer limit.Stop()
wait:
	for {
		select {
		case <-quiet.Chan():
			break wait
		case <-limit.Chan():
			break wait
		case <-v.full:
			break wait
		case <-v.arrived: // another image: wait a window for the next
			quiet.Reset(v.window)
		}
	}
	v.sem <- struct{}{}
	v.mu.Lock()
	n := min(len(v.pending), v.max)
	batch := append([]*visionJob(nil), v.pending[:n]...)
	v.pending = append(v.pending[:0], v.pending[n:]...)
	select { // a stale "full" signal
	case <-v.full:
	default:
	}
	if len(v.pending) > 0 {
		if len(v.pending) >= v.max {
			v.full <- struct{}{}
		}
		go v.lead()
	} else {
		v.leading = false
	}
	v.mu.Unlock()
	if len(batch) > 0 {
		v.run(batch)
	}
	<-v.sem
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
