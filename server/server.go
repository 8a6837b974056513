// Package server is Glimpse's gRPC service (glimpse.v1.GlimpseService): a
// registry of loaded models, request validation, admission control, an
// image-state cache, grpc.health.v1, server reflection, panic recovery and
// graceful shutdown.
//
// Typical use:
//
//	srv, err := server.New(cfg, logger)
//	srv.Load(ctx, nil)        // loads cfg.Models with fusion.Load
//	go srv.Serve(listener)
//	...
//	srv.Shutdown(ctx)         // drain, then stop
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/engine"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// ServiceName is the gRPC service name, also the health-check name that
// reports the server as a whole.
const ServiceName = "glimpse.v1.GlimpseService"

// HealthName is the grpc.health.v1 service name reporting one model:
// "model/" + the model's name.
func HealthName(model string) string { return "model/" + model }

// Server is a Glimpse gRPC server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	reg    *registry
	adm    *admission
	grpc   *grpc.Server
	health *health.Server
	svc    *service
	cache  *imageCache // encoded images of every model, keyed by model + "/" + sha256
	eng    *engines    // generation engines, one per model
	engCfg *engine.Config

	loadFn func(dir string) (fusion.Model, error)
	extra  []grpc.ServerOption

	auth    *authenticator // nil: auth off
	rate    *rateLimiter   // nil: no rate limit
	metrics *metrics

	mu          sync.Mutex
	shutdown    bool
	httpServers []*http.Server // metrics listeners
}

// Option customises a Server.
type Option func(*Server)

// WithLoader replaces fusion.Load (the default) for loading model folders.
func WithLoader(load func(dir string) (fusion.Model, error)) Option {
	return func(s *Server) { s.loadFn = load }
}

// WithGRPCOptions adds grpc.ServerOptions (e.g. credentials or extra
// interceptors) after Glimpse's own.
func WithGRPCOptions(opts ...grpc.ServerOption) Option {
	return func(s *Server) { s.extra = append(s.extra, opts...) }
}

// New validates cfg and builds a server with every model of cfg.Models
// registered as LOADING (call Load to load them) and health NOT_SERVING.
// log may be nil (nothing is logged).
func New(cfg Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = slog.New(requestIDHandler{log.Handler()})
	s := &Server{
		cfg:    cfg,
		log:    log,
		reg:    newRegistry(),
		adm:    newAdmission(cfg.MaxConcurrent, cfg.MaxQueue, cfg.RetryAfter),
		health: health.NewServer(),
		loadFn: fusion.Load,
		cache:  newImageCache(cfg.ImageCacheBytes),
	}
	for _, o := range opts {
		o(s)
	}
	s.eng = newEngines(cfg, s.engCfg)
	s.svc = &service{s: s}
	hard, err := s.hardening()
	if err != nil {
		return nil, err
	}
	for _, m := range cfg.Models {
		if _, err := s.reg.add(m.Name, m.Dir); err != nil {
			return nil, &ConfigError{Flag: "model", Msg: err.Error()}
		}
	}
	s.reg.setDefault(cfg.DefaultModel)
	gopts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.WaitForHandlers(true),
		// Outermost first: the request id and metrics see every outcome
		// (auth and rate refusals, recovered panics).
		grpc.ChainUnaryInterceptor(s.requestIDUnary, s.metricsUnary, s.logUnary, s.authUnary, s.rateUnary, s.recoverUnary),
		grpc.ChainStreamInterceptor(s.requestIDStream, s.metricsStream, s.logStream, s.authStream, s.rateStream, s.recoverStream),
	}, hard...)
	s.grpc = grpc.NewServer(append(gopts, s.extra...)...)
	pb.RegisterGlimpseServiceServer(s.grpc, s.svc)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.Reflection {
		reflection.Register(s.grpc)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	for _, e := range s.reg.all() {
		s.health.SetServingStatus(HealthName(e.name), healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return s, nil
}

// GRPCServer returns the underlying grpc.Server (to register more services
// before Serve).
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Config returns the server's configuration.
func (s *Server) Config() Config { return s.cfg }

// AddModel serves an already loaded model under name. The first model
// added or configured is the default unless Config.DefaultModel says
// otherwise.
func (s *Server) AddModel(name string, m fusion.Model) error {
	if err := validModelName(name); err != nil {
		return err
	}
	e, err := s.reg.add(name, "")
	if err != nil {
		return err
	}
	e.setLoaded(m)
	s.health.SetServingStatus(HealthName(name), healthpb.HealthCheckResponse_SERVING)
	s.updateHealth()
	return nil
}

// LoadEvent reports the progress of Load.
type LoadEvent struct {
	Name, Dir string
	Index     int // 1-based
	Total     int
	Done      bool // false when the load starts
	Err       error
	Elapsed   time.Duration
	Info      fusion.Info
}

// Load loads every configured model that is still LOADING, one after the
// other, calling progress (if not nil) before and after each. A folder
// that fails to load marks that model NOT_SERVING and is logged; the
// others serve. Health turns SERVING when loading is over and at least one
// model serves. It returns the models that failed, joined.
func (s *Server) Load(ctx context.Context, progress func(LoadEvent)) error {
	var pending []*modelEntry
	for _, e := range s.reg.all() {
		if st, _, _, _ := e.snapshot(); st == pb.ModelState_MODEL_STATE_LOADING {
			pending = append(pending, e)
		}
	}
	var errs []error
	for i, e := range pending {
		ev := LoadEvent{Name: e.name, Dir: e.dir, Index: i + 1, Total: len(pending)}
		if progress != nil {
			progress(ev)
		}
		start := time.Now()
		var m fusion.Model
		err := ctx.Err()
		if err == nil {
			m, err = s.safeLoad(e.dir)
		}
		ev.Done, ev.Elapsed, ev.Err = true, time.Since(start), err
		if err != nil {
			e.setFailed(err)
			s.metrics.loadFails.WithLabelValues(e.name).Inc()
			errs = append(errs, fmt.Errorf("model %s: %w", e.name, err))
			s.log.Error("model failed to load", "model", e.name, "dir", e.dir, "err", err)
		} else {
			e.setLoaded(m)
			s.metrics.modelLoad.WithLabelValues(e.name).Set(ev.Elapsed.Seconds())
			ev.Info = m.Info()
			s.health.SetServingStatus(HealthName(e.name), healthpb.HealthCheckResponse_SERVING)
			s.log.Info("model loaded", "model", e.name, "dir", e.dir, "family", ev.Info.Family,
				"architecture", ev.Info.Architecture, "tasks", ev.Info.Tasks, "seconds", ev.Elapsed.Seconds())
		}
		if progress != nil {
			progress(ev)
		}
	}
	s.updateHealth()
	return errors.Join(errs...)
}

// safeLoad runs the loader, turning a panic into an error.
func (s *Server) safeLoad(dir string) (m fusion.Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("loader panicked: %v", r)
			s.log.Error("loader panic", "dir", dir, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	return s.loadFn(dir)
}

// updateHealth sets the overall status: SERVING when no model is loading
// and at least one serves.
func (s *Server) updateHealth() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return
	}
	serving, loading := 0, 0
	for _, e := range s.reg.all() {
		switch st, _, _, _ := e.snapshot(); st {
		case pb.ModelState_MODEL_STATE_SERVING:
			serving++
		case pb.ModelState_MODEL_STATE_LOADING:
			loading++
		}
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving > 0 && loading == 0 {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(ServiceName, st)
}

// Serve accepts connections on lis until Shutdown or Stop.
func (s *Server) Serve(lis net.Listener) error {
	s.log.Info("serving", "addr", lis.Addr().String(), "default_model", s.reg.defaultName())
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Shutdown stops accepting new connections and RPCs, marks health
// NOT_SERVING, waits for running RPCs until ctx is done (then cancels
// them) and closes the models.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	defer s.closeHTTP()
	select {
	case <-done:
		s.log.Info("shutdown: all requests finished")
	case <-ctx.Done():
		s.log.Warn("shutdown: grace period over, cancelling running requests")
		s.grpc.Stop()
		<-done
	}
	s.closeModels()
}

// Stop stops the server at once, cancelling running requests, and closes
// the models.
func (s *Server) Stop() {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	s.health.Shutdown()
	s.grpc.Stop()
	s.closeHTTP()
	s.closeModels()
}

func (s *Server) closeModels() {
	for _, e := range s.reg.all() {
		e.mu.Lock()
		if e.model != nil {
			if err := e.model.Close(); err != nil {
				s.log.Warn("closing model", "model", e.name, "err", err)
			}
			e.model = nil
			e.state = pb.ModelState_MODEL_STATE_NOT_SERVING
			e.err = errors.New("server is shutting down")
		}
		e.mu.Unlock()
	}
}

// recoverUnary turns a handler panic into INTERNAL; the server keeps
// serving.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "internal error in %s (a bug; it was logged)", info.FullMethod)
		}
	}()
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s (a bug; it was logged)", info.FullMethod)
		}
	}()
	return h(srv, ss)
}
