// Package engine runs a served model's generation requests together: it
// admits them into a bounded queue per model, accounts for the memory of
// their KV caches, and batches the vision encoding of images that arrive
// within a short window. Decoding steps of the admitted requests are merged
// by the model's own iteration-level scheduler (generate.Batcher, used by
// fusion/blip and fusion/vitgpt2): every step of every live request on a
// model runs as one batch per layer, new requests join at the next step
// and finished or cancelled ones leave at once.
package engine

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// Config bounds one model's engine. Zero fields take the defaults noted.
type Config struct {
	// MaxLive is how many generation requests may decode at once (their
	// steps share batches); default 64.
	MaxLive int
	// MaxQueue is how many more may wait for a place; beyond that a
	// request is refused with an *OverloadedError. Default 256; a negative
	// value means no queue.
	MaxQueue int
	// KVBudget bounds the memory the live requests hold (KVSizer: the
	// self-attention KV caches of every sequence up to its maximum length,
	// the cross-attention state, the image state); default
	// DefaultKVBudget. A request that needs more than the whole budget is
	// refused (ErrTooLarge), never left waiting.
	KVBudget int64
	// RetryAfter is the delay suggested to refused clients; default 1 s.
	RetryAfter time.Duration
	// VisionBatch is the most images encoded as one batch; default 8.
	VisionBatch int
	// VisionWindow is how long a batch waits for the next image: the
	// batch closes when no image has arrived for VisionWindow (default
	// 3 ms), when it is full, or VisionMaxWait after its first image. A
	// negative value disables batching.
	VisionWindow time.Duration
	// VisionMaxWait bounds how long the first image of a batch waits
	// while more keep arriving; default 20 ms (a burst of requests decodes
	// its images over several milliseconds before they reach the encoder,
	// and one image takes hundreds of milliseconds to encode).
	VisionMaxWait time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxLive <= 0 {
		c.MaxLive = 64
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 256
	} else if c.MaxQueue < 0 {
		c.MaxQueue = 0
	}
	if c.KVBudget <= 0 {
		c.KVBudget = DefaultKVBudget
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	if c.VisionBatch <= 0 {
		c.VisionBatch = 8
	}
	if c.VisionWindow == 0 {
		c.VisionWindow = 3 * time.Millisecond
	}
	if c.VisionMaxWait <= 0 {
		c.VisionMaxWait = 20 * time.Millisecond
	}
	return c
}

// DefaultKVBudget is the default Config.KVBudget: 128 MiB, about 20 live
// 20-token captions of BLIP-base (5.8 MiB each: its image state, the
// folded cross-attention state over it and the self-attention caches),
// which keeps `glimpse bench serve` (BLIP-base, 64 clients over loopback
// gRPC, client in the same process) under 1.3 GB of peak RSS with its
// 0.85 GiB of packed weights. Raise it (--kv-cache-bytes) for long beam
// searches (8 beams × 512 tokens of BLIP-base need ≈ 430 MiB of
// self-attention caches).
const DefaultKVBudget = 128 << 20

// KVSizer is implemented by models that can say how many bytes a request
// will hold at most while live: KV caches, cross-attention state,
// image state (fusion/blip and fusion/vitgpt2 do). Models without it are
// accounted with a fixed estimate.
type KVSizer interface {
	KVBytes(opts fusion.GenerateOptions, promptTokens int) int64
}

// OptionsChecker is implemented by models that can validate decoding
// options before any work is done (fusion/blip and fusion/vitgpt2 do).
type OptionsChecker interface {
	CheckOptions(opts fusion.GenerateOptions, promptTokens int) error
}

// CheckOptions returns the model's verdict on opts (nil for models that
// cannot check them ahead of decoding).
func (e *Engine) CheckOptions(opts fusion.GenerateOptions, promptTokens int) error {
	if c, ok := e.model.(OptionsChecker); ok {
		return c.CheckOptions(opts, promptTokens)
	}
	return nil
}

// defaultKVBytes is the estimate for models without KVSizer: a BLIP-base
// decoder's 20-token greedy caption with its cross-attention state.
const defaultKVBytes = 32 << 20

// OverloadedError is returned when a model's queue is full. The server
// maps it to RESOURCE_EXHAUSTED with RetryInfo.
type OverloadedError struct {
	RetryAfter time.Duration
	Msg        string
}

func (e *OverloadedError) Error() string { return e.Msg }

// ErrTooLarge is wrapped by the error for a request whose KV cache alone
// exceeds the whole budget (it could never run).
var ErrTooLarge = errors.New("request too large for the KV cache budget")

// Engine schedules one model's requests. It is safe for concurrent use.
type Engine struct {
	model fusion.Model
	cfg   Config

	mu      sync.Mutex
	live    int
	used    int64
	queue   []*waiter
	peakKV  int64
	refused int64

	vis *visionBatcher
}

type waiter struct {
	need  int64
	ready chan struct{}
	done  bool // granted (under Engine.mu)
}

// New returns an engine for m.
func New(m fusion.Model, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{model: m, cfg: cfg}
	e.vis = newVisionBatcher(m, cfg.VisionBatch, cfg.VisionWindow, cfg.VisionMaxWait)
	return e
}

// Model returns the engine's model.
func (e *Engine) Model() fusion.Model { return e.model }

// KVBytes estimates the KV cache bytes of a request.
func (e *Engine) KVBytes(opts fusion.GenerateOptions, promptTokens int) int64 {
	if s, ok := e.model.(KVSizer); ok {
		if n := s.KVBytes(opts, promptTokens); n > 0 {
			return n
		}
	}
	return defaultKVBytes
}

// Admit reserves a live place and need bytes of KV cache for a request,
// waiting (in arrival order) while the model is full. It returns the
// release function (call it once, when the request has finished and its
// caches are dropped) and the time spent waiting. A full queue gives an
// *OverloadedError; a request needing more than the whole budget an error
// wrapping ErrTooLarge; a done ctx its error.
func (e *Engine) Admit(ctx context.Context, need int64) (release func(), waited time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if need < 0 {
		need = 0
	}
	e.mu.Lock()
	if need > e.cfg.KVBudget {
		e.mu.Unlock()
		return nil, 0, fmt.Errorf("engine: the request needs %.1f MiB of KV cache and image state, more than the model's whole budget of %.1f MiB: %w (lower max_new_tokens or num_beams, or raise the server's --kv-cache-bytes)",
			float64(need)/(1<<20), float64(e.cfg.KVBudget)/(1<<20), ErrTooLarge)
	}
	if len(e.queue) == 0 && e.fits(need) {
		e.take(need)
		e.mu.Unlock()
		return e.releaser(need), 0, nil
	}
	if len(e.queue) >= e.cfg.MaxQueue {
		e.refused++
		live, q := e.live, len(e.queue)
		e.mu.Unlock()
		return nil, 0, &OverloadedError{RetryAfter: e.cfg.RetryAfter,
			Msg: fmt.Sprintf("model is full: %d requests decoding and %d waiting (queue limit %d); retry after %v", live, q, e.cfg.MaxQueue, e.cfg.RetryAfter)}
	}
	w := &waiter{need: need, ready: make(chan struct{})}
	e.queue = append(e.queue, w)
	e.mu.Unlock()
	start := time.Now()
	select {
	case <-w.ready:
		return e.releaser(need), time.Since(start), nil
	case <-ctx.Done():
		e.mu.Lock()
		if w.done { // granted meanwhile: give it back
			e.mu.Unlock()
			e.releaser(need)()
			return nil, time.Since(start), ctx.Err()
		}
		for i, x := range e.queue {
			if x == w {
				e.queue = append(e.queue[:i], e.queue[i+1:]...)
				break
			}
		}
		e.grant() // the head may have changed
		e.mu.Unlock()
		return nil, time.Since(start), ctx.Err()
	}
}

func (e *Engine) fits(need int64) bool {
	return e.live < e.cfg.MaxLive && e.used+need <= e.cfg.KVBudget
}

func (e *Engine) take(need int64) {
	e.live++
	e.used += need
	e.peakKV = max(e.peakKV, e.used)
}

// grant admits waiters from the head of the queue while they fit (FIFO:
// a large request at the head is not overtaken).
func (e *Engine) grant() {
	for len(e.queue) > 0 && e.fits(e.queue[0].need) {
		w := e.queue[0]
		e.queue = e.queue[1:]
		e.take(w.need)
		w.done = true
		close(w.ready)
	}
}

func (e *Engine) releaser(need int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			e.mu.Lock()
			e.live--
			e.used -= need
			e.grant()
			e.mu.Unlock()
		})
	}
}

// Stats is a snapshot of an engine's load.
type Stats struct {
	Live, Waiting     int
	KVUsed, KVPeak    int64
	KVBudget          int64
	Refused           int64
	VisionBatches     int64
	VisionImages      int64
	VisionSharedLoads int64 // encodes saved by joining an identical in-flight image
}

// Stats returns the current load.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	s := Stats{Live: e.live, Waiting: len(e.queue), KVUsed: e.used, KVPeak: e.peakKV, KVBudget: e.cfg.KVBudget, Refused: e.refused}
	e.mu.Unlock()
	s.VisionBatches, s.VisionImages, s.VisionSharedLoads = e.vis.stats()
	return s
}

// EncodeImage encodes img with the model's vision tower, batched with
// other images arriving within the window. key, if not empty, identifies
// the image's content (e.g. its SHA-256): concurrent requests for the same
// key share one encoding.
func (e *Engine) EncodeImage(ctx context.Context, key string, img image.Image) (*fusion.ImageState, error) {
	return e.vis.encode(ctx, key, img)
}
