package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/glimpse-vlm/glimpse/internal/engine"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// metrics are the server's Prometheus metrics, on a registry of its own
// (several servers may live in one process). Every name starts glimpse_.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // method, code
	latency   *prometheus.HistogramVec // method
	inflight  *prometheus.GaugeVec     // method
	tokens    *prometheus.CounterVec   // model
	modelLoad *prometheus.GaugeVec     // model
	loadFails *prometheus.CounterVec   // model
	active    atomic.Int64             // generations in flight
}

// batchStatser is implemented by models that batch the decoding steps of
// concurrent requests (fusion/blip, fusion/vitgpt2).
type batchStatser interface {
	BatchStats() (steps, rows int64)
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "glimpse_requests_total", Help: "RPCs finished, by method and gRPC status code.",
	}, []string{"method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "glimpse_request_duration_seconds",
		Help:    "RPC latency from arrival to the last byte, by method.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"method"})
	m.inflight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "glimpse_requests_in_flight", Help: "RPCs being served (queued or running), by method.",
	}, []string{"method"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "glimpse_generated_tokens_total", Help: "Tokens generated (Caption, Answer, Generate), by model.",
	}, []string{"model"})
	m.modelLoad = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "glimpse_model_load_seconds", Help: "How long loading each model took.",
	}, []string{"model"})
	m.loadFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "glimpse_model_load_failures_total", Help: "Model folders that failed to load.",
	}, []string{"model"})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.requests, m.latency, m.inflight, m.tokens, m.modelLoad, m.loadFails,
		gauge("glimpse_queue_depth", "Requests waiting for a slot: the admission queue plus every model engine's queue.", func() float64 {
			_, w := s.adm.depth()
			for _, st := range s.engineStats() {
				w += st.Waiting
			}
			return float64(w)
		}),
		gauge("glimpse_running_requests", "Requests holding a slot (image encoding, matching or decoding).", func() float64 {
			r, _ := s.adm.depth()
			return float64(r)
		}),
		gauge("glimpse_active_sequences", "Sequences being generated (admitted by the model engines).", func() float64 {
			n := 0
			for _, st := range s.engineStats() {
				n += st.Live
			}
			return float64(n)
		}),
		gauge("glimpse_generation_requests_in_flight", "Caption, Answer and Generate RPCs in flight (queued or running).", func() float64 {
			return float64(m.active.Load())
		}),
		gauge("glimpse_image_cache_entries", "Encoded images held in the image-state cache.", func() float64 {
			n, _, _, _ := s.cache.stats()
			return float64(n)
		}),
		gauge("glimpse_image_cache_bytes", "Bytes held by the image-state cache.", func() float64 {
			_, b, _, _ := s.cache.stats()
			return float64(b)
		}),
		gauge("glimpse_image_cache_budget_bytes", "The image-state cache's budget (0 = off).", func() float64 {
			return float64(s.cfg.ImageCacheBytes)
		}),
		counter("glimpse_image_cache_hits_total", "Image-state cache hits.", func() float64 {
			_, _, h, _ := s.cache.stats()
			return float64(h)
		}),
		counter("glimpse_image_cache_misses_total", "Image-state cache misses.", func() float64 {
			_, _, _, mi := s.cache.stats()
			return float64(mi)
		}),
		&batchCollector{s: s},
		&engineCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "glimpse"}),
	)
	return m
}

// batchCollector reports the decoding steps of each batching model and
// the sequences they carried: rate(rows)/rate(steps) is the mean batch
// size.
type batchCollector struct{ s *Server }

var (
	stepsDesc = prometheus.NewDesc("glimpse_decode_steps_total", "Batched decoding steps run, by model.", []string{"model"}, nil)
	rowsDesc  = prometheus.NewDesc("glimpse_decode_batch_rows_total", "Sequences carried by the decoding steps (rows/steps = mean batch size), by model.", []string{"model"}, nil)
	batchDesc = prometheus.NewDesc("glimpse_decode_batch_size_mean", "Mean decoding batch size since start, by model.", []string{"model"}, nil)
)

func (c *batchCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stepsDesc
	ch <- rowsDesc
	ch <- batchDesc
}

func (c *batchCollector) Collect(ch chan<- prometheus.Metric) {
	for _, e := range c.s.reg.all() {
		st, m, _, _ := e.snapshot()
		bs, ok := m.(batchStatser)
		if st != pb.ModelState_MODEL_STATE_SERVING || !ok {
			continue
		}
		steps, rows := bs.BatchStats()
		ch <- prometheus.MustNewConstMetric(stepsDesc, prometheus.CounterValue, float64(steps), e.name)
		ch <- prometheus.MustNewConstMetric(rowsDesc, prometheus.CounterValue, float64(rows), e.name)
		mean := 0.0
		if steps > 0 {
			mean = float64(rows) / float64(steps)
		}
		ch <- prometheus.MustNewConstMetric(batchDesc, prometheus.GaugeValue, mean, e.name)
	}
}

// engineStats returns each model engine's load (none before the engines
// exist).
func (s *Server) engineStats() map[string]engine.Stats {
	if s.eng == nil {
		return nil
	}
	return s.eng.stats()
}

// engineCollector reports each model engine's queue, live sequences,
// KV-cache memory, refusals and vision batches.
type engineCollector struct{ s *Server }

var engineDescs = map[string]*prometheus.Desc{
	"live":     prometheus.NewDesc("glimpse_engine_live_sequences", "Sequences being generated, by model.", []string{"model"}, nil),
	"waiting":  prometheus.NewDesc("glimpse_engine_queue_depth", "Generations waiting for admission, by model.", []string{"model"}, nil),
	"kv":       prometheus.NewDesc("glimpse_kv_cache_bytes", "KV-cache memory reserved by live sequences, by model.", []string{"model"}, nil),
	"kvbudget": prometheus.NewDesc("glimpse_kv_cache_budget_bytes", "KV-cache budget, by model (0 = unbounded).", []string{"model"}, nil),
	"refused":  prometheus.NewDesc("glimpse_engine_refused_total", "Generations refused with RESOURCE_EXHAUSTED, by model.", []string{"model"}, nil),
	"vbatches": prometheus.NewDesc("glimpse_vision_batches_total", "Batched vision-encoder runs, by model.", []string{"model"}, nil),
	"vimages":  prometheus.NewDesc("glimpse_vision_batch_images_total", "Images encoded by those runs (images/batches = mean vision batch size), by model.", []string{"model"}, nil),
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range engineDescs {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	for name, st := range c.s.engineStats() {
		for _, v := range []struct {
			key string
			t   prometheus.ValueType
			v   float64
		}{
			{"live", prometheus.GaugeValue, float64(st.Live)},
			{"waiting", prometheus.GaugeValue, float64(st.Waiting)},
			{"kv", prometheus.GaugeValue, float64(st.KVUsed)},
			{"kvbudget", prometheus.GaugeValue, float64(st.KVBudget)},
			{"refused", prometheus.CounterValue, float64(st.Refused)},
			{"vbatches", prometheus.CounterValue, float64(st.VisionBatches)},
			{"vimages", prometheus.CounterValue, float64(st.VisionImages)},
		} {
			ch <- prometheus.MustNewConstMetric(engineDescs[v.key], v.t, v.v, name)
		}
	}
}

// shortMethod is "Caption" for "/glimpse.v1.GlimpseService/Caption".
func shortMethod(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// isGeneration says whether method generates text.
func isGeneration(method string) bool {
	return method == "Caption" || method == "Answer" || method == "Generate"
}

func (m *metrics) begin(method string) func(start time.Time, err error) {
	g := m.inflight.WithLabelValues(method)
	g.Inc()
	gen := isGeneration(method)
	if gen {
		m.active.Add(1)
	}
	return func(start time.Time, err error) {
		g.Dec()
		if gen {
			m.active.Add(-1)
		}
		m.observe(method, start, err)
	}
}

func (m *metrics) observe(method string, start time.Time, err error) {
	m.requests.WithLabelValues(method, status.Code(err).String()).Inc()
	m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (s *Server) metricsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	meth := shortMethod(info.FullMethod)
	start := time.Now()
	end := s.metrics.begin(meth)
	resp, err := h(ctx, req)
	end(start, err)
	if err == nil {
		switch r := resp.(type) {
		case *pb.CaptionResponse:
			s.metrics.tokens.WithLabelValues(r.GetModel()).Add(float64(len(r.GetTokenIds())))
		case *pb.AnswerResponse:
			s.metrics.tokens.WithLabelValues(r.GetModel()).Add(float64(len(r.GetTokenIds())))
		}
	}
	return resp, err
}

func (s *Server) metricsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	meth := shortMethod(info.FullMethod)
	start := time.Now()
	end := s.metrics.begin(meth)
	err := h(srv, &countingStream{ServerStream: ss, s: s})
	end(start, err)
	return err
}

// countingStream counts the tokens of a Generate stream's Final message.
type countingStream struct {
	grpc.ServerStream
	s *Server
}

func (c *countingStream) SendMsg(msg any) error {
	if r, ok := msg.(*pb.GenerateResponse); ok {
		if f := r.GetFinal(); f != nil {
			c.s.metrics.tokens.WithLabelValues(f.GetModel()).Add(float64(len(f.GetTokenIds())))
		}
	}
	return c.ServerStream.SendMsg(msg)
}

// MetricsHandler serves the server's Prometheus metrics (and, with
// Config.Pprof, /debug/pprof/).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg}))
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// ServeMetrics serves MetricsHandler on lis until Shutdown or Stop (it then
// returns nil). `glimpse serve` calls it with a listener on
// Config.MetricsAddr.
func (s *Server) ServeMetrics(lis net.Listener) error {
	hs := &http.Server{Handler: s.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		lis.Close()
		return nil
	}
	s.httpServers = append(s.httpServers, hs)
	s.mu.Unlock()
	err := hs.Serve(lis)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// closeHTTP stops the metrics listeners.
func (s *Server) closeHTTP() {
	s.mu.Lock()
	hs := s.httpServers
	s.httpServers = nil
	s.mu.Unlock()
	for _, h := range hs {
		_ = h.Close()
	}
}
