package generate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// RunFunc runs one decoding step for a batch of sequences (of any number
// of requests) and returns each sequence's last-position logits, in order.
// The returned rows may alias a workspace reused by the next call.
type RunFunc[S any] func(seqs []S) ([][]float32, error)

// Batcher is the iteration-level scheduler of one model: every decoding
// step of every live request (Member) on the model is gathered into one
// call of the RunFunc, so that each layer runs one matrix product over all
// sequences instead of one per request. A request joins with Join before
// its first step and leaves with Leave as soon as it is finished (or
// cancelled); a step runs when every live member has submitted one, or
// when MaxWait has passed since the first submission (a member that is
// slow between steps, e.g. sending to a slow client, cannot hold the
// others; the wait grows to a quarter of the last step's duration, as the
// members' own work between steps grows with the batch), or when MaxRows
// sequences are waiting.
//
// Because the model's kernels are batch-invariant (row i of a batched
// product equals the single-row product bit for bit) and each sequence
// keeps its own caches, a request's logits do not depend on what else is
// in the batch.
//
// The scheduler goroutine runs only while members exist. A Batcher is
// safe for concurrent use.
type Batcher[S any] struct {
	run     RunFunc[S]
	maxWait time.Duration
	maxRows int

	mu      sync.Mutex
	live    int
	pending []*stepJob[S]
	running bool
	held    int // Hold calls not yet released: no step starts
	wake    chan struct{}

	// stats
	steps, rows int64
	maxMembers  int           // the most members one step has carried
	lastRun     time.Duration // duration of the last step
}

type stepJob[S any] struct {
	m    *Member[S]
	seqs []S
	err  error
	done chan struct{}
}

// NewBatcher returns a scheduler around run. maxWait (≤ 0: 5 ms) bounds
// how long a step waits for stragglers once one member has submitted;
// maxRows (≤ 0: unlimited) caps the sequences of one step.
func NewBatcher[S any](run RunFunc[S], maxWait time.Duration, maxRows int) *Batcher[S] {
	if maxWait <= 0 {
		maxWait = 5 * time.Millisecond
	}
	return &Batcher[S]{run: run, maxWait: maxWait, maxRows: maxRows, wake: make(chan struct{}, 1)}
}

// Member is one request's place in a Batcher.
type Member[S any] struct {
	b    *Batcher[S]
	out  [][]float32 // logits rows owned by the member (copied from the run)
	buf  []float32
	left bool
	mu   sync.Mutex
}

// Join adds a live request; its steps will be batched with the others'.
// Call Leave when it is done.
func (b *Batcher[S]) Join() *Member[S] {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live++
	if !b.running {
		b.running = true
		go b.loop()
	}
	return &Member[S]{b: b}
}

// Stats returns the steps run and the sequences they carried so far (the
// mean batch size is rows/steps).
func (b *Batcher[S]) Stats() (steps, rows int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.steps, b.rows
}

// MaxMembers returns the most members (requests) one step has carried so
// far.
func (b *Batcher[S]) MaxMembers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxMembers
}

// Hold stops the scheduler from starting steps until release is called
// (release is idempotent); steps submitted meanwhile wait and then run
// together (at most MaxRows sequences per step). Tests use it to make
// concurrent requests share their first step whatever the goroutine
// timing.
func (b *Batcher[S]) Hold() (release func()) {
	b.mu.Lock()
	b.held++
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.held--
			b.mu.Unlock()
			b.signal()
		})
	}
}

// Pending returns the number of submitted steps (one per member) waiting
// for the next batch.
func (b *Batcher[S]) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// Live returns the number of members (requests) currently joined.
func (b *Batcher[S]) Live() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.live
}

func (b *Batcher[S]) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Leave removes the member: the next step no longer waits for it. It is
// idempotent.
func (m *Member[S]) Leave() {
	m.mu.Lock()
	if m.left {
		m.mu.Unlock()
		return
	}
	m.left = true
	m.mu.Unlock()
	m.b.mu.Lock()
	m.b.live--
	m.b.mu.Unlock()
	m.b.signal()
}

// errLeft is returned by Step after Leave.
var errLeft = errors.New("generate: step after the request left the batcher")

// Step submits the member's sequences for the next batched step and
// waits for their logits (one row per sequence, owned by the member until
// its next Step). A ctx already done returns its error without
// submitting; a submitted step is always waited for (it writes the
// sequences' caches), so a cancelled request leaves at the next step.
func (m *Member[S]) Step(ctx context.Context, seqs []S) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	left := m.left
	m.mu.Unlock()
	if left {
		return nil, errLeft
	}
	if len(seqs) == 0 {
		return nil, errors.New("generate: a step needs at least one sequence")
	}
	j := &stepJob[S]{m: m, seqs: seqs, done: make(chan struct{})}
	b := m.b
	b.mu.Lock()
	b.pending = append(b.pending, j)
	b.mu.Unlock()
	b.signal()
	<-j.done
	if j.err != nil {
		return nil, j.err
	}
	return m.out, nil
}

// loop is the scheduler goroutine.
func (b *Batcher[S]) loop() {
	var timer *time.Timer
	for {
		b.mu.Lock()
		for len(b.pending) == 0 || b.held > 0 {
			if b.live == 0 && len(b.pending) == 0 {
				b.running = false
				b.mu.Unlock()
				if timer != nil {
					timer.Stop()
				}
				return
			}
			b.mu.Unlock()
			<-b.wake
			b.mu.Lock()
		}
		// Wait for the other live members (bounded).
		if len(b.pending) < b.live && !b.full() {
			// Members finishing the last step's work (choosing their
			// token over the vocabulary) need time proportional to the
			// batch: wait up to a quarter of the last step, at least
			// maxWait.
			wait := max(b.maxWait, b.lastRun/4)
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
		wait:
			for len(b.pending) < b.live && !b.full() {
				b.mu.Unlock()
				select {
				case <-b.wake:
					b.mu.Lock()
				case <-timer.C:
					b.mu.Lock()
					break wait
				}
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		batch := b.take()
		b.mu.Unlock()
		start := time.Now()
		b.runBatch(batch)
		b.mu.Lock()
		b.lastRun = time.Since(start)
		b.mu.Unlock()
	}
}

// full reports whether the pending sequences reach maxRows.
func (b *Batcher[S]) full() bool {
	if b.maxRows <= 0 {
		return false
	}
	n := 0
	for _, j := range b.pending {
		n += len(j.seqs)
	}
	return n >= b.maxRows
}

// take removes the jobs of the next step from pending (at most maxRows
// sequences, at least one job).
func (b *Batcher[S]) take() []*stepJob[S] {
	n, k := 0, 0
	for k < len(b.pending) {
		if b.maxRows > 0 && k > 0 && n+len(b.pending[k].seqs) > b.maxRows {
			break
		}
		n += len(b.pending[k].seqs)
		k++
	}
	batch := append([]*stepJob[S](nil), b.pending[:k]...)
	b.pending = append(b.pending[:0], b.pending[k:]...)
	b.steps++
	b.rows += int64(n)
	b.maxMembers = max(b.maxMembers, k)
	return batch
}

// runBatch runs one step for the jobs and hands each its logits. If the
// batch fails, each job is run alone so that one bad request cannot fail
// the others.
func (b *Batcher[S]) runBatch(batch []*stepJob[S]) {
	var all []S
	for _, j := range batch {
		all = append(all, j.seqs...)
	}
	rows, err := b.call(all)
	if err != nil && len(batch) > 1 {
		for _, j := range batch {
			r, err := b.call(j.seqs)
			j.deliver(r, err)
		}
		return
	}
	at := 0
	for _, j := range batch {
		n := len(j.seqs)
		if err != nil {
			j.deliver(nil, err)
		} else {
			j.deliver(rows[at:at+n], nil)
		}
		at += n
	}
}

// call runs the RunFunc, turning a panic into an error and checking the
// row count.
func (b *Batcher[S]) call(seqs []S) (rows [][]float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, fmt.Errorf("generate: batched step failed: %v", p)
		}
	}()
	rows, err = b.run(seqs)
	if err == nil && len(rows) != len(seqs) {
		err = fmt.Errorf("generate: batched step returned %d rows for %d sequences", len(rows), len(seqs))
	}
	return rows, err
}

// deliver copies the job's rows into its member's buffer and wakes it.
func (j *stepJob[S]) deliver(rows [][]float32, err error) {
	if err == nil {
		m := j.m
		n := 0
		for _, r := range rows {
			n += len(r)
		}
		if cap(m.buf) < n {
			m.buf = make([]float32, n)
		}
		m.buf = m.buf[:n]
		m.out = m.out[:0]
		at := 0
		for _, r := range rows {
			copy(m.buf[at:], r)
			m.out = append(m.out, m.buf[at:at+len(r):at+len(r)])
			at += len(r)
		}
	}
	j.err = err
	close(j.done)
}
