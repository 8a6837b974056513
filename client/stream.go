package client

import (
	"context"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// Piece is newly decoded text with its token ids.
type Piece = pb.Piece

// Part is one part of a multimodal prompt: Text or ImagePart.
type Part struct {
	text  string
	image *Image
}

// Text is a text part.
func Text(s string) Part { return Part{text: s} }

// ImagePart is an image part.
func ImagePart(img Image) Part { return Part{image: &img} }

// Stream is a Generate call in progress. Read it piece by piece with Recv,
// or range over All; then Final has the finish reason, usage and timings.
type Stream struct {
	ctx    context.Context
	cancel context.CancelFunc
	st     grpc.ServerStreamingClient[pb.GenerateResponse]
	first  *pb.GenerateResponse // already received while retrying
	final  *pb.Final
	err    error
}

// Generate starts streaming text for a multimodal prompt (for captioning
// and VQA models: one image, then optional text). opts may be nil. It
// returns once the server has accepted the request and sent its first
// message; failures before that are retried like unary calls.
func (c *Client) Generate(ctx context.Context, parts []Part, opts *pb.GenerationOptions, task pb.Task) (*Stream, error) {
	var images []Image
	for _, p := range parts {
		if p.image != nil {
			images = append(images, *p.image)
		}
	}
	// The stream outlives this call: its context (with the client's
	// default timeout, if any) is the stream's, cancelled by Close or at
	// the end.
	var sctx context.Context
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); !ok && c.o.timeout > 0 {
		sctx, cancel = context.WithTimeout(ctx, c.o.timeout)
	} else {
		sctx, cancel = context.WithCancel(ctx)
	}
	s := &Stream{ctx: sctx, cancel: cancel}
	err := c.do(sctx, images, func(ctx context.Context, wire func(Image) *pb.Image) error {
		req := &pb.GenerateRequest{Model: c.o.model, Options: opts, Task: task}
		for _, p := range parts {
			if p.image != nil {
				req.Parts = append(req.Parts, &pb.PromptPart{Part: &pb.PromptPart_Image{Image: wire(*p.image)}})
			} else {
				req.Parts = append(req.Parts, &pb.PromptPart{Part: &pb.PromptPart_Text{Text: p.text}})
			}
		}
		st, err := c.rpc.Generate(ctx, req)
		if err != nil {
			return err
		}
		// Nothing has been shown to the caller yet: a failure here is safe
		// to retry.
		first, err := st.Recv()
		if err != nil {
			if err == io.EOF {
				err = status.Error(codes.Internal, "glimpse client: stream ended without a final message")
			}
			return err
		}
		s.st, s.first = st, first
		return nil
	})
	if err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// Recv returns the next piece. At the end of the stream it returns nil,
// io.EOF and Final is set; any other error ends the stream.
func (s *Stream) Recv() (*Piece, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		var m *pb.GenerateResponse
		if s.first != nil {
			m, s.first = s.first, nil
		} else {
			var err error
			m, err = s.st.Recv()
			if err != nil {
				if err == io.EOF {
					if s.final == nil {
						err = status.Error(codes.Internal, "glimpse client: stream ended without a final message")
					}
				}
				s.err = err
				s.cancel()
				return nil, err
			}
		}
		switch e := m.GetEvent().(type) {
		case *pb.GenerateResponse_Piece:
			return e.Piece, nil
		case *pb.GenerateResponse_Final:
			s.final = e.Final
		}
	}
}

// All ranges over the pieces; a failure is yielded once as (nil, err).
// Breaking out of the loop cancels the generation on the server.
func (s *Stream) All() iter.Seq2[*Piece, error] {
	return func(yield func(*Piece, error) bool) {
		for {
			p, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(p, nil) {
				s.Close()
				return
			}
		}
	}
}

// Final is the stream's final message (text, token ids, finish reason,
// usage, timings) once Recv returned io.EOF; nil before.
func (s *Stream) Final() *pb.Final { return s.final }

// Close cancels the generation if it is still running.
func (s *Stream) Close() {
	if s.err == nil {
		s.err = status.Error(codes.Canceled, "glimpse client: stream closed")
	}
	s.cancel()
}
