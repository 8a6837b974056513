package main

import (
	"context"
	"fmt"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/glimpse-vlm/glimpse/client"
	"github.com/glimpse-vlm/glimpse/server"
)

func init() {
	register(&verb{name: "health", summary: "check that a server (or one of its models) is serving; for exec probes", run: runHealth, usage: `Usage: glimpse health [--addr HOST:PORT] [--model NAME | --service NAME] [--tls ...] [--timeout 5s]

Asks a server's standard gRPC health service (grpc.health.v1) and exits 0
when it answers SERVING, 1 otherwise (NOT_SERVING, unknown model,
unreachable, or no answer within --timeout), printing the status.

Without --model it checks the whole server; --model NAME checks one served
model (service "model/NAME"), --service NAME any health service name (e.g.
glimpse.v1.GlimpseService, which is SERVING once every model has loaded).

Use it as a Kubernetes exec probe when the server serves TLS: the kubelet's
built-in gRPC probes cannot speak TLS, this command can (--tls, --tls-ca,
--tls-cert/--tls-key for mutual TLS; --token-file only matters with
--auth-probes on the server).

Examples:
  glimpse health
  glimpse health --addr 127.0.0.1:50051 --model blip-caption
  glimpse health --tls --tls-ca /etc/glimpse/tls/ca.crt --service glimpse.v1.GlimpseService
`})
}

func runHealth(e *env, args []string) error {
	fs := newFlags("health")
	var t target
	t.bind(fs, e)
	fs.Lookup("model").Usage = "the served model to check (default: the whole server)"
	service := fs.String("service", "", "the health service name to check (overrides --model)")
	pos, err := parse(fs, args, "")
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if t.timeout <= 0 {
		t.timeout = 5 * time.Second
	}
	name := *service
	if name == "" && t.model != "" {
		name = server.HealthName(t.model)
	}
	addr := t.addr
	if addr == "" {
		addr = t.defaultAddrOr()
	}
	opts, err := t.securityOptions()
	if err != nil {
		return err
	}
	c, err := client.New(addr, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{Service: name})
	if err != nil {
		return err
	}
	label := name
	if label == "" {
		label = "server"
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", label, resp.GetStatus())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return exitCode(exitFailed)
	}
	return nil
}
