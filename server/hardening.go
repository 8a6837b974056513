package server

import (
	"flag"

	"fmt"
	"google.golang.org/grpc"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// This file holds the configuration of the production-hardening features
// (auth, TLS, request limits, rate limit, metrics, pprof): flags, config
// file keys and validation.

// applyHardeningFile copies the keys present in f into c; file paths are
// relative to the config file.
func (c *Config) applyHardeningFile(path string, f *fileConfig) error {
	rel := func(p string) string {
		if p != "" && !filepath.IsAbs(p) {
			return filepath.Join(filepath.Dir(path), p)
		}
		return p
	}
	for _, s := range []struct {
		dst *string
		v   *string
	}{{&c.AuthTokenFile, f.AuthTokenFile}, {&c.TLSCert, f.TLSCert}, {&c.TLSKey, f.TLSKey}, {&c.ClientCA, f.ClientCA}} {
		if s.v != nil {
			*s.dst = rel(*s.v)
		}
	}
	if f.MetricsAddr != nil {
		c.MetricsAddr = *f.MetricsAddr
	}
	c.AuthTokens = append(c.AuthTokens, f.AuthTokens...)
	if f.AuthProbes != nil {
		c.AuthProbes = *f.AuthProbes
	}
	if f.Pprof != nil {
		c.Pprof = *f.Pprof
	}
	if f.MaxPromptTokens != nil {
		c.MaxPromptTokens = *f.MaxPromptTokens
	}
	if f.MaxStreamsPerConn != nil {
		c.MaxStreamsPerConn = *f.MaxStreamsPerConn
	}
	if f.RateLimit != nil {
		c.RateLimit = *f.RateLimit
	}
	if f.RateBurst != nil {
		c.RateBurst = *f.RateBurst
	}
	return nil
}

// tokensFlag is a comma-separated token list.
type tokensFlag struct{ p *[]string }

func (t tokensFlag) String() string {
	if t.p == nil || len(*t.p) == 0 {
		return ""
	}
	return fmt.Sprintf("(%d tokens)", len(*t.p)) // never print the secrets
}

func (t tokensFlag) Set(s string) error {
	for _, tok := range strings.Split(s, ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			*t.p = append(*t.p, tok)
		}
	}
	return nil
}

type float64Flag struct{ p *float64 }

func (f float64Flag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*f.p, 'g', -1, 64)
}
func (f float64Flag) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	*f.p = v
	return nil
}

func (c *Config) bindHardeningFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.AuthTokenFile, "auth-token-file", c.AuthTokenFile, "file of accepted bearer tokens, one a line (enables auth)")
	fs.Var(tokensFlag{&c.AuthTokens}, "auth-tokens", "accepted bearer tokens, comma-separated (enables auth; prefer GLIMPSE_AUTH_TOKENS or --auth-token-file)")
	fs.BoolVar(&c.AuthProbes, "auth-probes", c.AuthProbes, "require a token for health and reflection too")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate (PEM); with --tls-key turns on TLS")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key (PEM)")
	fs.StringVar(&c.ClientCA, "client-ca", c.ClientCA, "CA bundle (PEM) client certificates must chain to (mutual TLS)")
	fs.IntVar(&c.MaxPromptTokens, "max-prompt-tokens", c.MaxPromptTokens, "most tokens in one prompt, question or text")
	fs.IntVar(&c.MaxStreamsPerConn, "max-streams-per-conn", c.MaxStreamsPerConn, "concurrent RPCs per client connection")
	fs.Var(float64Flag{&c.RateLimit}, "rate-limit", "requests per second per auth token (per client IP without auth); 0 = unlimited")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "requests a client may send at once above --rate-limit")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve Prometheus /metrics on this HOST:PORT (empty: off)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "also serve /debug/pprof/ on --metrics-addr")
}

func (c *Config) validateHardening() error {
	bad := func(flag, format string, a ...any) error {
		return &ConfigError{Flag: flag, Msg: fmt.Sprintf(format, a...)}
	}
	if c.AuthTokenFile != "" {
		if _, err := readTokenFile(c.AuthTokenFile); err != nil {
			return bad("auth-token-file", "%v", err)
		}
	}
	for i, t := range c.AuthTokens {
		if err := validToken(t); err != nil {
			return bad("auth-tokens", "token %d: %v", i+1, err)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return bad("tls-cert", "--tls-cert and --tls-key go together (got only one)")
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		return bad("client-ca", "mutual TLS needs the server's own certificate: set --tls-cert and --tls-key too")
	}
	for _, f := range []struct{ flag, path string }{{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}, {"client-ca", c.ClientCA}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return bad(f.flag, "%v", err)
		}
	}
	if c.MaxPromptTokens <= 0 {
		return bad("max-prompt-tokens", "must be > 0, got %d", c.MaxPromptTokens)
	}
	if c.MaxStreamsPerConn <= 0 {
		return bad("max-streams-per-conn", "must be > 0, got %d", c.MaxStreamsPerConn)
	}
	if c.RateLimit < 0 || c.RateLimit != c.RateLimit {
		return bad("rate-limit", "must be >= 0 requests per second (0 = unlimited), got %v", c.RateLimit)
	}
	if c.RateLimit > 0 && c.RateBurst <= 0 {
		return bad("rate-burst", "must be > 0 when --rate-limit is set, got %d", c.RateBurst)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return bad("metrics-addr", "%q is not HOST:PORT (e.g. 127.0.0.1:9090): %v", c.MetricsAddr, err)
		}
	}
	if c.Pprof && c.MetricsAddr == "" {
		return bad("pprof", "pprof is served on the metrics listener: set --metrics-addr too")
	}
	return nil
}

// hardening builds the authenticator, rate limiter and metrics, and
// returns the grpc options of TLS and the per-connection stream limit.
func (s *Server) hardening() ([]grpc.ServerOption, error) {
	var err error
	if s.auth, err = newAuthenticator(&s.cfg); err != nil {
		return nil, err
	}
	s.rate = newRateLimiter(s.cfg.RateLimit, s.cfg.RateBurst)
	s.metrics = newMetrics(s)
	opts := []grpc.ServerOption{grpc.MaxConcurrentStreams(uint32(s.cfg.MaxStreamsPerConn))}
	tlsOpt, err := tlsOption(&s.cfg)
	if err != nil {
		return nil, err
	}
	if tlsOpt != nil {
		opts = append(opts, tlsOpt)
	}
	return opts, nil
}
