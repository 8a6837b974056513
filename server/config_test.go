package server

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	yamlPath := filepath.Join(dir, "g.yaml")
	must(t, os.WriteFile(yamlPath, []byte(`addr: 127.0.0.1:6000
models:
  - {name: cap, dir: models/cap}
max_queue: 5
image_cache_bytes: 64MiB
grace_period: 3s
reflection: false
`), 0o644))
	jsonPath := filepath.Join(dir, "g.json")
	must(t, os.WriteFile(jsonPath, []byte(`{"max_concurrent": 3, "max_image_bytes": 1048576, "retry_after": "250ms"}`), 0o644))

	cfg := DefaultConfig()
	must(t, cfg.LoadFile(yamlPath))
	must(t, cfg.LoadFile(jsonPath))
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.BindFlags(fs)
	env := map[string]string{"GLIMPSE_MAX_QUEUE": "7", "GLIMPSE_MODEL": "vqa=/m/vqa, itm=/m/itm", "GLIMPSE_NO_IMAGE_CACHE": "false"}
	must(t, ApplyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	must(t, fs.Parse([]string{"--max-queue", "9", "--grace-period", "1m", "--max-image-bytes", "2MiB"}))
	must(t, cfg.Validate())

	want := DefaultConfig()
	want.Addr = "127.0.0.1:6000"
	want.Models = []ModelSpec{{"cap", filepath.Join(dir, "models/cap")}, {"vqa", "/m/vqa"}, {"itm", "/m/itm"}}
	want.MaxQueue = 9 // flag beats env beats file
	want.ImageCacheBytes = 64 << 20
	want.GracePeriod = time.Minute
	want.Reflection = false
	want.MaxConcurrent = 3
	want.MaxImageBytes = 2 << 20
	want.RetryAfter = 250 * time.Millisecond
	if got, w := strings.ReplaceAll(jsonOf(cfg), dir, "DIR"), strings.ReplaceAll(jsonOf(want), dir, "DIR"); got != w {
		t.Fatalf("config\n got %s\nwant %s", got, w)
	}
	must(t, fs.Parse([]string{"--no-image-cache"}))
	if cfg.ImageCacheBytes != 0 {
		t.Fatal("--no-image-cache did not disable the cache")
	}
}

func jsonOf(c Config) string {
	b, _ := json.Marshal(c)
	return string(b)
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	tests := []struct {
		mutate func(*Config)
		flag   string
	}{
		{func(c *Config) { c.Addr = "localhost" }, "addr"},
		{func(c *Config) { c.MaxConcurrent = 0 }, "max-concurrent"},
		{func(c *Config) { c.MaxQueue = -1 }, "max-queue"},
		{func(c *Config) { c.MaxBatch = 0 }, "max-batch"},
		{func(c *Config) { c.KVCacheBytes = 1000 }, "kv-cache-bytes"},
		{func(c *Config) { c.MaxImagePixels = 0 }, "max-image-pixels"},
		{func(c *Config) { c.ImageCacheBytes = -5 }, "image-cache-bytes"},
		{func(c *Config) { c.Models = []ModelSpec{{"a", "x"}, {"a", "y"}} }, "model"},
		{func(c *Config) { c.Models = []ModelSpec{{"a b", "x"}} }, "model"},
		{func(c *Config) { c.Models = []ModelSpec{{"a", "x"}}; c.DefaultModel = "b" }, "default-model"},
		{func(c *Config) { c.RetryAfter = 0 }, "retry-after"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mutate(&c)
		err := c.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Flag != tc.flag || !strings.HasPrefix(err.Error(), "--"+tc.flag+": ") {
			t.Errorf("want an error naming --%s, got %v", tc.flag, err)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c := DefaultConfig()
	c.BindFlags(fs)
	err := ApplyEnv(fs, func(k string) (string, bool) { return "lots", k == "GLIMPSE_MAX_IMAGE_BYTES" })
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Flag != "max-image-bytes" {
		t.Errorf("env error %v", err)
	}
	bad := filepath.Join(t.TempDir(), "c.toml")
	must(t, os.WriteFile(bad, nil, 0o644))
	if err := c.LoadFile(bad); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("toml file: %v", err)
	}
	for _, s := range []string{"x", "-1", "12QB", "99999999999G"} {
		if _, err := ParseBytes(s); err == nil {
			t.Errorf("ParseBytes(%q) accepted", s)
		}
	}
	if v, err := ParseBytes("20MiB"); err != nil || v != 20<<20 {
		t.Errorf("ParseBytes(20MiB) = %d, %v", v, err)
	}
	if s, err := ParseModelSpec("/a/b/blip-base"); err != nil || s.Name != "blip-base" {
		t.Errorf("ParseModelSpec bare dir: %v %v", s, err)
	}
}
