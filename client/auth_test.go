package client

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSOptionErrors: files that cannot be used make New fail with a
// message naming the problem.
func TestTLSOptionErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opts TLSOptions
		want string
	}{
		{"missing CA", TLSOptions{CAFile: filepath.Join(dir, "missing.pem")}, "TLS CA"},
		{"CA without PEM", TLSOptions{CAFile: notPEM}, "holds no PEM certificate"},
		{"cert without key", TLSOptions{CertFile: notPEM}, "set both CertFile and KeyFile"},
		{"bad key pair", TLSOptions{CertFile: notPEM, KeyFile: notPEM}, "client certificate"},
	}
	for _, c := range cases {
		_, err := New("127.0.0.1:1", WithTLS(c.opts))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	c, err := New("127.0.0.1:1", WithTLS(TLSOptions{ServerName: "glimpse"}))
	if err != nil {
		t.Fatalf("system roots: %v", err)
	}
	c.Close()
}

func TestBearerMetadata(t *testing.T) {
	md, err := bearer("s3cret").GetRequestMetadata(context.Background())
	if err != nil || md["authorization"] != "Bearer s3cret" {
		t.Fatalf("metadata %v, %v", md, err)
	}
}
