package server

import (
	"context"
	"math"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// rateLimiter is a token bucket per client: per auth identity when auth is
// on, per client IP otherwise. A request finding its bucket empty gets
// RESOURCE_EXHAUSTED with a RetryInfo saying when a token is back. Health
// and reflection are not limited.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory; full buckets are dropped first.
const maxBuckets = 100_000

func newRateLimiter(rate float64, burst int) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	return &rateLimiter{rate: rate, burst: float64(burst), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes a token from key's bucket; when empty it returns how long
// until one is back.
func (l *rateLimiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.gc(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// gc drops the buckets that have refilled (they hold no state worth
// keeping); if none has, it drops them all.
func (l *rateLimiter) gc(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// clientKey is the rate-limit key of ctx's caller.
func clientKey(ctx context.Context) string {
	if id := identityOf(ctx); id != "" {
		return id
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err != nil {
			host = p.Addr.String()
		}
		return "ip:" + host
	}
	return "unknown"
}

func (s *Server) limitRate(ctx context.Context, method string) error {
	if s.rate == nil || isProbe(method) {
		return nil
	}
	ok, wait := s.rate.allow(clientKey(ctx))
	if ok {
		return nil
	}
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return resourceExhausted(wait, "rate limit: this client may send %g requests per second (burst %g); retry after %v",
		s.rate.rate, s.rate.burst, wait.Round(time.Millisecond))
}

func (s *Server) rateUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.limitRate(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) rateStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.limitRate(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
