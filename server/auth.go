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
	"slices"
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

// tokenGrant is one accepted token and the models it may use (nil: all).
type tokenGrant struct {
	token  string
	models map[string]bool
}

// readTokenFile reads one token a line, optionally followed by the
// comma-separated models it may use ("TOKEN blip,clip"; without a list,
// every model). Blank lines and # comments are skipped.
func readTokenFile(path string) ([]tokenGrant, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []tokenGrant
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) > 2 {
			return nil, fmt.Errorf("%s line %d: want TOKEN or TOKEN MODEL,MODEL (a token has no spaces)", path, n)
		}
		if err := validToken(fields[0]); err != nil {
			return nil, fmt.Errorf("%s line %d: %v", path, n, err)
		}
		g := tokenGrant{token: fields[0]}
		if len(fields) == 2 && fields[1] != "*" {
			g.models = map[string]bool{}
			for _, m := range strings.Split(fields[1], ",") {
				if err := validModelName(m); err != nil {
					return nil, fmt.Errorf("%s line %d: %v", path, n, err)
				}
				g.models[m] = true
			}
		}
		out = append(out, g)
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
	models     []map[string]bool   // per token: the models it may use, nil = all
	openProbes bool
}

// newAuthenticator returns nil when cfg configures no token (auth off).
func newAuthenticator(cfg *Config) (*authenticator, error) {
	var grants []tokenGrant
	for _, t := range cfg.AuthTokens {
		grants = append(grants, tokenGrant{token: t})
	}
	if cfg.AuthTokenFile != "" {
		gs, err := readTokenFile(cfg.AuthTokenFile)
		if err != nil {
			return nil, &ConfigError{Flag: "auth-token-file", Msg: err.Error()}
		}
		grants = append(grants, gs...)
	}
	if len(grants) == 0 {
		return nil, nil
	}
	a := &authenticator{openProbes: !cfg.AuthProbes}
	for _, g := range grants {
		a.hashes = append(a.hashes, sha256.Sum256([]byte(g.token)))
		a.models = append(a.models, g.models)
	}
	return a, nil
}

// authKey is the context key of the caller's identity.
type authKey struct{}

// caller is an authenticated client: id (a token-hash prefix, used by the
// rate limiter) and the models it may use (nil: all).
type caller struct {
	id     string
	models map[string]bool
}

// identityOf returns the authenticated identity in ctx, "" without auth.
func identityOf(ctx context.Context) string {
	c, _ := ctx.Value(authKey{}).(*caller)
	if c == nil {
		return ""
	}
	return c.id
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
	found := -1
	for i := range a.hashes {
		// Every token is compared (no early exit), each in constant time.
		if subtle.ConstantTimeCompare(h[:], a.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return ctx, status.Error(codes.Unauthenticated, "invalid token")
	}
	return context.WithValue(ctx, authKey{}, &caller{id: "token:" + hex.EncodeToString(h[:6]), models: a.models[found]}), nil
}

// modelRequest is every request that names a model.
type modelRequest interface{ GetModel() string }

// permit refuses with PERMISSION_DENIED a request for a model its token
// may not use (the default model when the request names none).
func (s *Server) permit(ctx context.Context, req any) error {
	c, _ := ctx.Value(authKey{}).(*caller)
	if c == nil || c.models == nil {
		return nil
	}
	mr, ok := req.(modelRequest)
	if !ok {
		return nil
	}
	name := mr.GetModel()
	if name == "" {
		name = s.reg.defaultName()
	}
	if c.models[name] {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "this token may not use model %q (it may use: %s)", name, strings.Join(sortedKeys(c.models), ", "))
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := s.auth.check(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if err := s.permit(ctx, req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.auth.check(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &permitStream{ctxStream: ctxStream{ServerStream: ss, ctx: ctx}, s: s})
}

// permitStream checks the model of each received request.
type permitStream struct {
	ctxStream
	s *Server
}

func (p *permitStream) RecvMsg(m any) error {
	if err := p.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return p.s.permit(p.ctx, m)
}

// ctxStream is a ServerStream with a replaced context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }
