package server

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/internal/engine"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// engines holds the generation engine of every loaded model: its own
// bounded queue, KV-cache budget and vision batching. (Decoding steps of
// concurrent requests are batched by the model itself.)
type engines struct {
	cfg engine.Config
	mu  sync.Mutex
	m   map[*modelEntry]*engine.Engine
}

// WithEngineConfig sets the generation engines' limits (live requests
// decoding together per model, KV-cache budget, vision batching). Unset
// fields come from the server's Config (--max-batch, --kv-cache-bytes,
// --max-queue, --retry-after), then engine's defaults.
func WithEngineConfig(c engine.Config) Option {
	return func(s *Server) { s.engCfg = &c }
}

func newEngines(cfg Config, override *engine.Config) *engines {
	var ec engine.Config
	if override != nil {
		ec = *override
	}
	if ec.MaxQueue == 0 {
		ec.MaxQueue = cfg.MaxQueue
		if ec.MaxQueue == 0 {
			ec.MaxQueue = -1 // --max-queue 0: refuse when full
		}
	}
	if ec.RetryAfter == 0 {
		ec.RetryAfter = cfg.RetryAfter
	}
	if ec.MaxLive == 0 {
		ec.MaxLive = cfg.MaxBatch
	}
	if ec.KVBudget == 0 {
		ec.KVBudget = cfg.KVCacheBytes
	}
	return &engines{cfg: ec, m: map[*modelEntry]*engine.Engine{}}
}

// of returns the engine of entry e's model m, creating it on first use
// (and anew if the entry's model was replaced).
func (es *engines) of(e *modelEntry, m fusion.Model) *engine.Engine {
	es.mu.Lock()
	defer es.mu.Unlock()
	eng := es.m[e]
	if eng == nil || !sameModel(eng.Model(), m) {
		eng = engine.New(m, es.cfg)
		es.m[e] = eng
	}
	return eng
}

// sameModel compares models without panicking on uncomparable types.
func sameModel(a, b fusion.Model) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta != nil && ta.Comparable() && a == b
}

// stats returns each model's engine load by model name (for metrics).
func (es *engines) stats() map[string]engine.Stats {
	es.mu.Lock()
	defer es.mu.Unlock()
	out := make(map[string]engine.Stats, len(es.m))
	for e, eng := range es.m {
		out[e.name] = eng.Stats()
	}
	return out
}

// admit reserves a place and the KV-cache memory for a generation on
// eng, mapping options the model refuses and a request too large for the
// budget to INVALID_ARGUMENT and a full queue to RESOURCE_EXHAUSTED with
// RetryInfo.
func admit(ctx context.Context, eng *engine.Engine, m fusion.Model, text string, opts fusion.GenerateOptions) (func(), time.Duration, error) {
	prompt := 1
	if text != "" {
		if ids, err := m.Tokenize(text); err == nil {
			prompt += len(ids)
		}
	}
	if err := eng.CheckOptions(opts, prompt); err != nil {
		return nil, 0, invalidArgument(violation("options", "%v", err))
	}
	release, waited, err := eng.Admit(ctx, eng.KVBytes(opts, prompt))
	if err == nil {
		return release, waited, nil
	}
	var over *engine.OverloadedError
	switch {
	case errors.As(err, &over):
		return nil, waited, resourceExhausted(over.RetryAfter, "%s", over.Msg)
	case errors.Is(err, engine.ErrTooLarge):
		return nil, waited, invalidArgument(violation("options.max_new_tokens", "%v", err))
	}
	return nil, waited, toStatus(ctx, err)
}

// engineImageState is Server.imageState with the encoding done by the
// model's engine: images of concurrent requests are encoded as one batch,
// and concurrent requests for the same image share one encoding.
func (s *Server) engineImageState(ctx context.Context, eng *engine.Engine, e *modelEntry, img *pb.Image, field string) (*fusion.ImageState, string, time.Duration, error) {
	src, ok := img.GetSource().(*pb.Image_Data)
	if !ok {
		return s.imageState(ctx, e, eng.Model(), img, field)
	}
	key := hashImage(src.Data)
	if st, ok := s.cache.get(e.name + "/" + key); ok {
		return st, key, 0, nil
	}
	start := time.Now()
	dec, err := s.decodeImage(src.Data)
	if err != nil {
		return nil, key, 0, badInput(field+".data", err)
	}
	st, err := eng.EncodeImage(ctx, key, dec)
	if err != nil {
		return nil, key, 0, err
	}
	s.cache.put(e.name+"/"+key, st)
	return st, key, time.Since(start), nil
}
