package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/glimpse-vlm/glimpse/client"
	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/fusion/blip"
	"github.com/glimpse-vlm/glimpse/internal/defaultmodels"
	"github.com/glimpse-vlm/glimpse/internal/engine"
	"github.com/glimpse-vlm/glimpse/kernels"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
	"github.com/glimpse-vlm/glimpse/server"
)

// benchLevel is one concurrency level's result.
type benchLevel struct {
	Clients      int     `json:"clients"`
	Requests     int     `json:"requests"`
	RequestsPerS float64 `json:"requests_per_s"`
	TokensPerS   float64 `json:"tokens_per_s"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
}

// benchServeResult is `glimpse bench serve --json`.
type benchServeResult struct {
	Model         string  `json:"model"`
	MaxNewTokens  int     `json:"max_new_tokens"`
	ImageSize     int     `json:"image_size"`
	VisionMsB1    float64 `json:"vision_ms_b1"`
	VisionMsB8    float64 `json:"vision_ms_b8"`
	TTFTMs        float64 `json:"ttft_ms"`
	TokenMsB1     float64 `json:"token_ms_b1"`
	Caption20MsB1 float64 `json:"caption20_ms_b1"`
	// Concurrent8MakespanMs is the time from starting 8 caption requests
	// of different images at once until the last one ends.
	Concurrent8MakespanMs float64      `json:"concurrent8_makespan_ms"`
	Concurrency           []benchLevel `json:"concurrency"`
	// ConcurrencyCached is the same measure when every client keeps asking
	// about its own image, so that after its first request the image state
	// comes from the server's image cache (decoding-bound; levels ≤ 16).
	ConcurrencyCached []benchLevel `json:"concurrency_cached,omitempty"`
	PeakRSSMB         float64      `json:"peak_rss_mb"`
	// WeightsOffHeapMB is the packed weights held outside the Go heap;
	// KVBudgetMB the engine's budget for live requests; GoMemoryLimitMB
	// the Go runtime's soft memory limit (0: none).
	WeightsOffHeapMB float64 `json:"weights_offheap_mb"`
	KVBudgetMB       float64 `json:"kv_budget_mb"`
	GoMemoryLimitMB  float64 `json:"go_memory_limit_mb"`
	// MeanBatchRows is the mean number of sequences per decoding step over
	// the concurrency levels (1 = no batching happened).
	MeanBatchRows float64 `json:"mean_batch_rows,omitempty"`
}

// randomModelDir is the model "folder" that stands for BLIP-base with
// random weights built in memory.
const randomModelDir = "random:blip-image-captioning-base"

func benchServe(e *env, args []string) error {
	fs := newFlags("bench serve")
	model := fs.String("model", "", "captioning checkpoint folder, or \"builtin\" for the tiny built-in blip-caption (default: BLIP-base with random weights, built in memory)")
	levels := fs.String("clients", "1,4,16,64", "comma-separated concurrency levels")
	perLevel := fs.Int("requests", 0, "requests per level (default: one per client, at least 4)")
	tokens := fs.Int("max-new-tokens", 20, "tokens per caption (min_new_tokens is set equal, so every caption has this length)")
	imgSize := fs.Int("image-size", 384, "side of the synthetic test images in pixels")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	cachedPer := fs.Int("cached-requests", 3, "requests per client in the cached-image phase (0 skips it)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the concurrency levels to this file (go tool pprof)")
	maxBatch := fs.Int("max-batch", 64, "requests decoding together (the server's --max-batch)")
	kvBytes := fs.Int64("kv-cache-bytes", engine.DefaultKVBudget, "memory budget of the model's live requests in bytes: KV caches, cross-attention states, image states (the server's --kv-cache-bytes)")
	gcPercent := fs.Int("gc-percent", 0, "Go GC target percentage while benchmarking (0: Go's default or GOGC)")
	noMemLimit := fs.Bool("no-memory-limit", false, "do not set the Go memory limit from the memory accounting (engine.SetMemoryLimit; GOMEMLIMIT, if set, always wins)")
	pos, err := parse(fs, args, "")
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	var clients []int
	for _, s := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 256 {
			return usagef("--clients %q: want numbers from 1 to 256", *levels)
		}
		clients = append(clients, n)
	}
	if *tokens < 1 || *imgSize < 8 || *imgSize > 4096 || *perLevel < 0 || *maxBatch < 1 || *kvBytes < 1<<20 || *cachedPer < 0 {
		return usagef("--max-new-tokens must be >= 1, --image-size in [8, 4096], --requests >= 0, --cached-requests >= 0, --max-batch >= 1, --kv-cache-bytes >= 1MiB")
	}
	const maxCached = 16 // largest client count of the cached-image phase
	dir := *model
	name := "blip-caption"
	switch dir {
	case "":
		dir = randomModelDir
	case "builtin":
		ms, err := defaultmodels.Extract("")
		if err != nil {
			return err
		}
		dir = ms[0].Dir
	}
	var loaded fusion.Model
	load := func(d string) (fusion.Model, error) {
		var m fusion.Model
		var err error
		if d == randomModelDir {
			m, err = blip.NewRandomCaption([]byte(blip.BaseCaptionConfig), 1)
		} else {
			m, err = fusion.Load(d)
		}
		if err != nil {
			return nil, err
		}
		loaded = m
		return m, nil
	}
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Models = []server.ModelSpec{{Name: name, Dir: dir}}
	// The image cache holds the cached phase's images only: every other
	// request sends bytes never seen before (see uniqueImage), so it
	// encodes its image.
	cfg.ImageCacheBytes = int64(maxCached) * 2 << 20
	cfg.MaxQueue = 1024
	cfg.MaxBatch, cfg.KVCacheBytes = *maxBatch, *kvBytes
	if _, set := os.LookupEnv("GOGC"); !set && *gcPercent > 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(*gcPercent))
	}
	cfg.MaxNewTokens = max(cfg.MaxNewTokens, *tokens)
	srv, err := server.New(cfg, nil, server.WithLoader(load))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := srv.Load(ctx, nil); err != nil {
		return err
	}
	// The packed weights live outside the Go heap; the heap holds what the
	// engine accounts for (live requests, within --kv-cache-bytes) and
	// little else, so the Go memory limit is set from that accounting.
	if !*noMemLimit {
		engine.SetMemoryLimit(*kvBytes + cfg.ImageCacheBytes)
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	c, err := client.New(lis.Addr().String(), client.WithImageCache(false), client.WithRetry(1, 0, 0))
	if err != nil {
		return err
	}
	defer c.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	base := make([][]byte, 64)
	for i := range base {
		base[i] = noisePNG(rng, *imgSize)
	}
	// fresh returns an image no earlier request has sent (base image i's
	// pixels, unique bytes), so the server cannot take it from its cache.
	var serial atomic.Int64
	fresh := func(i int) client.Image {
		return client.ImageBytes(uniqueImage(base[i%len(base)], serial.Add(1)))
	}
	opts := &pb.GenerationOptions{MaxNewTokens: int32(*tokens), MinNewTokens: int32(*tokens)}
	res := benchServeResult{Model: dir, MaxNewTokens: *tokens, ImageSize: *imgSize, KVBudgetMB: float64(*kvBytes) / (1 << 20)}

	// Batch 1: latency, vision encode and decode timings (medians of 5).
	var vision, lat, ttft, perTok []float64
	for i := 0; i < 5; i++ {
		start := time.Now()
		r, err := c.Caption(ctx, fresh(i), "", opts)
		if err != nil {
			return err
		}
		lat = append(lat, ms(time.Since(start)))
		vision = append(vision, ms(r.GetTimings().GetImageEncode().AsDuration()))
		if n := r.GetUsage().GetGeneratedTokens(); n > 1 {
			perTok = append(perTok, ms(r.GetTimings().GetDecode().AsDuration())/float64(n-1))
		}
		start = time.Now()
		st, err := c.Generate(ctx, []client.Part{client.ImagePart(fresh(i + 5))}, opts, pb.Task_TASK_CAPTION)
		if err != nil {
			return err
		}
		ttft = append(ttft, ms(time.Since(start))) // Generate returns at the first message
		for _, err := range st.All() {
			if err != nil {
				return err
			}
		}
	}
	res.VisionMsB1, res.Caption20MsB1, res.TTFTMs, res.TokenMsB1 = median(vision), median(lat), median(ttft), median(perTok)

	// Vision encode of 8 images as one batch, in process (the engine's
	// batching window groups concurrent requests' images the same way).
	if loaded != nil {
		batch := make([]image.Image, 8)
		for i := range batch {
			batch[i] = noiseRGBA(rng, *imgSize)
		}
		start := time.Now()
		if _, err := loaded.EncodeImages(ctx, batch); err != nil {
			return err
		}
		res.VisionMsB8 = ms(time.Since(start))
	}

	// 8 captions of different images, all started at once: time until the
	// last one ends.
	{
		var wg sync.WaitGroup
		errs := make([]error, 8)
		startAll := make(chan struct{})
		for i := range errs {
			wg.Add(1)
			img := fresh(i)
			go func() {
				defer wg.Done()
				<-startAll
				_, errs[i] = c.Caption(ctx, img, "", opts)
			}()
		}
		start := time.Now()
		close(startAll)
		wg.Wait()
		res.Concurrent8MakespanMs = ms(time.Since(start))
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
	}
	steps0, rows0 := batchStats(loaded)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	// level runs n client goroutines and measures them: with perClient > 0
	// client w sends perClient requests with its own image own(w); otherwise
	// the clients share out total requests, request i with image(i).
	level := func(n, total int, image func(i int) client.Image, own func(w int) client.Image, perClient int) (benchLevel, error) {
		var mu sync.Mutex
		var lats []float64
		var toks int64
		var firstErr error
		next := make(chan int, total)
		for i := 0; i < total; i++ {
			next <- i
		}
		close(next)
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < n; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ; k++ {
					var img client.Image
					if perClient > 0 {
						if k == perClient {
							return
						}
						img = own(w)
					} else {
						i, ok := <-next
						if !ok {
							return
						}
						img = image(i)
					}
					t0 := time.Now()
					r, err := c.Caption(ctx, img, "", opts)
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if err == nil {
						lats = append(lats, ms(time.Since(t0)))
						toks += int64(r.GetUsage().GetGeneratedTokens())
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return benchLevel{}, firstErr
		}
		wall := time.Since(start).Seconds()
		return benchLevel{Clients: n, Requests: total,
			RequestsPerS: float64(total) / wall, TokensPerS: float64(toks) / wall,
			P50Ms: percentile(lats, 50), P99Ms: percentile(lats, 99)}, nil
	}

	for _, n := range clients {
		total := *perLevel
		if total == 0 {
			total = max(4, n)
		}
		l, err := level(n, total, fresh, nil, 0)
		if err != nil {
			return err
		}
		res.Concurrency = append(res.Concurrency, l)
	}
	// Cached-image phase: client w captions its own image again and again;
	// its first request (not timed) encodes the image, the next ones find
	// it in the server's image cache, so this measures decoding.
	for _, n := range clients {
		if n > maxCached || *cachedPer == 0 {
			continue
		}
		own := make([]client.Image, n)
		for w := range own {
			own[w] = fresh(w)
			if _, err := c.Caption(ctx, own[w], "", opts); err != nil {
				return err
			}
		}
		l, err := level(n, n**cachedPer, nil, func(w int) client.Image { return own[w] }, *cachedPer)
		if err != nil {
			return err
		}
		res.ConcurrencyCached = append(res.ConcurrencyCached, l)
	}
	if steps, rows := batchStats(loaded); steps > steps0 {
		res.MeanBatchRows = float64(rows-rows0) / float64(steps-steps0)
	}
	res.PeakRSSMB = peakRSSMB()
	res.WeightsOffHeapMB = float64(kernels.OffHeapBytes()) / (1 << 20)
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		res.GoMemoryLimitMB = float64(l) / (1 << 20)
	}
	if *asJSON {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "model %s, %d-token captions of %dx%d synthetic images, real gRPC on loopback; every request brings a new image unless marked cached\n\n",
		res.Model, res.MaxNewTokens, res.ImageSize, res.ImageSize)
	fmt.Fprintf(e.stdout, "vision encode, batch 1   %8.1f ms\n", res.VisionMsB1)
	fmt.Fprintf(e.stdout, "vision encode, batch 8   %8.1f ms (%.1f ms per image)\n", res.VisionMsB8, res.VisionMsB8/8)
	fmt.Fprintf(e.stdout, "time to first token      %8.1f ms\n", res.TTFTMs)
	fmt.Fprintf(e.stdout, "per token, batch 1       %8.2f ms\n", res.TokenMsB1)
	fmt.Fprintf(e.stdout, "%d-token caption, batch 1 %8.1f ms\n", res.MaxNewTokens, res.Caption20MsB1)
	fmt.Fprintf(e.stdout, "8 concurrent captions    %8.1f ms until the last ends\n\n", res.Concurrent8MakespanMs)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "images\tclients\trequests\treq/s\ttokens/s\tp50 ms\tp99 ms\t")
	for _, l := range res.Concurrency {
		fmt.Fprintf(tw, "new\t%d\t%d\t%.2f\t%.1f\t%.1f\t%.1f\t\n", l.Clients, l.Requests, l.RequestsPerS, l.TokensPerS, l.P50Ms, l.P99Ms)
	}
	for _, l := range res.ConcurrencyCached {
		fmt.Fprintf(tw, "cached\t%d\t%d\t%.2f\t%.1f\t%.1f\t%.1f\t\n", l.Clients, l.Requests, l.RequestsPerS, l.TokensPerS, l.P50Ms, l.P99Ms)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "\nmean sequences per decoding step %.1f; peak RSS %.0f MB (packed weights off the Go heap %.0f MB; live-request budget %.0f MB; Go memory limit %.0f MB)\n",
		res.MeanBatchRows, res.PeakRSSMB, res.WeightsOffHeapMB, res.KVBudgetMB, res.GoMemoryLimitMB)
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile is the nearest-rank percentile (0 for no values).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// batchStats returns the decoding steps and sequences of the model's
// iteration-level scheduler so far (0, 0 if it has none).
func batchStats(m fusion.Model) (steps, rows int64) {
	if s, ok := m.(interface{ BatchStats() (int64, int64) }); ok {
		return s.BatchStats()
	}
	return 0, 0
}

// noiseRGBA is an image of random pixels.
func noiseRGBA(rng *rand.Rand, side int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	return img
}

// noisePNG is a PNG of random pixels (a different image every call).
func noisePNG(rng *rand.Rand, side int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			v := rng.Uint32()
			img.SetRGBA(x, y, color.RGBA{uint8(v), uint8(v >> 8), uint8(v >> 16), 255})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

// uniqueImage returns the PNG p with a tEXt chunk holding n inserted after
// its header chunk: the same pixels in bytes no other n gives, so a
// content-addressed cache sees a new image.
func uniqueImage(p []byte, n int64) []byte {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	data := append([]byte("glimpse-bench\x00"), strconv.FormatInt(n, 10)...)
	be32 := func(b []byte, v uint32) []byte { return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
	chunk := be32(nil, uint32(len(data)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, data...)
	chunk = be32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := make([]byte, 0, len(p)+len(chunk))
	out = append(out, p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

// peakRSSMB is the process's peak resident set (VmHWM) in MB, 0 where
// /proc is not available.
func peakRSSMB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
