package demo

import (
	"fmt"
	"image/png"
	"os"
)

// WritePNG renders the scene of seed into a PNG file.
func WritePNG(seed uint64, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := png.Encode(f, NewScene(seed).Render()); err != nil {
		f.Close()
		return fmt.Errorf("demo: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
