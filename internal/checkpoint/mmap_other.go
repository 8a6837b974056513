//go:build !unix

package checkpoint

import (
	"fmt"
	"io"
	"os"
)

// mapsFiles is false where mapFile reads files into the heap.
const mapsFiles = false

// dropPages does nothing where files are read rather than mapped.
func dropPages([]byte) {}

// mapFile reads the whole of f into memory (no mmap on this platform).
func mapFile(f *os.File, size int64) (buf []byte, release func() error, err error) {
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to read on this platform", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
