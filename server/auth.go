package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Bearer-token authentication: every RPC carries
// `authorization: Bearer TOKEN` metadata; tokens come from
// Config.AuthTokenFile and Config.AuthTokens (GLIMPSE_AUTH_TOKENS). With
// no token configured auth is off. Health and reflection stay open unless
// Config.AuthProbes.

// validToken says why t cannot be a bearer token.
func validToken(t string) error {
	switch {
	case t == "":
		return errors.New("empty token")
	case len(t) > 4096:
		return errors.New("token longer than 4096 bytes")
	}
	for _, r := range t {
		if r <= ' ' || r == 0x7f || r > 0x7e {
			return errors.New("a token may only use printable ASCII without spaces")
		}
	}
	return nil
}

// readTokenFile reads one token a line; blank lines and # comments are
// skipped.
func readTokenFile(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := validToken(line); err != nil {
			return nil, fmt.Errorf("%s line %d: %v", path, n, err)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no token (one a line); remove --auth-token-file to run without auth", path)
	}
	return out, nil
}

// authenticator checks bearer tokens in constant time.
type authenticator struct {
	hashes     [][sha256.Size]byte // of the accepted tokens
	openProbes bool
}

// newAuthenticator returns nil when cfg configures no token (auth off).
func newAuthenticator(cfg *Config) (*authenticator, error) {
	tokens := append([]string(nil), cfg.AuthTokens...)
	if cfg.AuthTokenFile != "" {
		ts, err := readTokenFile(cfg.AuthTokenFile)
		if err != nil {
			return nil, &ConfigError{Flag: "auth-token-file", Msg: err.Error()}
		}
		tokens = append(tokens, ts...)
	}
	if len(tokens) == 0 {
		return nil, nil
	}
	a := &authenticator{openProbes: !cfg.AuthProbes}
	for _, t := range tokens {
		a.hashes = append(a.hashes, sha256.Sum256([]byte(t)))
	}
	return a, nil
}

// authKey is the context key of the caller's identity (a token hash
// prefix), used by the rate limiter.
type authKey struct{}

// identityOf returns the authenticated identity in ctx, "" without auth.
func identityOf(ctx context.Context) string {
	id, _ := ctx.Value(authKey{}).(string)
	return id
}

// isProbe says whether method belongs to health or reflection.
func isProbe(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(method, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(method, "/grpc.reflection.v1alpha.ServerReflection/")
}

// check authenticates ctx's metadata for method and returns ctx carrying
// the caller's identity.
func (a *authenticator) check(ctx context.Context, method string) (context.Context, error) {
	if a == nil || (a.openProbes && isProbe(method)) {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return ctx, status.Error(codes.Unauthenticated, "this server requires a token: send metadata `authorization: Bearer TOKEN`")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return ctx, status.Error(codes.Unauthenticated, "malformed authorization metadata: want `Bearer TOKEN`")
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := 0
	for i := range a.hashes {
		// Every token is compared (no early exit) in constant time.
		match |= subtle.ConstantTimeCompare(h[:], a.hashes[i][:])
	}
	if match != 1 {
		return ctx, status.Error(codes.Unauthenticated, "invalid token")
	}
	return context.WithValue(ctx, authKey{}, "token:"+hex.EncodeToString(h[:6])), nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := s.auth.check(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.auth.check(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

// ctxStream is a ServerStream with a replaced context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }
