// Package client is the Go SDK for a Glimpse server (glimpse.v1 over
// gRPC). It imports only the generated API in proto/glimpse/v1 and the
// gRPC and protobuf libraries, never the model code.
//
//	c, err := client.New("127.0.0.1:50051")
//	defer c.Close()
//	res, err := c.Caption(ctx, client.ImageFile("cat.jpg"), "", nil)
//	fmt.Println(res.GetText())
//
// Calls take a context (its deadline travels to the server, which stops
// the work when it passes). Every call is safe to retry and is retried
// with exponential backoff on UNAVAILABLE and RESOURCE_EXHAUSTED
// (honouring the server's RetryInfo); a streamed Generate is retried only
// if it failed before the first piece arrived. Images already sent are
// referred to by their SHA-256, and resent transparently when the server
// no longer holds them. Several server addresses are balanced round-robin.
package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// DefaultAddr is the address `glimpse serve` listens on by default.
const DefaultAddr = "127.0.0.1:50051"

type options struct {
	model       string
	creds       credentials.TransportCredentials
	dial        []grpc.DialOption
	maxAttempts int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	imageCache  bool
	maxMsg      int
	timeout     time.Duration
	err         error // from an option that could not be applied
}

// Option configures a Client.
type Option func(*options)

// WithModel sets the model calls use (default "": the server's default
// model). Client.Model overrides it for one handle.
func WithModel(name string) Option { return func(o *options) { o.model = name } }

// WithTransportCredentials sets TLS or other credentials (default:
// insecure plaintext, for loopback and trusted networks).
func WithTransportCredentials(c credentials.TransportCredentials) Option {
	return func(o *options) { o.creds = c }
}

// WithDialOptions adds grpc.DialOptions (e.g. a custom dialer for an
// in-memory connection, or interceptors).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// WithRetry sets how many attempts a call makes (default 4; 1 disables
// retries) and the exponential backoff between them (default 100 ms
// doubling up to 5 s, with jitter). A server's RetryInfo delay is used
// when it is longer.
func WithRetry(attempts int, base, max time.Duration) Option {
	return func(o *options) {
		o.maxAttempts, o.baseBackoff, o.maxBackoff = max1(attempts), base, max
	}
}

// WithImageCache turns on or off referring to images already sent by
// their SHA-256 instead of resending the bytes (default on).
func WithImageCache(on bool) Option { return func(o *options) { o.imageCache = on } }

// WithMaxMessageBytes sets the largest message sent or received (default
// 32 MiB, the server's default limit).
func WithMaxMessageBytes(n int) Option { return func(o *options) { o.maxMsg = n } }

// WithTimeout gives every call without its own deadline this one (default
// 0: none; the caller's context decides).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Client talks to one or several Glimpse servers. It is safe for
// concurrent use.
type Client struct {
	conn *grpc.ClientConn
	rpc  pb.GlimpseServiceClient
	o    options
	sent *sentSet
	// owner is false for handles made by Model (Close is a no-op there).
	owner bool
}

var resolverSeq atomic.Int64

// New connects to target: "HOST:PORT", several comma-separated
// "HOST:PORT,HOST:PORT" (balanced round-robin), or any gRPC target such as
// "dns:///glimpse.example:50051" (round-robin over its addresses). It does
// not wait for the connection; the first call does.
func New(target string, opts ...Option) (*Client, error) {
	o := options{creds: insecure.NewCredentials(), maxAttempts: 4, baseBackoff: 100 * time.Millisecond,
		maxBackoff: 5 * time.Second, imageCache: true, maxMsg: 32 << 20}
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	if strings.TrimSpace(target) == "" {
		return nil, errors.New("glimpse client: empty target (want HOST:PORT, e.g. " + DefaultAddr + ")")
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(o.creds),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.maxMsg), grpc.MaxCallSendMsgSize(o.maxMsg)),
	}
	if addrs := strings.Split(target, ","); len(addrs) > 1 {
		r := manual.NewBuilderWithScheme(fmt.Sprintf("glimpse-rr-%d", resolverSeq.Add(1)))
		var st resolver.State
		for _, a := range addrs {
			a = strings.TrimSpace(a)
			if a == "" {
				return nil, fmt.Errorf("glimpse client: empty address in %q", target)
			}
			st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
		}
		r.InitialState(st)
		dial = append(dial, grpc.WithResolvers(r))
		target = r.Scheme() + ":///glimpse"
	}
	conn, err := grpc.NewClient(target, append(dial, o.dial...)...)
	if err != nil {
		return nil, fmt.Errorf("glimpse client: %w", err)
	}
	return &Client{conn: conn, rpc: pb.NewGlimpseServiceClient(conn), o: o, sent: newSentSet(4096), owner: true}, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	if !c.owner {
		return nil
	}
	return c.conn.Close()
}

// Conn is the underlying connection (e.g. for a health client).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Model returns a handle on the same connection whose calls use model
// name. Closing it does nothing; close the original.
func (c *Client) Model(name string) *Client {
	d := *c
	d.o.model = name
	d.owner = false
	return &d
}

// ListModels describes the server's models and limits.
func (c *Client) ListModels(ctx context.Context) (*pb.ListModelsResponse, error) {
	var resp *pb.ListModelsResponse
	err := c.do(ctx, nil, func(ctx context.Context, _ func(Image) *pb.Image) (err error) {
		resp, err = c.rpc.ListModels(ctx, &pb.ListModelsRequest{})
		return err
	})
	return resp, err
}

// Caption captions img; prompt (may be empty) is a text the caption
// continues; opts may be nil (the model's defaults).
func (c *Client) Caption(ctx context.Context, img Image, prompt string, opts *pb.GenerationOptions) (*pb.CaptionResponse, error) {
	var resp *pb.CaptionResponse
	err := c.do(ctx, []Image{img}, func(ctx context.Context, wire func(Image) *pb.Image) (err error) {
		resp, err = c.rpc.Caption(ctx, &pb.CaptionRequest{Model: c.o.model, Image: wire(img), Prompt: prompt, Options: opts})
		return err
	})
	return resp, err
}

// Answer answers question about img; opts may be nil.
func (c *Client) Answer(ctx context.Context, img Image, question string, opts *pb.GenerationOptions) (*pb.AnswerResponse, error) {
	var resp *pb.AnswerResponse
	err := c.do(ctx, []Image{img}, func(ctx context.Context, wire func(Image) *pb.Image) (err error) {
		resp, err = c.rpc.Answer(ctx, &pb.AnswerRequest{Model: c.o.model, Image: wire(img), Question: question, Options: opts})
		return err
	})
	return resp, err
}

// Match scores texts against img, one score per text in order.
func (c *Client) Match(ctx context.Context, img Image, texts ...string) (*pb.MatchResponse, error) {
	var resp *pb.MatchResponse
	err := c.do(ctx, []Image{img}, func(ctx context.Context, wire func(Image) *pb.Image) (err error) {
		resp, err = c.rpc.Match(ctx, &pb.MatchRequest{Model: c.o.model, Image: wire(img), Texts: texts})
		return err
	})
	return resp, err
}

// Embed returns L2-normalised embeddings of images and texts (either may
// be empty, not both).
func (c *Client) Embed(ctx context.Context, images []Image, texts []string) (*pb.EmbedResponse, error) {
	var resp *pb.EmbedResponse
	err := c.do(ctx, images, func(ctx context.Context, wire func(Image) *pb.Image) (err error) {
		req := &pb.EmbedRequest{Model: c.o.model, Texts: texts}
		for _, im := range images {
			req.Images = append(req.Images, wire(im))
		}
		resp, err = c.rpc.Embed(ctx, req)
		return err
	})
	return resp, err
}

// do runs call with retries and image-reference handling. call builds its
// request with wire, which turns an Image into its wire form (a SHA-256
// reference when the image was sent before on this model).
func (c *Client) do(ctx context.Context, images []Image, call func(ctx context.Context, wire func(Image) *pb.Image) error) error {
	for _, im := range images {
		if im.err != nil {
			return im.err
		}
	}
	if c.o.timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.o.timeout)
			defer cancel()
		}
	}
	byRef := c.o.imageCache
	var err error
	for attempt := 1; ; attempt++ {
		err = call(ctx, func(im Image) *pb.Image { return c.wire(im, byRef) })
		if err == nil {
			if c.o.imageCache {
				for _, im := range images {
					c.sent.add(c.o.model + "/" + im.sha)
				}
			}
			return nil
		}
		st := status.Convert(err)
		if st.Code() == codes.NotFound && byRef && isImageNotFound(st) {
			// The server no longer holds an image we referred to: resend
			// the bytes at once (not counted as an attempt).
			for _, im := range images {
				c.sent.remove(c.o.model + "/" + im.sha)
			}
			byRef = false
			attempt--
			continue
		}
		delay, retry := c.retryDelay(st, attempt)
		if !retry || attempt >= c.o.maxAttempts {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// wire is im as sent: by reference when allowed and sent before.
func (c *Client) wire(im Image, byRef bool) *pb.Image {
	if byRef && c.sent.has(c.o.model+"/"+im.sha) {
		return &pb.Image{Source: &pb.Image_Sha256{Sha256: im.sha}}
	}
	return &pb.Image{Source: &pb.Image_Data{Data: im.data}}
}

func isImageNotFound(st *status.Status) bool {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.ResourceInfo); ok && ri.GetResourceType() == "image" {
			return true
		}
	}
	return false
}

// retryDelay says whether a failed attempt may be retried and after how
// long: UNAVAILABLE and RESOURCE_EXHAUSTED, exponential backoff with
// jitter, at least the server's RetryInfo delay.
func (c *Client) retryDelay(st *status.Status, attempt int) (time.Duration, bool) {
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted:
	default:
		return 0, false
	}
	d := c.o.baseBackoff << (attempt - 1)
	if d > c.o.maxBackoff || d <= 0 {
		d = c.o.maxBackoff
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok {
			if rd := ri.GetRetryDelay().AsDuration(); rd > d {
				d = rd
			}
		}
	}
	return d, true
}

// sentSet remembers which images were sent to which model, bounded
// (oldest forgotten first).
type sentSet struct {
	mu    sync.Mutex
	max   int
	items map[string]struct{}
	order []string
}

func newSentSet(max int) *sentSet { return &sentSet{max: max, items: map[string]struct{}{}} }

func (s *sentSet) has(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.items[k]
	return ok
}

func (s *sentSet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[k]; ok {
		return
	}
	s.items[k] = struct{}{}
	s.order = append(s.order, k)
	for len(s.order) > s.max {
		delete(s.items, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *sentSet) remove(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, k)
}
