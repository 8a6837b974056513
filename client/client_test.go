package client

import (
	"context"
	"errors"
	"image"
	"image/color"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

const testTimeout = 20 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestImportsOnlyProto: the SDK must not compile the model code.
func TestImportsOnlyProto(t *testing.T) {
	ctx := testCtx(t)
	out, err := exec.CommandContext(ctx, "go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/glimpse-vlm/glimpse/"
	n := 0
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasPrefix(p, mod) {
			continue
		}
		n++
		rest := strings.TrimPrefix(p, mod)
		if rest != "client" && !strings.HasPrefix(rest, "proto/") {
			t.Errorf("client depends on %s; it may import only proto/", p)
		}
	}
	if n < 2 {
		t.Fatalf("go list found %d module packages; expected client and proto", n)
	}
}

// fakeServer scripts failures: the first failN calls fail with code
// (with RetryInfo for RESOURCE_EXHAUSTED); image references are NOT_FOUND
// unless known.
type fakeServer struct {
	pb.UnimplementedGlimpseServiceServer
	name   string
	calls  atomic.Int64
	failN  int64
	code   codes.Code
	mu     sync.Mutex
	known  map[string]bool
	byData atomic.Int64
	byRef  atomic.Int64
	delay  time.Duration // between streamed pieces
}

func (f *fakeServer) fail() error {
	if f.calls.Add(1) > f.failN {
		return nil
	}
	st := status.New(f.code, "scripted failure")
	if f.code == codes.ResourceExhausted {
		st, _ = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(30 * time.Millisecond)})
	}
	return st.Err()
}

func (f *fakeServer) image(img *pb.Image) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch s := img.GetSource().(type) {
	case *pb.Image_Data:
		f.byData.Add(1)
		sha := newImage(s.Data, nil).sha
		f.known[sha] = true
		return sha, nil
	case *pb.Image_Sha256:
		f.byRef.Add(1)
		if !f.known[s.Sha256] {
			st, _ := status.New(codes.NotFound, "no such image").WithDetails(&errdetails.ResourceInfo{ResourceType: "image", ResourceName: s.Sha256})
			return "", st.Err()
		}
		return s.Sha256, nil
	}
	return "", status.Error(codes.InvalidArgument, "no image")
}

func (f *fakeServer) Caption(ctx context.Context, req *pb.CaptionRequest) (*pb.CaptionResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	sha, err := f.image(req.GetImage())
	if err != nil {
		return nil, err
	}
	return &pb.CaptionResponse{Text: f.name + ":" + req.GetPrompt(), ImageSha256: sha, Model: req.GetModel()}, nil
}

func (f *fakeServer) Generate(req *pb.GenerateRequest, st grpc.ServerStreamingServer[pb.GenerateResponse]) error {
	if err := f.fail(); err != nil {
		return err
	}
	for i, w := range []string{"a", " cat"} {
		if i > 0 {
			time.Sleep(f.delay)
		}
		if err := st.Send(&pb.GenerateResponse{Event: &pb.GenerateResponse_Piece{Piece: &pb.Piece{Text: w, TokenIds: []int32{1}}}}); err != nil {
			return err
		}
	}
	return st.Send(&pb.GenerateResponse{Event: &pb.GenerateResponse_Final{Final: &pb.Final{Text: "a cat", FinishReason: pb.FinishReason_FINISH_REASON_EOS}}})
}

func serveFake(t *testing.T, f *fakeServer) string {
	t.Helper()
	if f.known == nil {
		f.known = map[string]bool{}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterGlimpseServiceServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

var png1 = ImageFrom(image.NewGray(image.Rect(0, 0, 2, 2)))

func TestRetries(t *testing.T) {
	tests := []struct {
		code      codes.Code
		failN     int64
		wantErr   codes.Code
		wantCalls int64
	}{
		{codes.Unavailable, 2, codes.OK, 3},
		{codes.ResourceExhausted, 3, codes.OK, 4},
		{codes.ResourceExhausted, 10, codes.ResourceExhausted, 4}, // gives up after 4 attempts
		{codes.InvalidArgument, 1, codes.InvalidArgument, 1},      // not retried
		{codes.Internal, 1, codes.Internal, 1},
	}
	for _, tc := range tests {
		t.Run(tc.code.String(), func(t *testing.T) {
			f := &fakeServer{name: "s", failN: tc.failN, code: tc.code}
			c, err := New(serveFake(t, f), WithRetry(4, time.Millisecond, 10*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			_, err = c.Caption(testCtx(t), png1, "p", nil)
			if status.Code(err) != tc.wantErr || f.calls.Load() != tc.wantCalls {
				t.Fatalf("err %v after %d calls; want %v after %d", err, f.calls.Load(), tc.wantErr, tc.wantCalls)
			}
			if tc.code == codes.ResourceExhausted && tc.wantErr == codes.OK && time.Since(start) < 3*30*time.Millisecond {
				t.Fatalf("RetryInfo delay not honoured: %v", time.Since(start))
			}
		})
	}
	// A streamed Generate is retried before its first piece.
	// The stream outlives Generate's call, also with a default timeout.
	f := &fakeServer{name: "s", failN: 1, code: codes.Unavailable, delay: 50 * time.Millisecond}
	c, err := New(serveFake(t, f), WithRetry(3, time.Millisecond, time.Millisecond), WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No deadline on the caller's context: WithTimeout's applies.
	st, err := c.Generate(context.Background(), []Part{ImagePart(png1), Text("x")}, nil, pb.Task_TASK_UNSPECIFIED)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for p, err := range st.All() {
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString(p.GetText())
	}
	if got.String() != "a cat" || st.Final().GetText() != "a cat" || f.calls.Load() != 2 {
		t.Fatalf("stream %q final %v calls %d", got.String(), st.Final(), f.calls.Load())
	}
}

func TestImageResend(t *testing.T) {
	f := &fakeServer{name: "s"}
	c, err := New(serveFake(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	for i := 0; i < 3; i++ {
		r, err := c.Caption(ctx, png1, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetImageSha256() != png1.SHA256() {
			t.Fatalf("sha %s want %s", r.GetImageSha256(), png1.SHA256())
		}
	}
	if f.byData.Load() != 1 || f.byRef.Load() != 2 {
		t.Fatalf("sent %d by data, %d by ref; want 1 and 2", f.byData.Load(), f.byRef.Load())
	}
	// The server forgets: the SDK resends the bytes transparently.
	f.mu.Lock()
	f.known = map[string]bool{}
	f.mu.Unlock()
	if _, err := c.Caption(ctx, png1, "", nil); err != nil {
		t.Fatal(err)
	}
	if f.byData.Load() != 2 || f.byRef.Load() != 3 {
		t.Fatalf("after eviction: %d by data, %d by ref; want 2 and 3", f.byData.Load(), f.byRef.Load())
	}
	// With the cache off, bytes every time.
	c2, _ := New(serveFake(t, &fakeServer{name: "t"}), WithImageCache(false))
	defer c2.Close()
	for i := 0; i < 2; i++ {
		if _, err := c2.Caption(ctx, png1, "", nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	fs := []*fakeServer{{name: "a"}, {name: "b"}, {name: "c"}}
	var addrs []string
	for _, f := range fs {
		addrs = append(addrs, serveFake(t, f))
	}
	c, err := New(strings.Join(addrs, ","), WithImageCache(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	// gRPC's round_robin balances over the connections that are ready; on a
	// loaded machine the third may connect a little later. Wait until every
	// server has answered once (bounded by the test context), then count.
	warm := map[string]bool{}
	for len(warm) < len(fs) {
		r, err := c.Caption(ctx, png1, "", nil)
		if err != nil {
			t.Fatalf("warming up (servers seen: %v): %v", warm, err)
		}
		warm[strings.TrimSuffix(r.GetText(), ":")] = true
	}
	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		r, err := c.Caption(ctx, png1, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.TrimSuffix(r.GetText(), ":")]++
	}
	for _, f := range fs {
		if seen[f.name] < 5 {
			t.Fatalf("calls per server %v: not round-robin", seen)
		}
	}
}

func TestImageSources(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.RGBA{1, 2, 3, 255})
	a := ImageFrom(img)
	b := ImageReader(strings.NewReader(string(a.data)))
	if a.Err() != nil || b.Err() != nil || a.SHA256() != b.SHA256() || a.Len() == 0 {
		t.Fatalf("image sources differ: %v %v", a.Err(), b.Err())
	}
	missing := ImageFile("/nonexistent/cat.jpg")
	c, _ := New("127.0.0.1:1")
	defer c.Close()
	if _, err := c.Caption(testCtx(t), missing, "", nil); err == nil || !strings.Contains(err.Error(), "cat.jpg") {
		t.Fatalf("missing file error: %v", err)
	}
	if _, err := New(""); err == nil {
		t.Fatal("empty target accepted")
	}
	if _, err := New("a:1,,b:2"); err == nil {
		t.Fatal("empty address accepted")
	}
	if err := ImageFrom(nil).Err(); err == nil || errors.Is(err, context.Canceled) {
		t.Fatal("ImageFrom(nil) accepted")
	}
}
