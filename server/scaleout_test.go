package server

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/glimpse-vlm/glimpse/client"
)

// requestsServed sums glimpse_requests_total of one server.
func requestsServed(t *testing.T, srv *Server) float64 {
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	total := 0.0
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "glimpse_requests_total{") {
			total += metricValue(t, rec.Body.String(), line[:strings.LastIndexByte(line, ' ')])
		}
	}
	return total
}

// TestScaleOut: three servers on loopback, the SDK balancing round-robin
// over all three; one is killed under load. Every idempotent call is
// retried elsewhere and answered correctly: none is lost.
func TestScaleOut(t *testing.T) {
	var jobs []job
	for _, j := range loadJobs(t) {
		if j.kind == "caption" || j.kind == "answer" || j.kind == "match" {
			jobs = append(jobs, j)
		}
	}
	var srvs []*Server
	var addrs []string
	for i := 0; i < 3; i++ {
		s, a := startReal(t, nil)
		srvs, addrs = append(srvs, s), append(addrs, a)
	}
	c, err := client.New(strings.Join(addrs, ","), client.WithRetry(6, 20*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dur := 3 * time.Second
	if testing.Short() {
		dur = 2 * time.Second
	}
	var (
		stop      atomic.Bool
		calls     atomic.Int64
		wg        sync.WaitGroup
		mu        sync.Mutex
		failures  []string
		killed    atomic.Bool
		afterKill atomic.Int64
	)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				j := &jobs[i%len(jobs)]
				err := j.runSDK(ctx, c)
				calls.Add(1)
				if killed.Load() {
					afterKill.Add(1)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, j.name+": "+err.Error())
					mu.Unlock()
				}
			}
		}(w)
	}
	// Kill one once all three have served (at least dur/3 in).
	time.Sleep(dur / 3)
	var before []float64
	for wait := time.Now(); ; {
		before = []float64{requestsServed(t, srvs[0]), requestsServed(t, srvs[1]), requestsServed(t, srvs[2])}
		if slices.Min(before) > 0 || time.Since(wait) > 20*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	srvs[1].Stop() // killed: running calls cut off, connections closed
	killed.Store(true)
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	after := []float64{requestsServed(t, srvs[0]), requestsServed(t, srvs[2])}
	t.Logf("scale-out: %d calls (%d after the kill); per server before the kill %v, survivors at the end %v; failures %d",
		calls.Load(), afterKill.Load(), before, after, len(failures))
	for i, n := range before {
		if n == 0 {
			t.Errorf("server %d got no request before the kill: not balanced", i)
		}
	}
	if afterKill.Load() == 0 {
		t.Error("no call after the kill")
	}
	if len(failures) > 0 {
		t.Errorf("%d calls lost, e.g. %s", len(failures), failures[0])
	}
}

// runSDK sends j through the SDK (which retries) and checks the answer.
func (j *job) runSDK(ctx context.Context, c *client.Client) error {
	img := client.ImageBytes(j.image)
	var ids []int32
	switch j.kind {
	case "caption":
		r, err := c.Model(j.model).Caption(ctx, img, j.text, j.opts)
		if err != nil {
			return err
		}
		ids = r.GetTokenIds()
	case "answer":
		r, err := c.Model(j.model).Answer(ctx, img, j.text, j.opts)
		if err != nil {
			return err
		}
		ids = r.GetTokenIds()
	case "match":
		r, err := c.Model(j.model).Match(ctx, img, j.texts...)
		if err != nil {
			return err
		}
		for i, s := range r.GetScores() {
			if got := matchValue(s.ItmProbability, s.Cosine); absf(got-j.scores[i]) > 1e-4*max(1, absf(j.scores[i])) {
				return status.Errorf(codes.DataLoss, "score %d = %v, want %v", i, got, j.scores[i])
			}
		}
		if len(r.GetScores()) != len(j.scores) {
			return status.Errorf(codes.DataLoss, "%d scores, want %d", len(r.GetScores()), len(j.scores))
		}
		return nil
	}
	if !slices.Equal(ids, j.ids) {
		return status.Errorf(codes.DataLoss, "token ids %v, want %v", ids, j.ids)
	}
	return nil
}

func absf(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
