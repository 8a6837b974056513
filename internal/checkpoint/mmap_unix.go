//go:build unix

package checkpoint

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapsFiles is true where mapFile maps (rather than reads) files.
const mapsFiles = true

// dropPages releases the whole pages inside b, a part of a private file
// mapping (MADV_DONTNEED: they are read from the file again if touched).
func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	page := uintptr(os.Getpagesize())
	addr := uintptr(unsafe.Pointer(&b[0]))
	start := (addr + page - 1) &^ (page - 1)
	end := (addr + uintptr(len(b))) &^ (page - 1)
	if end <= start {
		return
	}
	_ = unix.Madvise(b[start-addr:end-addr], unix.MADV_DONTNEED)
}

// mapFile maps the whole of f (size bytes) into memory. The mapping is
// private and writable (copy-on-write): a caller that writes into a
// returned weight slice changes only its own pages, never the file, and
// does not fault. release unmaps it.
func mapFile(f *os.File, size int64) (buf []byte, release func() error, err error) {
	if size == 0 {
		return nil, func() error { return nil }, nil
	}
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to map on this platform", size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return b, func() error { return unix.Munmap(b) }, nil
}
