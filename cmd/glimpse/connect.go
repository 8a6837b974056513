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
	// Connection security (flags --token-file, --tls, --tls-ca,
	// --tls-cert, --tls-key; GLIMPSE_TOKEN holds a token).
	tokenFile       string
	token           string
	tls             bool
	tlsCA           string
	tlsCert, tlsKey string
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
	fs.StringVar(&t.tokenFile, "token-file", "", "file whose first line is the bearer token for a server with auth (or set GLIMPSE_TOKEN)")
	fs.BoolVar(&t.tls, "tls", false, "connect over TLS (implied by --tls-ca or --tls-cert)")
	fs.StringVar(&t.tlsCA, "tls-ca", "", "PEM CA bundle that signs the server's certificate (default: the system roots)")
	fs.StringVar(&t.tlsCert, "tls-cert", "", "client certificate (PEM) for a server requiring mutual TLS")
	fs.StringVar(&t.tlsKey, "tls-key", "", "client private key (PEM) for --tls-cert")
	t.token, _ = e.getenv("GLIMPSE_TOKEN")
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
		opts, err := t.securityOptions()
		if err != nil {
			return nil, nil, err
		}
		c, err := client.New(addr, append(opts, client.WithModel(t.model))...)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}
	return inProcess(ctx, []server.ModelSpec{{Name: "local", Dir: t.model}}, true)
}

// securityOptions are the SDK options of the token and TLS flags.
func (t *target) securityOptions() ([]client.Option, error) {
	var opts []client.Option
	token := strings.TrimSpace(t.token)
	if t.tokenFile != "" {
		raw, err := os.ReadFile(t.tokenFile)
		if err != nil {
			return nil, usagef("--token-file: %v", err)
		}
		first, _, _ := strings.Cut(string(raw), "\n")
		if token = strings.TrimSpace(first); token == "" {
			return nil, usagef("--token-file %s: the first line is empty (want the token)", t.tokenFile)
		}
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	if t.tls || t.tlsCA != "" || t.tlsCert != "" || t.tlsKey != "" {
		opts = append(opts, client.WithTLS(client.TLSOptions{CAFile: t.tlsCA, CertFile: t.tlsCert, KeyFile: t.tlsKey}))
	}
	return opts, nil
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
