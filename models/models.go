// Package models ships Glimpse's own trained demo models: a BLIP captioner
// (BlipForConditionalGeneration), a BLIP VQA model
// (BlipForQuestionAnswering) and a BLIP image–text retrieval model
// (BlipForImageTextRetrieval), trained in Go on the synthetic world of
// package demo by `glimpse train demo` and stored as standard Hugging Face
// folders (F16 safetensors) under demo/caption, demo/vqa and
// demo/retrieval. ExtractDemo writes them to a cache folder so that
// fusion.Load can read them like any checkpoint folder.
package models

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed demo
var files embed.FS

// DemoNames are the demo model folders, in serving order.
var DemoNames = []string{"caption", "vqa", "retrieval"}

// FS returns the embedded files (demo/<name>/...).
func FS() fs.FS { return files }

// ExtractDemo writes the demo models under root/<hash>/ (reusing a
// complete earlier extraction; root "" means os.UserCacheDir()/glimpse/demo
// or the temporary directory) and returns that folder, which holds
// caption/, vqa/ and retrieval/.
func ExtractDemo(root string) (string, error) {
	if root == "" {
		if d, err := os.UserCacheDir(); err == nil {
			root = filepath.Join(d, "glimpse", "demo")
		} else {
			root = filepath.Join(os.TempDir(), "glimpse-demo")
		}
	}
	sub, err := fs.Sub(files, "demo")
	if err != nil {
		return "", fmt.Errorf("demo models: %w", err)
	}
	dst, err := ExtractFS(sub, root)
	if err != nil {
		return "", fmt.Errorf("demo models: %w", err)
	}
	return dst, nil
}

// ExtractFS writes every file of fsys under root/<hash>/, where <hash> is
// a short content hash of the files' names and bytes (so a new binary never
// reuses stale files), and returns that folder. A complete earlier
// extraction is reused; the files are written to a temporary folder that is
// renamed into place, so concurrent processes never see half a model.
func ExtractFS(fsys fs.FS, root string) (string, error) {
	var paths []string
	if err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	}); err != nil {
		return "", err
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	name := hex.EncodeToString(h.Sum(nil))[:16]
	dst := filepath.Join(root, name)
	if _, err := os.Stat(filepath.Join(dst, ".complete")); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("%w (set XDG_CACHE_HOME or HOME to a writable folder)", err)
	}
	tmp, err := os.MkdirTemp(root, name+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for _, p := range paths {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return "", err
		}
		target := filepath.Join(tmp, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return "", fmt.Errorf("extracting to %s: %w", tmp, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		// Another process may have finished first.
		if _, statErr := os.Stat(filepath.Join(dst, ".complete")); statErr != nil {
			return "", err
		}
	}
	return dst, nil
}
