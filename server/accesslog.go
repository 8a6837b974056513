package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// The access log has one line per RPC: method, code, duration, message
// sizes, image hashes and token counts — never image bytes, prompts,
// texts or outputs (the privacy rule). Its request_id comes from the
// context (requestIDHandler).

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	attrs := []slog.Attr{slog.Int("req_bytes", msgSize(req))}
	if err == nil {
		attrs = append(attrs, slog.Int("resp_bytes", msgSize(resp)))
		attrs = append(attrs, respAttrs(resp)...)
	}
	s.logRPC(ctx, info.FullMethod, start, err, attrs)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	ls := &loggingStream{ServerStream: ss}
	err := h(srv, ls)
	attrs := []slog.Attr{slog.Int("req_bytes", ls.in), slog.Int("resp_bytes", ls.out), slog.Int("messages_sent", ls.sent)}
	if ls.final != nil {
		attrs = append(attrs, respAttrs(ls.final)...)
	}
	s.logRPC(ss.Context(), info.FullMethod, start, err, attrs)
	return err
}

func (s *Server) logRPC(ctx context.Context, method string, start time.Time, err error, attrs []slog.Attr) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelError
	}
	attrs = append([]slog.Attr{slog.String("method", method), slog.String("code", code.String()),
		slog.Float64("ms", float64(time.Since(start).Microseconds())/1000)}, attrs...)
	s.log.LogAttrs(ctx, level, "rpc", attrs...)
}

func msgSize(m any) int {
	if pm, ok := m.(proto.Message); ok {
		return proto.Size(pm)
	}
	return 0
}

// respAttrs are the loggable facts of a response: hashes and counts.
func respAttrs(resp any) []slog.Attr {
	var out []slog.Attr
	add := func(model, sha string, tokens int) {
		if model != "" {
			out = append(out, slog.String("model", model))
		}
		if sha != "" {
			out = append(out, slog.String("image_sha256", sha))
		}
		if tokens > 0 {
			out = append(out, slog.Int("generated_tokens", tokens))
		}
	}
	switch r := resp.(type) {
	case *pb.CaptionResponse:
		add(r.GetModel(), r.GetImageSha256(), len(r.GetTokenIds()))
	case *pb.AnswerResponse:
		add(r.GetModel(), r.GetImageSha256(), len(r.GetTokenIds()))
	case *pb.MatchResponse:
		add(r.GetModel(), r.GetImageSha256(), 0)
		out = append(out, slog.Int("texts", len(r.GetScores())))
	case *pb.EmbedResponse:
		add(r.GetModel(), "", 0)
		out = append(out, slog.Int("images", len(r.GetImages())), slog.Int("texts", len(r.GetTexts())))
	case *pb.Final:
		add(r.GetModel(), r.GetImageSha256(), len(r.GetTokenIds()))
	}
	return out
}

// loggingStream counts a stream's bytes and keeps Generate's Final (for
// its hash and counts).
type loggingStream struct {
	grpc.ServerStream
	in, out, sent int
	final         *pb.Final
}

func (l *loggingStream) RecvMsg(m any) error {
	err := l.ServerStream.RecvMsg(m)
	if err == nil {
		l.in += msgSize(m)
	}
	return err
}

func (l *loggingStream) SendMsg(m any) error {
	l.out += msgSize(m)
	l.sent++
	if r, ok := m.(*pb.GenerateResponse); ok && r.GetFinal() != nil {
		l.final = r.GetFinal()
	}
	return l.ServerStream.SendMsg(m)
}
