package server

import (
	"context"
	"errors"
	"image/color"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// testTimeout bounds every test context.
const testTimeout = 20 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

type harness struct {
	srv    *Server
	conn   *grpc.ClientConn
	cli    pb.GlimpseServiceClient
	health healthpb.HealthClient
	cap    *fakeModel
	vqa    *fakeModel
	ret    *fakeModel
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start serves the three fake models over bufconn.
func start(t *testing.T, mutate func(*Config), opts ...Option) *harness {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg, testLogger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, cap: newFake("capfam", fusion.TaskCaption), vqa: newFake("vqafam", fusion.TaskAnswer),
		ret: newFake("retfam", fusion.TaskMatch, fusion.TaskEmbed)}
	for name, m := range map[string]fusion.Model{"cap": fakeCaptioner{h.cap}, "vqa": fakeVQA{h.vqa}, "ret": fakeRetrieval{h.ret}} {
		_ = name
		_ = m
	}
	must(t, srv.AddModel("cap", fakeCaptioner{h.cap}))
	must(t, srv.AddModel("vqa", fakeVQA{h.vqa}))
	must(t, srv.AddModel("ret", fakeRetrieval{h.ret}))
	h.dial(t)
	return h
}

func (h *harness) dial(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	go func() { _ = h.srv.Serve(lis) }()
	t.Cleanup(h.srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.conn, h.cli, h.health = conn, pb.NewGlimpseServiceClient(conn), healthpb.NewHealthClient(conn)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var red = pngBytes(4, 3, color.RGBA{200, 10, 10, 255})
var blue = pngBytes(5, 5, color.RGBA{0, 0, 250, 255})

func imgData(b []byte) *pb.Image { return &pb.Image{Source: &pb.Image_Data{Data: b}} }
func imgSHA(s string) *pb.Image  { return &pb.Image{Source: &pb.Image_Sha256{Sha256: s}} }
func i32p(v int32) *int32        { return &v }
func f64p(v float64) *float64    { return &v }
func textPart(s string) *pb.PromptPart {
	return &pb.PromptPart{Part: &pb.PromptPart_Text{Text: s}}
}
func imgPart(i *pb.Image) *pb.PromptPart { return &pb.PromptPart{Part: &pb.PromptPart_Image{Image: i}} }

// wantCode checks err's code and, for INVALID_ARGUMENT, that a field
// violation names field.
func wantCode(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("code %v (%v), want %v", st.Code(), err, code)
	}
	if code != codes.InvalidArgument {
		return
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					if v.GetDescription() == "" {
						t.Errorf("violation of %s has no description", field)
					}
					return
				}
			}
			t.Fatalf("violations %v do not name %q", br.GetFieldViolations(), field)
		}
	}
	t.Fatalf("no BadRequest detail in %v", st.Details())
}

func TestTasksEndToEnd(t *testing.T) {
	h := start(t, nil)
	ctx := testCtx(t)

	cr, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "a picture of"})
	must(t, err)
	want, _ := fakeCaptioner{h.cap}.gen(ctx, mustState(t, h.cap, red), "a picture of", fusion.GenerateOptions{}, nil)
	if cr.GetText() != want.Text || len(cr.GetTokenIds()) != len(want.TokenIDs) {
		t.Fatalf("caption %q %v, want %q %v", cr.GetText(), cr.GetTokenIds(), want.Text, want.TokenIDs)
	}
	for i, id := range want.TokenIDs {
		if cr.GetTokenIds()[i] != int32(id) {
			t.Fatalf("token %d = %d want %d", i, cr.GetTokenIds()[i], id)
		}
	}
	if cr.GetImageSha256() != hashImage(red) || cr.GetModel() != "cap" || cr.GetFinishReason() != pb.FinishReason_FINISH_REASON_EOS {
		t.Fatalf("caption metadata: %v", cr)
	}
	if u := cr.GetUsage(); u.GetImageTokens() != 3 || u.GetPromptTokens() != 3 || u.GetGeneratedTokens() != 5 {
		t.Fatalf("usage %v", u)
	}

	// Empty model = default = the first added ("cap").
	cr2, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgSHA(cr.GetImageSha256()), Prompt: "a picture of",
		Options: &pb.GenerationOptions{MaxNewTokens: 2, Logprobs: true}})
	must(t, err)
	if len(cr2.GetTokenIds()) != 2 || cr2.GetFinishReason() != pb.FinishReason_FINISH_REASON_LENGTH || len(cr2.GetLogprobs()) != 2 {
		t.Fatalf("max_new_tokens=2 by hash: %v", cr2)
	}
	if h.cap.encodes.Load() != 2 { // one by mustState, one by the server; the hash hit the cache
		t.Fatalf("encodes = %d, want 2 (cache hit on the hash)", h.cap.encodes.Load())
	}

	ar, err := h.cli.Answer(ctx, &pb.AnswerRequest{Model: "vqa", Image: imgData(blue), Question: "what colour?"})
	must(t, err)
	if ar.GetText() == "" || len(ar.GetTokenIds()) != 5 {
		t.Fatalf("answer %v", ar)
	}

	mr, err := h.cli.Match(ctx, &pb.MatchRequest{Model: "ret", Image: imgData(red), Texts: []string{"a red square", "a dog"}})
	must(t, err)
	if len(mr.GetScores()) != 2 || mr.GetScores()[1].GetText() != "a dog" || mr.GetScores()[0].Cosine == nil || mr.GetScores()[0].Logit != nil {
		t.Fatalf("match %v", mr)
	}
	ms, _ := fakeRetrieval{h.ret}.Match(ctx, mustState(t, h.ret, red), []string{"a red square"})
	if mr.GetScores()[0].GetCosine() != *ms[0].Cosine {
		t.Fatalf("cosine %v want %v", mr.GetScores()[0].GetCosine(), *ms[0].Cosine)
	}

	er, err := h.cli.Embed(ctx, &pb.EmbedRequest{Model: "ret", Images: []*pb.Image{imgData(red), imgData(blue)}, Texts: []string{"abc"}})
	must(t, err)
	if len(er.GetImages()) != 2 || len(er.GetTexts()) != 1 || er.GetTexts()[0].GetValues()[0] != 3 || len(er.GetImageSha256S()) != 2 {
		t.Fatalf("embed %v", er)
	}

	lr, err := h.cli.ListModels(ctx, &pb.ListModelsRequest{})
	must(t, err)
	if lr.GetDefaultModel() != "cap" || len(lr.GetModels()) != 3 || lr.GetModels()[2].GetTasks()[1] != pb.Task_TASK_EMBED ||
		lr.GetModels()[0].GetState() != pb.ModelState_MODEL_STATE_SERVING || lr.GetLimits().GetMaxBeams() != 8 {
		t.Fatalf("list %v", lr)
	}
}

func mustState(t *testing.T, m *fakeModel, data []byte) *fusion.ImageState {
	s := &Server{cfg: DefaultConfig()}
	img, err := s.decodeImage(data)
	must(t, err)
	st, err := m.EncodeImage(context.Background(), img)
	must(t, err)
	return st
}

func TestGenerateStream(t *testing.T) {
	h := start(t, nil)
	ctx := testCtx(t)
	tests := []struct {
		model, prompt string
		task          pb.Task
	}{
		{"cap", "", pb.Task_TASK_CAPTION},
		{"cap", "a photo", pb.Task_TASK_CAPTION},
		{"vqa", "what is it?", pb.Task_TASK_ANSWER},
	}
	for _, tc := range tests {
		parts := []*pb.PromptPart{imgPart(imgData(red))}
		if tc.prompt != "" {
			// Two text parts are joined in order.
			parts = append(parts, textPart(tc.prompt[:2]), textPart(tc.prompt[2:]))
		}
		st, err := h.cli.Generate(ctx, &pb.GenerateRequest{Model: tc.model, Parts: parts})
		must(t, err)
		var pieces strings.Builder
		var ids []int32
		var final *pb.Final
		for {
			r, err := st.Recv()
			if err == io.EOF {
				break
			}
			must(t, err)
			if final != nil {
				t.Fatal("message after final")
			}
			if p := r.GetPiece(); p != nil {
				pieces.WriteString(p.GetText())
				ids = append(ids, p.GetTokenIds()...)
			}
			if f := r.GetFinal(); f != nil {
				final = f
			}
		}
		if final == nil || final.GetTask() != tc.task || !proto.Equal(&pb.Final{TokenIds: ids}, &pb.Final{TokenIds: final.GetTokenIds()}) {
			t.Fatalf("%s: final %v, streamed ids %v", tc.model, final, ids)
		}
		if !strings.HasSuffix(final.GetText(), pieces.String()) || pieces.Len() == 0 {
			t.Fatalf("%s: pieces %q vs final %q", tc.model, pieces.String(), final.GetText())
		}
		// The same as the unary call.
		if tc.task == pb.Task_TASK_CAPTION {
			cr, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: tc.model, Image: imgData(red), Prompt: tc.prompt})
			must(t, err)
			if cr.GetText() != final.GetText() {
				t.Fatalf("generate %q != caption %q", final.GetText(), cr.GetText())
			}
		}
	}
}

func TestErrors(t *testing.T) {
	h := start(t, nil)
	ctx := testCtx(t)
	badSHA := strings.Repeat("ab", 32)
	big := make([]byte, 2000)
	tests := []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"no image", func() error { _, err := h.cli.Caption(ctx, &pb.CaptionRequest{}); return err }, codes.InvalidArgument, "image"},
		{"empty image", func() error { _, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(nil)}); return err }, codes.InvalidArgument, "image.data"},
		{"too big image", func() error { _, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(big)}); return err }, codes.InvalidArgument, "image.data"},
		{"not an image", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData([]byte("hello, I am a text file"))})
			return err
		}, codes.InvalidArgument, "image.data"},
		{"bad sha", func() error { _, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgSHA("xyz")}); return err }, codes.InvalidArgument, "image.sha256"},
		{"unknown sha", func() error { _, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgSHA(badSHA)}); return err }, codes.NotFound, ""},
		{"negative max_new_tokens", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red), Options: &pb.GenerationOptions{MaxNewTokens: -1}})
			return err
		}, codes.InvalidArgument, "options.max_new_tokens"},
		{"too many beams", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red), Options: &pb.GenerationOptions{NumBeams: 99}})
			return err
		}, codes.InvalidArgument, "options.num_beams"},
		{"top_p", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red), Options: &pb.GenerationOptions{TopP: f64p(1.5)}})
			return err
		}, codes.InvalidArgument, "options.top_p"},
		{"temperature", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red), Options: &pb.GenerationOptions{Temperature: f64p(0)}})
			return err
		}, codes.InvalidArgument, "options.temperature"},
		{"min > max", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red), Options: &pb.GenerationOptions{MaxNewTokens: 2, MinNewTokens: 3}})
			return err
		}, codes.InvalidArgument, "options.min_new_tokens"},
		{"empty stop", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red), Options: &pb.GenerationOptions{Stop: []string{"x", ""}}})
			return err
		}, codes.InvalidArgument, "options.stop[1]"},
		{"prompt too long", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red), Prompt: strings.Repeat("w ", 40)})
			return err
		}, codes.InvalidArgument, "prompt"},
		{"tokenizer refuses", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red), Prompt: "a\x00b"})
			return err
		}, codes.InvalidArgument, "prompt"},
		{"empty question", func() error {
			_, err := h.cli.Answer(ctx, &pb.AnswerRequest{Model: "vqa", Image: imgData(red)})
			return err
		}, codes.InvalidArgument, "question"},
		{"no texts", func() error {
			_, err := h.cli.Match(ctx, &pb.MatchRequest{Model: "ret", Image: imgData(red)})
			return err
		}, codes.InvalidArgument, "texts"},
		{"empty text", func() error {
			_, err := h.cli.Match(ctx, &pb.MatchRequest{Model: "ret", Image: imgData(red), Texts: []string{"a", " "}})
			return err
		}, codes.InvalidArgument, "texts[1]"},
		{"empty embed", func() error { _, err := h.cli.Embed(ctx, &pb.EmbedRequest{Model: "ret"}); return err }, codes.InvalidArgument, "images"},
		{"embed bad image", func() error {
			_, err := h.cli.Embed(ctx, &pb.EmbedRequest{Model: "ret", Images: []*pb.Image{imgData(red), {}}})
			return err
		}, codes.InvalidArgument, "images[1]"},
		{"unknown model", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "nope", Image: imgData(red)})
			return err
		}, codes.NotFound, ""},
		{"model lacks task", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "ret", Image: imgData(red)})
			return err
		}, codes.FailedPrecondition, ""},
		{"match on captioner", func() error {
			_, err := h.cli.Match(ctx, &pb.MatchRequest{Model: "cap", Image: imgData(red), Texts: []string{"a"}})
			return err
		}, codes.FailedPrecondition, ""},
		{"panic", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "panic"})
			return err
		}, codes.Internal, ""},
	}
	cfgSmall := func(c *Config) { c.MaxImageBytes = 1000 }
	h = start(t, cfgSmall)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.code, tc.field) })
	}
	// The server still serves after the panic.
	if _, err := h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red)}); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

func generateErr(ctx context.Context, cli pb.GlimpseServiceClient, req *pb.GenerateRequest) error {
	st, err := cli.Generate(ctx, req)
	if err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func TestGenerateRefusals(t *testing.T) {
	h := start(t, nil)
	ctx := testCtx(t)
	tests := []struct {
		name  string
		req   *pb.GenerateRequest
		code  codes.Code
		field string
	}{
		{"empty", &pb.GenerateRequest{}, codes.InvalidArgument, "parts"},
		{"text only", &pb.GenerateRequest{Parts: []*pb.PromptPart{textPart("hi")}}, codes.InvalidArgument, "parts[0]"},
		{"text first", &pb.GenerateRequest{Parts: []*pb.PromptPart{textPart("hi"), imgPart(imgData(red))}}, codes.InvalidArgument, "parts[0]"},
		{"two images", &pb.GenerateRequest{Parts: []*pb.PromptPart{imgPart(imgData(red)), imgPart(imgData(blue))}}, codes.InvalidArgument, "parts[1]"},
		{"empty part", &pb.GenerateRequest{Parts: []*pb.PromptPart{imgPart(imgData(red)), {}}}, codes.InvalidArgument, "parts[1]"},
		{"vqa without question", &pb.GenerateRequest{Model: "vqa", Parts: []*pb.PromptPart{imgPart(imgData(red))}}, codes.InvalidArgument, "parts"},
		{"retrieval model", &pb.GenerateRequest{Model: "ret", Parts: []*pb.PromptPart{imgPart(imgData(red))}}, codes.FailedPrecondition, ""},
		{"answer on captioner", &pb.GenerateRequest{Model: "cap", Task: pb.Task_TASK_ANSWER, Parts: []*pb.PromptPart{imgPart(imgData(red)), textPart("q")}}, codes.FailedPrecondition, ""},
		{"match task", &pb.GenerateRequest{Task: pb.Task_TASK_MATCH, Parts: []*pb.PromptPart{imgPart(imgData(red))}}, codes.InvalidArgument, "task"},
		{"panic", &pb.GenerateRequest{Parts: []*pb.PromptPart{imgPart(imgData(red)), textPart("panic")}}, codes.Internal, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, generateErr(ctx, h.cli, tc.req), tc.code, tc.field) })
	}
}

func TestImageCacheEvictionAndDisable(t *testing.T) {
	for _, budget := range []int64{0, 1 << 20} {
		h := start(t, func(c *Config) { c.ImageCacheBytes = budget })
		ctx := testCtx(t)
		cr, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red)})
		must(t, err)
		_, err = h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgSHA(strings.ToUpper(cr.GetImageSha256()))})
		if budget == 0 {
			wantCode(t, err, codes.NotFound, "")
			st := status.Convert(err)
			if len(st.Details()) == 0 || st.Details()[0].(*errdetails.ResourceInfo).GetResourceName() != cr.GetImageSha256() {
				t.Fatalf("NotFound details %v", st.Details())
			}
		} else {
			must(t, err)
			// Caches are per model: the same hash on another model is unknown.
			_, err = h.cli.Match(ctx, &pb.MatchRequest{Model: "ret", Image: imgSHA(cr.GetImageSha256()), Texts: []string{"x"}})
			wantCode(t, err, codes.NotFound, "")
		}
	}
	c := newImageCache(3 * (4*10 + 64 + 64 + 1))
	st := &fusion.ImageState{Tokens: 10, Dim: 1, Hidden: make([]float32, 10)}
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, st)
	}
	c.get("a") // b is now the least recently used
	c.put("d", st)
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := c.get(k); ok != want {
			t.Errorf("cache has %s = %v, want %v", k, ok, want)
		}
	}
	if n, used, _, _ := c.stats(); n != 3 || used > c.budget {
		t.Errorf("cache %d entries, %d bytes (budget %d)", n, used, c.budget)
	}
}

func TestAdmissionFull(t *testing.T) {
	// Generation requests are admitted by the model's engine: one may
	// decode at a time here (--max-batch 1), none may wait.
	h := start(t, func(c *Config) {
		c.MaxConcurrent, c.MaxBatch, c.MaxQueue, c.RetryAfter = 1, 1, 0, 1500*time.Millisecond
	})
	ctx := testCtx(t)
	slow, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := h.cli.Generate(slow, &pb.GenerateRequest{Model: "cap", Parts: []*pb.PromptPart{imgPart(imgData(red)), textPart("slow")}})
	must(t, err)
	if _, err := st.Recv(); err != nil { // the slot is taken once a piece arrives
		t.Fatal(err)
	}
	_, err = h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red)})
	wantCode(t, err, codes.ResourceExhausted, "")
	var ri *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		ri, _ = d.(*errdetails.RetryInfo)
	}
	if ri == nil || ri.GetRetryDelay().AsDuration() != 1500*time.Millisecond {
		t.Fatalf("RetryInfo %v", ri)
	}
	cancel()
	// The cancelled stream frees its slot; a new request gets through.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red)})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, err)
	if h.cap.stopped.Load() != 1 {
		t.Fatalf("the cancelled generation did not stop (stopped=%d)", h.cap.stopped.Load())
	}
}

func TestQueueWaits(t *testing.T) {
	h := start(t, func(c *Config) { c.MaxConcurrent, c.MaxQueue = 1, 4 })
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "slow",
				Options: &pb.GenerationOptions{MaxNewTokens: 3}})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
}

func TestDeadline(t *testing.T) {
	h := start(t, nil)
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "slow"})
	wantCode(t, err, codes.DeadlineExceeded, "")
	deadline := time.Now().Add(5 * time.Second)
	for h.cap.stopped.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if h.cap.stopped.Load() != 1 {
		t.Fatal("work did not stop after the deadline")
	}
}

// TestLoadFailure: one folder fails, the others serve; health per model.
func TestLoadFailureAndHealth(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	must(t, os.MkdirAll(good, 0o755))
	cfg := DefaultConfig()
	cfg.Models = []ModelSpec{{Name: "broken", Dir: filepath.Join(dir, "missing")}, {Name: "good", Dir: good}}
	load := func(d string) (fusion.Model, error) {
		if d == good {
			return fakeCaptioner{newFake("capfam", fusion.TaskCaption)}, nil
		}
		return fusion.Load(d)
	}
	srv, err := New(cfg, testLogger(t), WithLoader(load))
	must(t, err)
	h := &harness{srv: srv}
	h.dial(t)
	ctx := testCtx(t)
	check := func(service string, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		r, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		must(t, err)
		if r.GetStatus() != want {
			t.Fatalf("health(%q) = %v, want %v", service, r.GetStatus(), want)
		}
	}
	check("", healthpb.HealthCheckResponse_NOT_SERVING)
	_, err = h.cli.Caption(ctx, &pb.CaptionRequest{Model: "good", Image: imgData(red)})
	wantCode(t, err, codes.Unavailable, "")

	var events []LoadEvent
	err = srv.Load(ctx, func(ev LoadEvent) { events = append(events, ev) })
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Load error %v", err)
	}
	if len(events) != 4 || !events[1].Done || events[1].Err == nil || events[3].Err != nil {
		t.Fatalf("events %+v", events)
	}
	check("", healthpb.HealthCheckResponse_SERVING)
	check(ServiceName, healthpb.HealthCheckResponse_SERVING)
	check(HealthName("good"), healthpb.HealthCheckResponse_SERVING)
	check(HealthName("broken"), healthpb.HealthCheckResponse_NOT_SERVING)

	_, err = h.cli.Caption(ctx, &pb.CaptionRequest{Model: "good", Image: imgData(red)})
	must(t, err)
	// "broken" is the default (first); it refuses clearly.
	_, err = h.cli.Caption(ctx, &pb.CaptionRequest{Image: imgData(red)})
	wantCode(t, err, codes.FailedPrecondition, "")
	lr, err := h.cli.ListModels(ctx, &pb.ListModelsRequest{})
	must(t, err)
	if lr.GetModels()[0].GetState() != pb.ModelState_MODEL_STATE_NOT_SERVING || !strings.Contains(lr.GetModels()[0].GetError(), "config.json") {
		t.Fatalf("list %v", lr.GetModels()[0])
	}
}

func TestGracefulShutdown(t *testing.T) {
	h := start(t, nil)
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() {
		_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "slow"})
		done <- err
	}()
	waitFor(t, func() bool { return h.cap.started.Load() > 0 })
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h.srv.Shutdown(sctx)
	if err := <-done; err != nil {
		t.Fatalf("in-flight request failed during graceful shutdown: %v", err)
	}
	_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red)})
	if err == nil {
		t.Fatal("request after shutdown succeeded")
	}
	// Grace period over: running work is cancelled.
	h2 := start(t, nil)
	go func() {
		_, err := h2.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "slow"})
		done <- err
	}()
	waitFor(t, func() bool { return h2.cap.started.Load() > 0 })
	short, cancel2 := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel2()
	h2.srv.Shutdown(short)
	if err := <-done; err == nil {
		t.Fatal("request survived a forced shutdown")
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test timed out")
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
