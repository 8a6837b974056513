package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/glimpse-vlm/glimpse/client"
	_ "github.com/glimpse-vlm/glimpse/fusion/families" // every model family
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
	"github.com/glimpse-vlm/glimpse/server"
)

// target is where a task command sends its request.
type target struct {
	addr        string
	model       string
	timeout     time.Duration
	defaultAddr string
}

func (t *target) defaultAddrOr() string {
	if t.defaultAddr != "" {
		return t.defaultAddr
	}
	return server.DefaultAddr
}

func (t *target) bind(fs *flag.FlagSet, e *env) {
	def := server.DefaultAddr
	if v, ok := e.getenv("GLIMPSE_ADDR"); ok && v != "" {
		def = v
	}
	fs.StringVar(&t.addr, "addr", "", "server address HOST:PORT, or several comma-separated (default "+def+" unless --model DIR is given)")
	fs.StringVar(&t.model, "model", "", "checkpoint folder to run in-process; with --addr, the served model's name (default: the server's default)")
	fs.DurationVar(&t.timeout, "timeout", 0, "give up after this long (e.g. 30s; default: no limit)")
	t.addr = "" // resolved in connect
	if def != server.DefaultAddr {
		t.defaultAddr = def
	}
}

// connect returns a client for the request: to a server with --addr (or
// the default address), or to the checkpoint folder --model DIR loaded
// in-process and served over an in-memory connection — the same server
// code, without a network or a separate process, so the results are those
// a server gives.
func (t *target) connect(ctx context.Context, e *env) (*client.Client, func(), error) {
	if t.addr == "" && t.model != "" && !isDir(t.model) {
		if strings.ContainsAny(t.model, `/\`) {
			return nil, nil, fmt.Errorf("--model %s: no such checkpoint folder", t.model)
		}
		// A bare name that is not a folder: a model of the default server.
		t.addr = t.defaultAddrOr()
	}
	if t.addr != "" || t.model == "" {
		addr := t.addr
		if addr == "" {
			addr = t.defaultAddrOr()
		}
		c, err := client.New(addr, client.WithModel(t.model))
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}
	return inProcess(ctx, []server.ModelSpec{{Name: "local", Dir: t.model}}, true)
}

// inProcess loads the folders and serves them over an in-memory listener.
// With strict, a folder that fails to load is an error; otherwise it is
// reported as not serving.
func inProcess(ctx context.Context, specs []server.ModelSpec, strict bool) (*client.Client, func(), error) {
	cfg := server.DefaultConfig()
	cfg.Models = specs
	cfg.Reflection = false
	cfg.MaxConcurrent = 1
	srv, err := server.New(cfg, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := srv.Load(ctx, nil); err != nil && strict {
		srv.Stop()
		return nil, nil, err
	}
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	c, err := client.New("passthrough:///in-process",
		client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })),
		client.WithModel(specs[0].Name), client.WithRetry(1, 0, 0))
	if err != nil {
		srv.Stop()
		return nil, nil, err
	}
	return c, func() { c.Close(); srv.Stop() }, nil
}

// describe renders an error for the terminal, with the server's field
// violations and hints.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)", st.Message(), st.Code())
	for _, d := range st.Details() {
		switch x := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range x.GetFieldViolations() {
				if !strings.Contains(st.Message(), v.GetDescription()) {
					fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
				}
			}
		case *errdetails.RetryInfo:
			fmt.Fprintf(&b, "\n  retry after %v", x.GetRetryDelay().AsDuration())
		}
	}
	if st.Code().String() == "Unavailable" {
		b.WriteString("\n  is a server running there? start one with `glimpse serve`, or run in-process with --model DIR")
	}
	return b.String()
}

// finishName is "eos", "length", "stop" or "cancelled".
func finishName(f pb.FinishReason) string {
	return strings.ToLower(strings.TrimPrefix(f.String(), "FINISH_REASON_"))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
