package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// tlsOption returns the grpc.Creds option for cfg's TLS settings, nil when
// TLS is off. With ClientCA set, clients must present a certificate that
// chains to it (mutual TLS).
func tlsOption(cfg *Config) (grpc.ServerOption, error) {
	if cfg.TLSCert == "" {
		return nil, nil
	}
	tc, err := serverTLSConfig(cfg.TLSCert, cfg.TLSKey, cfg.ClientCA)
	if err != nil {
		return nil, err
	}
	return grpc.Creds(credentials.NewTLS(tc)), nil
}

func serverTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, &ConfigError{Flag: "tls-cert", Msg: fmt.Sprintf("loading %s and %s: %v", certFile, keyFile, err)}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, &ConfigError{Flag: "client-ca", Msg: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Flag: "client-ca", Msg: caFile + " holds no PEM certificate"}
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
