package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/server"
	"github.com/glimpse-vlm/glimpse/server/servertest"
)

// TestHealth: glimpse health exits 0 with SERVING for the server, a served
// model and the API service, and 1 for an unknown model or no server.
func TestHealth(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Models = []server.ModelSpec{{Name: "blip-caption", Dir: filepath.Join(e2eRoot, "blip-caption")}}
	addr := serveForTest(t, cfg)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"server", []string{"--addr", addr}, 0, "server: SERVING", ""},
		{"model", []string{"--addr", addr, "--model", "blip-caption"}, 0, "model/blip-caption: SERVING", ""},
		{"service", []string{"--addr", addr, "--service", server.ServiceName}, 0, server.ServiceName + ": SERVING", ""},
		{"unknown model", []string{"--addr", addr, "--model", "nope"}, 1, "", "NotFound"},
		{"no server", []string{"--addr", deadAddr, "--timeout", "2s"}, 1, "", "Unavailable"},
		{"extra argument", []string{"--addr", addr, "x"}, 2, "", "unexpected arguments"},
	}
	for _, c := range cases {
		out, errOut, code := runArgs(t, nil, append([]string{"health"}, c.args...)...)
		if code != c.wantCode {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", c.name, code, c.wantCode, out, errOut)
			continue
		}
		if !strings.Contains(out, c.wantOut) || !strings.Contains(errOut, c.wantErr) {
			t.Errorf("%s: stdout %q (want %q), stderr %q (want %q)", c.name, out, c.wantOut, errOut, c.wantErr)
		}
	}
}

// serveForTest loads cfg's models into a server listening on a free
// loopback port, stopped when the test ends, and returns its address.
func serveForTest(t *testing.T, cfg server.Config) string {
	t.Helper()
	_, addr := servertest.Start(t, cfg)
	return addr
}
