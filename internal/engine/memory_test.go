package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// sizedModel is fakeModel with a fixed KV estimate per request.
type sizedModel struct {
	fakeModel
	need int64
}

func (m *sizedModel) KVBytes(fusion.GenerateOptions, int) int64 { return m.need }

// TestBudgetDefaults checks that a zero budget takes DefaultKVBudget and
// that the model's own estimate is what a request is charged.
func TestBudgetDefaults(t *testing.T) {
	e := New(&sizedModel{need: 46 << 20}, Config{})
	if s := e.Stats(); s.KVBudget != DefaultKVBudget {
		t.Fatalf("budget %d, want DefaultKVBudget %d", s.KVBudget, DefaultKVBudget)
	}
	need := e.KVBytes(fusion.GenerateOptions{}, 1)
	if need != 46<<20 {
		t.Fatalf("charged %d, want the model's estimate", need)
	}
	// BLIP-base captions of 46 MiB: two fit in the default budget, the
	// third waits for one of them.
	var rels []func()
	for i := 0; i < 2; i++ {
		r, _, err := e.Admit(context.Background(), need)
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, r)
	}
	done := make(chan func(), 1)
	go func() {
		r, _, err := e.Admit(context.Background(), need)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	waitFor(t, func() bool { return e.Stats().Waiting == 1 })
	if s := e.Stats(); s.Live != 2 || s.KVUsed != 2*need {
		t.Fatalf("stats %+v, want 2 live holding %d bytes", s, 2*need)
	}
	rels[0]()
	(<-done)()
	for _, r := range rels[1:] {
		r()
	}
	if s := e.Stats(); s.Live != 0 || s.KVUsed != 0 || s.Waiting != 0 {
		t.Fatalf("after release: %+v", s)
	}
}

// TestTooLargeNeverWaits checks that a request needing more than the
// whole budget is refused at once, with an error that says what to do,
// whether the engine is idle or busy, and that it does not block others.
func TestTooLargeNeverWaits(t *testing.T) {
	e := New(&fakeModel{}, Config{KVBudget: 100, MaxLive: 4})
	for _, busy := range []bool{false, true} {
		var r func()
		if busy {
			var err error
			if r, _, err = e.Admit(context.Background(), 90); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := e.Admit(context.Background(), 101)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "--kv-cache-bytes") || !strings.Contains(err.Error(), "max_new_tokens") {
			t.Fatalf("busy=%v: %v, want ErrTooLarge saying what to lower or raise", busy, err)
		}
		if s := e.Stats(); s.Waiting != 0 {
			t.Fatalf("busy=%v: the oversized request was queued: %+v", busy, s)
		}
		if r != nil {
			r()
		}
	}
}

// TestBudgetFIFO checks that waiters are granted in arrival order: a small
// request does not overtake a large one at the head of the queue (which
// could otherwise starve), and both run once memory is released.
func TestBudgetFIFO(t *testing.T) {
	ctx := context.Background()
	e := New(&fakeModel{}, Config{KVBudget: 100, MaxLive: 8})
	ra, _, err := e.Admit(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	type grant struct {
		name string
		rel  func()
	}
	got := make(chan grant, 2)
	admit := func(name string, need int64) {
		r, _, err := e.Admit(ctx, need)
		if err != nil {
			t.Error(err)
		}
		got <- grant{name, r}
	}
	go admit("large", 50)
	waitFor(t, func() bool { return e.Stats().Waiting == 1 })
	go admit("small", 10) // fits beside A, but must not overtake "large"
	waitFor(t, func() bool { return e.Stats().Waiting == 2 })
	if s := e.Stats(); s.Live != 1 || s.KVUsed != 60 {
		t.Fatalf("the small request overtook the queue: %+v", s)
	}
	ra()
	g1, g2 := <-got, <-got
	if s := e.Stats(); s.Live != 2 || s.KVUsed != 60 || s.Waiting != 0 {
		t.Fatalf("after release: %+v, want large and small live (60 bytes)", s)
	}
	g1.rel()
	g2.rel()
}

// TestBudgetInvariant runs many concurrent requests of random sizes and
// checks, at every grant, that the live requests never hold more than the
// budget nor exceed MaxLive, and that every request is eventually served.
func TestBudgetInvariant(t *testing.T) {
	const budget, maxLive, n = 100, 5, 300
	e := New(&fakeModel{}, Config{KVBudget: budget, MaxLive: maxLive, MaxQueue: n})
	rng := rand.New(rand.NewPCG(1, 2))
	needs := make([]int64, n)
	for i := range needs {
		needs[i] = 1 + rng.Int64N(45)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	var served int
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := e.Admit(context.Background(), needs[i])
			if err != nil {
				mu.Lock()
				bad = append(bad, err.Error())
				mu.Unlock()
				return
			}
			s := e.Stats()
			mu.Lock()
			if s.KVUsed > budget || s.Live > maxLive || s.KVUsed < needs[i] {
				bad = append(bad, "over budget")
			}
			served++
			mu.Unlock()
			r()
		}()
	}
	wg.Wait()
	if len(bad) > 0 || served != n {
		t.Fatalf("served %d of %d; problems: %v", served, n, bad[:min(len(bad), 3)])
	}
	if s := e.Stats(); s.Live != 0 || s.KVUsed != 0 || s.KVPeak > budget {
		t.Fatalf("final stats %+v", s)
	}
}

// TestSetMemoryLimit checks the Go memory limit derived from the
// accounting, and that a user's GOMEMLIMIT is left alone.
func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	const accounted = 300 << 20
	got := SetMemoryLimit(accounted)
	if got != debug.SetMemoryLimit(-1) {
		t.Fatalf("returned %d, runtime has %d", got, debug.SetMemoryLimit(-1))
	}
	if live := HeapLive(); got < accounted+HeapAllowance || got > accounted+HeapAllowance+live+(64<<20) {
		t.Fatalf("limit %d, want accounted %d + allowance %d + live heap (~%d)", got, accounted, HeapAllowance, live)
	}
	debug.SetMemoryLimit(prev)
	t.Setenv("GOMEMLIMIT", "5GiB")
	if got := SetMemoryLimit(accounted); got != prev || debug.SetMemoryLimit(-1) != prev {
		t.Fatalf("with GOMEMLIMIT set the limit changed to %d", got)
	}
}
