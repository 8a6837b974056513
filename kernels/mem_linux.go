//go:build linux && !purego

package kernels

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// weightsOffHeap is true where large packed weights are mapped outside the
// Go heap.
const weightsOffHeap = true

// mappedRegions records the start address of every live weight mapping
// (for isMapped, used by tests and Linear.OffHeap).
var mappedRegions sync.Map // uintptr → int (bytes)

// mapFloats maps n zeroed float32s of anonymous private memory (page
// aligned, hence 64-byte aligned). It returns nil if the mapping fails, so
// the caller falls back to the heap.
func mapFloats(n int) ([]float32, func()) {
	if n <= 0 {
		return nil, nil
	}
	size := n * 4
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, nil
	}
	addr := uintptr(unsafe.Pointer(&b[0]))
	mappedRegions.Store(addr, size)
	offHeapBytes.Add(int64(size))
	f := unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	return f[:n:n], func() {
		mappedRegions.Delete(addr)
		offHeapBytes.Add(-int64(size))
		_ = unix.Munmap(b)
	}
}

// isMapped reports whether f starts a live weight mapping.
func isMapped(f []float32) bool {
	if len(f) == 0 {
		return false
	}
	_, ok := mappedRegions.Load(uintptr(unsafe.Pointer(&f[0])))
	return ok
}
