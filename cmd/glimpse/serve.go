package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/glimpse-vlm/glimpse/internal/defaultmodels"
	"github.com/glimpse-vlm/glimpse/internal/engine"
	"github.com/glimpse-vlm/glimpse/kernels"
	"github.com/glimpse-vlm/glimpse/server"
)

func init() {
	register(&verb{name: "serve", summary: "serve models over gRPC", run: runServe, usage: `Usage: glimpse serve [--addr HOST:PORT] [--model NAME=DIR]... [--config FILE] [flags]

Serves the glimpse.v1 gRPC API (with grpc.health.v1 and server reflection).
Without --model it serves the built-in default models (tiny test
checkpoints until trained demo models ship): blip-caption (the default),
blip-vqa, blip-itm, vit-gpt2 and clip, on 127.0.0.1:50051.

It listens at once; health turns SERVING when the models are loaded (a
folder that fails to load is logged and its model reports NOT_SERVING; the
others serve). SIGINT or SIGTERM stops accepting, lets running requests
finish for --grace-period, and exits 0.

Every flag can also be set by the environment variable GLIMPSE_<FLAG>
(upper case, '-' → '_', e.g. GLIMPSE_MAX_QUEUE=16; GLIMPSE_MODEL takes a
comma-separated NAME=DIR list) or in a YAML/JSON file given with --config
(keys: addr, models: [{name, dir}], default_model, max_concurrent,
max_queue, max_message_bytes, max_images_per_request, max_image_bytes,
max_image_pixels, max_texts, max_text_bytes, max_new_tokens, max_beams,
image_cache_bytes, grace_period, reflection, retry_after, auth_token_file,
auth_tokens, auth_probes, tls_cert, tls_key, client_ca, max_prompt_tokens,
max_streams_per_conn, rate_limit, rate_burst, metrics_addr, pprof).
Precedence:
flags, then environment, then file, then defaults.

Flags:
%s
Health service names: "" and "glimpse.v1.GlimpseService" for the server,
"model/NAME" for each model.

Examples:
  glimpse serve
  glimpse serve --addr 0.0.0.0:50051 --model blip=./blip-image-captioning-large --model clip=./clip-vit-base-patch32
  GLIMPSE_MAX_CONCURRENT=4 glimpse serve --config glimpse.yaml
`})
	// The flag list is filled in from the real flag set.
	v := verbs["serve"]
	def := server.DefaultConfig()
	fs, _, _ := serveFlags(&def)
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	v.usage = fmt.Sprintf(v.usage, b.String())
}

type serveOpts struct {
	config    string
	logLevel  string
	logFormat string
}

func serveFlags(cfg *server.Config) (*flag.FlagSet, *serveOpts, error) {
	fs := newFlags("serve")
	cfg.BindFlags(fs)
	o := &serveOpts{}
	fs.StringVar(&o.config, "config", "", "YAML or JSON config file")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	return fs, o, nil
}

func runServe(e *env, args []string) error {
	cfg := server.DefaultConfig()
	// The config file comes first so that environment and flags override it.
	if path := findConfigArg(args, e); path != "" {
		if err := cfg.LoadFile(path); err != nil {
			return usagef("%v", err)
		}
	}
	fs, o, _ := serveFlags(&cfg)
	if err := server.ApplyEnv(fs, e.getenv); err != nil {
		return usagef("%v", err)
	}
	if pos, err := parse(fs, args, ""); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected arguments %q (models are given with --model NAME=DIR)", pos)
	}
	log, err := newLogger(e.stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	builtin := len(cfg.Models) == 0
	if builtin {
		ms, err := defaultmodels.Extract("")
		if err != nil {
			return err
		}
		for _, m := range ms {
			cfg.Models = append(cfg.Models, server.ModelSpec{Name: m.Name, Dir: m.Dir})
		}
		if cfg.DefaultModel == "" {
			cfg.DefaultModel = defaultmodels.Default
		}
		log.Info("serving the built-in default models", "models", defaultmodels.Names, "dir", ms[0].Dir)
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		return usagef("%v", err)
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (use --addr HOST:PORT to pick another)", cfg.Addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	fmt.Fprintf(e.stderr, "glimpse: listening on %s\n", lis.Addr())
	if cfg.MetricsAddr != "" {
		mlis, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			srv.Stop()
			return fmt.Errorf("metrics: listening on %s: %w (use --metrics-addr HOST:PORT to pick another)", cfg.MetricsAddr, err)
		}
		go func() {
			if err := srv.ServeMetrics(mlis); err != nil {
				log.Error("metrics listener failed", "err", err)
			}
		}()
		fmt.Fprintf(e.stderr, "glimpse: metrics on http://%s/metrics\n", mlis.Addr())
	}

	progress := func(ev server.LoadEvent) {}
	if isTerminal(e.stderr) {
		progress = func(ev server.LoadEvent) {
			switch {
			case !ev.Done:
				fmt.Fprintf(e.stderr, "  [%d/%d] loading %s from %s ...\n", ev.Index, ev.Total, ev.Name, ev.Dir)
			case ev.Err != nil:
				fmt.Fprintf(e.stderr, "  [%d/%d] %s FAILED: %v\n", ev.Index, ev.Total, ev.Name, ev.Err)
			default:
				fmt.Fprintf(e.stderr, "  [%d/%d] %s ready (%s, %s) in %.2fs\n", ev.Index, ev.Total, ev.Name, ev.Info.Family, ev.Info.Architecture, ev.Elapsed.Seconds())
			}
		}
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- srv.Load(ctx, progress) }()
	select {
	case err := <-loadDone:
		if err != nil {
			log.Warn("some models failed to load; serving the others", "err", err)
		}
		// Bound the Go heap by what the server accounts for (every model's
		// live-request budget and the image cache) on top of what loading
		// left live, so that garbage cannot grow to the size of the live
		// data (GOMEMLIMIT, if set, wins).
		limit := engine.SetMemoryLimit(int64(len(cfg.Models))*cfg.KVCacheBytes + cfg.ImageCacheBytes)
		log.Info("memory", "go_memory_limit_mb", limit>>20, "weights_offheap_mb", kernels.OffHeapBytes()>>20)
		fmt.Fprintf(e.stderr, "glimpse: ready on %s\n", lis.Addr())
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	stop()
	log.Info("shutting down", "grace_period", cfg.GracePeriod)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.GracePeriod)
	defer cancel()
	srv.Shutdown(sctx)
	<-serveErr
	log.Info("stopped")
	return nil
}

// findConfigArg returns the --config value from args or $GLIMPSE_CONFIG.
func findConfigArg(args []string, e *env) string {
	path, _ := e.getenv("GLIMPSE_CONFIG")
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"--config", "-config"} {
			if a == p && i+1 < len(args) {
				path = args[i+1]
			} else if v, ok := strings.CutPrefix(a, p+"="); ok {
				path = v
			}
		}
	}
	return path
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
