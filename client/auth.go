package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// WithToken sends `authorization: Bearer token` with every call, for a
// server started with --auth-token-file or GLIMPSE_AUTH_TOKENS. Over a
// connection without TLS the token travels in clear text: use it with
// WithTLS except on loopback or inside a trusted network.
func WithToken(token string) Option {
	return func(o *options) {
		o.dial = append(o.dial, grpc.WithPerRPCCredentials(bearer(token)))
	}
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// TLSOptions configure WithTLS. All fields are optional.
type TLSOptions struct {
	// CAFile is a PEM bundle of the CAs that may sign the server's
	// certificate (default: the system roots).
	CAFile string
	// CertFile and KeyFile are the client certificate for a server that
	// requires mutual TLS (--client-ca).
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server's certificate
	// (default: the host of the target).
	ServerName string
}

// WithTLS connects over TLS (and presents a client certificate when
// CertFile and KeyFile are set). Files that cannot be read make New fail.
func WithTLS(t TLSOptions) Option {
	return func(o *options) {
		tc, err := t.config()
		if err != nil {
			o.err = err
			return
		}
		o.creds = credentials.NewTLS(tc)
	}
}

// WithTLSConfig connects over TLS with a ready tls.Config.
func WithTLSConfig(tc *tls.Config) Option {
	return func(o *options) { o.creds = credentials.NewTLS(tc) }
}

func (t TLSOptions) config() (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("glimpse client: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("glimpse client: TLS CA: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("glimpse client: TLS: set both CertFile and KeyFile for a client certificate")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("glimpse client: TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
