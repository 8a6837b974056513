#!/usr/bin/env bash
# Regenerates the Go code for proto/glimpse/v1 with buf and local plugins.
# Needs only the Go module proxy: the plugins and buf are installed with go.
set -euo pipefail
cd "$(dirname "$0")"
GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"
command -v protoc-gen-go >/dev/null || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
command -v protoc-gen-go-grpc >/dev/null || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
BUF="go run github.com/bufbuild/buf/cmd/buf@v1.75.0"
$BUF lint
$BUF generate
echo "generated proto/glimpse/v1"
