package server

import (
	"fmt"
	"image/color"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// startBLIP serves the tiny real BLIP captioner.
func startBLIP(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ImageCacheBytes = 0
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg, testLogger(t))
	must(t, err)
	m, err := fusion.Load("../testdata/golden/e2e/blip-caption")
	must(t, err)
	must(t, srv.AddModel("blip", m))
	h := &harness{srv: srv}
	h.dial(t)
	return h
}

// TestDecodingOverGRPC checks every decoding control through the API on a
// real model, and that results do not depend on what else runs: 16
// concurrent requests (greedy, seeded sampling, beams; different images)
// give exactly what each gives alone.
func TestDecodingOverGRPC(t *testing.T) {
	h := startBLIP(t, nil)
	ctx := testCtx(t)
	f64 := func(v float64) *float64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	caption := func(img []byte, o *pb.GenerationOptions) (*pb.CaptionResponse, error) {
		return h.cli.Caption(ctx, &pb.CaptionRequest{Model: "blip", Image: imgData(img), Options: o})
	}
	imgs := make([][]byte, 16)
	for i := range imgs {
		imgs[i] = pngBytes(8+i, 6+i%3, color.RGBA{uint8(16 * i), uint8(255 - 9*i), uint8(40 + 5*i), 255})
	}
	opts := []*pb.GenerationOptions{
		{MaxNewTokens: 10, MinNewTokens: 10},
		{MaxNewTokens: 10, MinNewTokens: 10, DoSample: true, Seed: u64(3), TopK: 20, Temperature: f64(1.3), Logprobs: true},
		{MaxNewTokens: 8, DoSample: true, Seed: u64(0), TopP: f64(0.9), RepetitionPenalty: f64(1.4)},
		{MaxNewTokens: 6, NumBeams: 2, NoRepeatNgramSize: 2},
	}
	show := func(r *pb.CaptionResponse, err error) string {
		if err != nil {
			return "error " + err.Error()
		}
		return fmt.Sprintf("%q %v %v %v", r.GetText(), r.GetTokenIds(), r.GetLogprobs(), r.GetFinishReason())
	}
	alone := make([]string, len(imgs))
	for i := range imgs {
		alone[i] = show(caption(imgs[i], opts[i%len(opts)]))
		if strings.HasPrefix(alone[i], "error") {
			t.Fatalf("request %d: %s", i, alone[i])
		}
	}
	together := make([]string, len(imgs))
	var wg sync.WaitGroup
	for i := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			together[i] = show(caption(imgs[i], opts[i%len(opts)]))
		}()
	}
	wg.Wait()
	for i := range imgs {
		if alone[i] != together[i] {
			t.Errorf("request %d: alone %s, with 15 others %s", i, alone[i], together[i])
		}
	}
	// Logprobs only on request, one per token.
	r, err := caption(imgs[1], opts[1])
	must(t, err)
	if len(r.GetLogprobs()) != len(r.GetTokenIds()) || len(r.GetTokenIds()) != 10 {
		t.Fatalf("logprobs %v for ids %v", r.GetLogprobs(), r.GetTokenIds())
	}
	// Stop strings: cut before the stop string, finish reason STOP, also
	// when streamed.
	g, err := caption(imgs[0], opts[0])
	must(t, err)
	words := strings.Fields(g.GetText())
	if len(words) < 3 {
		t.Fatalf("caption %q too short", g.GetText())
	}
	want := g.GetText()[:strings.Index(g.GetText(), words[2])]
	s, err := caption(imgs[0], &pb.GenerationOptions{MaxNewTokens: 10, MinNewTokens: 10, Stop: []string{words[2]}})
	must(t, err)
	if s.GetText() != want || s.GetFinishReason() != pb.FinishReason_FINISH_REASON_STOP {
		t.Fatalf("stop %q: %q (%v), want %q", words[2], s.GetText(), s.GetFinishReason(), want)
	}
	st, err := h.cli.Generate(ctx, &pb.GenerateRequest{Model: "blip", Parts: []*pb.PromptPart{imgPart(imgData(imgs[0]))},
		Options: &pb.GenerationOptions{MaxNewTokens: 10, MinNewTokens: 10, Stop: []string{words[2]}}})
	must(t, err)
	var streamed strings.Builder
	var last *pb.GenerateResponse
	for {
		resp, err := st.Recv()
		if err != nil {
			break
		}
		streamed.WriteString(resp.GetPiece().GetText())
		last = resp
	}
	if streamed.String() != want || last == nil {
		t.Fatalf("streamed %q, want %q", streamed.String(), want)
	}
	// Bad combinations are refused with INVALID_ARGUMENT.
	for _, tc := range []struct {
		o     *pb.GenerationOptions
		field string
	}{
		{&pb.GenerationOptions{Temperature: f64(0.5)}, "options"},       // without sampling
		{&pb.GenerationOptions{DoSample: true, NumBeams: 2}, "options"}, // beam sampling
		{&pb.GenerationOptions{DoSample: true, TopP: f64(1.5)}, "options.top_p"},
		{&pb.GenerationOptions{RepetitionPenalty: f64(-1)}, "options.repetition_penalty"},
	} {
		_, err := caption(imgs[0], tc.o)
		wantCode(t, err, codes.InvalidArgument, tc.field)
	}
}
