package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"image/color"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/glimpse-vlm/glimpse/client"
	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// startNet serves the three fake models on a loopback TCP port.
func startNet(t *testing.T, cfg Config, log *slog.Logger) (*Server, string, *fakeModel) {
	t.Helper()
	srv, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	capm := newFake("capfam", fusion.TaskCaption)
	must(t, srv.AddModel("cap", fakeCaptioner{capm}))
	must(t, srv.AddModel("vqa", fakeVQA{newFake("vqafam", fusion.TaskAnswer)}))
	must(t, srv.AddModel("ret", fakeRetrieval{newFake("retfam", fusion.TaskMatch, fusion.TaskEmbed)}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String(), capm
}

func dialRaw(t *testing.T, addr string, opts ...grpc.DialOption) (pb.GlimpseServiceClient, healthpb.HealthClient) {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewGlimpseServiceClient(conn), healthpb.NewHealthClient(conn)
}

func withAuth(ctx context.Context, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

// TestAuth: tokens from a file and from GLIMPSE_AUTH_TOKENS; every unary
// and streaming RPC needs one; probes are open unless --auth-probes.
func TestAuth(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	must(t, os.WriteFile(file, []byte("# operators\nfile-token-1\n\n  file-token-2  \n"), 0o600))
	for _, probes := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth-probes=%v", probes), func(t *testing.T) {
			cfg := DefaultConfig()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			cfg.BindFlags(fs)
			env := map[string]string{"GLIMPSE_AUTH_TOKENS": "env-token-a, env-token-b", "GLIMPSE_AUTH_TOKEN_FILE": file}
			must(t, ApplyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
			cfg.AuthProbes = probes
			_, addr, _ := startNet(t, cfg, nil)
			cli, hc := dialRaw(t, addr)
			ctx := testCtx(t)
			cases := []struct {
				name, header string
				want         codes.Code
			}{
				{"none", "", codes.Unauthenticated},
				{"wrong token", "Bearer nope", codes.Unauthenticated},
				{"basic scheme", "Basic file-token-1", codes.Unauthenticated},
				{"no token", "Bearer ", codes.Unauthenticated},
				{"prefix of a token", "Bearer file-token", codes.Unauthenticated},
				{"file token", "Bearer file-token-1", codes.OK},
				{"second file token", "bearer file-token-2", codes.OK},
				{"env token", "Bearer env-token-b", codes.OK},
			}
			for _, c := range cases {
				cctx := ctx
				if c.header != "" {
					cctx = withAuth(ctx, c.header)
				}
				_, err := cli.Caption(cctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red)})
				if got := status.Code(err); got != c.want {
					t.Errorf("unary %s: %v, want %v", c.name, err, c.want)
				}
				stream, err := cli.Generate(cctx, &pb.GenerateRequest{Model: "cap", Parts: []*pb.PromptPart{imgPart(imgData(red))}})
				if err == nil {
					for {
						if _, err = stream.Recv(); err != nil {
							break
						}
					}
					if err == io.EOF {
						err = nil
					}
				}
				if got := status.Code(err); got != c.want {
					t.Errorf("stream %s: %v, want %v", c.name, err, c.want)
				}
			}
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			want := codes.OK
			if probes {
				want = codes.Unauthenticated
			}
			if status.Code(err) != want {
				t.Errorf("health without a token: %v, want %v", err, want)
			}
			// The SDK's WithToken.
			c, err := client.New(addr, client.WithToken("env-token-a"), client.WithRetry(1, 0, 0))
			must(t, err)
			defer c.Close()
			if _, err := c.Caption(ctx, client.ImageBytes(red), "", nil); err != nil {
				t.Errorf("SDK with a token: %v", err)
			}
			bad, err := client.New(addr, client.WithToken("forged"), client.WithRetry(1, 0, 0))
			must(t, err)
			defer bad.Close()
			if _, err := bad.Caption(ctx, client.ImageBytes(red), "", nil); status.Code(err) != codes.Unauthenticated {
				t.Errorf("SDK with a forged token: %v, want Unauthenticated", err)
			}
		})
	}
}

// TestAuthModelRights: a token-file line "TOKEN MODEL,MODEL" limits the
// token to those models (PERMISSION_DENIED elsewhere); a bare token may use
// every model.
func TestAuthModelRights(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	must(t, os.WriteFile(file, []byte("captions-only cap\nretrieval ret,vqa\nroot *\n"), 0o600))
	cfg := DefaultConfig()
	cfg.AuthTokenFile = file
	_, addr, _ := startNet(t, cfg, nil) // default model: cap
	cli, _ := dialRaw(t, addr)
	ctx := testCtx(t)
	gen := func(ctx context.Context, model string) error {
		s, err := cli.Generate(ctx, &pb.GenerateRequest{Model: model, Parts: []*pb.PromptPart{imgPart(imgData(red))}})
		for err == nil {
			_, err = s.Recv()
		}
		if err == io.EOF {
			return nil
		}
		return err
	}
	cases := []struct {
		token, model string
		call         string
		want         codes.Code
	}{
		{"captions-only", "cap", "caption", codes.OK},
		{"captions-only", "", "caption", codes.OK}, // the default model
		{"captions-only", "cap", "generate", codes.OK},
		{"captions-only", "vqa", "answer", codes.PermissionDenied},
		{"captions-only", "ret", "match", codes.PermissionDenied},
		{"retrieval", "ret", "match", codes.OK},
		{"retrieval", "", "caption", codes.PermissionDenied},
		{"retrieval", "cap", "generate", codes.PermissionDenied},
		{"root", "vqa", "answer", codes.OK},
		{"root", "cap", "generate", codes.OK},
	}
	for _, c := range cases {
		actx := withAuth(ctx, "Bearer "+c.token)
		var err error
		switch c.call {
		case "caption":
			_, err = cli.Caption(actx, &pb.CaptionRequest{Model: c.model, Image: imgData(red)})
		case "answer":
			_, err = cli.Answer(actx, &pb.AnswerRequest{Model: c.model, Image: imgData(red), Question: "what?"})
		case "match":
			_, err = cli.Match(actx, &pb.MatchRequest{Model: c.model, Image: imgData(red), Texts: []string{"a"}})
		case "generate":
			err = gen(actx, c.model)
		}
		if status.Code(err) != c.want {
			t.Errorf("%s %s on %q: %v, want %v", c.token, c.call, c.model, err, c.want)
		}
	}
	// ListModels names no model: any valid token may list.
	if _, err := cli.ListModels(withAuth(ctx, "Bearer retrieval"), &pb.ListModelsRequest{}); err != nil {
		t.Errorf("ListModels: %v", err)
	}
}

// certs is a CA with a server and a client certificate, written as PEM.
type certs struct{ ca, serverCert, serverKey, clientCert, clientKey, otherCA string }

func writeCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	serial := int64(1)
	mkCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := newKey()
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		must(t, err)
		c, err := x509.ParseCertificate(der)
		must(t, err)
		return c, k, der
	}
	ca, caKey, caDER := mkCA("glimpse test CA")
	_, _, otherDER := mkCA("another CA")
	leaf := func(cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, []byte) {
		k := newKey()
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		must(t, err)
		kder, err := x509.MarshalECPrivateKey(k)
		must(t, err)
		return der, kder
	}
	sDER, sKey := leaf("glimpse server", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	cDER, cKey := leaf("glimpse client", x509.ExtKeyUsageClientAuth, nil)
	return certs{
		ca: write("ca.pem", "CERTIFICATE", caDER), otherCA: write("other.pem", "CERTIFICATE", otherDER),
		serverCert: write("server.pem", "CERTIFICATE", sDER), serverKey: write("server.key", "EC PRIVATE KEY", sKey),
		clientCert: write("client.pem", "CERTIFICATE", cDER), clientKey: write("client.key", "EC PRIVATE KEY", cKey),
	}
}

// TestTLS: TLS and mutual TLS with generated certificates, through the raw
// API and the SDK's WithTLS.
func TestTLS(t *testing.T) {
	cs := writeCerts(t)
	ctx := testCtx(t)
	call := func(addr string, opts client.TLSOptions, plain bool) error {
		var o []client.Option
		if !plain {
			o = append(o, client.WithTLS(opts))
		}
		c, err := client.New(addr, append(o, client.WithRetry(1, 0, 0))...)
		if err != nil {
			return err
		}
		defer c.Close()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = c.Caption(cctx, client.ImageBytes(red), "", nil)
		return err
	}
	t.Run("tls", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.TLSCert, cfg.TLSKey = cs.serverCert, cs.serverKey
		_, addr, _ := startNet(t, cfg, nil)
		if err := call(addr, client.TLSOptions{CAFile: cs.ca}, false); err != nil {
			t.Errorf("TLS client: %v", err)
		}
		if err := call(addr, client.TLSOptions{}, true); status.Code(err) != codes.Unavailable {
			t.Errorf("plain-text client on a TLS server: %v, want Unavailable", err)
		}
		if err := call(addr, client.TLSOptions{CAFile: cs.otherCA}, false); status.Code(err) != codes.Unavailable {
			t.Errorf("client trusting another CA: %v, want Unavailable", err)
		}
	})
	t.Run("mtls", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.TLSCert, cfg.TLSKey, cfg.ClientCA = cs.serverCert, cs.serverKey, cs.ca
		_, addr, _ := startNet(t, cfg, nil)
		if err := call(addr, client.TLSOptions{CAFile: cs.ca, CertFile: cs.clientCert, KeyFile: cs.clientKey}, false); err != nil {
			t.Errorf("client with a certificate: %v", err)
		}
		if err := call(addr, client.TLSOptions{CAFile: cs.ca}, false); err == nil {
			t.Error("client without a certificate was let in")
		}
		// Raw gRPC with a hand-made tls.Config also works.
		pool := x509.NewCertPool()
		raw, err := os.ReadFile(cs.ca)
		must(t, err)
		pool.AppendCertsFromPEM(raw)
		cert, err := tls.LoadX509KeyPair(cs.clientCert, cs.clientKey)
		must(t, err)
		cli, _ := dialRaw(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})))
		if _, err := cli.ListModels(ctx, &pb.ListModelsRequest{}); err != nil {
			t.Errorf("raw mTLS: %v", err)
		}
	})
	t.Run("config errors", func(t *testing.T) {
		for _, c := range []struct {
			flag string
			mut  func(*Config)
		}{
			{"tls-cert", func(c *Config) { c.TLSCert = cs.serverCert }},
			{"client-ca", func(c *Config) { c.ClientCA = cs.ca }},
			{"tls-key", func(c *Config) { c.TLSCert, c.TLSKey = cs.serverCert, filepath.Join(t.TempDir(), "missing.key") }},
			{"tls-cert", func(c *Config) { c.TLSCert, c.TLSKey = cs.serverCert, cs.clientKey }}, // key of another cert
		} {
			cfg := DefaultConfig()
			c.mut(&cfg)
			_, err := New(cfg, nil)
			ce, ok := err.(*ConfigError)
			if !ok || ce.Flag != c.flag {
				t.Errorf("%s: %v, want a ConfigError for --%s", c.flag, err, c.flag)
			}
		}
	})
}

// TestRateLimit: a token bucket per token (per IP without auth).
func TestRateLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateLimit, cfg.RateBurst = 0.5, 2 // a token every 2 s: none comes back during the test
	cfg.AuthTokens = []string{"alice", "bob"}
	_, addr, _ := startNet(t, cfg, nil)
	cli, hc := dialRaw(t, addr)
	ctx := testCtx(t)
	alice, bob := withAuth(ctx, "Bearer alice"), withAuth(ctx, "Bearer bob")
	for i := 0; i < 2; i++ {
		if _, err := cli.ListModels(alice, &pb.ListModelsRequest{}); err != nil {
			t.Fatalf("alice call %d within the burst: %v", i, err)
		}
	}
	_, err := cli.Caption(alice, &pb.CaptionRequest{Model: "cap", Image: imgData(red)})
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("alice over the limit: %v, want ResourceExhausted", err)
	}
	var retry time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri.GetRetryDelay().AsDuration()
		}
	}
	if retry <= time.Second || retry > 2*time.Second {
		t.Errorf("RetryInfo %v, want about 2 s (one token at 0.5/s)", retry)
	}
	if _, err := cli.ListModels(bob, &pb.ListModelsRequest{}); err != nil {
		t.Errorf("bob has his own bucket: %v", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health is not rate limited: %v", err)
		}
	}
}

func TestRateLimiterRefill(t *testing.T) {
	l := newRateLimiter(10, 3)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	got := ""
	for i := 0; i < 5; i++ {
		ok, _ := l.allow("k")
		got += strconv.FormatBool(ok)[:1]
	}
	if got != "tttff" {
		t.Fatalf("burst of 3: %s, want tttff", got)
	}
	_, wait := l.allow("k")
	if wait != 100*time.Millisecond {
		t.Errorf("wait %v, want 100ms at 10/s", wait)
	}
	now = now.Add(250 * time.Millisecond) // 2.5 tokens
	got = ""
	for i := 0; i < 3; i++ {
		ok, _ := l.allow("k")
		got += strconv.FormatBool(ok)[:1]
	}
	if got != "ttf" {
		t.Errorf("after 250 ms: %s, want ttf", got)
	}
	if ok, _ := l.allow("other"); !ok {
		t.Error("another key shares the bucket")
	}
	if newRateLimiter(0, 5) != nil {
		t.Error("rate 0 must disable the limiter")
	}
}

// TestRequestLimits: every limit flag refuses what exceeds it with the
// field named.
func TestRequestLimits(t *testing.T) {
	h := start(t, func(c *Config) {
		c.MaxPromptTokens = 3
		c.MaxImagesPerRequest = 2
		c.MaxImagePixels = 16
		c.MaxNewTokens = 4
		c.MaxMessageBytes = 4096
		c.MaxTexts = 2
	})
	ctx := testCtx(t)
	big := pngBytes(64, 64, color.RGBA{30, 200, 90, 255}) // 4096 pixels
	huge := make([]byte, 5000)
	cases := []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"prompt tokens", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "one two three four"})
			return err
		}, codes.InvalidArgument, "prompt"},
		{"prompt tokens in generate", func() error {
			s, err := h.cli.Generate(ctx, &pb.GenerateRequest{Model: "cap", Parts: []*pb.PromptPart{imgPart(imgData(red)), textPart("a b c d e")}})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.InvalidArgument, "parts"},
		{"texts tokens", func() error {
			_, err := h.cli.Match(ctx, &pb.MatchRequest{Model: "ret", Image: imgData(red), Texts: []string{"ok", "w x y z"}})
			return err
		}, codes.InvalidArgument, "texts[1]"},
		{"pixels", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(big)})
			return err
		}, codes.InvalidArgument, "image.data"},
		{"max_new_tokens cap", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Options: &pb.GenerationOptions{MaxNewTokens: 5}})
			return err
		}, codes.InvalidArgument, "options.max_new_tokens"},
		{"images per request", func() error {
			_, err := h.cli.Embed(ctx, &pb.EmbedRequest{Model: "ret", Images: []*pb.Image{imgData(red), imgData(red), imgData(blue)}})
			return err
		}, codes.InvalidArgument, "images"},
		{"texts per request", func() error {
			_, err := h.cli.Match(ctx, &pb.MatchRequest{Model: "ret", Image: imgData(red), Texts: []string{"a", "b", "c"}})
			return err
		}, codes.InvalidArgument, "texts"},
		{"message size", func() error {
			_, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(huge)})
			return err
		}, codes.ResourceExhausted, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.call(), c.code, c.field) })
	}
	// Within every limit it works.
	if _, err := h.cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "a b c", Options: &pb.GenerationOptions{MaxNewTokens: 4}}); err != nil {
		t.Fatal(err)
	}
}

// TestStreamsPerConnection: with --max-streams-per-conn 1 a second RPC
// on the same connection waits for the first; another connection is not
// held up.
func TestStreamsPerConnection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxStreamsPerConn = 1
	_, addr, capm := startNet(t, cfg, nil)
	cli, _ := dialRaw(t, addr)
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() {
		_, err := cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red), Prompt: "slow"})
		done <- err
	}()
	waitFor(t, func() bool { return capm.started.Load() == 1 })
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := cli.ListModels(short, &pb.ListModelsRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("second stream on a full connection: %v, want DeadlineExceeded (it waits)", err)
	}
	other, _ := dialRaw(t, addr)
	if _, err := other.ListModels(ctx, &pb.ListModelsRequest{}); err != nil {
		t.Errorf("another connection: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRequestIDAndPrivateLogs: every RPC gets a request id (the client's
// own when well-formed), returned in the header and on its log line; the
// debug log holds sizes, hashes and timings but no image bytes, prompts,
// texts or outputs.
func TestRequestIDAndPrivateLogs(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, addr, _ := startNet(t, DefaultConfig(), log)
	cli, _ := dialRaw(t, addr)
	ctx := testCtx(t)
	secretImg := pngBytes(7, 5, color.RGBA{30, 200, 90, 255})
	const prompt, text1, text2 = "zebraprompt", "quokkatext", "narwhaltext"

	var hdr metadata.MD
	cr, err := cli.Caption(metadata.AppendToOutgoingContext(ctx, RequestIDHeader, "my-req-42"),
		&pb.CaptionRequest{Model: "cap", Image: imgData(secretImg), Prompt: prompt}, grpc.Header(&hdr))
	must(t, err)
	if got := hdr.Get(RequestIDHeader); len(got) != 1 || got[0] != "my-req-42" {
		t.Errorf("request id header %v, want the client's my-req-42", got)
	}
	hdr = nil
	_, err = cli.Match(metadata.AppendToOutgoingContext(ctx, RequestIDHeader, "bad id with spaces"),
		&pb.MatchRequest{Model: "ret", Image: imgData(secretImg), Texts: []string{text1, text2}}, grpc.Header(&hdr))
	must(t, err)
	gen := hdr.Get(RequestIDHeader)
	if len(gen) != 1 || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(gen[0]) {
		t.Errorf("generated request id %v, want 24 hex digits", gen)
	}
	stream, err := cli.Generate(ctx, &pb.GenerateRequest{Model: "cap", Parts: []*pb.PromptPart{imgPart(imgData(secretImg)), textPart(prompt)}})
	must(t, err)
	var streamed strings.Builder
	for {
		r, err := stream.Recv()
		if err != nil {
			break
		}
		streamed.WriteString(r.GetPiece().GetText())
	}
	// A refused request logs no more.
	_, err = cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData([]byte("not an image " + prompt)), Prompt: prompt})
	wantCode(t, err, codes.InvalidArgument, "image.data")

	out := logs.String()
	forbidden := []string{prompt, text1, text2, cr.GetText(), strings.TrimSpace(streamed.String()),
		base64.StdEncoding.EncodeToString(secretImg), string(secretImg[8:24]), "not an image"}
	for _, f := range forbidden {
		if f != "" && strings.Contains(out, f) {
			t.Errorf("the log contains request or response content %q:\n%s", f, out)
		}
	}
	for _, want := range []string{`"request_id":"my-req-42"`, `"request_id":"` + gen[0] + `"`, `"image_sha256":"` + cr.GetImageSha256() + `"`,
		`"req_bytes":`, `"ms":`, `"method":"/glimpse.v1.GlimpseService/Generate"`, `"code":"InvalidArgument"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}

// scrape fetches /metrics without keeping connections alive.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(b)
}

// metricValue finds the sample of a metric line such as
// `glimpse_requests_total{code="OK",method="Caption"}`.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			must(t, err)
			return f
		}
	}
	t.Fatalf("no series %s in /metrics:\n%s", series, body)
	return 0
}

// TestMetrics scrapes /metrics on its own listener after a few requests.
func TestMetrics(t *testing.T) {
	for _, pprofOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("pprof=%v", pprofOn), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Models = []ModelSpec{{Name: "cap", Dir: "good"}, {Name: "broken", Dir: "bad"}}
			cfg.MetricsAddr, cfg.Pprof = "127.0.0.1:0", pprofOn
			capm := newFake("capfam", fusion.TaskCaption)
			srv, err := New(cfg, nil, WithLoader(func(dir string) (fusion.Model, error) {
				if dir == "bad" {
					return nil, fmt.Errorf("no config.json in %s", dir)
				}
				time.Sleep(20 * time.Millisecond)
				return fakeCaptioner{capm}, nil
			}))
			must(t, err)
			_ = srv.Load(testCtx(t), nil)
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			must(t, err)
			mlis, err := net.Listen("tcp", "127.0.0.1:0")
			must(t, err)
			go func() { _ = srv.Serve(lis) }()
			metricsDone := make(chan error, 1)
			go func() { metricsDone <- srv.ServeMetrics(mlis) }()
			t.Cleanup(func() {
				srv.Stop()
				if err := <-metricsDone; err != nil {
					t.Errorf("ServeMetrics: %v", err)
				}
			})
			cli, _ := dialRaw(t, lis.Addr().String())
			ctx := testCtx(t)
			for i := 0; i < 3; i++ {
				_, err := cli.Caption(ctx, &pb.CaptionRequest{Model: "cap", Image: imgData(red)})
				must(t, err)
			}
			_, err = cli.Caption(ctx, &pb.CaptionRequest{Model: "cap"})
			wantCode(t, err, codes.InvalidArgument, "image")
			s, err := cli.Generate(ctx, &pb.GenerateRequest{Model: "cap", Parts: []*pb.PromptPart{imgPart(imgData(blue))}})
			must(t, err)
			for err == nil {
				_, err = s.Recv()
			}
			base := "http://" + mlis.Addr().String()
			code, body := scrape(t, base+"/metrics")
			if code != 200 {
				t.Fatalf("/metrics: HTTP %d", code)
			}
			checks := []struct {
				series string
				want   float64
			}{
				{`glimpse_requests_total{code="OK",method="Caption"}`, 3},
				{`glimpse_requests_total{code="InvalidArgument",method="Caption"}`, 1},
				{`glimpse_requests_total{code="OK",method="Generate"}`, 1},
				{`glimpse_request_duration_seconds_count{method="Caption"}`, 4},
				{`glimpse_generated_tokens_total{model="cap"}`, 4 * 5}, // the fake makes 5 tokens
				{`glimpse_image_cache_hits_total`, 2},
				{`glimpse_image_cache_misses_total`, 2},
				{`glimpse_image_cache_entries`, 2},
				{`glimpse_queue_depth`, 0},
				{`glimpse_running_requests`, 0},
				{`glimpse_active_sequences`, 0},
				{`glimpse_generation_requests_in_flight`, 0},
				{`glimpse_engine_live_sequences{model="cap"}`, 0},
				{`glimpse_model_load_failures_total{model="broken"}`, 1},
			}
			for _, c := range checks {
				if got := metricValue(t, body, c.series); got != c.want {
					t.Errorf("%s = %v, want %v", c.series, got, c.want)
				}
			}
			if v := metricValue(t, body, `glimpse_model_load_seconds{model="cap"}`); v < 0.02 || v > 5 {
				t.Errorf("load time %v s, want ≥ 0.02", v)
			}
			if v := metricValue(t, body, `glimpse_image_cache_bytes`); v <= 0 {
				t.Errorf("cache bytes %v", v)
			}
			for _, name := range []string{"glimpse_process_resident_memory_bytes", "go_goroutines"} {
				if !strings.Contains(body, name) {
					t.Errorf("no %s", name)
				}
			}
			code, _ = scrape(t, base+"/debug/pprof/")
			if want := map[bool]int{false: 404, true: 200}[pprofOn]; code != want {
				t.Errorf("/debug/pprof/ with pprof=%v: HTTP %d, want %d", pprofOn, code, want)
			}
		})
	}
}

// TestHardeningConfig: the new settings from flags, environment and file,
// and their validation naming the flag.
func TestHardeningConfig(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	must(t, os.WriteFile(tokens, []byte("t1\n"), 0o600))
	yml := filepath.Join(dir, "g.yaml")
	must(t, os.WriteFile(yml, []byte("auth_token_file: tokens\nauth_tokens: [x1]\nauth_probes: true\nmax_prompt_tokens: 77\n"+
		"max_streams_per_conn: 9\nrate_limit: 2.5\nrate_burst: 4\nmetrics_addr: 127.0.0.1:9999\npprof: true\n"), 0o600))
	cfg := DefaultConfig()
	must(t, cfg.LoadFile(yml))
	if cfg.AuthTokenFile != tokens || len(cfg.AuthTokens) != 1 || !cfg.AuthProbes || cfg.MaxPromptTokens != 77 ||
		cfg.MaxStreamsPerConn != 9 || cfg.RateLimit != 2.5 || cfg.RateBurst != 4 || cfg.MetricsAddr != "127.0.0.1:9999" || !cfg.Pprof {
		t.Fatalf("from file: %+v", cfg)
	}
	must(t, cfg.Validate())
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.BindFlags(fs)
	must(t, fs.Parse([]string{"--rate-limit", "7", "--max-prompt-tokens", "5", "--auth-tokens", "a,b"}))
	if cfg.RateLimit != 7 || cfg.MaxPromptTokens != 5 || len(cfg.AuthTokens) != 3 {
		t.Fatalf("from flags: %+v", cfg)
	}
	if strings.Contains(fs.Lookup("auth-tokens").Value.String(), "a") {
		t.Error("the token flag prints its secrets")
	}
	empty := filepath.Join(dir, "empty")
	must(t, os.WriteFile(empty, []byte("# none\n"), 0o600))
	spaced := filepath.Join(dir, "spaced")
	must(t, os.WriteFile(spaced, []byte("tok bad/model\n"), 0o600))
	for _, c := range []struct {
		flag string
		mut  func(*Config)
	}{
		{"auth-token-file", func(c *Config) { c.AuthTokenFile = filepath.Join(dir, "missing") }},
		{"auth-token-file", func(c *Config) { c.AuthTokenFile = empty }},
		{"auth-token-file", func(c *Config) { c.AuthTokenFile = spaced }},
		{"auth-tokens", func(c *Config) { c.AuthTokens = []string{"has space"} }},
		{"max-prompt-tokens", func(c *Config) { c.MaxPromptTokens = 0 }},
		{"max-streams-per-conn", func(c *Config) { c.MaxStreamsPerConn = 0 }},
		{"rate-limit", func(c *Config) { c.RateLimit = -1 }},
		{"rate-burst", func(c *Config) { c.RateLimit, c.RateBurst = 1, 0 }},
		{"metrics-addr", func(c *Config) { c.MetricsAddr = "9090" }},
		{"pprof", func(c *Config) { c.Pprof = true }},
	} {
		cfg := DefaultConfig()
		c.mut(&cfg)
		err := cfg.Validate()
		ce, ok := err.(*ConfigError)
		if !ok || ce.Flag != c.flag {
			t.Errorf("want a ConfigError for --%s, got %v", c.flag, err)
		}
	}
}
