package kernels

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Weight memory.
//
// The packed weights of a model are large (about 1 GB for BLIP-base), live
// as long as the model and hold no pointers. Kept on the Go heap they would
// make the garbage collector's pacing (GOGC) allow as much garbage as there
// are weights before it collects. So on Linux (without the purego tag) the
// packed data of every Linear is placed in anonymous mmap'ed memory outside
// the Go heap, returned to the system by a runtime.AddCleanup when its
// PackedB becomes unreachable. Elsewhere, and for matrices smaller than
// offHeapMinBytes, it stays on the heap.

// offHeapMinBytes is the smallest packed weight placed off the Go heap;
// smaller ones stay on the heap (one mapping per matrix would be wasteful).
// A variable so that tests can exercise both paths.
var offHeapMinBytes = 256 << 10

// offHeapBytes counts the bytes currently mapped for weights.
var offHeapBytes atomic.Int64

// OffHeapBytes returns the bytes of packed weights currently held outside
// the Go heap (0 where weights stay on the heap). Add it to the Go
// runtime's own figures when accounting for a process's memory.
func OffHeapBytes() int64 { return offHeapBytes.Load() }

// Pacing. The collector does not see mapped weights, so it is not
// prompted by them: a program that replaces its weights again and again
// (training rebuilding its packed layers after every step, a server
// reloading a model) while allocating little on the heap could pile up
// unreachable mappings. So mapping more than offHeapPaceMin bytes, and
// more than were mapped and live at the end of the last collection, since
// that collection runs one: unreachable weights are then at most about
// as large as live ones (GOGC=100's rule, applied to weights).
var (
	offHeapPaceMin int64 = 256 << 20
	pace           struct {
		sync.Mutex
		cycles  uint64 // GC cycles seen at the last check
		sinceGC int64  // bytes mapped since then
		liveAt  int64  // OffHeapBytes when that cycle was seen
	}
)

// gcCycles returns the number of completed GC cycles.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// paceMapped records size newly mapped bytes and collects when the
// mappings since the last collection exceed the pacing threshold.
func paceMapped(size int) {
	pace.Lock()
	if c := gcCycles(); c != pace.cycles {
		pace.cycles, pace.sinceGC, pace.liveAt = c, 0, OffHeapBytes()-int64(size)
	}
	pace.sinceGC += int64(size)
	collect := pace.sinceGC > max(offHeapPaceMin, pace.liveAt)
	if collect {
		pace.sinceGC = 0
	}
	pace.Unlock()
	if collect {
		runtime.GC() // the cleanups of unreachable weights then unmap them
	}
}

// weightFloats returns n zeroed float32s whose first element is 64-byte
// aligned, off the Go heap when possible. free, if not nil, must be called
// exactly once when the memory is no longer used.
func weightFloats(n int) (data []float32, free func()) {
	if n*4 >= offHeapMinBytes {
		if data, free := mapFloats(n); data != nil {
			paceMapped(4 * n)
			return data, free
		}
	}
	return alignedFloats(n), nil
}

// newPackedWeight returns a zeroed PackedB for a k×n operand whose data is
// allocated by weightFloats and released when the PackedB is unreachable.
// Users of its data must keep the PackedB reachable until they are done
// (Linear.Forward does).
func newPackedWeight(k, n int) *PackedB {
	np := (n + nr - 1) / nr
	data, free := weightFloats(np * k * nr)
	p := &PackedB{k: k, n: n, data: data}
	if free != nil {
		runtime.AddCleanup(p, func(f func()) { f() }, free)
	}
	return p
}

// packWeight is PackB with the packed data placed by newPackedWeight (off
// the Go heap on Linux). The layout and values are exactly PackB's.
func packWeight(transB bool, k, n int, b []float32, ldb int) *PackedB {
	checkDims("PackB", 1, n, k)
	checkMat("PackB", "B", "ldb", transB, k, n, b, ldb)
	p := newPackedWeight(k, n)
	if k > 0 {
		np := (n + nr - 1) / nr
		parallelFor(np, 8, func(lo, hi int) { packBPanels(p.data[lo*k*nr:], transB, k, n, b, ldb, lo, hi) })
	}
	return p
}

// OffHeap reports whether the layer's packed weight lives outside the Go
// heap (see OffHeapBytes).
func (l *Linear) OffHeap() bool { return l.W != nil && isMapped(l.W.data) }
