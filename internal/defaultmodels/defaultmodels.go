// Package defaultmodels embeds the checkpoints `glimpse serve` serves when
// no model is configured, and extracts them to a cache folder so that
// fusion.Load can read them like any Hugging Face checkpoint folder.
//
// The BLIP models (blip-caption, the default; blip-vqa; blip-itm) are
// Glimpse's own demo models, trained in Go on the synthetic shapes world of
// package demo and shipped by package models: they caption, answer and
// match scenes of that world correctly (see demo/README.md). vit-gpt2 and
// clip are the tiny seeded-random e2e checkpoints of testdata/golden/e2e
// (model, tokenizer and processor files only): they exercise those
// families end to end, but their outputs are not meaningful.
package defaultmodels

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"github.com/glimpse-vlm/glimpse/models"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed vit-gpt2 clip
var files embed.FS

// demoFolders maps the built-in BLIP model names to the folders of the
// trained demo models (package models).
var demoFolders = map[string]string{"blip-caption": "caption", "blip-vqa": "vqa", "blip-itm": "retrieval"}

// Names lists the built-in models in serving order; the first is the
// default model.
var Names = []string{"blip-caption", "blip-vqa", "blip-itm", "vit-gpt2", "clip"}

// Default is the name of the default model.
const Default = "blip-caption"

// Model is an extracted built-in model.
type Model struct {
	Name string
	Dir  string
}

// FS returns the embedded tiny checkpoints (one folder per model; the
// demo BLIP models are in package models).
func FS() fs.FS { return files }

// Hash is a short content hash of every embedded file (names and bytes),
// naming the extraction folder so a new binary never reuses stale files.
func Hash() (string, error) {
	var paths []string
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		b, err := files.ReadFile(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// CacheRoot is where Extract puts the models by default:
// os.UserCacheDir()/glimpse/default, or the temporary directory when there
// is no user cache directory.
func CacheRoot() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "glimpse", "default")
	}
	return filepath.Join(os.TempDir(), "glimpse-default")
}

// Extract writes the built-in models under root/<hash>/<name> (reusing a
// complete earlier extraction) and returns them in Names order. root ""
// means CacheRoot().
func Extract(root string) ([]Model, error) {
	if root == "" {
		root = CacheRoot()
	}
	h, err := Hash()
	if err != nil {
		return nil, fmt.Errorf("default models: %w", err)
	}
	dst := filepath.Join(root, h)
	if _, err := os.Stat(filepath.Join(dst, ".complete")); err != nil {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("default models: %w (set XDG_CACHE_HOME or HOME to a writable folder)", err)
		}
		tmp, err := os.MkdirTemp(root, h+".tmp-")
		if err != nil {
			return nil, fmt.Errorf("default models: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := writeAll(tmp); err != nil {
			return nil, fmt.Errorf("default models: extracting to %s: %w", tmp, err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			// Another process may have finished first.
			if _, statErr := os.Stat(filepath.Join(dst, ".complete")); statErr != nil {
				return nil, fmt.Errorf("default models: %w", err)
			}
		}
	}
	demoDir, err := models.ExtractDemo(filepath.Join(root, "demo"))
	if err != nil {
		return nil, fmt.Errorf("default models: %w", err)
	}
	out := make([]Model, len(Names))
	for i, n := range Names {
		if d, ok := demoFolders[n]; ok {
			out[i] = Model{Name: n, Dir: filepath.Join(demoDir, d)}
		} else {
			out[i] = Model{Name: n, Dir: filepath.Join(dst, n)}
		}
	}
	return out, nil
}

func writeAll(dir string) error {
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644)
}
