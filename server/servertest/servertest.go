// Package servertest starts an in-process Glimpse server on a loopback
// port for tests of the packages that talk to one (the SDK, the CLI), as
// net/http/httptest does for HTTP.
package servertest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/glimpse-vlm/glimpse/server"
)

// Listen builds a server from cfg, loads its models (within a minute) and
// serves it on a free loopback port. The caller stops it (Stop).
func Listen(cfg server.Config) (*server.Server, string, error) {
	srv, err := server.New(cfg, nil)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Load(ctx, nil); err != nil {
		return nil, "", fmt.Errorf("loading the models: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	go func() { _ = srv.Serve(lis) }()
	return srv, lis.Addr().String(), nil
}

// Start is Listen for one test: it fails t on error and stops the server
// when t ends. It returns the server and its address.
func Start(t testing.TB, cfg server.Config) (*server.Server, string) {
	t.Helper()
	srv, addr, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv, addr
}
