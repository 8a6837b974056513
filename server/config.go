package server

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/glimpse-vlm/glimpse/internal/engine"
)

// DefaultAddr is the loopback address `glimpse serve` listens on when no
// address is configured.
const DefaultAddr = "127.0.0.1:50051"

// ModelSpec names a checkpoint folder to serve.
type ModelSpec struct {
	Name string `json:"name" yaml:"name"`
	Dir  string `json:"dir" yaml:"dir"`
}

// Config is the whole server configuration. Every field has a flag
// (BindFlags), a GLIMPSE_* environment variable (ApplyEnv) and a key in a
// YAML or JSON config file (LoadFile); see DefaultConfig for the defaults.
type Config struct {
	// Addr is the listen address (flag --addr, GLIMPSE_ADDR).
	Addr string `json:"addr" yaml:"addr"`
	// Models are the checkpoint folders to serve (flag --model name=DIR,
	// repeatable; GLIMPSE_MODELS="a=DIR,b=DIR"). Empty = the built-in
	// default models, which the caller supplies.
	Models []ModelSpec `json:"models" yaml:"models"`
	// DefaultModel is the model used when a request names none (flag
	// --default-model). Empty = the first model.
	DefaultModel string `json:"default_model" yaml:"default_model"`
	// MaxConcurrent is how many requests run at once (--max-concurrent).
	MaxConcurrent int `json:"max_concurrent" yaml:"max_concurrent"`
	// MaxQueue is how many requests may wait for a slot before new ones get
	// RESOURCE_EXHAUSTED (--max-queue); for caption and answer requests,
	// the queue of each model's generation engine.
	MaxQueue int `json:"max_queue" yaml:"max_queue"`
	// MaxBatch is how many caption/answer requests may decode at once per
	// model; their decoding steps run as one batch (--max-batch).
	MaxBatch int `json:"max_batch" yaml:"max_batch"`
	// KVCacheBytes bounds the memory the live caption/answer requests of
	// one model hold (KV caches, cross-attention states, image
	// states); requests beyond it wait in the queue, and one that alone
	// needs more is refused (--kv-cache-bytes, default 128 MiB:
	// engine.DefaultKVBudget).
	KVCacheBytes int64 `json:"kv_cache_bytes" yaml:"kv_cache_bytes"`
	// MaxMessageBytes caps a received message (--max-message-bytes).
	MaxMessageBytes int `json:"max_message_bytes" yaml:"max_message_bytes"`
	// MaxImagesPerRequest caps images in one request (--max-images).
	MaxImagesPerRequest int `json:"max_images_per_request" yaml:"max_images_per_request"`
	// MaxImageBytes caps one encoded image (--max-image-bytes).
	MaxImageBytes int64 `json:"max_image_bytes" yaml:"max_image_bytes"`
	// MaxImagePixels caps width×height of one image, checked from the
	// header before decoding (--max-image-pixels).
	MaxImagePixels int64 `json:"max_image_pixels" yaml:"max_image_pixels"`
	// MaxTexts caps the texts of one Match or Embed request (--max-texts).
	MaxTexts int `json:"max_texts" yaml:"max_texts"`
	// MaxTextBytes caps one prompt, question or text (--max-text-bytes).
	MaxTextBytes int `json:"max_text_bytes" yaml:"max_text_bytes"`
	// MaxNewTokens caps options.max_new_tokens (--max-new-tokens-cap).
	MaxNewTokens int `json:"max_new_tokens" yaml:"max_new_tokens"`
	// MaxBeams caps options.num_beams (--max-beams).
	MaxBeams int `json:"max_beams" yaml:"max_beams"`
	// ImageCacheBytes bounds the image-state cache; 0 disables it
	// (--image-cache-bytes; --no-image-cache sets 0).
	ImageCacheBytes int64 `json:"image_cache_bytes" yaml:"image_cache_bytes"`
	// GracePeriod is how long shutdown waits for running requests
	// (--grace-period).
	GracePeriod time.Duration `json:"grace_period" yaml:"grace_period"`
	// Reflection turns on gRPC server reflection (--reflection).
	Reflection bool `json:"reflection" yaml:"reflection"`
	// RetryAfter is the delay suggested in RetryInfo when the server is
	// full (--retry-after).
	RetryAfter time.Duration `json:"retry_after" yaml:"retry_after"`

	// Hardening (auth.go, tls.go, limits.go, metrics.go).

	// AuthTokenFile holds the accepted bearer tokens, one a line, each
	// optionally followed by the comma-separated models it may use
	// ("TOKEN blip,clip"; others get PERMISSION_DENIED); blank lines and
	// lines starting with # are ignored (--auth-token-file).
	AuthTokenFile string `json:"auth_token_file" yaml:"auth_token_file"`
	// AuthTokens are more accepted tokens (--auth-tokens, comma-separated;
	// prefer GLIMPSE_AUTH_TOKENS or the file: flags show up in ps).
	// With no token at all, auth is off.
	AuthTokens []string `json:"auth_tokens" yaml:"auth_tokens"`
	// AuthProbes makes health and reflection require a token too
	// (--auth-probes); by default they stay open for probes and discovery.
	AuthProbes bool `json:"auth_probes" yaml:"auth_probes"`
	// TLSCert and TLSKey turn on TLS (--tls-cert, --tls-key: PEM files).
	TLSCert string `json:"tls_cert" yaml:"tls_cert"`
	TLSKey  string `json:"tls_key" yaml:"tls_key"`
	// ClientCA turns on mutual TLS: clients must present a certificate
	// signed by one of these PEM CAs (--client-ca; needs --tls-cert).
	ClientCA string `json:"client_ca" yaml:"client_ca"`
	// MaxPromptTokens caps the tokens of one prompt, question or text, on
	// top of each model's own limit (--max-prompt-tokens).
	MaxPromptTokens int `json:"max_prompt_tokens" yaml:"max_prompt_tokens"`
	// MaxStreamsPerConn caps concurrent RPCs on one connection
	// (--max-streams-per-conn).
	MaxStreamsPerConn int `json:"max_streams_per_conn" yaml:"max_streams_per_conn"`
	// RateLimit is the sustained requests per second allowed per auth
	// token (per client IP without auth); 0 = unlimited (--rate-limit).
	RateLimit float64 `json:"rate_limit" yaml:"rate_limit"`
	// RateBurst is the token-bucket size of the rate limit (--rate-burst).
	RateBurst int `json:"rate_burst" yaml:"rate_burst"`
	// MetricsAddr serves Prometheus metrics at /metrics on a separate HTTP
	// listener (--metrics-addr HOST:PORT); empty = off.
	MetricsAddr string `json:"metrics_addr" yaml:"metrics_addr"`
	// Pprof adds /debug/pprof/ to the metrics listener (--pprof).
	Pprof bool `json:"pprof" yaml:"pprof"`
}

// DefaultConfig returns the defaults: DefaultAddr; 2 concurrent requests
// (the engine shares the CPU's cores) and a queue of 64; 32 MiB messages;
// 8 images of at most 20 MiB and 40 megapixels per request; 64 texts of at
// most 4096 bytes; max_new_tokens ≤ 512, num_beams ≤ 8; a 256 MiB image
// cache; a 30 s grace period; reflection on; RetryInfo of 1 s; prompts of
// at most 512 tokens; 100 concurrent streams per connection; no auth, TLS,
// rate limit (burst 20 when one is set) or metrics listener.
func DefaultConfig() Config {
	return Config{
		Addr:                DefaultAddr,
		MaxConcurrent:       2,
		MaxQueue:            64,
		MaxBatch:            64,
		KVCacheBytes:        engine.DefaultKVBudget,
		MaxMessageBytes:     32 << 20,
		MaxImagesPerRequest: 8,
		MaxImageBytes:       20 << 20,
		MaxImagePixels:      40_000_000,
		MaxTexts:            64,
		MaxTextBytes:        4096,
		MaxNewTokens:        512,
		MaxBeams:            8,
		ImageCacheBytes:     256 << 20,
		GracePeriod:         30 * time.Second,
		Reflection:          true,
		RetryAfter:          time.Second,
		MaxPromptTokens:     512,
		MaxStreamsPerConn:   100,
		RateBurst:           20,
	}
}

// ConfigError is an invalid configuration value; Flag names the flag that
// sets it.
type ConfigError struct {
	Flag string
	Msg  string
}

func (e *ConfigError) Error() string { return "--" + e.Flag + ": " + e.Msg }

// Validate checks every field and returns a *ConfigError naming the flag of
// the first invalid one.
func (c *Config) Validate() error {
	bad := func(flag, format string, a ...any) error {
		return &ConfigError{Flag: flag, Msg: fmt.Sprintf(format, a...)}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("addr", "%q is not HOST:PORT (e.g. %s): %v", c.Addr, DefaultAddr, err)
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		if err := validModelName(m.Name); err != nil {
			return bad("model", "%v", err)
		}
		if m.Dir == "" {
			return bad("model", "model %q has no folder (use --model NAME=DIR)", m.Name)
		}
		if seen[m.Name] {
			return bad("model", "model name %q given twice", m.Name)
		}
		seen[m.Name] = true
	}
	if c.DefaultModel != "" && len(c.Models) > 0 && !seen[c.DefaultModel] {
		return bad("default-model", "%q is not one of the configured models", c.DefaultModel)
	}
	positive := []struct {
		flag string
		v    int64
	}{
		{"max-concurrent", int64(c.MaxConcurrent)},
		{"max-message-bytes", int64(c.MaxMessageBytes)},
		{"max-images", int64(c.MaxImagesPerRequest)},
		{"max-image-bytes", c.MaxImageBytes},
		{"max-image-pixels", c.MaxImagePixels},
		{"max-texts", int64(c.MaxTexts)},
		{"max-text-bytes", int64(c.MaxTextBytes)},
		{"max-new-tokens-cap", int64(c.MaxNewTokens)},
		{"max-beams", int64(c.MaxBeams)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return bad(p.flag, "must be > 0, got %d", p.v)
		}
	}
	if c.MaxQueue < 0 {
		return bad("max-queue", "must be >= 0, got %d", c.MaxQueue)
	}
	if c.MaxBatch < 1 {
		return bad("max-batch", "must be >= 1, got %d", c.MaxBatch)
	}
	if c.KVCacheBytes < 1<<20 {
		return bad("kv-cache-bytes", "must be at least 1MiB, got %d", c.KVCacheBytes)
	}
	if c.ImageCacheBytes < 0 {
		return bad("image-cache-bytes", "must be >= 0 (0 disables the cache), got %d", c.ImageCacheBytes)
	}
	if c.GracePeriod < 0 {
		return bad("grace-period", "must be >= 0, got %v", c.GracePeriod)
	}
	if c.RetryAfter <= 0 {
		return bad("retry-after", "must be > 0, got %v", c.RetryAfter)
	}
	return c.validateHardening()
}

func validModelName(name string) error {
	if name == "" {
		return errors.New("empty model name (use --model NAME=DIR)")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("model name %q may only use letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// ParseModelSpec parses "NAME=DIR"; a bare DIR is named after the folder's
// base name.
func ParseModelSpec(s string) (ModelSpec, error) {
	name, dir, ok := strings.Cut(s, "=")
	if !ok {
		dir = s
		name = filepath.Base(filepath.Clean(s))
	}
	if dir == "" {
		return ModelSpec{}, fmt.Errorf("%q: want NAME=DIR", s)
	}
	if err := validModelName(name); err != nil {
		return ModelSpec{}, fmt.Errorf("%q: %v", s, err)
	}
	return ModelSpec{Name: name, Dir: dir}, nil
}

type modelsFlag struct{ c *Config }

func (m modelsFlag) String() string {
	if m.c == nil {
		return ""
	}
	var parts []string
	for _, s := range m.c.Models {
		parts = append(parts, s.Name+"="+s.Dir)
	}
	return strings.Join(parts, ",")
}

func (m modelsFlag) Set(s string) error {
	spec, err := ParseModelSpec(s)
	if err != nil {
		return err
	}
	m.c.Models = append(m.c.Models, spec)
	return nil
}

type bytesFlag struct{ p *int64 }

func (b bytesFlag) String() string {
	if b.p == nil {
		return "0"
	}
	return strconv.FormatInt(*b.p, 10)
}
func (b bytesFlag) Set(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b.p = v
	return nil
}

type intBytesFlag struct{ p *int }

func (b intBytesFlag) String() string {
	if b.p == nil {
		return "0"
	}
	return strconv.Itoa(*b.p)
}
func (b intBytesFlag) Set(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	if v > int64(^uint32(0)>>1) {
		return fmt.Errorf("%s is too large", s)
	}
	*b.p = int(v)
	return nil
}

type noCacheFlag struct{ p *int64 }

func (noCacheFlag) String() string   { return "false" }
func (noCacheFlag) IsBoolFlag() bool { return true }
func (b noCacheFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	if v {
		*b.p = 0
	}
	return nil
}

// ParseBytes parses a byte count: a plain integer or one with a suffix
// KiB, MiB, GiB (or K, M, G, also powers of 1024).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a byte count (e.g. 20MiB or 1048576)", s)
	}
	if v > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return v * mult, nil
}

// BindFlags registers one flag per Config field on fs, writing into c.
// The flag names are those ConfigError and the env mapping use.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address HOST:PORT")
	fs.Var(modelsFlag{c}, "model", "serve a checkpoint folder as NAME=DIR (repeatable; default: the built-in models)")
	fs.StringVar(&c.DefaultModel, "default-model", c.DefaultModel, "model used when a request names none (default: the first)")
	fs.IntVar(&c.MaxConcurrent, "max-concurrent", c.MaxConcurrent, "requests running at once")
	fs.IntVar(&c.MaxQueue, "max-queue", c.MaxQueue, "requests waiting for a slot before RESOURCE_EXHAUSTED")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "caption/answer requests decoding together per model (one batch per step)")
	fs.Var(bytesFlag{&c.KVCacheBytes}, "kv-cache-bytes", "memory per model for the live caption/answer requests: KV caches, cross-attention states, image states (bytes, or e.g. 512MiB)")
	fs.Var(intBytesFlag{&c.MaxMessageBytes}, "max-message-bytes", "largest request message (bytes, or e.g. 32MiB)")
	fs.IntVar(&c.MaxImagesPerRequest, "max-images", c.MaxImagesPerRequest, "images per request")
	fs.Var(bytesFlag{&c.MaxImageBytes}, "max-image-bytes", "largest encoded image (bytes, or e.g. 20MiB)")
	fs.Int64Var(&c.MaxImagePixels, "max-image-pixels", c.MaxImagePixels, "most pixels (width*height) per image")
	fs.IntVar(&c.MaxTexts, "max-texts", c.MaxTexts, "texts per Match or Embed request")
	fs.IntVar(&c.MaxTextBytes, "max-text-bytes", c.MaxTextBytes, "longest prompt, question or text in bytes")
	fs.IntVar(&c.MaxNewTokens, "max-new-tokens-cap", c.MaxNewTokens, "largest max_new_tokens accepted")
	fs.IntVar(&c.MaxBeams, "max-beams", c.MaxBeams, "largest num_beams accepted")
	fs.Var(bytesFlag{&c.ImageCacheBytes}, "image-cache-bytes", "image-state cache size (bytes, or e.g. 256MiB; 0 disables)")
	fs.Var(noCacheFlag{&c.ImageCacheBytes}, "no-image-cache", "disable the image-state cache")
	fs.DurationVar(&c.GracePeriod, "grace-period", c.GracePeriod, "how long shutdown waits for running requests")
	fs.BoolVar(&c.Reflection, "reflection", c.Reflection, "enable gRPC server reflection")
	fs.DurationVar(&c.RetryAfter, "retry-after", c.RetryAfter, "retry delay suggested to clients when the server is full")
	c.bindHardeningFlags(fs)
}

// EnvName is the environment variable for a flag: GLIMPSE_ + the flag
// name upper-cased with '-' → '_' (e.g. --max-queue → GLIMPSE_MAX_QUEUE;
// --model → GLIMPSE_MODEL, comma-separated NAME=DIR list).
func EnvName(flagName string) string {
	return "GLIMPSE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets, through fs, every flag whose GLIMPSE_* variable is set in
// the environment (lookup is os.LookupEnv in production). Flags set
// explicitly on the command line should be applied after it.
func ApplyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		v, ok := lookup(EnvName(f.Name))
		if !ok {
			return
		}
		vals := []string{v}
		if f.Name == "model" {
			vals = strings.Split(v, ",")
		}
		for _, one := range vals {
			if e := f.Value.Set(strings.TrimSpace(one)); e != nil {
				err = &ConfigError{Flag: f.Name, Msg: fmt.Sprintf("%s=%q: %v", EnvName(f.Name), v, e)}
				return
			}
		}
	})
	return err
}

// fileConfig is the config-file form: durations and byte counts may be
// strings ("30s", "256MiB").
type fileConfig struct {
	Addr                *string     `json:"addr" yaml:"addr"`
	Models              []ModelSpec `json:"models" yaml:"models"`
	DefaultModel        *string     `json:"default_model" yaml:"default_model"`
	MaxConcurrent       *int        `json:"max_concurrent" yaml:"max_concurrent"`
	MaxQueue            *int        `json:"max_queue" yaml:"max_queue"`
	MaxBatch            *int        `json:"max_batch" yaml:"max_batch"`
	KVCacheBytes        any         `json:"kv_cache_bytes" yaml:"kv_cache_bytes"`
	MaxMessageBytes     any         `json:"max_message_bytes" yaml:"max_message_bytes"`
	MaxImagesPerRequest *int        `json:"max_images_per_request" yaml:"max_images_per_request"`
	MaxImageBytes       any         `json:"max_image_bytes" yaml:"max_image_bytes"`
	MaxImagePixels      *int64      `json:"max_image_pixels" yaml:"max_image_pixels"`
	MaxTexts            *int        `json:"max_texts" yaml:"max_texts"`
	MaxTextBytes        *int        `json:"max_text_bytes" yaml:"max_text_bytes"`
	MaxNewTokens        *int        `json:"max_new_tokens" yaml:"max_new_tokens"`
	MaxBeams            *int        `json:"max_beams" yaml:"max_beams"`
	ImageCacheBytes     any         `json:"image_cache_bytes" yaml:"image_cache_bytes"`
	GracePeriod         *string     `json:"grace_period" yaml:"grace_period"`
	Reflection          *bool       `json:"reflection" yaml:"reflection"`
	RetryAfter          *string     `json:"retry_after" yaml:"retry_after"`
	AuthTokenFile       *string     `json:"auth_token_file" yaml:"auth_token_file"`
	AuthTokens          []string    `json:"auth_tokens" yaml:"auth_tokens"`
	AuthProbes          *bool       `json:"auth_probes" yaml:"auth_probes"`
	TLSCert             *string     `json:"tls_cert" yaml:"tls_cert"`
	TLSKey              *string     `json:"tls_key" yaml:"tls_key"`
	ClientCA            *string     `json:"client_ca" yaml:"client_ca"`
	MaxPromptTokens     *int        `json:"max_prompt_tokens" yaml:"max_prompt_tokens"`
	MaxStreamsPerConn   *int        `json:"max_streams_per_conn" yaml:"max_streams_per_conn"`
	RateLimit           *float64    `json:"rate_limit" yaml:"rate_limit"`
	RateBurst           *int        `json:"rate_burst" yaml:"rate_burst"`
	MetricsAddr         *string     `json:"metrics_addr" yaml:"metrics_addr"`
	Pprof               *bool       `json:"pprof" yaml:"pprof"`
}

// LoadFile reads a YAML (.yaml, .yml) or JSON (.json) config file into c;
// keys absent from the file leave c unchanged. Keys are the Config JSON
// names (addr, models: [{name, dir}], max_queue, image_cache_bytes: 256MiB,
// grace_period: 30s, ...). Unknown keys are an error. Relative model
// folders are relative to the file.
func (c *Config) LoadFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return &ConfigError{Flag: "config", Msg: err.Error()}
	}
	var f fileConfig
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&f)
	case ".yaml", ".yml":
		err = yaml.UnmarshalWithOptions(raw, &f, yaml.Strict())
	default:
		return &ConfigError{Flag: "config", Msg: fmt.Sprintf("%s: want a .yaml, .yml or .json file", path)}
	}
	if err != nil {
		return &ConfigError{Flag: "config", Msg: fmt.Sprintf("%s: %v", path, err)}
	}
	bad := func(key string, e error) error {
		return &ConfigError{Flag: "config", Msg: fmt.Sprintf("%s: %s: %v", path, key, e)}
	}
	setStr := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setStr(&c.Addr, f.Addr)
	setStr(&c.DefaultModel, f.DefaultModel)
	setInt(&c.MaxConcurrent, f.MaxConcurrent)
	setInt(&c.MaxQueue, f.MaxQueue)
	setInt(&c.MaxBatch, f.MaxBatch)
	setInt(&c.MaxImagesPerRequest, f.MaxImagesPerRequest)
	setInt(&c.MaxTexts, f.MaxTexts)
	setInt(&c.MaxTextBytes, f.MaxTextBytes)
	setInt(&c.MaxNewTokens, f.MaxNewTokens)
	setInt(&c.MaxBeams, f.MaxBeams)
	if f.MaxImagePixels != nil {
		c.MaxImagePixels = *f.MaxImagePixels
	}
	if f.Reflection != nil {
		c.Reflection = *f.Reflection
	}
	for _, b := range []struct {
		key string
		v   any
		dst *int64
	}{{"max_image_bytes", f.MaxImageBytes, &c.MaxImageBytes}, {"image_cache_bytes", f.ImageCacheBytes, &c.ImageCacheBytes}, {"kv_cache_bytes", f.KVCacheBytes, &c.KVCacheBytes}} {
		if b.v == nil {
			continue
		}
		n, err := anyBytes(b.v)
		if err != nil {
			return bad(b.key, err)
		}
		*b.dst = n
	}
	if f.MaxMessageBytes != nil {
		n, err := anyBytes(f.MaxMessageBytes)
		if err != nil {
			return bad("max_message_bytes", err)
		}
		c.MaxMessageBytes = int(n)
	}
	for _, d := range []struct {
		key string
		v   *string
		dst *time.Duration
	}{{"grace_period", f.GracePeriod, &c.GracePeriod}, {"retry_after", f.RetryAfter, &c.RetryAfter}} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(*d.v)
		if err != nil {
			return bad(d.key, err)
		}
		*d.dst = v
	}
	if err := c.applyHardeningFile(path, &f); err != nil {
		return err
	}
	for _, m := range f.Models {
		if m.Dir != "" && !filepath.IsAbs(m.Dir) {
			m.Dir = filepath.Join(filepath.Dir(path), m.Dir)
		}
		c.Models = append(c.Models, m)
	}
	return nil
}

func anyBytes(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		return ParseBytes(x)
	case float64:
		if x < 0 || x != float64(int64(x)) {
			return 0, fmt.Errorf("%v is not a byte count", x)
		}
		return int64(x), nil
	case int:
		return ParseBytes(strconv.Itoa(x))
	case int64:
		return ParseBytes(strconv.FormatInt(x, 10))
	case uint64:
		return ParseBytes(strconv.FormatUint(x, 10))
	}
	return 0, fmt.Errorf("%v is not a byte count (e.g. 20MiB or 1048576)", v)
}
