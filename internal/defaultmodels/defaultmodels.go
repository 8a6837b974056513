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
	"embed"
	"fmt"
	"github.com/glimpse-vlm/glimpse/models"
	"io/fs"
	"os"
	"path/filepath"
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
	dst, err := models.ExtractFS(files, root)
	if err != nil {
		return nil, fmt.Errorf("default models: %w", err)
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
