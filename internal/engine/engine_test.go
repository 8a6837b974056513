package engine

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
	_ "github.com/glimpse-vlm/glimpse/fusion/families"
	"go.uber.org/goleak"
)

// The kernels keep a persistent worker pool; everything else must end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/glimpse-vlm/glimpse/kernels.worker"))
}

// fakeModel encodes an image into a one-value state (its top-left red
// value) and records the batch sizes it was called with.
type fakeModel struct {
	mu      sync.Mutex
	batches []int
	delay   time.Duration
}

func (f *fakeModel) Info() fusion.Info { return fusion.Info{Family: "fake"} }
func (f *fakeModel) EncodeImage(ctx context.Context, img image.Image) (*fusion.ImageState, error) {
	s, err := f.EncodeImages(ctx, []image.Image{img})
	if err != nil {
		return nil, err
	}
	return s[0], nil
}
func (f *fakeModel) EncodeImages(ctx context.Context, imgs []image.Image) ([]*fusion.ImageState, error) {
	f.mu.Lock()
	f.batches = append(f.batches, len(imgs))
	f.mu.Unlock()
	time.Sleep(f.delay)
	out := make([]*fusion.ImageState, len(imgs))
	for i, img := range imgs {
		if img == nil {
			return nil, fmt.Errorf("image %d is nil", i)
		}
		r, _, _, _ := img.At(0, 0).RGBA()
		out[i] = &fusion.ImageState{Tokens: 1, Dim: 1, Hidden: []float32{float32(r >> 8)}}
	}
	return out, nil
}
func (f *fakeModel) Tokenize(string) ([]int, error) { return nil, nil }
func (f *fakeModel) Close() error                   { return nil }

func solid(v uint8) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	img.Set(0, 0, color.RGBA{v, v, v, 255})
	return img
}

// TestVisionBatching: images arriving together are encoded in batches of
// at most VisionBatch, a bad image fails only its own request, and an image
// already being encoded is shared. The batch timers run on a fake clock,
// so which images meet in a batch does not depend on the scheduler.
func TestVisionBatching(t *testing.T) {
	f := &fakeModel{delay: 5 * time.Millisecond}
	const window = 300 * time.Millisecond
	e := New(f, Config{VisionBatch: 8, VisionWindow: window, VisionMaxWait: time.Second})
	clk := &fakeClock{}
	clk.install(e)
	var wg sync.WaitGroup
	got := make([]string, 11)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var img image.Image = solid(uint8(i))
			key := fmt.Sprint("img", i)
			if i == 9 {
				img = nil // a bad image fails only its own request
			}
			if i == 10 {
				key, img = "img3", solid(3) // same content as request 3
			}
			st, err := e.EncodeImage(context.Background(), key, img)
			if err != nil {
				got[i] = "error"
				return
			}
			got[i] = fmt.Sprint(st.Hidden[0])
		}()
	}
	// The first eight fill a batch, which runs without waiting for the
	// clock; the rest wait in a second leader's window until it ends.
	waitFor(t, func() bool {
		e.vis.mu.Lock()
		defer e.vis.mu.Unlock()
		return int(e.vis.images+e.vis.shared)+len(e.vis.pending) == len(got)
	})
	waitFor(t, func() bool { return clk.started() == 4 })
	if n := clk.advance(window); n == 0 {
		t.Fatal("no timer fired at the end of the second window")
	}
	wg.Wait()
	for i, g := range got {
		want := fmt.Sprint(i)
		switch i {
		case 9:
			want = "error"
		case 10:
			want = "3"
		}
		if g != want {
			t.Errorf("image %d: got %s, want %s", i, g, want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) == 0 || f.batches[0] != 8 {
		t.Errorf("batch sizes %v: want a full batch of 8 first", f.batches)
	}
	for _, b := range f.batches[1:] {
		if b > 3 {
			t.Errorf("batch sizes %v: want the three images left over in one batch (or alone, after the bad one)", f.batches)
		}
	}
	st := e.Stats()
	if st.VisionImages+st.VisionSharedLoads < 10 {
		t.Errorf("stats %+v: want 10 images encoded or shared", st)
	}
}

// TestVisionWindowRestarts: a batch stays open while images keep arriving
// less than a window apart, even when together they span more than one
// window; and VisionMaxWait closes a batch whose window would never end.
// The timers run on a fake clock.
func TestVisionWindowRestarts(t *testing.T) {
	f := &fakeModel{}
	const window = time.Second
	e := New(f, Config{VisionBatch: 8, VisionWindow: window, VisionMaxWait: time.Minute})
	clk := &fakeClock{}
	clk.install(e)
	var wg sync.WaitGroup
	for i := range 4 {
		if i > 0 {
			// 0.4 s apart: 1.2 s from the first image to the last.
			if n := clk.advance(window * 4 / 10); n != 0 {
				t.Fatalf("before image %d: %d timers fired 0.4 s after an image", i, n)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.EncodeImage(context.Background(), fmt.Sprint("chain", i), solid(uint8(i))); err != nil {
				t.Error(err)
			}
		}()
		// The image is pending and the leader has restarted the window.
		waitFor(t, func() bool {
			e.vis.mu.Lock()
			pending := len(e.vis.pending)
			e.vis.mu.Unlock()
			if pending != i+1 || clk.started() != 2 {
				return false
			}
			deadline, now := clk.deadline(0)
			return deadline == now+window
		})
	}
	f.mu.Lock()
	if len(f.batches) != 0 {
		t.Errorf("batches %v before the window ended", f.batches)
	}
	f.mu.Unlock()
	clk.advance(window)
	wg.Wait()
	f.mu.Lock()
	if len(f.batches) != 1 || f.batches[0] != 4 {
		t.Errorf("batches %v: want the four images of the chain in one batch", f.batches)
	}
	f.mu.Unlock()

	// A window of an hour, capped at 50 ms: the image is encoded anyway.
	g := &fakeModel{}
	e = New(g, Config{VisionBatch: 8, VisionWindow: time.Hour, VisionMaxWait: 50 * time.Millisecond})
	clk = &fakeClock{}
	clk.install(e)
	done := make(chan error, 1)
	go func() {
		_, err := e.EncodeImage(context.Background(), "alone", solid(7))
		done <- err
	}()
	waitFor(t, func() bool { return clk.started() == 2 })
	if n := clk.advance(49 * time.Millisecond); n != 0 {
		t.Fatalf("%d timers fired 49 ms into a 50 ms cap", n)
	}
	if n := clk.advance(time.Millisecond); n != 1 {
		t.Fatalf("%d timers fired at the 50 ms cap, want 1", n)
	}
	if err := <-done; err != nil {
		t.Fatalf("an image alone under a 1 h window and a 50 ms cap: %v", err)
	}
}

func TestAdmission(t *testing.T) {
	ctx := context.Background()
	e := New(&fakeModel{}, Config{MaxLive: 2, MaxQueue: 1, KVBudget: 100, RetryAfter: 3 * time.Second})
	r1, _, err := e.Admit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	r2, _, err := e.Admit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Third waits in the queue; fourth is refused with a retry delay.
	got3 := make(chan error, 1)
	var r3 func()
	go func() {
		var err error
		r3, _, err = e.Admit(ctx, 10)
		got3 <- err
	}()
	waitFor(t, func() bool { return e.Stats().Waiting == 1 })
	_, _, err = e.Admit(ctx, 10)
	var over *OverloadedError
	if !errors.As(err, &over) || over.RetryAfter != 3*time.Second {
		t.Fatalf("full queue: err %v, want *OverloadedError with RetryAfter 3s", err)
	}
	r1()
	r1() // idempotent
	if err := <-got3; err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.Live != 2 || s.KVUsed != 20 || s.Refused != 1 {
		t.Fatalf("stats %+v, want 2 live, 20 bytes, 1 refused", s)
	}
	r2()
	r3()
	if s := e.Stats(); s.Live != 0 || s.KVUsed != 0 {
		t.Fatalf("after release: %+v", s)
	}

	// KV budget: a request larger than the budget can never run.
	if _, _, err := e.Admit(ctx, 101); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized request: %v, want ErrTooLarge", err)
	}
	// Two requests of 60 bytes: the second waits for the first's memory.
	ra, _, err := e.Admit(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	gotB := make(chan error, 1)
	go func() {
		_, _, err := e.Admit(cctx, 60)
		gotB <- err
	}()
	waitFor(t, func() bool { return e.Stats().Waiting == 1 })
	cancel() // a cancelled waiter leaves the queue
	if err := <-gotB; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if s := e.Stats(); s.Waiting != 0 || s.KVUsed != 60 {
		t.Fatalf("after cancel: %+v", s)
	}
	gotC := make(chan func(), 1)
	go func() {
		r, _, err := e.Admit(ctx, 60)
		if err != nil {
			t.Error(err)
		}
		gotC <- r
	}()
	waitFor(t, func() bool { return e.Stats().Waiting == 1 })
	ra()
	rc := <-gotC
	if s := e.Stats(); s.KVUsed != 60 || s.KVPeak != 60 {
		t.Fatalf("budget accounting: %+v", s)
	}
	rc()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEngineCaptions runs 16 caption requests through the engine
// (admission, batched vision encoding, batched decoding) on the tiny
// BLIP checkpoint, alone and all at once, and requires equal results.
func TestEngineCaptions(t *testing.T) {
	m, err := fusion.Load(filepath.Join("..", "..", "testdata", "golden", "e2e", "blip-caption"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e := New(m, Config{MaxLive: 8, KVBudget: 1 << 30})
	capt := m.(fusion.Captioner)
	opts := []fusion.GenerateOptions{
		{MaxNewTokens: 10},
		{MaxNewTokens: 10, Sample: true, Seed: 1, Logprobs: true},
		{MaxNewTokens: 6, NumBeams: 2},
		{MaxNewTokens: 10, Sample: true, Seed: 2, TopP: 0.8, RepetitionPenalty: 1.3},
	}
	run := func(i int) string {
		o := opts[i%len(opts)]
		need := e.KVBytes(o, 1)
		if need <= 0 || need == defaultKVBytes {
			return fmt.Sprintf("error: KV estimate %d", need)
		}
		release, _, err := e.Admit(context.Background(), need)
		if err != nil {
			return "error: " + err.Error()
		}
		defer release()
		img := image.NewRGBA(image.Rect(0, 0, 40+i, 30))
		for p := range img.Pix {
			img.Pix[p] = uint8(p*(i+3)) | 0x0f
		}
		st, err := e.EncodeImage(context.Background(), fmt.Sprint(i), img)
		if err != nil {
			return "error: " + err.Error()
		}
		g, err := capt.Caption(context.Background(), st, "", o, nil)
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("%v %q %v %s", g.TokenIDs, g.Text, g.Logprobs, g.Finish)
	}
	alone := make([]string, 16)
	for i := range alone {
		alone[i] = run(i)
		if strings.HasPrefix(alone[i], "error") {
			t.Fatal(alone[i])
		}
	}
	// The concurrent round's vision batches close only when full (the
	// window's timers are on a clock that never moves): with 8 requests
	// admitted at a time, its 16 images make exactly 2 batches of 8,
	// whatever the goroutine timing.
	before := e.Stats()
	(&fakeClock{}).install(e)
	together := make([]string, 16)
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
			t.Errorf("request %d: alone %s\nbatched %s", i, alone[i], together[i])
		}
	}
	s := e.Stats()
	if s.Live != 0 || s.KVUsed != 0 || s.KVPeak == 0 {
		t.Errorf("stats after the run: %+v", s)
	}
	if imgs, batches := s.VisionImages-before.VisionImages, s.VisionBatches-before.VisionBatches; imgs != 16 || batches != 2 {
		t.Errorf("vision, concurrent round: %d images in %d batches, want 16 in 2", imgs, batches)
	}
}
