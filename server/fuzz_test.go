package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// fuzzStream is the server side of a Generate stream for direct calls.
type fuzzStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent int
}

func (f *fuzzStream) Context() context.Context        { return f.ctx }
func (f *fuzzStream) Send(*pb.GenerateResponse) error { f.sent++; return nil }

// FuzzValidateRequest feeds arbitrary wire bytes, decoded as each request
// type, to the service (validation, model resolution and the fake models
// behind it). Nothing may panic; every refusal must be one of the codes a
// bad request gets, and INVALID_ARGUMENT must name the violated fields.
// The corpus is in testdata/fuzz/FuzzValidateRequest.
func FuzzValidateRequest(f *testing.F) {
	seeds := []proto.Message{
		&pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "a photo of", Options: &pb.GenerationOptions{MaxNewTokens: 3, NumBeams: 2}},
		&pb.CaptionRequest{Image: imgSHA(strings.Repeat("ab", 32))},
		&pb.AnswerRequest{Model: "vqa", Image: imgData(blue), Question: "what colour?"},
		&pb.MatchRequest{Model: "ret", Image: imgData(red), Texts: []string{"a", "b"}},
		&pb.EmbedRequest{Model: "ret", Images: []*pb.Image{imgData(red)}, Texts: []string{"x"}},
		&pb.GenerateRequest{Model: "cap", Parts: []*pb.PromptPart{imgPart(imgData(red)), textPart("hi")}, Options: &pb.GenerationOptions{Stop: []string{"x"}, TopP: f64p(0.5)}},
		&pb.GenerateRequest{Parts: []*pb.PromptPart{textPart("text first"), imgPart(imgData(red))}},
		&pb.CaptionRequest{Model: "nope", Image: imgData([]byte("GIF89a"))},
	}
	for i, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i%5), b)
	}
	f.Add(uint8(0), []byte{0x0a, 0xff})
	cfg := DefaultConfig()
	cfg.MaxImagePixels = 4096
	srv, err := New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Stop()
	must := func(err error) {
		if err != nil {
			f.Fatal(err)
		}
	}
	must(srv.AddModel("cap", fakeCaptioner{newFake("capfam", fusion.TaskCaption)}))
	must(srv.AddModel("vqa", fakeVQA{newFake("vqafam", fusion.TaskAnswer)}))
	must(srv.AddModel("ret", fakeRetrieval{newFake("retfam", fusion.TaskMatch, fusion.TaskEmbed)}))
	svc := srv.svc
	f.Fuzz(func(t *testing.T, kind uint8, raw []byte) {
		// The fakes panic or stall on these prompts by design.
		if s := string(raw); strings.Contains(s, "panic") || strings.Contains(s, "slow") {
			return
		}
		ctx := context.Background()
		var err error
		switch kind % 5 {
		case 0:
			req := &pb.CaptionRequest{}
			if proto.Unmarshal(raw, req) != nil {
				return
			}
			_, err = svc.Caption(ctx, req)
		case 1:
			req := &pb.AnswerRequest{}
			if proto.Unmarshal(raw, req) != nil {
				return
			}
			_, err = svc.Answer(ctx, req)
		case 2:
			req := &pb.MatchRequest{}
			if proto.Unmarshal(raw, req) != nil {
				return
			}
			_, err = svc.Match(ctx, req)
		case 3:
			req := &pb.EmbedRequest{}
			if proto.Unmarshal(raw, req) != nil {
				return
			}
			_, err = svc.Embed(ctx, req)
		case 4:
			req := &pb.GenerateRequest{}
			if proto.Unmarshal(raw, req) != nil {
				return
			}
			err = svc.Generate(req, &fuzzStream{ctx: ctx})
		}
		if err == nil {
			return
		}
		st, ok := status.FromError(err)
		if !ok {
			t.Fatalf("not a gRPC status: %v", err)
		}
		switch st.Code() {
		case codes.InvalidArgument:
			found := false
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						if v.GetField() == "" || v.GetDescription() == "" {
							t.Fatalf("violation without field or description: %v", v)
						}
						found = true
					}
				}
			}
			if !found {
				t.Fatalf("INVALID_ARGUMENT without field violations: %v", err)
			}
		case codes.NotFound, codes.FailedPrecondition, codes.ResourceExhausted:
			if st.Message() == "" {
				t.Fatalf("%v without a message", st.Code())
			}
		default:
			t.Fatalf("bad request answered %v: %v", st.Code(), err)
		}
	})
}
