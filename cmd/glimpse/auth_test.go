package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glimpse-vlm/glimpse/server"
)

// TestClientAuthFlags: the task commands reach a server with auth through
// GLIMPSE_TOKEN or --token-file, and say Unauthenticated without.
func TestClientAuthFlags(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.AuthTokens = []string{"cli-secret"}
	cfg.Models = []server.ModelSpec{{Name: "blip-caption", Dir: filepath.Join(e2eRoot, "blip-caption")}}
	addr := serveForTest(t, cfg)
	img := filepath.Join(e2eRoot, "blip-caption", "cat_chelsea.jpg")
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte("cli-secret\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		env      map[string]string
		flags    []string
		wantCode int
		wantErr  string
	}{
		{"no token", nil, nil, 1, "Unauthenticated"},
		{"wrong token", map[string]string{"GLIMPSE_TOKEN": "guess"}, nil, 1, "invalid token"},
		{"env token", map[string]string{"GLIMPSE_TOKEN": "cli-secret"}, nil, 0, ""},
		{"token file", nil, []string{"--token-file", good}, 0, ""},
		{"missing token file", nil, []string{"--token-file", filepath.Join(dir, "nope")}, 2, "--token-file"},
		{"empty token file", nil, []string{"--token-file", empty}, 2, "first line is empty"},
		{"TLS to a plain server", map[string]string{"GLIMPSE_TOKEN": "cli-secret"}, []string{"--tls"}, 1, "Unavailable"},
		{"unreadable CA", nil, []string{"--tls-ca", filepath.Join(dir, "nope.pem")}, 1, "TLS CA"},
	}
	for _, c := range cases {
		args := append([]string{"caption", "--addr", addr, "--max-new-tokens", "3", "--timeout", "20s"}, c.flags...)
		out, errOut, code := runArgs(t, c.env, append(args, img)...)
		if code != c.wantCode {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", c.name, code, c.wantCode, out, errOut)
			continue
		}
		if c.wantErr != "" && !strings.Contains(errOut, c.wantErr) {
			t.Errorf("%s: stderr %q lacks %q", c.name, errOut, c.wantErr)
		}
		if code == 0 && strings.TrimSpace(out) == "" {
			t.Errorf("%s: no caption printed", c.name)
		}
	}
}
